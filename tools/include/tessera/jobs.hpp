// The stitch and mosaic jobs whole, as `tessera stitch` and `tessera mosaic`
// run them: the steps that need pixels before the final graph can be built
// (the flat-field estimate, registration, the exposure gains), the canvas
// fitted to the tiles, the graph, and the run. The CLI is these functions
// plus its options and messages, so a C++ caller gets the same job: the
// same checks in the same order, the same illumination handling, the same
// output bits.
//
//   tessera::MosaicOptions o;
//   o.positions = "nominal.csv";
//   o.output = "slide.tif";
//   o.estimate_flatfield = o.gain_compensation = true;
//   tessera::mosaic(o, tessera::standard_registry());
//
// Order of a mosaic (a stitch is the same without registration): the tiles'
// headers and the canvas (fitted to the given positions unless one is
// given), the whole graph checked before any pixel is read, the flat-field
// estimate, registration (of the corrected tiles), the gains at the
// positions registration solved, the canvas fitted again to those, the
// final graph.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "tessera/flatfield.hpp"
#include "tessera/graphs/evaluator.hpp"
#include "tessera/mosaic.hpp"

namespace tessera {

class Cluster;  // tessera/core/shard.hpp

// What a job runs with beside its options, and who hears what it found
// (every field has an initialiser: designated initialisers may leave any out).
struct JobContext {
    int threads = 0;  // 0: every core (the estimates, registration and the run)
    // Set from any thread (e.g. a signal handler) to stop: Cancelled is thrown.
    const std::atomic<bool>* cancel = nullptr;
    // A sharded run: every rank calls the job with the same options; they
    // split registration's pairs and the run's tiles; rank 0 writes the
    // output and `flatfield_out`. Not owned.
    Cluster* cluster = nullptr;
    // The graph is to be written down as a pipeline (`--emit-json`), not
    // run in this process: an estimated flat-field must then be in a file
    // (flatfield_out), not in memory.
    bool for_pipeline = false;
    // Told as each step ends, on every rank (a sharded job's reports say
    // the same on every rank). Any may be empty.
    std::function<void(const FlatfieldEstimate&, std::size_t tiles)> flatfield_estimated = {};
    // `tiles` at the positions registration started from.
    std::function<void(const RegisterReport&, const std::vector<Placement>& tiles)> registered = {};
    std::function<void(const GainEstimate&)> gains_estimated = {};
    // The canvas fitted (no canvas given): its size and the shift added to
    // every given position.
    std::function<void(const CanvasFit&)> canvas_fitted = {};
};

// A job ready to run: its graph and the tiles where it places them (on its
// canvas: what --positions-out writes).
struct PlannedJob {
    Graph graph;
    std::vector<Placement> tiles;
};

// The illumination steps, each setting options.illumination (the jobs call
// them; exposed for callers composing their own job). With
// estimate_flatfield: F estimated from `tiles` and set as the flat-field,
// read from flatfield_out (written by the rank that speaks for the job) or
// from a profile held in memory; errors when --flatfield is given too, when
// flatfield_out is given without the estimate, and for a pipeline without
// flatfield_out. With gain_compensation: the gains at the tiles' positions,
// after the flat-field.
void prepare_flatfield(StitchOptions& options, const std::vector<Placement>& tiles, const OpRegistry& registry,
                       const JobContext& context = {});
void prepare_gains(StitchOptions& options, const std::vector<Placement>& tiles, const OpRegistry& registry,
                   const JobContext& context = {});

// The steps before the run, for tiles already read (a positions file's or
// a grid's). Errors as stitch_graph's and mosaic_graph's, the estimates'
// and registration's, all before any pixel is read where they can be.
PlannedJob plan_stitch(const StitchOptions& options, std::vector<Placement> tiles, const OpRegistry& registry,
                       const JobContext& context = {});
PlannedJob plan_mosaic(const MosaicOptions& options, std::vector<Placement> tiles, const OpRegistry& registry,
                       const JobContext& context = {});

// The files a job writes besides its output (the positions it used, the
// pairs CSV, the registration picture, ...), each with the option that
// names it: refused before anything is read or written when one is the
// same file (device and inode, so links count) as an input of the job (a
// tile, the positions file, the flat- or dark-field) or as another output
// (options.output and options.flatfield_out included), naming both.
// options.flatfield_out is checked against the inputs even when no side
// file is given.
void check_side_outputs(const StitchOptions& options, const std::vector<Placement>& tiles,
                        const std::vector<std::pair<std::string, std::string>>& side_files);

// The graph run with the context's threads, cancel flag and cluster.
RunStats run_job(Graph& graph, const JobContext& context = {});

// The whole job: the tiles of options.positions (read_positions), planned,
// run.
RunStats stitch(const StitchOptions& options, const OpRegistry& registry, const JobContext& context = {});
RunStats mosaic(const MosaicOptions& options, const OpRegistry& registry, const JobContext& context = {});

}  // namespace tessera
