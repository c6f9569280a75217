#include "tessera/flatfield.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>

#include "tessera/core/error.hpp"
#include "tessera/graphs/evaluator.hpp"

namespace tessera {

namespace ill = illumination;

namespace {

// Rows pulled at once when a sampled tile is read: a strip of the tile, so
// that a 2048^2 16-bit tile costs 512 KB per thread, not 8 MB.
constexpr int kStripRows = 128;

// A Buffer as a graph source, so that a profile is written by an ordinary
// save node (atomic, any path the save takes). It lives only in this file's
// private registry: a pipeline never names it (an estimate the pipeline
// reads is saved to a file or to /vsimem/ first).
std::mutex g_held_mu;
std::map<std::int64_t, const Buffer*> g_held;
std::int64_t g_next_key = 0;

class HeldBufferOp final : public Op {
public:
    HeldBufferOp(const Params& p, std::span<const ImageInfo>) {
        std::lock_guard lock(g_held_mu);
        auto it = g_held.find(p.integer("key"));
        if (it == g_held.end()) throw ParamError("key", "internal: no such held buffer");
        buffer_ = it->second;
        const ConstTile v = buffer_->view();
        info_.width = v.rect.w;
        info_.height = v.rect.h;
        info_.bands = v.bands;
        info_.format = v.format;
        info_.interpretation = default_interpretation(v.bands, v.format);
    }
    void demand(const Rect&, Demand&) const override {}
    // One case: a copy of the held pixels of out.rect.
    void compute(const Tile& out, std::span<const Pulled>) const override { copy_pixels(buffer_->view(), out); }

private:
    const Buffer* buffer_ = nullptr;
};

const OpRegistry& profile_registry(const OpRegistry& base) {
    static std::mutex mu;
    static std::map<const OpRegistry*, OpRegistry> made;
    std::lock_guard lock(mu);
    auto [it, fresh] = made.try_emplace(&base);
    if (fresh) {
        for (const OpSpec& s : base.specs()) it->second.add(s);
        it->second.add({"held_buffer",
                        "internal: a buffer held by the flat-field step",
                        0,
                        0,
                        {{"key", ParamType::integer, true, "", "which"}},
                        false,
                        &make_op<HeldBufferOp>});
    }
    return it->second;
}

}  // namespace

void save_profile(const Buffer& profile, const std::string& path, const OpRegistry& registry) {
    std::int64_t key;
    {
        std::lock_guard lock(g_held_mu);
        key = g_next_key++;
        g_held[key] = &profile;
    }
    struct Forget {
        std::int64_t key;
        ~Forget() {
            std::lock_guard lock(g_held_mu);
            g_held.erase(key);
        }
    } forget{key};
    Graph g(profile_registry(registry));
    NodeId src = g.add("held_buffer", {}, {{"key", key}}, "profile");
    g.add("save", {src}, {{"path", path}, {"format", std::string("tiff")}}, "save");
    Evaluator(g).run_sinks();
}

FlatfieldEstimate estimate_flatfield(const std::vector<Placement>& tiles, const FlatfieldOptions& o,
                                     const OpRegistry& registry) {
    auto t0 = std::chrono::steady_clock::now();
    const std::vector<std::size_t> pick = ill::spread_sample(tiles.size(), std::max<std::size_t>(o.max_tiles, 1));
    Graph g(registry);
    std::vector<NodeId> loads;  // headers only
    for (std::size_t k : pick)
        loads.push_back(g.add("load", {}, {{"path", tiles[k].file}}, "tile" + std::to_string(k)));
    const ImageInfo first = g.info(loads[0]);
    for (std::size_t n = 1; n < loads.size(); ++n) {
        const ImageInfo& t = g.info(loads[n]);
        if (t.width != first.width || t.height != first.height)
            throw IoError(tiles[pick[n]].file, "is " + std::to_string(t.width) + "x" + std::to_string(t.height) +
                                                   " but '" + tiles[pick[0]].file + "' is " +
                                                   std::to_string(first.width) + "x" + std::to_string(first.height) +
                                                   "; a flat-field is estimated from tiles of one size (estimate one "
                                                   "per size and stitch them apart)");
    }
    const ill::Grid grid = ill::working_grid(first.width, first.height, o.working_size);
    std::vector<float>
        dark;  // the dark-field on the grid (box shrinking is linear: shrink(I - D) = shrink(I) - shrink(D))
    if (!o.darkfield.empty()) {
        Graph dg(registry);
        NodeId d = dg.add("load", {}, {{"path", o.darkfield}}, "darkfield");
        const ImageInfo& di = dg.info(d);
        if (di.width != first.width || di.height != first.height || di.bands != 1)
            throw IoError(o.darkfield, "is " + std::to_string(di.width) + "x" + std::to_string(di.height) + " with " +
                                           std::to_string(di.bands) +
                                           " band(s), but a dark-field must be one band of the tiles' size, and '" +
                                           tiles[pick[0]].file + "' is " + std::to_string(first.width) + "x" +
                                           std::to_string(first.height) + "; give the dark-field made for these tiles");
        ill::Shrinker shrink(grid);
        Evaluator ev(dg);
        for (int y = 0; y < first.height; y += kStripRows)
            shrink.add(ev.render(d, {0, y, first.width, std::min(kStripRows, first.height - y)}).view());
        dark = shrink.finish();
    }

    // Tiles in parallel, each read top to bottom in strips (one pass of a
    // streaming decoder) and shrunk as the strips arrive.
    std::vector<std::vector<float>> samples(loads.size());
    parallel_reads(g, loads.size(), o.threads, o.cancel, [&](Evaluator& ev, std::size_t n) {
        const Op& op = *g.node(source_of(g, loads[n])).op;
        struct Release {  // whatever happens, the decoder may go
            const Op& op;
            ~Release() { op.release(); }
        } release{op};
        ill::Shrinker shrink(grid);
        op.expect(first.rect());
        for (int y = 0; y < first.height; y += kStripRows) {
            if (o.cancel && o.cancel->load()) throw Cancelled();
            Buffer b = ev.render(loads[n], {0, y, first.width, std::min(kStripRows, first.height - y)});
            shrink.add(b.view());
        }
        samples[n] = shrink.finish();
        for (std::size_t c = 0; c < dark.size(); ++c) samples[n][c] -= dark[c];
    });

    ill::Profiles p;
    try {
        p = ill::estimate(grid, samples, o.fit);
    } catch (const IoError&) {
        throw;
    } catch (const Error& e) {
        throw Error(o.source + ": " + e.what());
    }
    FlatfieldEstimate out;
    auto to_buffer = [&](const std::vector<float>& v) {
        Buffer b(&process_pixel_memory(), first.rect(), 1, Format::f32);
        std::memcpy(b.tile().data, v.data(), v.size() * sizeof(float));
        return b;
    };
    out.flatfield = to_buffer(p.flat);
    out.tiles = p.tiles;
    out.residual = p.flat_residual;
    out.degree = p.degree;
    out.pixels_read = std::uint64_t(first.width) * std::uint64_t(first.height) * loads.size();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

GainEstimate estimate_gains(const std::vector<Placement>& tiles, const Illumination& ill, const GainOptions& o,
                            const OpRegistry& registry) {
    auto t0 = std::chrono::steady_clock::now();
    Illumination flat_only = ill;
    flat_only.gains.clear();
    Graph g(registry);
    const std::vector<NodeId> src = add_tile_loads(g, tiles, flat_only);  // headers only
    std::vector<Rect> placed;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const ImageInfo& t = g.info(src[i]);
        placed.push_back({int(tiles[i].at[0]), int(tiles[i].at[1]), t.width, t.height});
    }
    struct Pair {
        std::size_t a, b;
        Rect overlap;  // canvas frame
    };
    std::vector<Pair> pairs;
    for (std::size_t a = 0; a < placed.size(); ++a)
        for (std::size_t b = a + 1; b < placed.size(); ++b) {
            const Rect ov = placed[a].intersect(placed[b]);
            if (ov.w >= o.min_overlap && ov.h >= o.min_overlap) pairs.push_back({a, b, ov});
        }
    // The mean of one tile's pixels over `r` (canvas frame), read in strips.
    auto mean_over = [&](Evaluator& ev, std::size_t t, const Rect& r) {
        const Rect in = r.translate(-placed[t].x, -placed[t].y);
        double sum = 0;
        for (int y = in.y; y < in.bottom(); y += kStripRows) {
            if (o.cancel && o.cancel->load()) throw Cancelled();
            Buffer b = ev.render(src[t], {in.x, y, in.w, std::min(kStripRows, in.bottom() - y)});
            const ConstTile v = b.view();
            dispatch_format(v.format, [&](auto s) {
                using S = decltype(s);
                for (int yy = v.rect.y; yy < v.rect.bottom(); ++yy) {
                    const S* p = v.row<S>(yy);
                    for (std::size_t k = 0; k < std::size_t(v.rect.w) * v.bands; ++k) sum += double(p[k]);
                }
            });
        }
        return sum / (double(in.area()) * g.info(src[t]).bands);
    };
    std::vector<ill::Overlap> overlaps(pairs.size());
    parallel_reads(g, pairs.size(), o.threads, o.cancel, [&](Evaluator& ev, std::size_t n) {
        const Pair& p = pairs[n];
        overlaps[n] = {p.a, p.b, mean_over(ev, p.a, p.overlap), mean_over(ev, p.b, p.overlap)};
    });
    GainEstimate out;
    out.gains = ill::solve_gains(tiles.size(), overlaps);
    out.overlaps = pairs.size();
    for (const Pair& p : pairs) out.pixels_read += 2 * std::uint64_t(p.overlap.area());
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

}  // namespace tessera
