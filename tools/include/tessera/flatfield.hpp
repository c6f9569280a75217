// Flat-field estimation for an acquisition, from its own tiles, and per-tile
// exposure gains from their overlaps: the steps before stitch_graph /
// mosaic_graph that `tessera stitch` and `tessera mosaic` run with
// --estimate-flatfield and --gain-compensation (the results go into
// StitchOptions::illumination; tessera/jobs.hpp's prepare_flatfield and
// prepare_gains run them for the jobs).
//
// Like registration it needs pixels, so it runs before the final graph is
// built: a graph with a load node per sampled tile (up to max_tiles, spread
// evenly over the positions list), each tile pulled through the evaluator
// in strips of rows and box-shrunk to the working grid as they arrive, so
// what is held is one strip per thread plus the small samples, never the
// tiles. The math is ops/illumination.hpp's.
//
// Both read through load (and flatfield) nodes with Evaluator::render, as
// registration does; neither calls Op::expect/release on the loads behind
// a flatfield node (the op cannot forward them), so a JPEG tile's streaming
// decoder is let go by the decoder LRU's budget rather than at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/ops/illumination.hpp"
#include "tessera/stitch.hpp"

namespace tessera {

struct FlatfieldOptions {
    std::size_t max_tiles = 200;  // tiles sampled, evenly spread
    int working_size = 96;        // longer side of the working grid, cells
    illumination::Options fit;    // polynomial degree
    // A dark-field (path) to take off each tile before F is estimated from
    // (I - D), as the correction will apply it; empty: none.
    std::string darkfield;
    int threads = 0;                            // 0: every core
    std::string source = "positions";           // named in errors (the CSV's path)
    const std::atomic<bool>* cancel = nullptr;  // set to stop: Cancelled is thrown
};

struct FlatfieldEstimate {
    Buffer flatfield;       // one band f32, the tiles' size, mean 1
    std::size_t tiles = 0;  // sampled
    double residual = 0;    // illumination::Profiles::flat_residual
    int degree = 0;         // of the polynomial fitted
    std::uint64_t pixels_read = 0;
    double seconds = 0;
};

// Errors: tiles of different sizes (names both files), an unreadable tile
// (names it), too few tiles or no contrast (names the source).
FlatfieldEstimate estimate_flatfield(const std::vector<Placement>& tiles, const FlatfieldOptions& options,
                                     const OpRegistry& registry);

struct GainOptions {
    int min_overlap = 4;  // px each way; narrower overlaps are not measured
    int threads = 0;      // 0: every core
    const std::atomic<bool>* cancel = nullptr;
};

struct GainEstimate {
    illumination::Gains gains;  // one per tile, and how well they fit
    std::size_t overlaps = 0;   // measured
    std::uint64_t pixels_read = 0;
    double seconds = 0;
};

// Each tile's exposure gain from its overlaps with the others at the
// positions given (nominal, or registered), the tiles corrected by
// `illumination`'s flat-field first (its gains are ignored): both sides of
// every overlap are read through the evaluator in strips and averaged
// (illumination::solve_gains). Set the result as Illumination::gains.
GainEstimate estimate_gains(const std::vector<Placement>& tiles, const Illumination& illumination,
                            const GainOptions& options, const OpRegistry& registry);

// Writes a profile as a one-band float TIFF through a save node (written
// beside the target and renamed when complete; a /vsimem/ path holds it in
// memory for gdal_load).
void save_profile(const Buffer& profile, const std::string& path, const OpRegistry& registry);

}  // namespace tessera
