// Illumination math for mosaics: the flat-field F of an acquisition,
// estimated from its own tiles, for the flatfield op's
//     corrected = (I - D) / F.
//
// Pure functions on pixels already read (they know no files): which tiles
// to sample (spread_sample), each tile box-shrunk to a small working grid as
// its rows pass (Shrinker), and the profiles from those samples (estimate).
// tools/flatfield.cpp reads the tiles through the evaluator and calls these.
//
// The model is BaSiC's (Peng et al., Nat. Commun. 2017): tile k observes
// I_k(p) = g_k S_k(p) F(p) + D(p), the specimen S_k (and the exposure g_k)
// changing from tile to tile, the flat-field F and dark-field D not. BaSiC
// solves it as a low-rank plus sparse decomposition; here, more cheaply and
// on the same premise that many tiles average the content out (BaSiC's,
// CIDRE's, and ASHLAR's use of BaSiC's profiles):
//   1. each sample divided by its own mean, so that bright and dim tiles
//      (content, exposure) weigh the same;
//   2. at each working-grid cell, the mean of the middle 80 % of the
//      samples (robust to the brightest and darkest content: a nucleus in
//      one tile, a hole in another), a profile proportional to F (plus the
//      dark offset, see below);
//   3. smoothed by a least-squares fit of a low-order 2-D polynomial
//      (Legendre, total degree <= degree, by default 2: a radial falloff
//      about an off-centre axis, the cos^4 law's leading term), evaluated
//      at every pixel of the tile, normalised to mean 1. What content does
//      not average out is correlated over large parts of a tile (a
//      specimen's structure at the scale of the tile), so a higher degree
//      follows it: on the test acquisitions degree 4 was worse than 2 even
//      from 200 tiles (RMS 0.8 % against 0.56 %, max 4.6 % against 3.1 %).
//      Raise it for vignetting of another shape, with many tiles.
// The dark-field is not estimated. From the tiles alone D is defined only up
// to c F (a specimen shifted by a constant looks the same), so only data
// with a known zero (background with no signal, or a dark frame) fix it;
// estimates from the stack's intercept were several times off on the test
// acquisitions. Ignoring D biases F by about (F - 1) mean(D) / mean(I): 0.3 %
// at a 300-count offset under 10 000 counts of signal; give the camera's
// dark frame (--darkfield) where it matters.
//
// Measured against make_acquisition's truth (35 % corner vignetting,
// 16-bit, 256x192 tiles, degree 2): 12 tiles RMS 1.9 %, max 6.4 % (in the
// corners); 100 tiles RMS 0.5 %, max 2.5 %; 200 tiles RMS 0.56 %, max 3.1 %.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tessera/core/buffer.hpp"

namespace tessera::illumination {

// A tile of tile_w x tile_h box-shrunk to w x h cells; cell (i, j) is the
// mean of the source columns [x0(i), x0(i + 1)) and rows [y0(j), y0(j + 1)),
// so every source pixel counts once, whatever the sizes.
struct Grid {
    int tile_w = 0, tile_h = 0, w = 0, h = 0;
    int x0(int i) const { return int(std::int64_t(i) * tile_w / w); }
    int y0(int j) const { return int(std::int64_t(j) * tile_h / h); }
};

// The grid whose longer side has at most max_side cells (cells as square as
// the integer sizes allow; a side shorter than max_side is not enlarged).
Grid working_grid(int tile_w, int tile_h, int max_side = 96);

// Box-shrinks one tile onto the grid from its rows, which may arrive in any
// number of strips (each a ConstTile of whole rows in the tile's frame), so
// that only a strip of the full tile is ever held. The mean of the bands.
class Shrinker {
public:
    explicit Shrinker(const Grid& grid);
    void add(const ConstTile& rows);
    // The w x h cell means, row-major (cells no row reached are 0).
    std::vector<float> finish() const;

private:
    Grid grid_;
    std::vector<double> sum_;
    std::vector<int> cell_of_x_;
    int bands_ = 1;
};

// Up to `max` indices of 0..n-1, evenly spread (the first and the last
// included when max >= 2), ascending; all of them when n <= max.
std::vector<std::size_t> spread_sample(std::size_t n, std::size_t max);

struct Options {
    int degree = 2;  // total degree of the smoothing polynomial, 0..8 (step 3)
};

struct Profiles {
    int width = 0, height = 0;  // the tile size
    std::vector<float> flat;    // width x height, row-major, mean 1
    std::size_t tiles = 0;      // samples used
    int degree = 0;             // of the polynomial fitted
    // RMS of (profile - fitted) / fitted over the cells: how far the
    // measured profile is from a smooth one (content that did not average
    // out; about 10 % for a dozen tiles, 4 % for a hundred).
    double flat_residual = 0;
};

// Steps 1-3 from the samples (Shrinker outputs on `grid`, one per tile).
// Throws Error if there are fewer than 3, if the tiles are black, or if the
// fitted profile is not positive everywhere.
Profiles estimate(const Grid& grid, const std::vector<std::vector<float>>& samples, const Options& options = {});

// Per-tile exposure gains from the overlaps (the optional step after the
// flat-field, so that exposure drift does not show as a checkerboard): where
// tiles a and b overlap they saw the same specimen, so the means of their
// (flat-field corrected) pixels there are g_a X and g_b X. The gains are
// the least-squares solution of log g_b - log g_a = log(mean_b / mean_a)
// over every overlap (conjugate gradients on the tiles' graph Laplacian),
// with mean log g = 0 over each connected group of tiles (the common
// exposure is the specimen's, not the tiles'); then the overlap that
// disagrees most is dropped while it disagrees by more than 4 times the
// median residual and 2 % (a misplaced tile, a saturated strip), one at a
// time and the rest solved again, at most a quarter of them. A tile with no
// usable overlap keeps gain 1.
struct Overlap {
    std::size_t a = 0, b = 0;
    double mean_a = 0, mean_b = 0;  // > 0, else the overlap is not used
};
struct Gains {
    std::vector<double> gain;  // one per tile, to divide the tile by
    std::size_t used = 0;      // overlaps in the final solve
    std::size_t dropped = 0;   // overlaps dropped as outliers or unusable
    std::size_t unlinked = 0;  // tiles no used overlap reaches (gain 1)
    double rms_before = 0;     // RMS of log(mean_b / mean_a) over the used overlaps
    double rms_after = 0;      // the same after dividing by the gains
};
Gains solve_gains(std::size_t tiles, const std::vector<Overlap>& overlaps);

}  // namespace tessera::illumination
