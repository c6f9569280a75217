// graphs: building and validating graphs, JSON pipelines, the evaluator.
#include <doctest/doctest.h>

#include <future>
#include <mutex>
#include <thread>

#include "support.hpp"

using namespace tessera;

namespace {

// A source whose pixel values are a function of (x, y, band): any misplaced
// or mis-ordered tile shows in the result.
class RampOp final : public Op {
public:
    RampOp(const Params& p, std::span<const ImageInfo>) {
        info_.width = p.integer_in("width", 1, kMaxDimension);
        info_.height = p.integer_in("height", 1, kMaxDimension);
        info_.bands = 2;
        info_.format = Format::u16;
    }
    void demand(const Rect&, Demand&) const override {}
    void compute(const Tile& out, std::span<const Pulled>) const override {
        for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
            auto* row = out.row<std::uint16_t>(y);
            for (int x = out.rect.x; x < out.rect.right(); ++x) {
                row[(x - out.rect.x) * 2] = std::uint16_t(x * 7 + y * 13);
                row[(x - out.rect.x) * 2 + 1] = std::uint16_t(x ^ y);
            }
        }
    }
};

// A pass-through op that pulls its input into scratch (an unplaced need),
// to exercise that path and the tile cache.
class CopyOp final : public Op {
public:
    CopyOp(const Params&, std::span<const ImageInfo> in) { info_ = in[0]; }
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }
    void compute(const Tile& out, std::span<const Pulled> in) const override { copy_pixels(in[0].tile, out); }
};

// Fails on any tile touching column 100, as a broken file would.
class FailOp final : public Op {
public:
    FailOp(const Params&, std::span<const ImageInfo> in) { info_ = in[0]; }
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, r.origin()}); }
    void compute(const Tile& out, std::span<const Pulled>) const override {
        if (out.rect.contains(Point{100, out.rect.y})) throw IoError("broken.jpg", "premature end of JPEG data");
    }
};

// A source that logs what the evaluator tells it (expect, release) and
// which tiles it computes, in one process-wide log; its pixels are 0.
struct ProbeLog {
    std::mutex mu;
    std::vector<Rect> expects, computes;
    int releases = 0;
    void clear() {
        std::lock_guard lock(mu);
        expects.clear();
        computes.clear();
        releases = 0;
    }
};
ProbeLog& probe_log() {
    static ProbeLog log;
    return log;
}
class ProbeOp final : public Op {
public:
    ProbeOp(const Params& p, std::span<const ImageInfo>) {
        info_.width = p.integer_in("width", 1, kMaxDimension);
        info_.height = p.integer_in("height", 1, kMaxDimension);
    }
    void demand(const Rect&, Demand&) const override {}
    void compute(const Tile& out, std::span<const Pulled>) const override {
        const double zero = 0;
        fill_pixels(out, &zero, 1);
        std::lock_guard lock(probe_log().mu);
        probe_log().computes.push_back(out.rect);
    }
    void expect(const Rect& region) const override {
        std::lock_guard lock(probe_log().mu);
        probe_log().expects.push_back(region);
    }
    void release() const override {
        std::lock_guard lock(probe_log().mu);
        ++probe_log().releases;
    }
};

const OpRegistry& test_registry() {
    static const OpRegistry r = [] {
        OpRegistry r;
        register_ops(r);
        register_io_ops(r);
        r.add({"ramp",
               "test source",
               0,
               0,
               {{"width", ParamType::integer, true, "", ""}, {"height", ParamType::integer, true, "", ""}},
               false,
               &make_op<RampOp>});
        r.add({"probe",
               "test source that logs its advice",
               0,
               0,
               {{"width", ParamType::integer, true, "", ""}, {"height", ParamType::integer, true, "", ""}},
               false,
               &make_op<ProbeOp>});
        r.add({"copy", "test copy", 1, 1, {}, false, &make_op<CopyOp>});
        r.add({"fail", "test failure", 1, 1, {}, false, &make_op<FailOp>});
        return r;
    }();
    return r;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Graph parse(const std::string& s) { return parse_pipeline(s, test_registry(), "p.json"); }

}  // namespace

TEST_CASE("graph: arity / unknown op and unknown params are errors naming node and key") {
    Graph g(test_registry());
    auto a = g.add("ramp", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(10)}}, "a");
    CHECK(has(tt::error_of([&] { g.add("insert", {}, {{"at", std::vector<IntPair>{}}}, "ins"); }), "node 'ins'"));
    CHECK(has(tt::error_of([&] { g.add("nosuch", {a}, {}, "x"); }), "unknown op 'nosuch'"));
    std::string e = tt::error_of([&] {
        g.add("black", {}, {{"width", std::int64_t(5)}, {"height", std::int64_t(5)}, {"colour", std::int64_t(1)}},
              "bk");
    });
    CHECK(has(e, "node 'bk'"));
    CHECK(has(e, "key 'colour'"));
    e = tt::error_of([&] { g.add("black", {}, {{"width", std::string("wide")}, {"height", std::int64_t(5)}}, "bk"); });
    CHECK(has(e, "key 'width'"));
    CHECK(has(e, "expected integer, got string"));
    e = tt::error_of([&] { g.add("black", {}, {{"height", std::int64_t(5)}}, "bk"); });
    CHECK(has(e, "key 'width'"));
    CHECK(has(e, "missing"));
    e = tt::error_of([&] { g.add("ramp", {}, {{"width", std::int64_t(1)}, {"height", std::int64_t(1)}}, "a"); });
    CHECK(has(e, "unique"));
}

TEST_CASE("graph: pixel-format compatibility is checked when the graph is built") {
    Graph g(test_registry());
    auto base =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(10)}, {"bands", std::int64_t(3)}});
    auto r = g.add("ramp", {}, {{"width", std::int64_t(4)}, {"height", std::int64_t(4)}});
    std::string e = tt::error_of([&] { g.add("insert", {base, r}, {{"at", std::vector<IntPair>{{1, 1}}}}, "ins"); });
    CHECK(has(e, "node 'ins' (op insert)"));
    CHECK(has(e, "2 bands of u16"));
}

TEST_CASE("pipeline: malformed JSON / unknown keys and ids / cycles name the node and key") {
    CHECK(has(tt::error_of([] { parse("{\"version\": 1, \"nodes\": [}"); }), "malformed JSON"));
    CHECK(has(tt::error_of([] { parse(R"({"version": 2, "nodes": []})"); }), "version"));
    CHECK(has(tt::error_of([] { parse(R"({"version": 1, "nodes": [], "extra": 1})"); }), "key 'extra'"));
    CHECK(has(tt::error_of([] { parse(R"({"version": 1, "execution": {"tiles": 5}, "nodes": []})"); }),
              "execution.tiles"));
    std::string e = tt::error_of(
        [] { parse(R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": 4, "height": 4, "widht": 3}]})"); });
    CHECK(has(e, "node 'c' (op black), key 'widht'"));
    e = tt::error_of(
        [] { parse(R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": "4", "height": 4}]})"); });
    CHECK(has(e, "node 'c' (op black), key 'width'"));
    CHECK(has(e, "expected integer, got string"));
    e = tt::error_of([] {
        parse(R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": 4, "height": 4},
                 {"id": "i", "op": "insert", "inputs": ["c", "ghost"], "at": [[0, 0]]}]})");
    });
    CHECK(has(e, "node 'i' (op insert), key 'inputs'"));
    CHECK(has(e, "unknown input id 'ghost'"));
    e = tt::error_of([] {
        parse(R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": 4, "height": 4},
                 {"id": "a", "op": "insert", "inputs": ["c", "b"], "at": [[0, 0]]},
                 {"id": "b", "op": "insert", "inputs": ["c", "a"], "at": [[0, 0]]}]})");
    });
    CHECK(has(e, "cycle"));
    CHECK((has(e, "a -> b -> a") || has(e, "b -> a -> b")));
    e = tt::error_of(
        [] { parse(R"({"version": 1, "nodes": [{"id": "s", "op": "insert", "inputs": ["s"], "at": []}]})"); });
    CHECK(has(e, "s -> s"));
    e = tt::error_of(
        [] { parse(R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": 0, "height": 4}]})"); });
    CHECK(has(e, "key 'width'"));
    CHECK(has(e, "out of range"));
}

TEST_CASE("pipeline: nodes may come in any order - a graph saves to JSON and reloads the same") {
    Graph g = parse(R"({"version": 1, "execution": {"tile": [64, 32], "threads": 1},
        "nodes": [{"id": "ins", "op": "insert", "inputs": ["bg", "r"], "at": [[3, 4]]},
                  {"id": "bg", "op": "black", "width": 40, "height": 30, "bands": 2, "format": "u16", "value": 7},
                  {"id": "r", "op": "ramp", "width": 10, "height": 12, "cache": true}]})");
    CHECK(g.size() == 3);
    CHECK(g.execution.tile_w == 64);
    CHECK(g.execution.tile_h == 32);
    CHECK(g.node(g.find("r")).cache);
    Graph h = parse(to_json(g));
    REQUIRE(h.size() == g.size());
    for (NodeId n = 0; n < g.size(); ++n) {
        CHECK(h.node(n).id == g.node(n).id);
        CHECK(h.node(n).op_name == g.node(n).op_name);
        CHECK(h.node(n).inputs == g.node(n).inputs);
        CHECK(h.node(n).params == g.node(n).params);
        CHECK(h.node(n).cache == g.node(n).cache);
        CHECK(h.info(n) == g.info(n));
    }
    CHECK(h.execution == g.execution);

    // the C++ API builds the same graph: its params are made canonical too
    Graph c(test_registry());
    auto r = c.add("ramp", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(12)}}, "r");
    auto bg = c.add("black", {},
                    {{"width", std::int64_t(40)},
                     {"height", std::int64_t(30)},
                     {"bands", std::int64_t(2)},
                     {"format", std::string("u16")},
                     {"value", std::int64_t(7)}},
                    "bg");
    c.add("insert", {bg, r}, {{"at", std::vector<IntPair>{{3, 4}}}}, "ins");
    Graph c2 = parse(to_json(c));
    CHECK(c2.node(c2.find("bg")).params == c.node(c.find("bg")).params);
    CHECK(to_json(c2) == to_json(c));
}

TEST_CASE("pipeline: 100000 nodes load and validate quickly") {
    std::string s = R"({"version": 1, "nodes": [{"id": "bg", "op": "black", "width": 1000, "height": 1000})";
    std::string ids, at;
    for (int i = 0; i < 100000; ++i) {
        s += ",{\"id\": \"t" + std::to_string(i) + "\", \"op\": \"black\", \"width\": 8, \"height\": 8}";
        ids += ",\"t" + std::to_string(i) + "\"";
        at += std::string(i ? "," : "") + "[" + std::to_string(i % 990) + "," + std::to_string(i / 100) + "]";
    }
    s += R"(,{"id": "ins", "op": "insert", "inputs": ["bg")" + ids + "], \"at\": [" + at + "]}]}";
    Graph g = parse(s);
    CHECK(g.size() == 100002);
    Buffer b = Evaluator(g).render(g.find("ins"), {0, 0, 64, 64});
    CHECK(b.valid());
}

TEST_CASE("evaluator: output bits do not depend on threads or tile size") {
    Graph g = parse(R"({"version": 1, "nodes": [
        {"id": "bg", "op": "black", "width": 301, "height": 207, "bands": 2, "format": "u16", "value": [5, 9]},
        {"id": "a", "op": "ramp", "width": 120, "height": 90},
        {"id": "b", "op": "ramp", "width": 77, "height": 150},
        {"id": "c", "op": "copy", "inputs": ["a"]},
        {"id": "ins", "op": "insert", "inputs": ["bg", "c", "b", "a"], "at": [[-20, 10], [100, 60], [250, 180]]}]})");
    NodeId out = g.find("ins");
    Buffer ref = tt::render(g, out, 256, 1);
    // a few pixels by hand: background, "a" via copy at (-20, 10), "b" on top of it
    auto px = [&](int x, int y, int band) { return ref.view().row<std::uint16_t>(y)[x * 2 + band]; };
    CHECK(px(0, 0, 0) == 5);
    CHECK(px(0, 0, 1) == 9);
    CHECK(px(10, 20, 0) == (30 * 7 + 10 * 13));    // a's pixel (30, 10)
    CHECK(px(110, 70, 0) == (10 * 7 + 10 * 13));   // b's pixel (10, 10), on top of a
    CHECK(px(300, 206, 0) == (50 * 7 + 26 * 13));  // a again, clipped at the corner
    for (int tile : {16, 37, 64, 100})
        for (int threads : {1, 2, 4}) {
            CAPTURE(tile);
            CAPTURE(threads);
            CHECK(tt::max_abs_diff(tt::render(g, out, tile, threads), ref) == 0);
        }
}

TEST_CASE("evaluator: pixel memory is bounded by tiles in flight / not image size") {
    auto peak_for = [](int size) {
        Graph g = parse(R"({"version": 1, "nodes": [
            {"id": "bg", "op": "black", "width": )" +
                        std::to_string(size) + R"(, "height": )" + std::to_string(size) +
                        R"(, "bands": 2, "format": "u16"},
            {"id": "a", "op": "ramp", "width": 500, "height": 500},
            {"id": "c", "op": "copy", "inputs": ["a"]},
            {"id": "ins", "op": "insert", "inputs": ["bg", "c"], "at": [[100, 100]]}]})");
        RunStats s;
        tt::render(g, g.find("ins"), 64, 2, &s);
        return s;
    };
    RunStats small = peak_for(1000), big = peak_for(8000);
    const std::size_t tile = 64 * 64 * 4;
    CHECK(big.tiles == 125 * 125);
    // tiles in flight x (output tile + one scratch tile for "copy")
    CHECK(big.peak_pixel_bytes <= big.tokens * 2 * tile);
    CHECK(small.peak_pixel_bytes <= small.tokens * 2 * tile);
    // (how many tiles are really in flight at once depends on the machine's
    // load, so the two runs' peaks are compared with the bound, not each other)
    CHECK(big.peak_pixel_bytes * 100 < std::size_t(8000) * 8000 * 4);
    CHECK(big.peak_pixel_bytes > 0);
}

TEST_CASE("evaluator: a node read twice is served from the tile cache") {
    // x and y both read c, and their tiles ask c for the same rects
    RunStats s;
    Graph h = parse(R"({"version": 1, "nodes": [
        {"id": "a", "op": "ramp", "width": 128, "height": 128},
        {"id": "c", "op": "copy", "inputs": ["a"]},
        {"id": "x", "op": "copy", "inputs": ["c"]},
        {"id": "y", "op": "copy", "inputs": ["c"]},
        {"id": "bg", "op": "black", "width": 256, "height": 128, "bands": 2, "format": "u16"},
        {"id": "ins", "op": "insert", "inputs": ["bg", "x", "y"], "at": [[0, 0], [128, 0]]}]})");
    Buffer hb = tt::render(h, h.find("ins"), 32, 1, &s);
    CHECK(s.cache_hits == 16);    // every tile of c, asked for the second time by y
    CHECK(s.cache_misses == 16);  // ... and computed once for x
    CHECK(hb.view().row<std::uint16_t>(5)[2 * 130] == hb.view().row<std::uint16_t>(5)[2 * 2]);
}

TEST_CASE("evaluator: a failing op names its node - the sink is aborted") {
    Graph g = parse(R"({"version": 1, "nodes": [
        {"id": "a", "op": "ramp", "width": 300, "height": 100},
        {"id": "bad", "op": "fail", "inputs": ["a"]}]})");
    std::string e = tt::error_of([&] { tt::render(g, g.find("bad"), 64, 2); });
    CHECK(has(e, "node 'bad' (op fail)"));
    CHECK(has(e, "broken.jpg"));
}

TEST_CASE("evaluator: cancellation by token and by progress callback") {
    Graph g = parse(R"({"version": 1, "nodes": [{"id": "a", "op": "ramp", "width": 2000, "height": 2000}]})");
    g.execution.tile_w = g.execution.tile_h = 32;
    struct Count final : Sink {
        int written = 0;
        bool aborted = false, finished = false;
        void start(const ImageInfo&, const SinkContext&) override {}
        void consume(const ConstTile&, std::shared_ptr<void>) override { ++written; }
        void finish() override { finished = true; }
        void abort() noexcept override { aborted = true; }
    };
    Count sink;
    RunOptions opt;
    opt.progress = [](const Progress& p) { return p.tiles_done < 10; };
    CHECK_THROWS_AS(Evaluator(g).run(0, sink, opt), Cancelled);
    CHECK(sink.aborted);
    CHECK_FALSE(sink.finished);
    CHECK(sink.written < 100);

    std::atomic<bool> flag{true};
    Count sink2;
    RunOptions opt2;
    opt2.cancel = &flag;
    CHECK_THROWS_AS(Evaluator(g).run(0, sink2, opt2), Cancelled);
    CHECK(sink2.written == 0);
    CHECK(sink2.aborted);
}

TEST_CASE("evaluator: a memory budget too small for one tile fails before starting") {
    Graph g = parse(R"({"version": 1, "execution": {"tile": 1024, "memory_mb": 1},
                        "nodes": [{"id": "a", "op": "ramp", "width": 2000, "height": 2000}]})");
    std::string e = tt::error_of([&] {
        struct Null final : Sink {
            void start(const ImageInfo&, const SinkContext&) override {}
            void consume(const ConstTile&, std::shared_ptr<void>) override {}
            void finish() override {}
            void abort() noexcept override {}
        } s;
        Evaluator(g).run(0, s);
    });
    CHECK(has(e, "memory_mb 1"));
    CHECK(has(e, "lower the tile size"));
}

TEST_CASE("dot: nodes / edges and large fan-in collapsed") {
    std::string s = R"({"version": 1, "nodes": [{"id": "bg", "op": "black", "width": 100, "height": 100})";
    std::string ids, at;
    for (int i = 0; i < 50; ++i) {
        s += ",{\"id\": \"t" + std::to_string(i) + "\", \"op\": \"black\", \"width\": 8, \"height\": 8}";
        ids += ",\"t" + std::to_string(i) + "\"";
        at += std::string(i ? "," : "") + "[" + std::to_string(i) + ",0]";
    }
    s += R"(,{"id": "ins", "op": "insert", "inputs": ["bg")" + ids + "], \"at\": [" + at + "]}]}";
    Graph g = parse(s);
    std::string dot = g.to_dot(16);
    CHECK(has(dot, "digraph"));
    CHECK(has(dot, "\"ins\\ninsert\\n100x100x1 u8\""));
    CHECK(has(dot, "48 more inputs"));
    CHECK_FALSE(has(dot, "\"t20\\n"));
    CHECK(has(g.to_dot(0), "\"t20\\n"));
}

namespace {

// A sink that keeps the whole image; with `gate`, start() waits until it is
// opened (so that a test can act while the run is under way).
struct Keep final : ShardedSink {
    Buffer out;
    std::optional<Share> share_;
    std::promise<void> started;
    std::shared_future<void> gate;
    std::vector<std::uint32_t> order;  // tile_order(); empty: row-major
    std::vector<std::size_t> starts;   // share_starts(); empty: cannot be split
    std::size_t tiles = 0;
    std::optional<Share> share() const { return share_; }
    std::vector<std::uint32_t> tile_order(int, int) const override { return order; }
    std::vector<std::size_t> share_starts(int, int, int) const override { return starts; }
    void start(const ImageInfo& info, const SinkContext& c) override {
        if (c.share) share_ = *c.share;
        out = Buffer(nullptr, info.rect(), info.bands, info.format);
        started.set_value();
        if (gate.valid()) gate.wait();
    }
    void consume(const ConstTile& t, std::shared_ptr<void>) override {
        copy_pixels(t, out.tile().sub(t.rect));
        ++tiles;
    }
    void finish() override {}
    void abort() noexcept override {}
};

// The ramp's pixels, as RampOp computes them.
bool is_ramp(const Buffer& b) {
    for (int y = 0; y < b.rect().h; ++y)
        for (int x = 0; x < b.rect().w; ++x)
            if (b.view().row<std::uint16_t>(y)[x * 2] != std::uint16_t(x * 7 + y * 13) ||
                b.view().row<std::uint16_t>(y)[x * 2 + 1] != std::uint16_t(x ^ y))
                return false;
    return true;
}

// One rank of a two-rank cluster, in one process: what a sharded run needs
// to plan and compute its share, with no other rank behind it (messages go
// nowhere, gather returns this rank's own bytes on rank 0).
class LoneRank final : public Cluster {
public:
    explicit LoneRank(int rank) : rank_(rank) {}
    int rank() const override { return rank_; }
    int ranks() const override { return 2; }
    std::unique_ptr<Courier> courier(const std::atomic<bool>*) override {
        struct Mute final : Courier {
            int r;
            explicit Mute(int rank) : r(rank) {}
            int rank() const override { return r; }
            int ranks() const override { return 2; }
            void send(std::vector<std::byte>) override {}
            void flush() override {}
            bool receive(std::vector<std::byte>&, bool) override { return false; }
            std::vector<std::byte> broadcast(std::vector<std::byte> b) override { return b; }
            std::uint64_t bytes_sent() const override { return 0; }
            double seconds_waited() const override { return 0; }
        };
        return std::make_unique<Mute>(rank_);
    }
    std::vector<std::vector<std::byte>> gather(std::vector<std::byte> b, const std::atomic<bool>*) override {
        if (rank_ != 0) return {};
        return {std::move(b)};
    }
    void barrier(const std::atomic<bool>*) override {}
    void watch(std::atomic<bool>*) override {}
    std::string failure() const override { return ""; }
    [[noreturn]] void fail(int, const std::string& m) override { throw Error(m); }
    [[noreturn]] void acknowledge() override { throw Error("acknowledged"); }

private:
    int rank_;
};

}  // namespace

// A graph only grows; nodes added after its Evaluator was made used to be
// read past the end of the Evaluator's per-node state (a crash).
TEST_CASE("evaluator: nodes added after the Evaluator was made are run - and render says to make it later") {
    Graph g = parse(R"({"version": 1, "execution": {"tile": 64, "threads": 2},
                        "nodes": [{"id": "a", "op": "ramp", "width": 300, "height": 200}]})");
    Evaluator ev(g);
    Evaluator later(g);
    const NodeId b = g.add("ramp", {}, {{"width", std::int64_t(130)}, {"height", std::int64_t(70)}});
    Keep k;
    const RunStats s = ev.run(b, k);
    CHECK(s.tiles == 3 * 2);
    CHECK(k.out.rect() == Rect{0, 0, 130, 70});
    CHECK(is_ramp(k.out));
    CHECK(is_ramp(ev.render(b, {0, 0, 130, 70})));  // (the run took the new node up)
    const std::string e = tt::error_of([&] { later.render(b, {0, 0, 10, 10}); });
    CHECK(has(e, "1 of them added after this Evaluator was made"));
}

TEST_CASE("evaluator: a second run while one is under way is refused - the first finishes with the right pixels") {
    Graph g = parse(R"({"version": 1, "execution": {"tile": 64, "threads": 2},
                        "nodes": [{"id": "a", "op": "ramp", "width": 300, "height": 200}]})");
    Evaluator ev(g);
    std::promise<void> open;
    Keep first;
    first.gate = open.get_future().share();
    std::future<RunStats> running = std::async(std::launch::async, [&] { return ev.run(0, first); });
    first.started.get_future().wait();  // the first run is in its sink's start()

    Keep second;
    const std::string e = tt::error_of([&] { ev.run(0, second); });
    CHECK(has(e, "one run at a time"));
    CHECK(has(e, "an Evaluator of its own"));
    CHECK(second.tiles == 0);
    CHECK(second.out.rect().empty());  // never started
    CHECK(has(tt::error_of([&] { ev.run_sinks(); }), "one run at a time"));
    CHECK(has(tt::error_of([&] { ev.render(0, {0, 0, 10, 10}); }), "one run at a time"));

    open.set_value();
    const RunStats s = running.get();
    CHECK(s.tiles == 5 * 4);
    CHECK(first.tiles == 5 * 4);
    CHECK(is_ramp(first.out));

    // the Evaluator is free again, after a run that ended and one that failed
    std::atomic<bool> cancel{true};
    RunOptions cancelled;
    cancelled.cancel = &cancel;
    Keep third;
    CHECK_THROWS_AS(ev.run(0, third, cancelled), Cancelled);
    Keep fourth;
    CHECK(ev.run(0, fourth).tiles == 20);
    CHECK(is_ramp(fourth.out));
    CHECK(is_ramp(ev.render(0, {0, 0, 300, 200})));
}

TEST_CASE("evaluator: Evaluators of one graph run on four threads at once - each gets every pixel right") {
    Graph g = parse(R"({"version": 1, "execution": {"tile": 32, "threads": 2},
                        "nodes": [{"id": "a", "op": "ramp", "width": 257, "height": 131},
                                  {"id": "b", "op": "copy", "inputs": ["a"]}]})");
    std::vector<Keep> sinks(4);
    std::vector<std::thread> threads;
    for (Keep& k : sinks) threads.emplace_back([&g, &k] { Evaluator(g).run(1, k); });
    for (auto& t : threads) t.join();
    for (const Keep& k : sinks) {
        CHECK(k.tiles == 9 * 5);
        CHECK(is_ramp(k.out));
    }
}

TEST_CASE("evaluator: a source hears expect before each segment of its use and release after it") {
    Graph g = parse(R"({"version": 1, "execution": {"tile": 64, "threads": 2},
                        "nodes": [{"id": "p", "op": "probe", "width": 256, "height": 200}]})");
    auto& log = probe_log();
    SUBCASE("row-major: one segment, the whole image") {
        log.clear();
        Keep k;
        Evaluator(g).run(0, k);
        CHECK(log.expects == std::vector<Rect>{{0, 0, 256, 200}});
        CHECK(log.releases == 1);
        CHECK(log.computes.size() == 16);
    }
    SUBCASE("by columns: each column goes back up, so each is a segment of its own") {
        log.clear();
        Keep k;
        for (std::uint32_t c = 0; c < 4; ++c)
            for (std::uint32_t r = 0; r < 4; ++r) k.order.push_back(r * 4 + c);
        Evaluator(g).run(0, k);
        CHECK(log.expects ==
              std::vector<Rect>{{0, 0, 64, 200}, {64, 0, 64, 200}, {128, 0, 64, 200}, {192, 0, 64, 200}});
        CHECK(log.releases == 4);
        CHECK(log.computes.size() == 16);
    }
}

TEST_CASE("evaluator: a source's segment is cut where its columns narrow for good") {
    // The probe (2000 x 1200) under a later image that covers its columns
    // 1200.. from row 100 down: the first tile row asks the whole width,
    // every later one only columns 0..1200, so the probe hears a second
    // expect with the narrower columns (a streaming decoder restarts there
    // cropped) and a release after each part.
    auto log_of = [](int cover_x) {
        Graph g = parse(R"({"version": 1, "execution": {"tile": 256, "threads": 2},
                            "nodes": [{"id": "b", "op": "black", "width": 2000, "height": 1200},
                                      {"id": "p", "op": "probe", "width": 2000, "height": 1200},
                                      {"id": "c", "op": "black", "width": 2000, "height": 1100},
                                      {"id": "i", "op": "insert", "inputs": ["b", "p", "c"],
                                       "at": [[0, 0], [)" +
                        std::to_string(cover_x) + R"(, 100]]}]})");
        probe_log().clear();
        Keep k;
        Evaluator(g).run(g.find("i"), k);
        return std::pair{probe_log().expects, probe_log().releases};
    };
    const auto [cut, cut_releases] = log_of(1200);
    CHECK(cut == std::vector<Rect>{{0, 0, 2000, 256}, {0, 256, 1200, 944}});
    CHECK(cut_releases == 2);
    // a cover of only the last 40 columns: narrowing by 40 does not pay for
    // the rows a restart skips, so one segment
    const auto [whole, whole_releases] = log_of(1960);
    CHECK(whole == std::vector<Rect>{{0, 0, 2000, 1200}});
    CHECK(whole_releases == 1);
}

TEST_CASE("evaluator: a sharded rank computes the share its costs give it and its sources hear only that share") {
    // 4 x 4 tiles of 64, row-major, a share may begin at any row: equal
    // costs give rank 0 rows 0-1 and rank 1 rows 2-3; each rank walks demand
    // once over all tiles (costs) and plans its own share from the same walk
    Graph g = parse(R"({"version": 1, "execution": {"tile": 64, "threads": 2},
                        "nodes": [{"id": "p", "op": "probe", "width": 256, "height": 256}]})");
    auto& log = probe_log();
    for (int rank : {0, 1}) {
        CAPTURE(rank);
        log.clear();
        LoneRank cluster(rank);
        RunOptions opt;
        opt.cluster = &cluster;
        Keep k;
        k.starts = {0, 4, 8, 12};
        const RunStats s = Evaluator(g).run(0, k, opt);
        REQUIRE(k.share());
        CHECK(k.share()->first == std::size_t(rank * 8));
        CHECK(k.share()->last == std::size_t(rank * 8 + 8));
        CHECK(s.tiles == 8);
        CHECK(log.computes.size() == 8);
        for (const Rect& r : log.computes) CHECK((r.y >= 128) == (rank == 1));
        // one segment (the rows of this share), cut at the share's boundary
        CHECK(log.expects == std::vector<Rect>{{0, rank * 128, 256, 128}});
        CHECK(log.releases == 1);
        CHECK(s.ranks.size() == (rank == 0 ? 1u : 0u));
    }
    SUBCASE("a sink that cannot be split is computed by rank 0 alone") {
        for (int rank : {0, 1}) {
            log.clear();
            LoneRank cluster(rank);
            RunOptions opt;
            opt.cluster = &cluster;
            Keep k;
            const RunStats s = Evaluator(g).run(0, k, opt);
            CHECK_FALSE(k.share());
            CHECK(s.tiles == (rank == 0 ? 16u : 0u));
            CHECK(log.computes.size() == (rank == 0 ? 16u : 0u));
            CHECK(log.expects.size() == (rank == 0 ? 1u : 0u));
        }
    }
}
