#include "tessera/mosaic.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "tessera/core/error.hpp"
#include "tessera/core/shard.hpp"
#include "tessera/graphs/evaluator.hpp"

namespace tessera {

namespace reg = registration;

namespace {

// What one tile contributes to the pairs: a rect to read, and where the
// pixels go (pair k, as its window or its region).
struct Read {
    Rect rect;
    std::size_t pair;
    bool window;
};

// The two sides of a pair while they are being read; whichever tile is
// read second runs the match, then the pixels go.
struct Slot {
    reg::GreyImage window, region;
    std::atomic<int> have{0};
    reg::Match match;
};

// Each tile's reads for `pairs`, top to bottom: the streaming JPEG decoder
// then serves them in one pass (and skips the rows between them).
std::vector<std::vector<Read>> plan_reads(const std::vector<reg::PairPlan>& pairs, std::size_t tiles) {
    std::vector<std::vector<Read>> reads(tiles);
    for (std::size_t k = 0; k < pairs.size(); ++k) {
        reads[std::size_t(pairs[k].a)].push_back({pairs[k].window, k, true});
        reads[std::size_t(pairs[k].b)].push_back({pairs[k].region, k, false});
    }
    for (auto& r : reads)
        std::sort(r.begin(), r.end(), [](const Read& p, const Read& q) {
            return std::pair(p.rect.y, p.rect.x) < std::pair(q.rect.y, q.rect.x);
        });
    return reads;
}

// Adds what reading `pairs` costs to the report: pixels, and tiles read
// deeper than the shallow part.
void count_reads(const std::vector<reg::PairPlan>& pairs, const std::vector<Rect>& nominal, const RegisterOptions& o,
                 RegisterReport& report) {
    const auto reads = plan_reads(pairs, nominal.size());
    for (std::size_t i = 0; i < reads.size(); ++i) {
        int bottom = 0;
        for (const Read& rd : reads[i]) {
            report.pixels_read += std::uint64_t(rd.rect.area());
            bottom = std::max(bottom, rd.rect.bottom());
        }
        if (!reads[i].empty() && bottom > o.plan.shallow_depth * nominal[i].h) ++report.deep_reads;
    }
}

// Reads the windows and regions of `pairs` (tiles in parallel, each tile's
// reads top to bottom in one decode, tiles in canvas order) and matches each
// pair as soon as its second side is in.
std::vector<reg::Match> read_and_match(const Graph& g, const std::vector<NodeId>& loads, const std::vector<Rect>& nominal,
                                       const std::vector<reg::PairPlan>& pairs, const RegisterOptions& o) {
    const std::vector<std::vector<Read>> reads = plan_reads(pairs, loads.size());
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < loads.size(); ++i)
        if (!reads[i].empty()) order.push_back(i);
    // Row by row over the canvas, so that a pair's two sides are read close
    // in time and few slots hold pixels at once.
    std::sort(order.begin(), order.end(), [&](std::size_t p, std::size_t q) {
        return std::pair(nominal[p].y, nominal[p].x) < std::pair(nominal[q].y, nominal[q].x);
    });

    std::vector<Slot> slots(pairs.size());
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mu;
    auto worker = [&] {
        Evaluator ev(g);
        for (std::size_t n; !failed && (n = next++) < order.size();) {
            const std::size_t t = order[n];
            const Op& op = *g.node(loads[t]).op;
            try {
                if (o.cancel && o.cancel->load()) throw Cancelled();
                Rect all;
                for (const Read& rd : reads[t]) all = all.unite(rd.rect);
                op.expect(all);  // a decoder may crop its decode to these columns
                for (const Read& rd : reads[t]) {
                    Buffer b = ev.render(loads[t], rd.rect);
                    Slot& s = slots[rd.pair];
                    (rd.window ? s.window : s.region) = reg::to_grey(b.view());
                    if (s.have.fetch_add(1, std::memory_order_acq_rel) == 1) {
                        s.match = reg::match(s.window, s.region, o.min_score);
                        s.window = {};
                        s.region = {};
                    }
                }
                op.release();
            } catch (...) {
                op.release();
                std::lock_guard lock(error_mu);
                if (!error) error = std::current_exception();
                failed = true;
            }
        }
    };
    int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = int(std::min<std::size_t>(std::size_t(threads), order.size()));
    {
        std::vector<std::jthread> pool;
        for (int k = 1; k < threads; ++k) pool.emplace_back(worker);
        worker();
    }
    if (error) std::rethrow_exception(error);
    std::vector<reg::Match> out;
    for (Slot& s : slots) out.push_back(std::move(s.match));
    return out;
}

// Matches as a message between ranks, and back.
std::vector<std::byte> encode(const std::vector<reg::Match>& matches) {
    MessageWriter out;
    for (const reg::Match& m : matches) {
        out.put(std::uint8_t(m.found));
        out.put(m.offset);
        out.put(m.score);
        out.put(m.why);
    }
    return std::move(out.bytes());
}
std::vector<reg::Match> decode(const std::vector<std::byte>& bytes) {
    std::vector<reg::Match> out;
    for (MessageReader in(bytes, 0, "registration results"); !in.done();) {
        reg::Match m;
        m.found = in.get<std::uint8_t>() != 0;
        m.offset = in.get<Point>();
        m.score = in.get<double>();
        m.why = in.get_string();
        out.push_back(std::move(m));
    }
    return out;
}

// Matches `pairs` and counts their reads. In a sharded run each rank reads
// and matches a contiguous slice of the pairs (the plan lists them in canvas
// order, so a rank reads few tiles another rank also reads), and every rank
// then gets every match: a match depends only on the pair's pixels, so the
// solve, and the output, are those of one process.
std::vector<reg::Match> match_pairs(const Graph& g, const std::vector<NodeId>& loads, const std::vector<Rect>& nominal,
                                    const std::vector<reg::PairPlan>& pairs, const RegisterOptions& o,
                                    RegisterReport& report) {
    count_reads(pairs, nominal, o, report);
    if (!o.cluster || o.cluster->ranks() < 2) return read_and_match(g, loads, nominal, pairs, o);
    const std::size_t n = pairs.size(), r = std::size_t(o.cluster->rank()), ranks = std::size_t(o.cluster->ranks());
    const std::vector<reg::PairPlan> mine(pairs.begin() + std::ptrdiff_t(n * r / ranks),
                                          pairs.begin() + std::ptrdiff_t(n * (r + 1) / ranks));
    std::vector<std::byte> all;  // rank 0: every rank's matches, in rank order
    for (const auto& part : o.cluster->gather(encode(read_and_match(g, loads, nominal, mine, o)), o.cancel))
        all.insert(all.end(), part.begin(), part.end());
    std::vector<reg::Match> matches = decode(o.cluster->courier(o.cancel)->broadcast(std::move(all)));
    if (matches.size() != n) throw Error("internal: registration results from the other ranks do not add up");
    return matches;
}

}  // namespace

RegisterReport register_positions(const std::vector<Placement>& tiles, const RegisterOptions& o,
                                  const OpRegistry& registry) {
    auto t0 = std::chrono::steady_clock::now();
    RegisterReport out;
    Graph g(registry);
    std::vector<NodeId> loads = add_tile_loads(g, tiles, o.illumination);  // headers only; corrected tiles
    std::vector<Rect> nominal;
    std::vector<Point> nominal_at;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const ImageInfo& info = g.info(loads[i]);
        nominal.push_back({int(tiles[i].at[0]), int(tiles[i].at[1]), info.width, info.height});
        nominal_at.push_back(nominal.back().origin());
    }
    // All pairs are counted for the report; the plan keeps the affordable ones.
    reg::PlanOptions every = o.plan;
    every.deep_share = 1;
    out.candidates = reg::plan_pairs(nominal, every).size();
    std::vector<reg::PairPlan> pairs = reg::plan_pairs(nominal, o.plan);
    if (pairs.empty())
        throw Error(o.source + ": no two tiles overlap enough to register (an overlap needs " +
                    std::to_string(2 * o.plan.search + o.plan.min_window) +
                    " px each way with search radius " + std::to_string(o.plan.search) +
                    "); check the positions and tile sizes, lower --search, or use --no-register");
    out.registered = pairs.size();

    std::vector<reg::Match> matches = match_pairs(g, loads, nominal, pairs, o, out);
    // Pairs whose window found nothing (a blank patch of slide, a false peak)
    // try other places along their overlap, in a second and third pass that
    // reads only those.
    std::vector<int> attempt(pairs.size(), 0);
    for (int round = 1; round <= o.retries; ++round) {
        std::vector<reg::PairPlan> again;
        std::vector<std::size_t> which;
        for (std::size_t k = 0; k < pairs.size(); ++k) {
            if (matches[k].found) continue;
            // the next place along the overlap, if there is one
            if (auto p = reg::plan_window(nominal, pairs[k].a, pairs[k].b, o.plan, attempt[k] + 1)) {
                attempt[k] += 1;
                again.push_back(*p);
                which.push_back(k);
            }
        }
        if (again.empty()) break;
        std::vector<reg::Match> m = match_pairs(g, loads, nominal, again, o, out);
        for (std::size_t j = 0; j < again.size(); ++j)
            if (m[j].found) matches[which[j]] = m[j];
        out.retried += again.size();
    }
    for (std::size_t k = 0; k < pairs.size(); ++k)
        if (!matches[k].found && attempt[k] > 0)
            matches[k].why += " (and at " + std::to_string(attempt[k]) + " other places in the overlap)";

    std::vector<reg::Link> links;
    for (std::size_t k = 0; k < pairs.size(); ++k) {
        const reg::Match& m = matches[k];
        PairResult p{std::size_t(pairs[k].a), std::size_t(pairs[k].b), m.offset, m.score, m.found, false, 0, m.why};
        out.pairs.push_back(p);
        if (m.found) links.push_back({pairs[k].a, pairs[k].b, m.offset, m.score});
    }
    out.matched = links.size();
    auto name = [&](const PairResult& p) { return tiles[p.a].file + " and " + tiles[p.b].file + ": "; };
    if (links.empty()) {
        const PairResult& p = out.pairs.front();
        throw Error(o.source + ": no overlapping pair could be aligned (" + name(p) + p.why +
                    "); check that the tiles overlap and the positions are within --search of the truth, or use "
                    "--no-register");
    }
    reg::Solution sol = reg::solve_positions(nominal_at, links, o.max_residual);
    out.rejected = std::size_t(sol.rejected);
    for (std::size_t k = 0, l = 0; k < out.pairs.size(); ++k) {
        PairResult& p = out.pairs[k];
        if (!p.found) continue;
        p.used = sol.used[l];
        p.residual = sol.residual[l];
        if (!p.used) p.why = "disagrees with the other pairs by " + std::to_string(p.residual).substr(0, 5) + " px (an outlier)";
        ++l;
    }
    for (const PairResult& p : out.pairs)
        if (!p.used && out.problems.size() < 5) out.problems.push_back(name(p) + p.why);
    std::vector<bool> linked(tiles.size(), false);
    for (const PairResult& p : out.pairs)
        if (p.used) linked[p.a] = linked[p.b] = true;
    out.unlinked = std::size_t(std::count(linked.begin(), linked.end(), false));
    for (const Point& p : sol.positions) out.positions.push_back({p.x, p.y});
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

void write_pairs_csv(const std::string& path, const std::vector<Placement>& tiles, const RegisterReport& r) {
    namespace fs = std::filesystem;
    fs::path dir = fs::absolute(fs::path(path)).parent_path();
    auto rel = [&](std::size_t t) { return fs::path(tiles[t].file).lexically_relative(dir).generic_string(); };
    std::string tmp = path + ".part";
    {
        std::ofstream out(tmp);
        out << "a,b,dx,dy,score,found,used,residual,why\n";
        for (const PairResult& p : r.pairs) {
            std::string why = p.why;
            std::replace(why.begin(), why.end(), ',', ';');
            char nums[64];
            std::snprintf(nums, sizeof nums, "%.4f,%d,%d,%.2f", p.score, int(p.found), int(p.used), p.residual);
            out << rel(p.a) << "," << rel(p.b) << "," << p.offset.x << "," << p.offset.y << "," << nums << "," << why
                << "\n";
        }
        if (!out.flush()) throw IoError(path, "cannot write the pairs CSV; check the folder and free space");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw IoError(path, "cannot write the pairs CSV: " + ec.message());
}

Graph mosaic_graph(const MosaicOptions& o, const std::vector<Placement>& rows, const OpRegistry& registry) {
    Graph g(registry);
    g.execution.tile_w = g.execution.tile_h = stitch_tile_size(o);
    std::vector<NodeId> tiles = add_tile_loads(g, rows, o.illumination);
    std::vector<IntPair> at;
    for (const Placement& r : rows) at.push_back(r.at);
    std::vector<NodeId> inputs{add_canvas(g, o, g.info(tiles[0]))};
    inputs.insert(inputs.end(), tiles.begin(), tiles.end());
    NodeId mosaic = g.add("mosaic", inputs,
                          {{"at", at}, {"blend", o.blend}, {"blend_width", std::int64_t(o.blend_width)}}, "mosaic");
    add_stitch_save(g, mosaic, o);
    return g;
}

}  // namespace tessera
