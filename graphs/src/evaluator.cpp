#include "tessera/graphs/evaluator.hpp"

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <tuple>
#include <algorithm>
#include <list>
#include <map>
#include <mutex>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <unordered_map>
#include <unordered_set>

#include "tessera/core/compute_slots.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/statistics_sink.hpp"
#include "tessera/core/stop.hpp"

namespace tessera {

namespace {

// A stable report of background fills: by node, then top to bottom, left
// to right.
void sort_filled(std::vector<Filled>& f) {
    std::sort(f.begin(), f.end(), [](const Filled& a, const Filled& b) {
        return std::tie(a.node, a.rect.y, a.rect.x, a.rect.w, a.rect.h) <
               std::tie(b.node, b.rect.y, b.rect.x, b.rect.w, b.rect.h);
    });
}

// Background fills into a rank's statistics message, and back.
void append_filled(MessageWriter& out, const std::vector<Filled>& filled) {
    out.put(std::uint32_t(filled.size()));
    for (const Filled& f : filled) {
        out.put(f.node);
        out.put(f.file);
        out.put(f.rect);
        out.put(f.message);
    }
}
void read_filled(MessageReader in, std::vector<Filled>& filled) {
    for (std::uint32_t k = 0, n = in.get<std::uint32_t>(); k < n; ++k) {
        Filled f;
        f.node = in.get_string();
        f.file = in.get_string();
        f.rect = in.get<Rect>();
        f.message = in.get_string();
        filled.push_back(std::move(f));
    }
}

// A rect of a node: what the tile cache keys by and what a demand walk
// visits once per tile.
struct NodeRect {
    NodeId node;
    Rect rect;
    bool operator==(const NodeRect&) const = default;
};
struct NodeRectHash {
    std::size_t operator()(const NodeRect& k) const {
        std::size_t h = k.node * 0x9E3779B97F4A7C15ull;
        for (int v : {k.rect.x, k.rect.y, k.rect.w, k.rect.h}) h = (h ^ std::size_t(unsigned(v))) * 0x100000001B3ull;
        return h;
    }
};

// One LRU of tiles for all cached nodes, under one byte budget. Entries are
// keyed by (node, rect): a hit needs the same rect asked again, which is what
// fan-out (two consumers of one node pulling the same tile) produces.
class TileCache {
public:
    TileCache(MemoryAccount& account, std::size_t budget) : account_(account), budget_(budget) {}

    bool lookup(NodeId n, const Rect& r, const Tile& dst) {
        std::shared_ptr<const Buffer> hit;
        {
            std::lock_guard lock(mu_);
            auto it = map_.find(Key{n, r});
            if (it == map_.end()) {
                ++misses_;
                return false;
            }
            lru_.splice(lru_.begin(), lru_, it->second);
            hit = it->second->buffer;
            ++hits_;
        }
        copy_pixels(hit->view(), dst);
        return true;
    }

    void store(NodeId n, const Rect& r, const ConstTile& src) {
        auto b = std::make_shared<Buffer>(&account_, r, src.bands, src.format);
        if (b->size() > budget_) return;
        copy_pixels(src, b->tile());
        std::lock_guard lock(mu_);
        Key k{n, r};
        if (map_.count(k)) return;
        lru_.push_front(Entry{k, std::move(b)});
        map_.emplace(k, lru_.begin());
        bytes_ += lru_.front().buffer->size();
        while (bytes_ > budget_ && !lru_.empty()) {
            bytes_ -= lru_.back().buffer->size();
            map_.erase(lru_.back().key);
            lru_.pop_back();
        }
    }

    std::size_t hits() const { return hits_; }
    std::size_t misses() const { return misses_; }

private:
    using Key = NodeRect;
    using KeyHash = NodeRectHash;
    struct Entry {
        Key key;
        std::shared_ptr<const Buffer> buffer;
    };
    MemoryAccount& account_;
    std::size_t budget_;
    std::mutex mu_;
    std::list<Entry> lru_;
    std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
    std::size_t bytes_ = 0;
    std::size_t hits_ = 0, misses_ = 0;
};

// Rank `rank`'s share of positions: whole units [starts[k], starts[k+1])
// (the last ends at costs.size()), cut where the running cost is
// nearest to rank/ranks of the total, rank 0's `writer` extra counted
// in front. The same on every rank.
std::pair<std::size_t, std::size_t> share_of(const std::vector<std::size_t>& starts,
                                             const std::vector<std::uint64_t>& costs, int rank, int ranks,
                                             std::uint64_t writer) {
    std::vector<std::uint64_t> prefix{0};  // cost before unit k
    for (std::size_t k = 0; k < starts.size(); ++k) {
        const std::size_t end = k + 1 < starts.size() ? starts[k + 1] : costs.size();
        std::uint64_t c = 0;
        for (std::size_t i = starts[k]; i < end; ++i) c += costs[i];
        prefix.push_back(prefix.back() + c);
    }
    auto cut = [&](int r) -> std::size_t {  // position where rank r's share begins
        if (r <= 0) return 0;
        if (r >= ranks) return costs.size();
        const long double target = (long double)(prefix.back() + writer) * r / ranks - (long double)writer;
        std::size_t best = 0;
        for (std::size_t k = 1; k < prefix.size(); ++k)
            if (std::abs((long double)prefix[k] - target) < std::abs((long double)prefix[best] - target)) best = k;
        return best < starts.size() ? starts[best] : costs.size();
    };
    return {cut(rank), std::max(cut(rank), cut(rank + 1))};
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A computed tile on its way from the parallel stage to the sink.
struct Computed {
    std::shared_ptr<Buffer> buffer;
    std::shared_ptr<void> prepared;
};

}  // namespace

struct Evaluator::Impl {
    const Graph& g;
    MemoryAccount account{&process_pixel_memory()};
    std::vector<bool> cached;
    std::unique_ptr<TileCache> cache;
    const std::atomic<bool>* cancel = nullptr;
    std::atomic<bool> stop{false};
    std::mutex filled_mu;
    std::vector<Filled> filled;  // this run's background fills
    // A run is under way (run() or run_sinks()): the members above are its
    // state, so a second one at the same time is refused (see the header).
    std::atomic<bool> running{false};
    // Per node, the op with its statistics (Op::with_statistics) once the
    // pre-pass ran; null: the graph's op. A run starts them afresh (and
    // renders keep them), with the statistics by (input node, histogram).
    std::vector<std::shared_ptr<const Op>> bound;
    std::map<std::pair<NodeId, bool>, std::shared_ptr<const Statistics>> statistics;
    std::mutex bind_mu;  // renders binding at the same time

    const Op& op(NodeId n) const { return bound[n] ? *bound[n] : *g.node(n).op; }

    explicit Impl(const Graph& graph) : g(graph) { track_graph(); }

    // The per-node state, for the graph as it is now. A graph only grows
    // (Graph::add); one that grew after the Evaluator was made is taken up
    // again by the next run (which has the Evaluator to itself), and refused
    // by render (renders share it); before, its new nodes were read past the
    // end of these vectors.
    void track_graph() {
        cached.assign(g.size(), false);
        bound.assign(g.size(), nullptr);
        cache.reset();
        bool any = false;
        for (NodeId n = 0; n < g.size(); ++n) {
            // Explicitly marked nodes, and nodes read by several consumers,
            // which would otherwise compute the same tile more than once.
            cached[n] = g.node(n).cache || (g.consumers(n) > 1 && !g.node(n).inputs.empty());
            any = any || cached[n];
        }
        if (any && g.execution.cache_mb > 0) cache = std::make_unique<TileCache>(account, g.execution.cache_mb << 20);
    }

    // What the sources are told during a run. A node's uses fall into
    // segments: a segment ends after the node's last use, and also after any
    // use that the next one goes back up from (a smaller top row), since a
    // source that streams rows top to bottom must restart there anyway.
    // Before a segment's first tile the node hears expect(union of the
    // segment's rects); after its last tile, release().
    struct Plan {
        std::vector<std::pair<std::size_t, NodeId>> releases;        // after tile #
        std::vector<std::tuple<std::size_t, NodeId, Rect>> expects;  // before tile #
    };
    // What a walk of demand alone (no pixels) over the tiles in run order
    // finds: the segments, and what each tile costs to compute, for
    // balancing shares across ranks: its own pixels plus every pixel its
    // sources are asked for (decoding dominates; a tile over four
    // overlapping inputs costs about four times an empty one).
    struct Segment {
        NodeId node = 0;
        std::size_t first = SIZE_MAX, last = 0;  // tile positions
        Rect region;
        int last_y = 0;          // the top row of its last use
        bool continues = false;  // cut only at a break: a walk of a share holding the next one too would not cut
    };
    struct DemandWalk {
        std::vector<Segment> segments;  // in the order they end
        std::vector<std::uint64_t> costs;

        // The plan of tiles [first, last) (numbered from first; both must be
        // breaks of the walk, or its ends): the segments inside, joined again
        // where only a break cut them, as a walk of those tiles alone finds.
        Plan plan(std::size_t first, std::size_t last) const {
            Plan out;
            std::unordered_map<NodeId, Segment> open;  // joined so far, to be continued
            auto emit = [&](const Segment& s) {
                out.releases.push_back({s.last - first, s.node});
                out.expects.push_back({s.first - first, s.node, s.region});
            };
            for (const Segment& s : segments) {
                if (s.first < first || s.first >= last) continue;
                auto [it, fresh] = open.try_emplace(s.node, s);
                if (!fresh) {
                    it->second.last = s.last;
                    it->second.region = it->second.region.unite(s.region);
                    it->second.continues = s.continues;
                }
                if (!it->second.continues) {
                    emit(it->second);
                    open.erase(it);
                }
            }
            for (const auto& [n, s] : open) emit(s);  // continued past `last`
            std::sort(out.releases.begin(), out.releases.end());
            std::stable_sort(out.expects.begin(), out.expects.end(),
                             [](const auto& x, const auto& y) { return std::get<0>(x) < std::get<0>(y); });
            return out;
        }
    };
    // One walk serves both. It visits a (node, rect) pair once per tile (a
    // hash set), so diamonds cost no more than the run. `breaks`: ascending
    // tile positions where every segment is cut as well (a sharded run's
    // possible share starts, so that whichever share the costs pick, its plan
    // is made of whole segments; none otherwise).
    DemandWalk walk_demand(NodeId root, const std::vector<Rect>& tiles, const std::vector<std::size_t>& breaks) const {
        std::vector<Segment> seg(g.size());
        // A source's uses in its open segment, a row each (uses at one top
        // row): where to cut for narrower columns (column_cuts).
        std::vector<std::vector<UseRow>> rows(g.size());
        DemandWalk out;
        out.costs.resize(tiles.size());
        auto close = [&](NodeId n, bool continues) {
            seg[n].node = n;
            seg[n].continues = continues;
            if (rows[n].size() > 1)
                column_cuts(n, rows[n], seg[n], out.segments);
            else
                out.segments.push_back(seg[n]);
            seg[n] = Segment{};
            rows[n].clear();
        };
        std::vector<NodeRect> stack;
        std::unordered_set<NodeRect, NodeRectHash> seen;
        Demand need;
        std::size_t unit = 0, next_break = 0;  // the first tile of the current unit
        for (std::size_t i = 0; i < tiles.size(); ++i) {
            for (; next_break < breaks.size() && breaks[next_break] <= i; ++next_break) unit = breaks[next_break];
            seen.clear();
            std::uint64_t cost = std::uint64_t(tiles[i].area());
            stack.push_back({root, tiles[i]});
            while (!stack.empty()) {
                const auto [n, r] = stack.back();
                stack.pop_back();
                if (!seen.insert({n, r}).second) continue;
                const Node& node = g.node(n);
                if (seg[n].first != SIZE_MAX && seg[n].last != i) {
                    const bool up = r.y < seg[n].last_y;
                    if (up || seg[n].last < unit) close(n, !up);
                }
                Segment& s = seg[n];
                if (s.first == SIZE_MAX) s.first = i;
                s.last = i;
                s.last_y = r.y;
                s.region = s.region.unite(r);
                if (node.inputs.empty()) {
                    cost += std::uint64_t(r.area());
                    auto& rs = rows[n];
                    if (rs.empty() || rs.back().y != r.y) rs.push_back({i, i, r.y, r});
                    rs.back().last = i;
                    rs.back().region = rs.back().region.unite(r);
                }
                need.clear();
                op(n).demand(r, need);
                for (const Need& d : need)
                    if (!d.rect.empty()) stack.push_back({node.inputs[d.input], d.rect});
            }
            out.costs[i] = cost;
        }
        for (NodeId n = 0; n < g.size(); ++n)
            if (seg[n].first != SIZE_MAX) close(n, false);
        return out;
    }

    // A source's segment cut where its columns narrow for good. A decoder
    // that streams rows (JPEG) crops its columns once, when it starts, to
    // the segment's union; a grid scan's visible part is an L (its right
    // neighbour sits a few pixels lower, so a strip of full width shows at
    // its top), and the union is then the whole width all the way down. A
    // new segment from the row where the rest of the uses stay narrower
    // restarts the decoder there with the narrower crop: the rows above are
    // skipped (entropy-decoded only), the columns right of the crop never
    // reach the IDCT or the colour conversion. The cut is made where that
    // pays by a streaming decoder's costs: a skipped row costs kSkip of a
    // decoded one of the same width, a restart kRestartRows rows. For
    // sources that read by blocks a cut is only a release and an expect.
    struct UseRow {
        std::size_t first, last;  // tile positions
        int y;                    // the rows' top
        Rect region;              // their union
    };
    void column_cuts(NodeId n, const std::vector<UseRow>& rows, const Segment& whole,
                     std::vector<Segment>& segments) const {
        constexpr double kSkip = 0.35, kRestartRows = 16;
        constexpr int kMargin = 64;  // the decoder's crop margin and iMCU rounding, both sides
        const double width = g.info(n).width;
        auto cost = [&](const Rect& q) {  // of decoding q from the top in one segment
            const double w = std::min(width, double(q.w + kMargin));
            return kSkip * width * (q.bottom() + kRestartRows) + (1 - kSkip) * w * q.h;
        };
        std::vector<Rect> rest(rows.size() + 1);  // rest[k]: the union of rows k..
        for (std::size_t k = rows.size(); k-- > 0;) rest[k] = rest[k + 1].unite(rows[k].region);
        Segment part = whole;
        part.continues = false;
        part.first = rows[0].first;
        part.region = rows[0].region;
        for (std::size_t k = 1; k < rows.size(); ++k) {
            const bool apart = rows[k].first > rows[k - 1].last;  // never inside one tile
            if (apart && cost(part.region) + cost(rest[k]) < cost(part.region.unite(rest[k]))) {
                part.last = rows[k - 1].last;
                part.last_y = rows[k - 1].y;
                segments.push_back(part);
                part.first = rows[k].first;
                part.region = rows[k].region;
            } else {
                part.region = part.region.unite(rows[k].region);
            }
        }
        part.last = whole.last;
        part.last_y = whole.last_y;
        part.continues = whole.continues;
        segments.push_back(part);
    }

    // The run's tile size: the sink's, else the execution's.
    Point tile_size_for(const Sink& sink) const {
        const auto want = sink.tile_size();
        return want ? *want : Point{g.execution.tile_w, g.execution.tile_h};
    }
    int threads() const { return g.execution.threads > 0 ? g.execution.threads : tbb::info::default_concurrency(); }
    // The threads of a run's arena: with several, one spare, which computes
    // while another waits (pipeline).
    static int arena_threads(int threads) { return threads > 1 ? threads + 1 : threads; }

    // Tiles in flight for a run of `node` into `sink`: enough to keep every
    // thread busy while the serial writer catches up and while some wait
    // for a decoder (two a thread, the spare's included: at 2 threads with
    // the spare the mid stitch took 2.23 s at 4 tiles, against 2.26 without
    // it, medians of 9; at 6, 2.00 against 2.12, medians of 7), and no more, because
    // each holds a tile of pixels (plus the scratch of its unplaced needs).
    // Under a memory budget, fewer; an error if not even one tile fits.
    std::size_t tokens_for(NodeId node, const Sink& sink) const {
        const Execution& ex = g.execution;
        const ImageInfo& info = g.info(node);
        const auto [tw, th] = tile_size_for(sink);
        std::size_t tokens = std::size_t(arena_threads(threads())) * 2;
        const std::size_t tile_bytes = std::size_t(tw) * th * info.pixel_bytes();
        if (ex.memory_mb > 0) {
            std::size_t fit = (ex.memory_mb << 20) / std::max<std::size_t>(tile_bytes, 1);
            if (fit < 1)
                throw GraphError(g.node(node).id, g.node(node).op_name, "",
                                 "memory_mb " + std::to_string(ex.memory_mb) + " cannot hold one " +
                                     std::to_string(tw) + "x" + std::to_string(th) + " tile of " +
                                     std::to_string(info.bands) + " x " + std::string(format_name(info.format)) + " (" +
                                     std::to_string(tile_bytes >> 10) +
                                     " KiB); raise memory_mb or lower the tile size");
            tokens = std::min(tokens, fit);
        }
        return tokens;
    }

    bool cancelled() const { return stop.load(std::memory_order_relaxed) || (cancel && cancel->load()); }

    // A node's compute, under the run's error policy: with on_error =
    // background a source (no inputs) that cannot read its file fills its
    // part with 0 and the part is recorded; anything else propagates.
    void compute(NodeId n, const Tile& dst, std::span<const Pulled> pulled) {
        const Node& node = g.node(n);
        if (g.execution.on_error != Execution::OnError::background || !node.inputs.empty()) {
            op(n).compute(dst, pulled);
            return;
        }
        try {
            node.op->compute(dst, pulled);
        } catch (const IoError& e) {
            const double zero = 0;
            fill_pixels(dst, &zero, 1);
            std::lock_guard lock(filled_mu);
            filled.push_back({node.id, e.path(), dst.rect, e.what()});
        }
    }

    // Fills dst (dst.rect in n's frame) with n's pixels: demand, pull the
    // unplaced needs into scratch, compute, then pull the placed needs
    // straight into dst. Recursion depth is the graph's depth, never its
    // fan-in: an op with thousands of inputs demands only those it overlaps.
    void pull(NodeId n, const Tile& dst) {
        if (cancelled()) throw Cancelled();
        const Node& node = g.node(n);
        bool use_cache = cache && cached[n];
        if (use_cache && cache->lookup(n, dst.rect, dst)) return;
        Demand need;
        op(n).demand(dst.rect, need);
        try {
            std::vector<Buffer> scratch;
            std::vector<Pulled> pulled;
            for (const Need& d : need) {
                if (d.place) continue;
                const ImageInfo& in = g.info(node.inputs[d.input]);
                scratch.emplace_back(&account, d.rect, in.bands, in.format);
                if (!d.rect.empty()) pull(node.inputs[d.input], scratch.back().tile());
                pulled.push_back({d.input, scratch.back().view()});
            }
            compute(n, dst, pulled);
            pulled.clear();
            scratch.clear();  // free before going deeper: placed pulls reuse dst
            for (const Need& d : need) {
                if (!d.place || d.rect.empty()) continue;
                Tile part = dst.sub({d.place->x, d.place->y, d.rect.w, d.rect.h});
                pull(node.inputs[d.input], part.moved(d.rect.x - d.place->x, d.rect.y - d.place->y));
            }
        } catch (const GraphError&) {
            throw;
        } catch (const Cancelled&) {
            throw;
        } catch (const IoError& e) {
            // The innermost failing node names itself; outer ones pass it on.
            throw GraphError(node.id, node.op_name, "", e.what(), e.path());
        } catch (const Error& e) {
            throw GraphError(node.id, node.op_name, "", e.what());
        }
        if (use_cache) cache->store(n, dst.rect, dst);
    }

    // The stages of a run (run_one, below, calls them in order).
    struct TileGrid {  // the output's tiles: tw x th, cols x rows of them
        int tw = 0, th = 0;
        std::size_t cols = 0, rows = 0;
        std::size_t total() const { return cols * rows; }
    };
    // This rank's part of a run (all of it unless sharded).
    struct RunShare {
        Cluster* cluster = nullptr;  // set only with more than one rank
        std::unique_ptr<Courier> courier;
        std::vector<std::size_t> starts;  // where a share may begin; empty: the sink cannot be split
        std::size_t first = 0, last = 0;  // the positions of the tile order computed here
        bool skip = false;                // a sink that cannot be split, on a rank other than 0
        std::optional<Share> share;       // what the sink is told of it (take_share)
    };
    // The pipeline's stages over a share's tiles and what they count.
    struct TileRun {
        Impl& m;
        NodeId node;
        Sink& sink;
        const TileGrid& grid;
        const std::vector<Rect>& tiles;
        const Plan& plan;
        const RunOptions& options;
        Clock::time_point t0;
        std::size_t next = 0, done = 0, pixels = 0, next_expect = 0, next_release = 0;
        std::atomic<std::uint64_t> busy_ns{0};
        double share_seconds = 0, sink_seconds = 0;
        bool user_cancel = false;
        ComputeSlots* slots = nullptr;  // the run's thread budget (pipeline)

        std::size_t source(tbb::flow_control& fc);
        Computed compute(std::size_t i);
        void write(Computed c);
        void pipeline(int threads, std::size_t tokens);
        void produce(int threads, std::size_t tokens, const Share* share);
        void end_segments() noexcept;
        bool stop_finishing();
    };
    RunStats run_one(NodeId node, Sink& sink, const RunOptions& options);
    RunStats run_tiles(NodeId node, Sink& sink, const RunOptions& options);
    void bind_statistics(NodeId root, const RunOptions& options, std::vector<RunStats>& passes);
    void forget_statistics() {
        std::fill(bound.begin(), bound.end(), nullptr);
        statistics.clear();
    }
    TileGrid tile_grid(NodeId node, const Sink& sink) const;
    void begin(const RunOptions& options);
    static std::vector<Rect> ordered_tiles(const Sink& sink, const TileGrid& grid, const Rect& image);
    static RunShare open_share(const Sink& sink, const TileGrid& grid, const RunOptions& options);
    static void take_share(RunShare& share, Sink& sink, const TileGrid& grid, const std::vector<std::uint64_t>& costs);
    void release_all() noexcept;
    RunStats gather_statistics(const TileRun& run, const RunShare& share, std::size_t tokens,
                               const RunOptions& options);
    static void gather_ranks(RunStats& stats, const TileRun& run, const RunShare& share, const RunOptions& options);
};

namespace {

// Claims an Evaluator for one run (see the header): a second run, or a
// render, while one is under way is refused rather than sharing its state.
class OneRunAtATime {
public:
    explicit OneRunAtATime(std::atomic<bool>& running) : running_(running) {
        if (running_.exchange(true)) throw Error(kBusy);
    }
    ~OneRunAtATime() { running_ = false; }
    OneRunAtATime(const OneRunAtATime&) = delete;
    OneRunAtATime& operator=(const OneRunAtATime&) = delete;

    static constexpr const char* kBusy =
        "this Evaluator is running already (a run on another thread); an Evaluator runs one run at a time: "
        "give each thread an Evaluator of its own (they may share the Graph)";

private:
    std::atomic<bool>& running_;
};

}  // namespace

Evaluator::Evaluator(const Graph& g) : impl_(std::make_unique<Impl>(g)) {}
Evaluator::~Evaluator() = default;
MemoryAccount& Evaluator::account() { return impl_->account; }

Buffer Evaluator::render(NodeId node, const Rect& rect) {
    const ImageInfo& info = impl_->g.info(node);
    if (!info.rect().contains(rect)) throw GraphError(impl_->g.node(node).id, "", "", "render: rect outside the image");
    if (impl_->running) throw Error(std::string("render: ") + OneRunAtATime::kBusy);
    if (impl_->cached.size() != impl_->g.size())
        throw Error("render: the graph has " + std::to_string(impl_->g.size()) + " nodes, " +
                    std::to_string(impl_->g.size() - impl_->cached.size()) +
                    " of them added after this Evaluator was made; make the Evaluator once the graph is built");
    {
        std::lock_guard lock(impl_->bind_mu);
        std::vector<RunStats> passes;
        impl_->bind_statistics(node, RunOptions{}, passes);
    }
    Buffer b(nullptr, rect, info.bands, info.format);
    impl_->pull(node, b.tile());
    return b;
}

RunStats Evaluator::run(NodeId node, Sink& sink, const RunOptions& options) {
    OneRunAtATime claim(impl_->running);
    if (impl_->cached.size() != impl_->g.size()) impl_->track_graph();
    impl_->forget_statistics();
    return impl_->run_one(node, sink, options);
}

// The statistics pre-pass: every op under `root` (or root itself) that asks
// for statistics and has none yet gets them, in node order (a node's inputs
// come first, so a consumer under a consumer is bound before its input is
// read). Each is a run of a StatisticsSink over the input, like a sink's
// (in parallel, tile by tile, sharded over the ranks, which all come here in
// the same order); one per (input, histogram) per run.
void Evaluator::Impl::bind_statistics(NodeId root, const RunOptions& options, std::vector<RunStats>& passes) {
    std::vector<bool> under(root + 1, false);
    under[root] = true;
    for (NodeId n = root + 1; n-- > 0;)
        if (under[n])
            for (NodeId in : g.node(n).inputs) under[in] = true;
    for (NodeId n = 0; n <= root; ++n) {
        if (!under[n] || bound[n]) continue;
        const Node& node = g.node(n);
        const std::vector<StatisticRequest> requests = node.op->statistics();
        if (requests.empty()) continue;
        std::vector<Statistics> results;
        // The statistics of `in` (moments, with or without a histogram), from
        // an earlier pre-pass of this run where one gave them, else a pass
        // of their own. A histogram of a format without one bin per value
        // needs the samples' range first: the moments' pass, then its own.
        std::function<std::shared_ptr<const Statistics>(NodeId, bool)> of = [&](NodeId in, bool histogram) {
            auto it = statistics.find({in, histogram});
            if (it == statistics.end() && !histogram) it = statistics.find({in, true});
            if (it != statistics.end()) return it->second;
            std::optional<std::pair<double, double>> range;
            if (histogram && !histogram_format(g.info(in).format)) {
                const Statistics& m = *of(in, false);
                range = {m.all.min, m.all.max};
            }
            StatisticsSink sink(histogram, range);
            RunStats r;
            try {
                r = run_one(in, sink, options);
            } catch (const GraphError&) {
                throw;
            } catch (const Cancelled&) {
                throw;
            } catch (const Error& e) {
                throw GraphError(node.id, node.op_name, "",
                                 "the statistics pre-pass over input '" + g.node(in).id + "': " + e.what());
            }
            r.prepasses.push_back({node.id, g.node(in).id, histogram, r.tiles, r.seconds});
            passes.push_back(std::move(r));
            auto s = std::make_shared<const Statistics>(sink.result());
            statistics[{in, histogram}] = s;
            return std::shared_ptr<const Statistics>(s);
        };
        for (const StatisticRequest& rq : requests)
            results.push_back(*of(node.inputs.at(std::size_t(rq.input)), rq.histogram));
        auto with = node.op->with_statistics(results);
        if (!with || with->info() != node.op->info())
            throw GraphError(node.id, node.op_name, "",
                             "internal: the op asks for statistics but with_statistics gives no op of its header");
        bound[n] = std::move(with);
    }
}

// The stages of one run, in order; each below.
RunStats Evaluator::Impl::run_one(NodeId node, Sink& sink, const RunOptions& options) {
    // pre-pass: the statistics ops under this node need (each a run of its own)
    std::vector<RunStats> passes;
    bind_statistics(node, options, passes);
    RunStats stats = run_tiles(node, sink, options);
    for (RunStats& r : passes) {
        stats.peak_pixel_bytes = std::max(stats.peak_pixel_bytes, r.peak_pixel_bytes);
        stats.peak_process_pixel_bytes = std::max(stats.peak_process_pixel_bytes, r.peak_process_pixel_bytes);
        stats.cache_hits += r.cache_hits;
        stats.cache_misses += r.cache_misses;
        stats.filled.insert(stats.filled.end(), r.filled.begin(), r.filled.end());
        stats.ranks.insert(stats.ranks.end(), r.ranks.begin(), r.ranks.end());
        stats.prepasses.insert(stats.prepasses.end(), r.prepasses.begin(), r.prepasses.end());
    }
    if (!passes.empty()) sort_filled(stats.filled);
    return stats;
}

RunStats Evaluator::Impl::run_tiles(NodeId node, Sink& sink, const RunOptions& options) {
    const TileGrid grid = tile_grid(node, sink);
    const std::size_t tokens = tokens_for(node, sink);
    begin(options);
    const auto t0 = Clock::now();
    // validate the order: the tiles, in the order the sink asks for
    std::vector<Rect> tiles = ordered_tiles(sink, grid, g.info(node).rect());
    // shard: where a share may begin (a sharded run computes one share of
    // those positions, see RunOptions)
    RunShare share = open_share(sink, grid, options);
    // plan: one walk of demand gives the plan and the costs shares are
    // balanced by (skip: rank 0 computes and writes this output alone)
    DemandWalk walk = share.skip ? DemandWalk{} : walk_demand(node, tiles, share.starts);
    take_share(share, sink, grid, walk.costs);
    const Plan plan = walk.plan(share.first, share.last);
    if (share.first != 0 || share.last != tiles.size())
        tiles =
            std::vector<Rect>(tiles.begin() + std::ptrdiff_t(share.first), tiles.begin() + std::ptrdiff_t(share.last));
    // the pipeline: source, compute and sink stages
    TileRun run{*this, node, sink, grid, tiles, plan, options, t0};
    if (!share.skip) run.produce(threads(), tokens, share.share ? &*share.share : nullptr);
    return gather_statistics(run, share, tokens, options);
}

Evaluator::Impl::TileGrid Evaluator::Impl::tile_grid(NodeId node, const Sink& sink) const {
    const auto [tw, th] = tile_size_for(sink);
    if (tw < 1 || th < 1) throw Error("the sink asked for an empty tile size");
    const ImageInfo& info = g.info(node);
    return {tw, th, (std::size_t(info.width) + tw - 1) / tw, (std::size_t(info.height) + th - 1) / th};
}

// A run's state starts afresh: its cancel flag, peaks and fills.
void Evaluator::Impl::begin(const RunOptions& options) {
    cancel = options.cancel;
    stop = false;
    account.reset_peak();
    process_pixel_memory().reset_peak();
    std::lock_guard lock(filled_mu);
    filled.clear();
}

// Validate the order: the tiles of `image` in the order the sink asks for
// (row-major when it names none), or an Error if it does not list each once.
std::vector<Rect> Evaluator::Impl::ordered_tiles(const Sink& sink, const TileGrid& grid, const Rect& image) {
    const std::size_t total = grid.total();
    std::vector<Rect> tiles(total);
    const std::vector<std::uint32_t> order = sink.tile_order(int(grid.cols), int(grid.rows));
    if (!order.empty() && order.size() != total) throw Error("the sink's tile order does not list every tile once");
    std::vector<bool> listed(order.empty() ? 0 : total, false);
    for (std::size_t k = 0; k < total; ++k) {
        const std::size_t i = order.empty() ? k : order[k];
        if (!order.empty()) {
            if (i >= total || listed[i]) throw Error("the sink's tile order must list every tile exactly once");
            listed[i] = true;
        }
        tiles[k] = Rect{int(i % grid.cols) * grid.tw, int(i / grid.cols) * grid.th, grid.tw, grid.th}.intersect(image);
    }
    return tiles;
}

// Shard, first half: with a cluster of several ranks, its courier and the
// positions where the sink's shares may begin; a sink that cannot be split
// (none) is left to rank 0, and the other ranks skip it.
Evaluator::Impl::RunShare Evaluator::Impl::open_share(const Sink& sink, const TileGrid& grid,
                                                      const RunOptions& options) {
    RunShare share;
    share.last = grid.total();
    share.cluster = options.cluster && options.cluster->ranks() > 1 ? options.cluster : nullptr;
    if (!share.cluster) return share;
    share.courier = share.cluster->courier(options.cancel);
    const auto* sharded = dynamic_cast<const ShardedSink*>(&sink);
    if (sharded) share.starts = sharded->share_starts(int(grid.cols), int(grid.rows), share.cluster->ranks());
    const auto& s = share.starts;
    if (s.empty()) {
        share.skip = share.cluster->rank() != 0;
        if (share.skip) share.last = 0;
    } else if (s.front() != 0 || !std::is_sorted(s.begin(), s.end()) || s.back() > grid.total()) {
        throw Error("internal: the sink's share starts are not ascending positions from 0");
    }
    return share;
}

// Shard, second half: this rank's positions, balanced by the walk's costs,
// and the sink told them.
void Evaluator::Impl::take_share(RunShare& share, Sink& sink, const TileGrid& grid,
                                 const std::vector<std::uint64_t>& costs) {
    if (!share.cluster || share.starts.empty()) return;
    const int ranks = share.cluster->ranks();
    // (starts are given by a ShardedSink alone: open_share)
    const auto& sharded = dynamic_cast<const ShardedSink&>(sink);
    std::tie(share.first, share.last) = share_of(share.starts, costs, share.cluster->rank(), ranks,
                                                 sharded.writer_cost(int(grid.cols), int(grid.rows), ranks));
    share.share = Share{share.first, share.last, share.courier.get()};
}

// Source stage (serial): the next position of the share; before it, the
// sources hear what the coming tiles will ask of them.
std::size_t Evaluator::Impl::TileRun::source(tbb::flow_control& fc) {
    if (next >= tiles.size() || m.cancelled()) {
        fc.stop();
        return 0;
    }
    for (; next_expect < plan.expects.size() && std::get<0>(plan.expects[next_expect]) == next; ++next_expect) {
        const auto& [at, n, region] = plan.expects[next_expect];
        m.g.node(n).op->expect(region);
    }
    return next++;
}

// Compute stage (parallel): the tile pulled through the graph, then the
// sink's parallel step (compression, say).
Computed Evaluator::Impl::TileRun::compute(std::size_t i) {
    ComputeSlots::Hold hold(*slots);
    const auto t = Clock::now();
    const ImageInfo& info = m.g.info(node);
    auto b = std::make_shared<Buffer>(&m.account, tiles[i], info.bands, info.format);
    m.pull(node, b->tile());
    auto prepared = sink.prepare(b->view());
    busy_ns += std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count());
    return Computed{std::move(b), std::move(prepared)};
}

// Sink stage (serial, in order): the sink consumes the tile; tiles arrive
// here in order, so whatever no later tile needs can go; then progress.
void Evaluator::Impl::TileRun::write(Computed c) {
    if (m.cancelled()) return;
    ComputeSlots::Hold hold(*slots);
    const auto ts = Clock::now();
    sink.consume(c.buffer->view(), std::move(c.prepared));
    sink_seconds += seconds_since(ts);
    for (; next_release < plan.releases.size() && plan.releases[next_release].first == done; ++next_release)
        m.g.node(plan.releases[next_release].second).op->release();
    ++done;
    pixels += std::size_t(c.buffer->rect().area());
    if (options.progress &&
        !options.progress(Progress{done, tiles.size(), pixels, m.account.current(), seconds_since(t0)})) {
        user_cancel = true;
        m.stop = true;
    }
}

// The three stages as one tbb::parallel_pipeline: at most `tokens` tiles in
// flight, `threads` of them computed or written at a time. With several
// threads the arena has one more, which computes while a thread waits for
// another's decoder (core/compute_slots.hpp; at 2 threads on the mid
// stitch, 0.28 s of waiting in a 1.9 s run), so that no core idles while
// there is a tile to compute, and never more than `threads` compute or
// write at once (the serial source stage, bookkeeping, takes no slot).
void Evaluator::Impl::TileRun::pipeline(int threads, std::size_t tokens) {
    ComputeSlots budget(threads);
    slots = &budget;
    // More threads than cores is allowed (it must not change the bits,
    // and tests check that); TBB needs the global limit raised for it.
    tbb::global_control allow(tbb::global_control::max_allowed_parallelism,
                              std::max(arena_threads(threads), tbb::info::default_concurrency()));
    tbb::task_arena arena(arena_threads(threads));
    arena.execute([&] {
        tbb::parallel_pipeline(tokens,
                               tbb::make_filter<void, std::size_t>(tbb::filter_mode::serial_in_order,
                                                                   [&](tbb::flow_control& fc) { return source(fc); }) &
                                   tbb::make_filter<std::size_t, Computed>(tbb::filter_mode::parallel,
                                                                           [&](std::size_t i) { return compute(i); }) &
                                   tbb::make_filter<Computed, void>(tbb::filter_mode::serial_in_order,
                                                                    [&](Computed c) { write(std::move(c)); }));
    });
}

// The sink's part of the run: started, fed by the pipeline, finished; on
// failure or cancellation aborted, and every source let go.
void Evaluator::Impl::TileRun::produce(int threads, std::size_t tokens, const Share* share) {
    try {
        const ImageInfo& info = m.g.info(node);
        sink.start(info, SinkContext{grid.tw, grid.th, threads, &m.account, share});
        pipeline(threads, tokens);
        if (m.cancelled() || user_cancel) throw Cancelled();
        share_seconds = seconds_since(t0);
        const auto tf = Clock::now();
        {
            // the serial work after the last tile (a final copy into place)
            // stops as the tiles do
            StopScope stop([this] { return stop_finishing(); });
            sink.finish();
        }
        sink_seconds += seconds_since(tf);
    } catch (...) {
        sink.abort();
        end_segments();
        m.release_all();
        throw;
    }
}

// The run unwinds: every segment announced and not yet ended is ended, so
// that a source counting them (one decoder or an open page per segment)
// is back at none before release_all lets go of the rest.
void Evaluator::Impl::TileRun::end_segments() noexcept {
    std::unordered_map<NodeId, std::ptrdiff_t> open;
    for (std::size_t k = 0; k < next_expect; ++k) ++open[std::get<1>(plan.expects[k])];
    for (std::size_t k = 0; k < next_release; ++k) --open[plan.releases[k].second];
    for (const auto& [n, count] : open)
        for (std::ptrdiff_t i = 0; i < count; ++i) try {
                m.g.node(n).op->release();
            } catch (...) {}
}

// Asked by the sink's finish() between its steps (core/stop.hpp): whether
// the run is to stop. The progress callback is asked again, with every tile
// done, so that returning false stops the final copy as it stops the tiles.
bool Evaluator::Impl::TileRun::stop_finishing() {
    if (m.cancelled() || user_cancel) return true;
    if (options.progress &&
        !options.progress(Progress{done, tiles.size(), pixels, m.account.current(), seconds_since(t0)})) {
        user_cancel = true;
        m.stop = true;
    }
    return user_cancel;
}

// The run unwinds (failed or cancelled), so no plan's release() is coming:
// every source lets go of its decoders, windows and files now, not when the
// graph goes, or a long-lived caller's failed runs would hold them (the
// pipeline has stopped: no tile is in flight).
void Evaluator::Impl::release_all() noexcept {
    for (NodeId n = 0; n < g.size(); ++n) try {
            g.node(n).op->release();
        } catch (...) {}
}

// Gather statistics: the run's figures, a stable report of its fills, and
// in a sharded run every rank's part.
RunStats Evaluator::Impl::gather_statistics(const TileRun& run, const RunShare& share, std::size_t tokens,
                                            const RunOptions& options) {
    RunStats stats;
    stats.tokens = tokens;
    stats.tiles = run.done;
    {
        std::lock_guard lock(filled_mu);
        stats.filled = std::move(filled);
        filled.clear();
        sort_filled(stats.filled);
    }
    stats.peak_pixel_bytes = account.peak();
    if (share.cluster) gather_ranks(stats, run, share, options);
    stats.peak_process_pixel_bytes = process_pixel_memory().peak();
    stats.seconds = seconds_since(run.t0);
    if (cache) {
        stats.cache_hits = cache->hits();
        stats.cache_misses = cache->misses();
    }
    return stats;
}

// Every rank's part, to rank 0 (with what it filled with background, so
// that rank 0 reports the whole job's); then nobody goes on (to a next sink
// that may read this output) before the writer has finished.
void Evaluator::Impl::gather_ranks(RunStats& stats, const TileRun& run, const RunShare& share,
                                   const RunOptions& options) {
    Cluster& cluster = *share.cluster;
    const RankStats mine{
        cluster.rank(),        run.done,         double(run.busy_ns.load()) * 1e-9, run.share_seconds,
        seconds_since(run.t0), run.sink_seconds, share.courier->seconds_waited(),   share.courier->bytes_sent()};
    MessageWriter out;
    out.put(mine);
    if (cluster.rank() != 0) append_filled(out, stats.filled);
    for (const auto& b : cluster.gather(std::move(out.bytes()), options.cancel)) {
        MessageReader in(b, 0, "rank statistics");
        const RankStats r = in.get<RankStats>();
        stats.ranks.push_back(r);
        if (r.rank != 0) read_filled(std::move(in), stats.filled);
    }
    if (cluster.rank() == 0) sort_filled(stats.filled);
    cluster.barrier(options.cancel);
}

RunStats Evaluator::run_sinks(const RunOptions& options) {
    OneRunAtATime claim(impl_->running);
    if (impl_->cached.size() != impl_->g.size()) impl_->track_graph();
    impl_->forget_statistics();
    RunStats all;
    std::vector<NodeId> sinks = impl_->g.sinks();
    if (sinks.empty())
        throw Error("the pipeline has no sink (save) node, so there is nothing to write; add a save node");
    // every sink's budget is checked before the first one writes anything
    std::vector<std::unique_ptr<Sink>> made;
    for (NodeId s : sinks) {
        made.push_back(impl_->g.node(s).op->make_sink());
        impl_->tokens_for(s, *made.back());
    }
    for (std::size_t k = 0; k < sinks.size(); ++k) {
        RunStats r = impl_->run_one(sinks[k], *made[k], options);
        all.tiles += r.tiles;
        all.peak_pixel_bytes = std::max(all.peak_pixel_bytes, r.peak_pixel_bytes);
        all.peak_process_pixel_bytes = std::max(all.peak_process_pixel_bytes, r.peak_process_pixel_bytes);
        all.cache_hits += r.cache_hits;
        all.cache_misses += r.cache_misses;
        all.tokens = r.tokens;
        all.seconds += r.seconds;
        all.filled.insert(all.filled.end(), r.filled.begin(), r.filled.end());
        all.ranks.insert(all.ranks.end(), r.ranks.begin(), r.ranks.end());
        all.prepasses.insert(all.prepasses.end(), r.prepasses.begin(), r.prepasses.end());
    }
    return all;
}

void parallel_reads(const Graph& g, std::size_t n, int threads, const std::atomic<bool>* cancel,
                    const std::function<void(Evaluator& ev, std::size_t i)>& fn) {
    if (n == 0) return;
    const int cores = tbb::info::default_concurrency();
    const int workers = int(std::min<std::size_t>(std::size_t(threads > 0 ? threads : std::max(cores, 1)), n));
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mu;
    auto worker = [&] {
        Evaluator ev(g);
        for (std::size_t i; !failed && (i = next++) < n;) {
            try {
                if (cancel && cancel->load()) throw Cancelled();
                fn(ev, i);
            } catch (...) {
                std::lock_guard lock(error_mu);
                if (!error) error = std::current_exception();
                failed = true;
            }
        }
    };
    tbb::global_control allow(tbb::global_control::max_allowed_parallelism,
                              std::max(workers, tbb::info::default_concurrency()));
    tbb::task_arena arena(workers);
    arena.execute([&] {
        tbb::task_group group;
        for (int k = 0; k < workers; ++k) group.run(worker);
        group.wait();
    });
    if (error) std::rethrow_exception(error);
}

NodeId source_of(const Graph& g, NodeId node) {
    while (!g.node(node).inputs.empty()) node = g.node(node).inputs[0];
    return node;
}

}  // namespace tessera
