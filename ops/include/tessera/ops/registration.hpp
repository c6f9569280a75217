// Registration math for mosaics: where do overlapping images really sit?
//
// Pure functions on pixels already read (they know no files): which pairs of
// neighbours to compare and which strips of them (plan_pairs), how far apart
// two images are from one strip each (match: phase correlation, candidate
// peaks checked by normalised cross-correlation, sub-pixel refinement), a
// trust threshold learned from pairs that cannot overlap
// (learned_threshold), and all positions at once from the pair offsets, with
// the images no trusted pair reaches placed by a model of the stage
// (solve_positions). tools/mosaic.cpp reads the pixels the plan names through
// the evaluator and calls these.
//
// The peers: MIST (NIST) phase-correlates pairs, checks each peak's
// interpretations by cross-correlation and bounds the answer by a model of
// the stage; ASHLAR phase-correlates the overlap strips to a tenth of a pixel
// and accepts a pair by a threshold from a permutation test on pairs that
// cannot overlap; Fiji's Grid/Collection checks several peaks and solves
// globally. Here the strip is the nominal overlap grown by the stage error,
// so that overlaps of a few pixels register, and offsets are fractional.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/rect.hpp"

namespace tessera::registration {

// A position or an offset to a fraction of a pixel.
struct Vec2 {
    double x = 0;
    double y = 0;
    friend bool operator==(const Vec2&, const Vec2&) = default;
};

// One band of samples as float, at the samples' full dynamic range (16-bit
// and float data are not squeezed). `rect` is where the pixels lie in the
// frame of the image they were cut from.
struct Plane {
    Rect rect;
    std::vector<float> px;  // rect.w x rect.h, row-major
    const float* row(int y) const { return px.data() + std::size_t(y) * std::size_t(rect.w); }
};

// Band `band` of `tile` (0-based), or the mean of its bands for band < 0.
Plane to_plane(const ConstTile& tile, int band = -1);

// Box average over f x f blocks (a partial last row or column is dropped);
// rect becomes the block grid of the same origin scaled by 1/f.
Plane shrink(const Plane& im, int f);

// A pair of neighbours to register: strip `crop_b` of image b, a window of
// their overlap at the nominal positions, and strip `crop_a` of image a, the
// same window grown by the stage error on every side and clipped to a (each
// in its own image's frame): wherever within the error b truly lies, what
// its window shows is inside a's crop.
struct PairPlan {
    int a = 0, b = 0;
    Rect crop_a;        // in a's frame
    Rect crop_b;        // in b's frame
    Point nominal;      // nominal offset: position of b minus position of a (whole pixels)
    Point error;        // largest error of that offset, per axis
    bool deep = false;  // needs rows low in a or b (see plan_pairs)
    // A permutation-test pair (plan_null): only its score is wanted, so
    // match() skips the offset's fraction.
    bool score_only = false;
};

struct PlanOptions {
    // Largest error of a nominal offset between neighbours, per axis, px:
    // the stage's error. The search covers it, and the strips are grown by
    // it so that what the true overlap shows is inside a's crop.
    int error_x = 20;
    int error_y = 20;
    // Overlaps thinner than this (across) are not registered but reported
    // (too_thin): a strip of a few pixels cannot be told from noise.
    int min_overlap = 8;
    // Overlaps shorter than this (along) are not neighbours worth a pair.
    int min_along = 48;
    // The corner two diagonal neighbours share (an overlap less than half
    // of both images each way) is not a pair unless this is set: it is
    // small, and lens distortion is largest there, so its offset disagrees
    // with the sides' by a pixel or two (the real confocal set: 1.7 px);
    // the tiles are joined through their side neighbours.
    bool corners = false;
    // The window of the overlap a pair compares: at most max_across pixels
    // across (centred), and along as long as keeps it under max_area pixels
    // (at least min_along, at most max_along), so that the cost of a pair
    // stays bounded whatever the tile size (a's crop adds the stage error on
    // every side). 2^16: at 2^15 the real confocal and SEM sets placed a
    // few overlaps visibly worse (lens distortion: a short window sees one
    // end of an overlap); 2^17 reads twice the pixels for hundredths of a
    // pixel.
    int max_across = 256;
    int max_along = 1024;
    std::int64_t max_area = 1 << 16;
    // A top-down decoder (JPEG) must decode every row above the last one
    // read, so a pair whose strip lies low in an image costs most of a
    // decode of it: a pair is "deep" when it needs rows below this share of
    // an image's height. Pairs that are not deep are all registered; of the
    // deep ones, those of deep_share of the images that could be read deep
    // (spread evenly, at least min_links between any two groups of images
    // the shallow pairs join), and then every deep pair those images serve.
    // deep_share 1 registers every pair.
    // Only images decoded top to bottom cost more read deep: top_down[i]
    // says which (a streamed JPEG; a TIFF reads any strip alone); empty:
    // every image. Images that are not are read wherever their pairs need.
    // deep_share 0.1: at the seed scans' 2000 tiles it reads 196 tiles deep
    // where 0.25 read 490, at the same accuracy (0.042 against 0.040 px
    // RMS) and 27 % less CPU.
    double shallow_depth = 0.5;
    double deep_share = 0.1;
    int min_links = 3;
    std::vector<bool> top_down = {};
};

// Whether reading `crop` of image i is a deep read under o: rows below
// o.shallow_depth of an image decoded top to bottom.
bool deep_read(const std::vector<Rect>& nominal, const PlanOptions& o, int i, const Rect& crop);

// The pairs of images whose nominal rects overlap by at least min_overlap
// across and min_along along. The window lies at the top of a side-by-side
// overlap and in the middle of a stacked one (rows cost more than columns to
// a top-down decoder).
std::vector<PairPlan> plan_pairs(const std::vector<Rect>& nominal, const PlanOptions& options);

// Overlapping neighbours (by min_along) whose overlap is thinner than
// min_overlap: not registered, reported.
std::vector<std::pair<int, int>> too_thin(const std::vector<Rect>& nominal, const PlanOptions& options);

// The strips of images a and b at the attempt-th place along their overlap
// (0: as plan_pairs puts it; then the other places along the overlap:
// middle and bottom, or left and right), for a pair whose first strips were
// flat or failed; none when the overlap has no further place.
std::optional<PairPlan> plan_window(const std::vector<Rect>& nominal, int a, int b, const PlanOptions& options,
                                    int attempt);

// A pair's strips for the permutation test, read exactly as the pair's
// (same sizes, same nominal shift between them), but where they cannot show
// the same thing: variant 0 moves b's crop to b's far side (mirrored through
// its centre across the overlap), 1 moves a's, 2 both; none when the images
// are too small for the moved crop to miss the other one.
std::optional<PairPlan> plan_null(const std::vector<Rect>& nominal, const PairPlan& pair, int variant = 0);

struct Match {
    bool found = false;
    // The offset of image b from image a (position of b minus position of
    // a) that best aligns the strips, to a fraction of a pixel.
    Vec2 offset;
    // Normalised cross-correlation of the two strips' detail (each less
    // its local mean) over their common part at the best whole-pixel
    // offset, -1..1: the pair's confidence.
    double score = 0;
    // Pixels the strips have in common at that offset: how much the
    // measurement rests on (the solve weighs it by this).
    std::int64_t common = 0;
    std::string why;  // when not found: what was wrong
};

// Finds the offset of b from a within `plan.error` of `plan.nominal`, from
// strip a (pixels of plan.crop_a) and strip b (plan.crop_b). Phase
// correlation of the two strips (on box-shrunk copies when they are large)
// gives candidate peaks; each peak's readings (a peak at p may mean p or p
// less the transform's size, each axis) within the error bound are scored by
// normalised cross-correlation over the strips' actual common part, the best
// three refined level by level, the best of them climbed to a local maximum
// at full resolution, and refined to a fraction by symmetric gradients with
// the light modelled (a parabola through the neighbours' scores where the
// gradients give no answer). Not found: a
// flat strip, no reading inside the bound, or a best one on the bound's edge
// (the error may be larger).
Match match(const Plane& a, const Plane& b, const PairPlan& plan);

// The score above which a pair is trusted, from the scores of pairs that
// cannot overlap (plan_null): their `quantile` (a permutation test, as
// ASHLAR's), and never below `floor`. With fewer than `min_samples` scores
// the test says nothing: the floor alone.
double learned_threshold(std::vector<double> null_scores, double floor = 0.15, double quantile = 0.99,
                         std::size_t min_samples = 4);

// A measured offset between two images (position of b minus position of a).
struct Link {
    int a = 0, b = 0;
    Vec2 offset;
    double weight = 1;
};

// Which links agree with the stage, as MIST models it: a link's error (its
// offset less the nominal one) is compared with the errors of the other
// links of its kind (`kind` per link: e.g. the grid step from a to b), per axis;
// a link outside Tukey's fences (the quartiles widened by `spread` times
// their distance, and by `slack` px) is off the stage's behaviour: a false
// peak that happened to score well (a single link holds its tile, so the
// solve could not outvote it). Fewer than 4 links of a kind: all of that
// kind agree.
std::vector<bool> fits_stage(const std::vector<Vec2>& nominal, const std::vector<Link>& links,
                             const std::vector<int>& kind, double spread = 1.5, double slack = 2);

// How an image's position was found.
enum class Placed {
    registered,   // in the largest group the used links join
    group,        // in a smaller group: placed as a whole by the stage model
    stage_model,  // no used link: where the stage model puts its nominal position
};

struct Solution {
    std::vector<Vec2> positions;
    std::vector<Placed> placed;    // per image
    std::vector<bool> used;        // per link: kept (not rejected as an outlier)
    std::vector<double> residual;  // per link: |solved offset - measured offset|, pixels
    int rejected = 0;
    // The stage model fitted to the largest group: position = m * nominal + c.
    double model[6] = {1, 0, 0, 0, 1, 0};  // x = m0 X + m1 Y + m2, y = m3 X + m4 Y + m5
};

// All positions at once: weighted least squares over the links' offsets
// (x and y apart), then the link with the largest residual dropped while it
// exceeds both max_residual and 3 times the used links' median residual,
// and solved again. Links only fix positions up to a
// common shift: the largest group of linked images is placed so that its
// mean correction from the nominal positions is zero (the stage's errors are
// taken to average out). Then the stage is modelled from that group (an
// affine map of nominal to solved positions: per-axis step, skew and a
// drift with the position; the identity with fewer than 6 images, or when
// they lie on a line), every smaller group is shifted to agree with the model
// on average, and an image with no link is placed where the model puts it.
// Positions are fractional.
Solution solve_positions(const std::vector<Vec2>& nominal, const std::vector<Link>& links, double max_residual = 1.5);

}  // namespace tessera::registration
