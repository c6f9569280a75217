// Registration math for mosaics: where do overlapping images really sit?
//
// Pure functions on pixels already read (they know no files): which pairs of
// neighbours to compare and where (plan_pairs), how far apart two images
// are from one window each (match), and all positions at once from the
// pair offsets (solve_positions). tools/mosaic.cpp reads the pixels the
// plan names through the evaluator and calls these.
//
// Offsets and positions are whole pixels (see ops/mosaic.cpp for why).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/rect.hpp"

namespace tessera::registration {

// One band of samples quantised to 0..1023, so that the correlation sums
// are exact integers (and vectorise). `rect` is where the pixels lie in the
// frame of the image they were cut from.
struct GreyImage {
    Rect rect;
    std::vector<std::int16_t> px;  // rect.w x rect.h, row-major
    const std::int16_t* row(int y) const { return px.data() + std::size_t(y) * std::size_t(rect.w); }
};

// The mean of the bands of `tile`, mapped linearly from the tile's own
// min..max onto 0..1023. Normalised cross-correlation ignores gain and
// offset, so each piece may have its own mapping.
GreyImage to_grey(const ConstTile& tile);

// Box average over f x f blocks (a partial last row or column is dropped);
// rect becomes the block grid of the same origin scaled by 1/f.
GreyImage shrink(const GreyImage& im, int f);

struct Match {
    bool found = false;
    // The offset of image b from image a (position of b minus position of
    // a) that best aligns the window with the region.
    Point offset;
    // Normalised cross-correlation at that offset, full resolution, -1..1.
    double score = 0;
    std::string why;  // when not found: what was wrong
};

// Finds where `window` (pixels of image a, rect in a's frame) lies inside
// `region` (pixels of image b, rect in b's frame): every placement of the
// window inside the region is a candidate. The search runs on box-shrunk
// copies first (coarse enough that the search is a few pixels wide there),
// then refines by factors of two down to full resolution, +-2 pixels at each
// level. Not found: a flat window, a best match on the border of the search
// area (the true one may lie beyond it), or a score below min_score.
Match match(const GreyImage& window, const GreyImage& region, double min_score = 0.5);

// A pair of neighbours to register: pixels `window` of image a and `region`
// of image b (each in its own image's frame).
struct PairPlan {
    int a = 0, b = 0;
    Rect window;  // in a's frame
    Rect region;  // in b's frame: the window at the nominal offset, grown by the search radius
    bool deep = false;  // needs rows low in a or b (see plan_pairs)
};

struct PlanOptions {
    int search = 40;       // largest error of a nominal offset, each axis, pixels
    int window_w = 256;    // the window's size (at most; smaller if the overlap is)
    int window_h = 128;
    int min_window = 32;   // overlaps whose window would be smaller are not registered
    // A top-down decoder (JPEG) must decode every row above the last one
    // read, so a pair whose window lies low in an image costs most of a
    // decode of it: a pair is "deep" when it needs rows below this share of
    // an image's height. Pairs that are not deep are all registered; of the
    // deep ones, those of deep_share of the images that could be read deep
    // (spread evenly, at least min_links between any two groups of images
    // the shallow pairs join), and then every deep pair those images serve.
    // deep_share 1 registers every pair.
    double shallow_depth = 0.5;
    double deep_share = 0.25;
    int min_links = 3;
};

// The pairs of images whose nominal rects overlap enough for a window of
// at least min_window pixels that stays inside both under any error up to
// the search radius. The window is centred along the overlap and at its
// top (rows cost more than columns to a top-down decoder).
std::vector<PairPlan> plan_pairs(const std::vector<Rect>& nominal, const PlanOptions& options);

// The window of images a and b at the attempt-th place along their overlap
// (0: top centre, as plan_pairs puts it; then the middle, the bottom, the
// left and right ends, each distinct), for a pair whose first window was
// flat or failed; none when the overlap has no such place.
std::optional<PairPlan> plan_window(const std::vector<Rect>& nominal, int a, int b, const PlanOptions& options,
                                    int attempt);

// A measured offset between two images (position of b minus position of a).
struct Link {
    int a = 0, b = 0;
    Point offset;
    double weight = 1;
};

struct Solution {
    std::vector<Point> positions;
    std::vector<bool> used;         // per link: kept (not rejected as an outlier)
    std::vector<double> residual;   // per link: |solved offset - measured offset|, pixels
    int rejected = 0;
};

// All positions at once: weighted least squares over the links' offsets
// (x and y apart), then the link with the largest residual dropped while it
// exceeds max_residual, and solved again. Links only fix positions up to a
// common shift: each connected group of images is placed so that its mean
// correction from the nominal positions is zero (the stage's errors are
// taken to average out); an image with no link keeps its nominal position.
// Positions are rounded to whole pixels.
Solution solve_positions(const std::vector<Point>& nominal, const std::vector<Link>& links,
                         double max_residual = 1.5);

}  // namespace tessera::registration
