// The scanned mosaic with registration and blending: stage positions are
// refined by registering neighbouring tiles, then every tile is placed by
// one mosaic node (feathered overlaps) and saved as a tiled (pyramid) TIFF.
// `tessera mosaic` is read_positions (or grid_positions), register_positions
// (unless --no-register), mosaic_graph and a run, as tessera::mosaic and
// plan_mosaic (tessera/jobs.hpp) put them together; C++ users can call
// either.
//
// Registration is a step of its own, before the final graph is built: ops
// never compute while a graph is built, and registration needs pixels. It
// builds a load node per tile (flat-field corrected, if asked) and pulls
// only the strips the pair plan names (ops/registration.hpp) through the
// evaluator, so its cost follows the overlaps, not the image size. (With a
// top-down JPEG a strip also costs entropy-decoding the rows above it,
// about 40% of a full decode for one at the bottom: hence strips at the top
// of side-by-side overlaps, and only a share of the tiles read deep.)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/ops/registration.hpp"
#include "tessera/stitch.hpp"

namespace tessera {

class Cluster;  // tessera/core/shard.hpp

struct RegisterOptions {
    // Strips, stage error (error_x/error_y; 0: stage_error below), deep pairs.
    registration::PlanOptions plan{.error_x = 0, .error_y = 0};
    // The stage error, px per axis, when plan leaves it at 0; 0 here: a
    // tenth of the first tile's width and height, at least 8 px.
    int stage_error = 0;
    double min_score = 0.15;           // floor under the learned trust threshold
    double max_residual = 1.5;         // pixels; worse pairs are dropped as outliers
    int retries = 2;                   // other places along the overlap a failed pair tries
    int band = -1;                     // the band registered (0-based); -1: the mean of the bands
    int null_pairs = 64;               // pairs that cannot overlap, scored to learn the threshold
    int threads = 0;                   // 0: every core
    std::string source = "positions";  // named in errors (the positions file's path)
    // Set from any thread (e.g. a signal handler) to stop: Cancelled is thrown.
    const std::atomic<bool>* cancel = nullptr;
    // A sharded run (every rank calls register_positions with the same
    // tiles and options): the ranks split the pairs' reads and matching and
    // all get the same report. Not owned.
    Cluster* cluster = nullptr;
    // Tiles are registered as corrected (the stitch's Illumination).
    Illumination illumination;
};

// What RegisterOptions' numbers allow, as parameter specs: checked by
// register_positions (naming the source and key) and taken by the CLI's
// options (--stage-error, --register-band, --min-score, --deep-share), so
// the two cannot differ. Keys: stage_error (0, "not given", is the
// default), band (-1, "not given": the mean), min_score, deep_share
// (plan.deep_share).
const std::vector<ParamSpec>& register_params();

// One registered pair, as measured and as the solve used it.
struct PairResult {
    std::size_t a = 0, b = 0;   // tiles (input order)
    registration::Vec2 offset;  // measured position of b minus position of a (when found)
    double score = 0;           // normalised cross-correlation at that offset: the pair's confidence
    bool found = false;         // a match inside the stage error (not flat, not on its edge)
    bool trusted = false;       // found, with a score above the learned threshold
    bool used = false;          // trusted and kept by the solve (not an outlier)
    double residual = 0;        // |solved offset - measured offset|, px (when trusted)
    std::string why;            // when not used
};

// How a tile was placed (registration::Placed): by the pairs of the largest
// linked group, as a smaller group shifted onto the stage model, or by the
// stage model alone (no trusted pair).
using TilePlacement = registration::Placed;

struct RegisterReport {
    std::vector<std::array<double, 2>> positions;           // solved, one per tile, in input order
    std::vector<TilePlacement> placement;                   // one per tile
    std::vector<PairResult> pairs;                          // every registered pair
    std::vector<std::pair<std::size_t, std::size_t>> thin;  // overlapping neighbours too thin to register
    std::size_t candidates = 0;                             // overlapping pairs with room for a strip
    std::size_t registered = 0;                             // pairs whose strips were read and matched
    std::size_t matched = 0;                                // of those, found inside the stage error
    std::size_t trusted = 0;                                // of those, above the threshold
    std::size_t retried = 0;                                // strips tried again elsewhere in their overlap
    std::size_t rejected = 0;                               // trusted pairs dropped as outliers by the solve
    std::size_t deep_reads = 0;                             // tiles read below their shallow part
    std::size_t by_pairs = 0, by_group = 0, by_model = 0;   // tiles placed each way
    double threshold = 0;                                   // the trust threshold (learned, or the floor)
    std::size_t null_scored = 0;                            // pairs that cannot overlap, scored to learn it
    Point stage_error{0, 0};                                // the error bound used, px per axis
    std::uint64_t pixels_read = 0;
    double seconds = 0;
    std::vector<std::string> problems;  // the first few pairs not used, and why
};

// Reads the strips of every planned pair (in parallel, tiles in the order
// of their nominal top-left), matches each pair, scores the permutation
// test's pairs, and solves all positions (fractional). Errors: no pair to
// register at all (names the source and what to do), an unreadable tile
// (names the file), no pair aligned with confidence.
RegisterReport register_positions(const std::vector<Placement>& tiles, const RegisterOptions& options,
                                  const OpRegistry& registry);

// The pairs as a CSV: a,b (file names relative to the CSV's folder),
// dx,dy, score, found, trusted, used, residual, why.
void write_pairs_csv(const std::string& path, const std::vector<Placement>& tiles, const RegisterReport& report);

struct MosaicOptions : StitchOptions {
    std::string blend = "feather";  // feather or none (insert)
    int blend_width = 64;
    // The mosaic job's (tessera/jobs.hpp; mosaic_graph takes the positions
    // as given): refine them by registration first, with these options
    // (the job sets their threads, source, cancel, cluster and
    // illumination from its own), and round the solved ones to whole pixels.
    bool register_tiles = true;
    RegisterOptions registration;
    bool integer_positions = false;
};

// The stitch graph with a mosaic node in place of insert: headers only,
// no pixels read.
Graph mosaic_graph(const MosaicOptions& options, const std::vector<Placement>& tiles, const OpRegistry& registry);

}  // namespace tessera
