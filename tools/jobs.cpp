// The stitch and mosaic jobs (tessera/jobs.hpp): the recipe `tessera
// stitch` and `tessera mosaic` ran inline, as library functions the CLI
// calls.
#include "tessera/jobs.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "tessera/core/error.hpp"
#include "tessera/core/file_identity.hpp"
#include "tessera/core/shard.hpp"

namespace tessera {

namespace {

bool speaks_for_job(const JobContext& c) { return !c.cluster || c.cluster->rank() == 0; }

// A name in GDAL's /vsimem/ for an estimate held in memory: per process
// (every rank of a sharded job estimates and holds its own) and per call
// (a program may run several jobs at once).
std::string memory_profile_name() {
    static std::atomic<int> calls{0};
    const int n = calls.fetch_add(1);
    return "/vsimem/tessera-flatfield-" + std::to_string(getpid()) + (n ? "-" + std::to_string(n) : "") + ".tif";
}

}  // namespace

// F from a sample of the tiles, written to flatfield_out (by the process
// that speaks for the job) and set as the job's flat-field. Without
// flatfield_out (or in a sharded run, where every rank estimates the same F
// from the same tiles) the graph reads it from GDAL's /vsimem/: held in
// memory, nothing left on disk, written by the same atomic save. A pipeline
// printed for later must find its profile in a file, hence needs
// flatfield_out.
void prepare_flatfield(StitchOptions& o, const std::vector<Placement>& tiles, const OpRegistry& registry,
                       const JobContext& c) {
    if (!o.estimate_flatfield) {
        if (!o.flatfield_out.empty()) throw Error("--flatfield-out writes what --estimate-flatfield estimates: add it");
        return;
    }
    if (!o.illumination.flatfield.empty())
        throw Error("--estimate-flatfield estimates the profile --flatfield gives: use one or the other");
    if (c.for_pipeline && o.flatfield_out.empty())
        throw Error("--emit-json with --estimate-flatfield needs --flatfield-out F.tif, so that the printed pipeline "
                    "can load the estimate");
    FlatfieldOptions fo;
    fo.darkfield = o.illumination.darkfield;
    fo.threads = std::max(c.threads, 0);
    fo.source = o.positions;
    fo.cancel = c.cancel;
    FlatfieldEstimate est = estimate_flatfield(tiles, fo, registry);
    if (c.flatfield_estimated) c.flatfield_estimated(est, tiles.size());
    const bool sharded = c.cluster && c.cluster->ranks() > 1;
    if (!o.flatfield_out.empty() && speaks_for_job(c)) save_profile(est.flatfield, o.flatfield_out, registry);
    if (!o.flatfield_out.empty() && !sharded) {
        o.illumination.flatfield = std::filesystem::absolute(o.flatfield_out).lexically_normal().string();
        return;
    }
    o.illumination.flatfield = memory_profile_name();
    save_profile(est.flatfield, o.illumination.flatfield, registry);
}

// Each tile's exposure from its overlaps at the positions the job places
// it at (after the flat-field), divided out.
void prepare_gains(StitchOptions& o, const std::vector<Placement>& tiles, const OpRegistry& registry,
                   const JobContext& c) {
    if (!o.gain_compensation) return;
    GainOptions go;
    go.threads = std::max(c.threads, 0);
    go.cancel = c.cancel;
    GainEstimate est = estimate_gains(tiles, o.illumination, go, registry);
    if (c.gains_estimated) c.gains_estimated(est);
    o.illumination.gains = est.gains.gain;
}

namespace {}  // namespace

void check_side_outputs(const StitchOptions& options, const std::vector<Placement>& tiles,
                        const std::vector<std::pair<std::string, std::string>>& side_files) {
    std::vector<std::pair<std::string, std::string>> outputs;  // (what, path)
    for (const auto& [what, path] : side_files)
        if (!path.empty()) outputs.emplace_back(what, path);
    if (!options.flatfield_out.empty()) outputs.emplace_back("the flat-field output", options.flatfield_out);
    if (outputs.empty()) return;
    std::vector<std::pair<std::string, std::string>> inputs = {{"the positions file", options.positions},
                                                               {"the flat-field", options.illumination.flatfield},
                                                               {"the dark-field", options.illumination.darkfield}};
    for (const Placement& t : tiles) inputs.emplace_back("a tile", t.file);
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        const auto& [what, path] = outputs[i];
        const auto id = file_identity(path);
        if (!id) continue;  // not there yet: cannot be an input
        for (const auto& [kind, in] : inputs)
            if (file_identity(in) == id)
                throw Error(what + " '" + path + "' is the same file as " + kind + " of the job, '" + in +
                            "' (compared by device and inode, so links count); writing it would destroy that "
                            "input: write it elsewhere");
        std::vector<std::pair<std::string, std::string>> others(outputs.begin(), outputs.begin() + std::ptrdiff_t(i));
        others.emplace_back("the output", options.output);
        for (const auto& [other, q] : others)
            if (file_identity(q) == id)
                throw Error(what + " '" + path + "' is the same file as " + other + " '" + q +
                            "': each output needs a file of its own");
    }
}

PlannedJob plan_stitch(const StitchOptions& options, std::vector<Placement> tiles, const OpRegistry& registry,
                       const JobContext& c) {
    StitchOptions o = options;
    if (o.estimate_flatfield || o.gain_compensation) {
        // the whole job checked before the estimates read any pixel (the
        // flat-field to be estimated is checked by the estimate)
        StitchOptions check = o;
        if (o.estimate_flatfield) check.illumination = {};
        stitch_graph(check, tiles, registry);
    }
    prepare_flatfield(o, tiles, registry, c);
    prepare_gains(o, tiles, registry, c);
    CanvasFit fit;
    Graph g = stitch_graph(o, tiles, registry, &fit);
    if (o.canvas_w == 0 && o.canvas_h == 0) {
        if (c.canvas_fitted) c.canvas_fitted(fit);
        shift_positions(tiles, fit.shift);
    }
    return {std::move(g), std::move(tiles)};
}

PlannedJob plan_mosaic(const MosaicOptions& options, std::vector<Placement> tiles, const OpRegistry& registry,
                       const JobContext& c) {
    MosaicOptions o = options;
    // Without a canvas: the bounding box of the given positions for the
    // check, of the solved ones for the mosaic (fractional positions cover
    // one pixel more, unless they are to be rounded).
    const bool fitted = o.canvas_w == 0 && o.canvas_h == 0;
    std::array<double, 2> shifted{0, 0};
    std::vector<std::array<int, 2>> sizes;  // read once, for both fits
    auto fit_tiles = [&] {
        if (sizes.empty()) sizes = tile_sizes(tiles, registry);
        const CanvasFit fit = fit_canvas(tiles, sizes, !o.integer_positions);
        shift_positions(tiles, fit.shift);
        shifted = {shifted[0] + fit.shift[0], shifted[1] + fit.shift[1]};
        o.canvas_w = fit.width;
        o.canvas_h = fit.height;
    };
    if (fitted) fit_tiles();
    // the whole job is checked (tiles, canvas, output options) before
    // registration spends any time on pixels
    {
        MosaicOptions check = o;
        if (o.estimate_flatfield) check.illumination = {};  // checked by the estimate
        mosaic_graph(check, tiles, registry);
    }
    prepare_flatfield(o, tiles, registry, c);
    if (o.register_tiles) {
        // in a sharded run every rank registers (its share of the pairs)
        RegisterOptions ro = o.registration;
        ro.illumination = o.illumination;  // registration sees the corrected tiles
        ro.threads = std::max(c.threads, 0);
        ro.source = o.positions;
        ro.cancel = c.cancel;
        ro.cluster = c.cluster;
        const RegisterReport rep = register_positions(tiles, ro, registry);
        if (c.registered) c.registered(rep, tiles);
        for (std::size_t i = 0; i < tiles.size(); ++i)
            for (std::size_t k = 0; k < 2; ++k)
                tiles[i].at[k] = o.integer_positions ? std::floor(rep.positions[i][k] + 0.5) : rep.positions[i][k];
    }
    // the gains at the positions used
    prepare_gains(o, tiles, registry, c);
    if (fitted) {
        fit_tiles();
        if (c.canvas_fitted) c.canvas_fitted({o.canvas_w, o.canvas_h, shifted});
    }
    Graph g = mosaic_graph(o, tiles, registry);
    return {std::move(g), std::move(tiles)};
}

RunStats run_job(Graph& g, const JobContext& c) {
    g.execution.threads = std::max(c.threads, 0);
    RunOptions opt;
    opt.cancel = c.cancel;
    opt.cluster = c.cluster;
    return Evaluator(g).run_sinks(opt);
}

RunStats stitch(const StitchOptions& options, const OpRegistry& registry, const JobContext& context) {
    PlannedJob job = plan_stitch(options, read_positions(options.positions), registry, context);
    return run_job(job.graph, context);
}

RunStats mosaic(const MosaicOptions& options, const OpRegistry& registry, const JobContext& context) {
    PlannedJob job = plan_mosaic(options, read_positions(options.positions), registry, context);
    return run_job(job.graph, context);
}

}  // namespace tessera
