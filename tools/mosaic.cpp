#include "tessera/mosaic.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tessera/core/error.hpp"
#include "tessera/io/io.hpp"
#include "tessera/core/shard.hpp"
#include "tessera/graphs/evaluator.hpp"
#include "tessera/io/output_target.hpp"

namespace tessera {

namespace reg = registration;

namespace {

// What one tile contributes to the pairs: a rect to read, and where the
// pixels go (pair k, as its strip a or b).
struct Read {
    Rect rect;
    std::size_t pair;
    bool side_a;
};

// The two sides of a pair while they are being read; whichever tile is
// read second runs the match, then the pixels go.
struct Slot {
    reg::Plane a, b;
    std::atomic<int> have{0};
    reg::Match match;
};

// Each tile's reads for `pairs`, top to bottom: the streaming JPEG decoder
// then serves them in one pass (and skips the rows between them).
std::vector<std::vector<Read>> plan_reads(const std::vector<reg::PairPlan>& pairs, std::size_t tiles) {
    std::vector<std::vector<Read>> reads(tiles);
    for (std::size_t k = 0; k < pairs.size(); ++k) {
        reads[std::size_t(pairs[k].a)].push_back({pairs[k].crop_a, k, true});
        reads[std::size_t(pairs[k].b)].push_back({pairs[k].crop_b, k, false});
    }
    for (auto& r : reads)
        std::sort(r.begin(), r.end(), [](const Read& p, const Read& q) {
            return std::pair(p.rect.y, p.rect.x) < std::pair(q.rect.y, q.rect.x);
        });
    return reads;
}

// Adds what reading `pairs` costs to the report: pixels, and each tile's
// deepest row read so far (`bottom`, across the passes).
void count_reads(const std::vector<reg::PairPlan>& pairs, std::vector<int>& bottom, RegisterReport& report) {
    const auto reads = plan_reads(pairs, bottom.size());
    for (std::size_t i = 0; i < reads.size(); ++i)
        for (const Read& rd : reads[i]) {
            report.pixels_read += std::uint64_t(rd.rect.area());
            bottom[i] = std::max(bottom[i], rd.rect.bottom());
        }
}

// Reads the strips of `pairs` (tiles in parallel, each tile's reads top to
// bottom in one decode, tiles in canvas order) and matches each pair as soon
// as its second side is in.
std::vector<reg::Match> read_and_match(const Graph& g, const std::vector<NodeId>& loads,
                                       const std::vector<Rect>& nominal, const std::vector<reg::PairPlan>& pairs,
                                       const RegisterOptions& o) {
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
    parallel_reads(g, order.size(), o.threads, o.cancel, [&](Evaluator& ev, std::size_t n) {
        const std::size_t t = order[n];
        // the advice goes to the file's load under any per-tile correction
        // (flatfield keeps the tile's frame)
        const Op& op = *g.node(source_of(g, loads[t])).op;
        struct Release {  // whatever happens, the decoder may go
            const Op& op;
            ~Release() { op.release(); }
        } release{op};
        Rect all;
        for (const Read& rd : reads[t]) all = all.unite(rd.rect);
        op.expect(all);  // a decoder may crop its decode to these columns
        for (const Read& rd : reads[t]) {
            Buffer b = ev.render(loads[t], rd.rect);
            Slot& s = slots[rd.pair];
            (rd.side_a ? s.a : s.b) = reg::to_plane(b.view(), o.band);
            if (s.have.fetch_add(1, std::memory_order_acq_rel) == 1) {
                s.match = reg::match(s.a, s.b, pairs[rd.pair]);
                s.a = {};
                s.b = {};
            }
        }
    });
    std::vector<reg::Match> out;
    for (Slot& s : slots) out.push_back(std::move(s.match));
    return out;
}

// Matches as a message between ranks, and back.
std::vector<std::byte> encode(const std::vector<reg::Match>& matches) {
    MessageWriter out;
    for (const reg::Match& m : matches) {
        out.put(std::uint8_t(m.found));
        out.put(m.offset.x);
        out.put(m.offset.y);
        out.put(m.score);
        out.put(m.common);
        out.put(m.why);
    }
    return std::move(out.bytes());
}
std::vector<reg::Match> decode(const std::vector<std::byte>& bytes) {
    std::vector<reg::Match> out;
    for (MessageReader in(bytes, 0, "registration results"); !in.done();) {
        reg::Match m;
        m.found = in.get<std::uint8_t>() != 0;
        m.offset.x = in.get<double>();
        m.offset.y = in.get<double>();
        m.score = in.get<double>();
        m.common = in.get<std::int64_t>();
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
                                    std::vector<int>& bottom, RegisterReport& report) {
    count_reads(pairs, bottom, report);
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

// The permutation test's pairs: up to o.null_pairs of the plan's pairs
// with one or both strips moved to their image's far side, where they cannot
// show what the other strip shows (reg::plan_null's three variants), spread
// evenly over the plan, shallow ones first (they cost least).
// Deterministic: the plan alone decides.
std::vector<reg::PairPlan> plan_nulls(const std::vector<Rect>& nominal, const std::vector<reg::PairPlan>& pairs,
                                      const RegisterOptions& o) {
    std::vector<reg::PairPlan> shallow, deep;
    for (int variant = 0; variant < 3; ++variant)
        for (const reg::PairPlan& p : pairs)
            if (auto q = reg::plan_null(nominal, p, variant)) {
                q->deep = reg::deep_read(nominal, o.plan, q->a, q->crop_a) ||
                          reg::deep_read(nominal, o.plan, q->b, q->crop_b);
                (q->deep ? deep : shallow).push_back(*q);
            }
    std::vector<reg::PairPlan> out;
    const std::size_t want = std::size_t(std::max(o.null_pairs, 0));
    for (const auto* list : {&shallow, &deep}) {
        const std::size_t n = list->size(), m = std::min(n, want - out.size());
        for (std::size_t t = 0; t < m; ++t) out.push_back((*list)[(2 * t + 1) * n / (2 * m)]);
    }
    return out;
}

}  // namespace

const std::vector<ParamSpec>& register_params() {
    static const std::vector<ParamSpec> params{
        {.name = "stage_error",
         .type = ParamType::integer,
         .default_text = "a tenth of the tile's width and height, at least 8",
         .doc = "largest error of a position relative to a neighbour's, px per axis",
         .min = 1,
         .max = 4096},
        {.name = "band",
         .type = ParamType::integer,
         .default_text = "the mean of the bands",
         .doc = "the band registered (0-based)",
         .min = 0,
         .max = 1 << 16},
        {.name = "min_score",
         .type = ParamType::number,
         .doc = "floor under the learned trust threshold",
         .default_value = 0.15,
         .min = -1.0,
         .max = 1.0},
        {.name = "deep_share",
         .type = ParamType::number,
         .doc = "share of the JPEG tiles read below their shallow part",
         .default_value = 0.1,
         .min = 0.0,
         .max = 1.0},
    };
    return params;
}

namespace {

// The options' numbers against register_params(), before anything is read.
void check_register_options(const RegisterOptions& o) {
    auto check = [&](const std::string& key, const ParamValue& v) {
        for (const ParamSpec& p : register_params())
            if (p.name == key)
                if (std::string why = p.violation(v); !why.empty())
                    throw Error(o.source + ": registration option " + key + ": " + why);
    };
    if (o.stage_error != 0) check("stage_error", std::int64_t(o.stage_error));
    if (o.band != -1) check("band", std::int64_t(o.band));
    check("min_score", o.min_score);
    check("deep_share", o.plan.deep_share);
}

// The tiles' nominal places as whole-pixel rects, for the plan, and the
// same places as points, for the solve.
struct Nominal {
    std::vector<Rect> rects;
    std::vector<reg::Vec2> at;
};

Nominal nominal_places(const Graph& g, const std::vector<NodeId>& loads, const std::vector<Placement>& tiles) {
    Nominal n;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const ImageInfo& info = g.info(loads[i]);
        // strips are cut at whole pixels; the offsets measured from them are
        // relative to these rounded positions
        const IntPair at = placed_at(tiles[i].at);
        n.rects.push_back({int(at[0]), int(at[1]), info.width, info.height});
        n.at.push_back({double(n.rects.back().x), double(n.rects.back().y)});
    }
    return n;
}

// The options with what the tiles decide: the band checked against the
// first tile's bands, and a stage error not given made a tenth of the
// first tile's width and height, at least 8 px.
RegisterOptions resolve_options(const RegisterOptions& o_in, const ImageInfo& first, const Rect& first_at) {
    RegisterOptions o = o_in;
    if (o.band >= 0 && o.band >= first.bands)
        throw Error(o.source + ": --register-band " + std::to_string(o.band) + " is out of range: the tiles have " +
                    std::to_string(first.bands) + " bands (0-based: use 0 to " + std::to_string(first.bands - 1) + ")");
    if (o.plan.error_x <= 0 || o.plan.error_y <= 0) {
        const int ex = o.stage_error > 0 ? o.stage_error : std::max(8, first_at.w / 10);
        const int ey = o.stage_error > 0 ? o.stage_error : std::max(8, first_at.h / 10);
        if (o.plan.error_x <= 0) o.plan.error_x = ex;
        if (o.plan.error_y <= 0) o.plan.error_y = ey;
    }
    return o;
}

// The pairs to read. All pairs are counted for the report (and the
// neighbours too thin to register); the plan keeps the affordable ones.
// None at all is an error that says what an overlap needs.
std::vector<reg::PairPlan> plan_registration(const std::vector<Rect>& nominal, const RegisterOptions& o,
                                             RegisterReport& out) {
    reg::PlanOptions every = o.plan;
    every.deep_share = 1;
    out.candidates = reg::plan_pairs(nominal, every).size();
    for (auto [a, b] : reg::too_thin(nominal, o.plan)) out.thin.push_back({std::size_t(a), std::size_t(b)});
    std::vector<reg::PairPlan> pairs = reg::plan_pairs(nominal, o.plan);
    if (pairs.empty())
        throw Error(o.source + ": no two tiles overlap enough to register (an overlap needs " +
                    std::to_string(o.plan.min_overlap) + " px across and " + std::to_string(o.plan.min_along) +
                    " px along; " + std::to_string(out.thin.size()) +
                    " neighbours overlap less); check the positions and tile sizes, or use --no-register");
    out.registered = pairs.size();
    return pairs;
}

// What every pass of one registration reads through: the tiles' loads, the
// options, and the report, which counts every pass's pixels (and `bottom`,
// each tile's deepest row read across the passes).
struct Reader {
    const Graph& g;
    const std::vector<NodeId>& loads;
    const std::vector<Rect>& nominal;
    const RegisterOptions& o;
    RegisterReport& report;
    std::vector<int> bottom;

    std::vector<reg::Match> operator()(const std::vector<reg::PairPlan>& pairs) {
        return match_pairs(g, loads, nominal, pairs, o, bottom, report);
    }
};

// The first pass: the pairs' matches, and the permutation test's in
// null_matches. The permutation test's pairs are read in the same pass as
// the pairs (their strips lie in the same tiles: a second pass decoded
// those tiles again).
std::vector<reg::Match> first_pass(Reader& read, const std::vector<reg::PairPlan>& pairs,
                                   const std::vector<reg::PairPlan>& nulls, std::vector<reg::Match>& null_matches) {
    std::vector<reg::PairPlan> both = pairs;
    both.insert(both.end(), nulls.begin(), nulls.end());
    std::vector<reg::Match> m = read(both);
    null_matches.assign(std::make_move_iterator(m.begin() + std::ptrdiff_t(pairs.size())),
                        std::make_move_iterator(m.end()));
    m.resize(pairs.size());
    return m;
}

// Pairs whose strips found nothing (a blank patch of slide, a false
// peak) try other places along their overlap, in a second and third
// pass that reads only those; a pair that still finds nothing says how
// many places it tried.
void retry_failed(Reader& read, const std::vector<reg::PairPlan>& pairs, std::vector<reg::Match>& matches) {
    std::vector<int> attempt(pairs.size(), 0);
    for (int round = 1; round <= read.o.retries; ++round) {
        std::vector<reg::PairPlan> again;
        std::vector<std::size_t> which;
        for (std::size_t k = 0; k < pairs.size(); ++k) {
            if (matches[k].found) continue;
            // the next place along the overlap, if there is one
            if (auto p = reg::plan_window(read.nominal, pairs[k].a, pairs[k].b, read.o.plan, attempt[k] + 1)) {
                attempt[k] += 1;
                again.push_back(*p);
                which.push_back(k);
            }
        }
        if (again.empty()) break;
        std::vector<reg::Match> m = read(again);
        for (std::size_t j = 0; j < again.size(); ++j)
            if (m[j].found) matches[which[j]] = m[j];
        read.report.retried += again.size();
    }
    for (std::size_t k = 0; k < pairs.size(); ++k)
        if (!matches[k].found && attempt[k] > 0)
            matches[k].why += " (and at " + std::to_string(attempt[k]) + " other places in the overlap)";
}

// The trust threshold: what pairs that cannot overlap score.
void learn_threshold(const std::vector<reg::Match>& null_matches, const RegisterOptions& o, RegisterReport& out) {
    std::vector<double> null_scores;
    for (const reg::Match& m : null_matches) {
        // a best reading inside the bound (found, or on its edge) has a score
        if (m.found || m.why.rfind("the best match lies on the edge", 0) == 0) null_scores.push_back(m.score);
    }
    out.null_scored = null_scores.size();
    out.threshold = reg::learned_threshold(null_scores, o.min_score);
}

// The solve's input: the trusted pairs as links, the pair (out.pairs) each
// came from, and its kind (0 side by side, 1 stacked: fits_stage compares
// a link with the others of its kind).
struct Links {
    std::vector<reg::Link> links;
    std::vector<std::size_t> link_pair;
    std::vector<int> kind;
};

// Every pair's result into out.pairs (trusted: found, and scored at least
// the threshold), and the trusted ones as links.
Links trusted_links(const std::vector<reg::PairPlan>& pairs, const std::vector<reg::Match>& matches,
                    const std::vector<Rect>& nominal, RegisterReport& out) {
    Links t;
    for (std::size_t k = 0; k < pairs.size(); ++k) {
        const reg::Match& m = matches[k];
        PairResult p;
        p.a = std::size_t(pairs[k].a), p.b = std::size_t(pairs[k].b);
        p.offset = m.offset, p.score = m.score, p.found = m.found, p.why = m.why;
        p.trusted = m.found && m.score >= out.threshold;
        if (m.found && !p.trusted)
            p.why = "score " + std::to_string(m.score).substr(0, 5) + " is below the trust threshold " +
                    std::to_string(out.threshold).substr(0, 5) + " (what tiles that cannot overlap score)";
        out.pairs.push_back(p);
        out.matched += m.found;
        if (p.trusted) {
            // weighed by the score and by how many pixels the offset rests
            // on (a measurement's variance falls with its area: the corner
            // a diagonal neighbour shares counts less than a whole side)
            t.links.push_back(
                {pairs[k].a, pairs[k].b, m.offset, m.score * std::sqrt(double(std::max<std::int64_t>(m.common, 1)))});
            t.link_pair.push_back(k);
            const Rect ov = nominal[p.a].intersect(nominal[p.b]);
            t.kind.push_back(ov.w <= ov.h ? 0 : 1);  // side by side, or stacked
        }
    }
    return t;
}

// A tile held by one trusted link alone: the solve cannot outvote a
// false match there, so that link must also agree with what the stage
// did for the other pairs of its kind (else it is dropped, and its pair
// no longer trusted).
void drop_lone_misfits(const std::vector<reg::Vec2>& nominal_at, Links& t, RegisterReport& out) {
    const std::vector<bool> fits = reg::fits_stage(nominal_at, t.links, t.kind);
    std::vector<int> degree(nominal_at.size(), 0);
    for (const reg::Link& l : t.links) ++degree[std::size_t(l.a)], ++degree[std::size_t(l.b)];
    for (std::size_t l = t.links.size(); l-- > 0;)
        if (!fits[l] && (degree[std::size_t(t.links[l].a)] == 1 || degree[std::size_t(t.links[l].b)] == 1)) {
            PairResult& p = out.pairs[t.link_pair[l]];
            p.trusted = false;
            p.why = "the only pair of a tile, and its offset is far from what the stage did for the other pairs "
                    "(a false match)";
            t.links.erase(t.links.begin() + std::ptrdiff_t(l));
            t.link_pair.erase(t.link_pair.begin() + std::ptrdiff_t(l));
        }
}

// "a.tif and b.tif: ", before a pair's why in errors and problems.
std::string pair_name(const std::vector<Placement>& tiles, const PairResult& p) {
    return tiles[p.a].file + " and " + tiles[p.b].file + ": ";
}

// The solve into the report: which links it used (an unused one is an
// outlier), the first few pairs not used, and every tile's position and
// how it was placed.
void record_solution(const reg::Solution& sol, const Links& t, const std::vector<Placement>& tiles,
                     const std::vector<reg::Vec2>& nominal_at, RegisterReport& out) {
    out.rejected = std::size_t(sol.rejected);
    for (std::size_t l = 0; l < t.links.size(); ++l) {
        PairResult& p = out.pairs[t.link_pair[l]];
        p.used = sol.used[l];
        p.residual = sol.residual[l];
        if (!p.used)
            p.why = "disagrees with the other pairs by " + std::to_string(p.residual).substr(0, 5) + " px (an outlier)";
    }
    for (const PairResult& p : out.pairs)
        if (!p.used && out.problems.size() < 5) out.problems.push_back(pair_name(tiles, p) + p.why);
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        // the solve's correction, added to the given (perhaps fractional)
        // position rather than to the rounded one the strips were cut at
        const double dx = sol.positions[i].x - nominal_at[i].x, dy = sol.positions[i].y - nominal_at[i].y;
        out.positions.push_back({double(tiles[i].at[0]) + dx, double(tiles[i].at[1]) + dy});
        out.placement.push_back(sol.placed[i]);
        out.by_pairs += sol.placed[i] == TilePlacement::registered;
        out.by_group += sol.placed[i] == TilePlacement::group;
        out.by_model += sol.placed[i] == TilePlacement::stage_model;
    }
}

}  // namespace

RegisterReport register_positions(const std::vector<Placement>& tiles, const RegisterOptions& o_in,
                                  const OpRegistry& registry) {
    // Stages: the options checked and completed from the tiles' headers;
    // the plan; the pairs and the permutation test's read in one pass, the
    // failed pairs elsewhere in their overlap; the threshold learned; the
    // trusted pairs, less a lone tile's false match, solved.
    auto t0 = std::chrono::steady_clock::now();
    check_register_options(o_in);
    RegisterReport out;
    Graph g(registry);
    std::vector<NodeId> loads = add_tile_loads(g, tiles, o_in.illumination);  // headers only; corrected tiles
    const Nominal nominal = nominal_places(g, loads, tiles);
    RegisterOptions o = resolve_options(o_in, g.info(loads[0]), nominal.rects[0]);
    // deep reads cost only on tiles decoded top to bottom (JPEG)
    for (std::size_t i = 0; i < tiles.size(); ++i)
        o.plan.top_down.push_back(g.node(g.find("tile" + std::to_string(i))).op->decodes_from_top());
    out.stage_error = {o.plan.error_x, o.plan.error_y};
    const std::vector<reg::PairPlan> pairs = plan_registration(nominal.rects, o, out);

    Reader read{g, loads, nominal.rects, o, out, std::vector<int>(tiles.size(), 0)};
    std::vector<reg::Match> null_matches;
    std::vector<reg::Match> matches = first_pass(read, pairs, plan_nulls(nominal.rects, pairs, o), null_matches);
    retry_failed(read, pairs, matches);
    learn_threshold(null_matches, o, out);
    for (std::size_t i = 0; i < tiles.size(); ++i)
        out.deep_reads += reg::deep_read(nominal.rects, o.plan, int(i), Rect{0, 0, 1, read.bottom[i]});

    Links t = trusted_links(pairs, matches, nominal.rects, out);
    drop_lone_misfits(nominal.at, t, out);
    out.trusted = t.links.size();
    if (t.links.empty()) {
        const PairResult& p = out.pairs.front();
        throw Error(o.source + ": no overlapping pair could be aligned with confidence (" + pair_name(tiles, p) +
                    p.why +
                    "); check that the tiles overlap and the positions are within --stage-error of the truth, or "
                    "use --no-register");
    }
    record_solution(reg::solve_positions(nominal.at, t.links, o.max_residual), t, tiles, nominal.at, out);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

void write_pairs_csv(const std::string& path, const std::vector<Placement>& tiles, const RegisterReport& r) {
    namespace fs = std::filesystem;
    fs::path dir = fs::absolute(fs::path(path)).parent_path();
    auto rel = [&](std::size_t t) { return fs::path(tiles[t].file).lexically_relative(dir).generic_string(); };
    std::ostringstream out;
    out << "a,b,dx,dy,score,found,trusted,used,residual,why\n";
    for (const PairResult& p : r.pairs) {
        std::string why = p.why;
        std::replace(why.begin(), why.end(), ',', ';');
        char nums[128];
        std::snprintf(nums, sizeof nums, "%.3f,%.3f,%.4f,%d,%d,%d,%.3f", p.offset.x, p.offset.y, p.score, int(p.found),
                      int(p.trusted), int(p.used), p.residual);
        out << rel(p.a) << "," << rel(p.b) << "," << nums << "," << why << "\n";
    }
    write_output_file(path, out.str(), "the pairs CSV");
}

Graph mosaic_graph(const MosaicOptions& o, const std::vector<Placement>& rows, const OpRegistry& registry) {
    Graph g(registry);
    g.execution.tile_w = g.execution.tile_h = stitch_tile_size(o);
    std::vector<NodeId> tiles = add_tile_loads(g, rows, o.illumination);
    // fractional positions are placed as they are (resampled); whole ones
    // are stored as points, the same graph and bits as integer positions
    std::vector<NumPair> at;
    for (const Placement& r : rows) at.push_back(r.at);
    std::vector<NodeId> inputs{add_canvas(g, o, g.info(tiles[0]))};
    inputs.insert(inputs.end(), tiles.begin(), tiles.end());
    NodeId mosaic = g.add("mosaic", inputs,
                          {{"at", at}, {"blend", o.blend}, {"blend_width", std::int64_t(o.blend_width)}}, "mosaic");
    add_stitch_save(g, mosaic, o);
    return g;
}

}  // namespace tessera
