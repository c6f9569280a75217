// mosaic: a base image with N overlapping images at given positions, later
// ones on top as in insert, but with feathered edges instead of hard ones.
//
// Inputs: base, then the N images; "at" gives one [x, y] per image, as in
// insert. The output is the base's size; parts outside it are clipped.
//
// "blend": "feather" (default) gives each image an opacity that rises as a
// raised cosine from ~0 at its edges to 1 at "blend_width" pixels in (the
// product of the column and row ramps), and lays the images over each other
// in input order with those opacities ("over" compositing), normalised by
// the total opacity so that where one image alone covers a pixel the result
// is that image's pixel, exactly, and nothing fades to the base. So a later
// image fades in over blend_width pixels inside its edge and is opaque
// beyond, as in insert: a tile brighter than its neighbour changes by at
// most (difference x pi / 2 / blend_width) per pixel across the seam.
// "blend": "none" is insert: hard edges (the limit of a zero width).
//
// Positions may be fractional (registration solves them to a tenth of a
// pixel). An image whose position is whole on both axes is placed as it is,
// bit for bit insert's pixels and demand; with whole positions everywhere
// the op is exactly what it was before fractions existed. An image at a
// fraction of a pixel is resampled (ops/resample.hpp: separable bilinear,
// pixel centres, why bilinear is said there): its value at output column
// X is the image sampled at X - x, and it covers the w columns whose
// centres lie inside its true extent [x, x + w) (the rasteriser's rule: w
// columns from ceil(x - 0.5)); the samples of the half pixel beyond the
// outermost centres are the edge sample's. "interpolate": "cubic"
// resamples with a Catmull-Rom cubic instead (sharper, overshoot clamped;
// the same cover), which reads two samples each side. Its feather opacity
// is the raised cosine of d, the distance from the output pixel's centre to
// the image's true edge (X + 0.5 - x on the left, x + w - X - 0.5 on the
// right), as for whole positions, where d is e + 0.5; below d = 0.5 it
// falls linearly, and it stays > 0 wherever the image covers (d > 0), so
// the normalisation never divides by 0.
// "blend": "none" with fractions is resampled, hard-edged: an image covers
// the same pixels, later ones on top.
// Nearest neighbour would be insert at rounded positions and throw away the
// fraction registration found; whoever wants unresampled pixels passes
// whole positions. Weights depend on a pixel's position alone, so neither
// tile size nor thread count changes a bit.
//
// Demand stays close to insert's: an image is asked for only where it is not
// hidden under the opaque cores (where its opacity is 1: the image less
// blend_width on each side; all of it for blend none) of later ones, and
// where the whole-positioned images left in a tile do not overlap there, it
// is insert's demand exactly (placed needs). Images that overlap another
// visible one inside a tile are pulled for compute(), and so is every
// fractional image (it is resampled into the tile): the part it covers,
// trimmed as insert trims it to what the later images' cores leave (its
// rows to the whole image's box of that, the same for every tile in a row,
// so that a streaming decoder serves a row of tiles from one pass; its
// columns to the tile's, so that the decoder can crop narrower below the
// rows where a neighbour's core starts), moved back by its position, grown
// to the next sample on each side with a fraction, i.e. a halo of one
// pixel right and below (cubic: one more on every side, two right and
// below), clipped to the image. What is trimmed lies under a later core,
// where the image's weight is exactly 0: the output's bits are those of
// the untrimmed pull (the mid feather: 629 -> 580 Mpx decoded).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "ops_list.hpp"
#include "resample.hpp"
#include "stack.hpp"

namespace tessera {
namespace {

class MosaicOp final : public Op {
public:
    MosaicOp(const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        feather_ = p.string("blend") == "feather";  // or "none": the spec's choices
        width_ = int(p.integer("blend_width"));
        cubic_ = p.string("interpolate") == "cubic";  // or "bilinear": the spec's choices
        // ramp_[e]: the opacity of a pixel e whole pixels from its image's
        // edge (its centre is e + 0.5 in); 1 from blend_width on.
        ramp_.resize(std::size_t(width_));
        for (int e = 0; e < width_; ++e)
            ramp_[std::size_t(e)] = float(0.5 - 0.5 * std::cos(std::numbers::pi * (e + 0.5) / width_));
        ramp0_ = 0.5 - 0.5 * std::cos(std::numbers::pi * 0.5 / width_);
        place(p.coords("at"), in);
        // each image's rows that a blend can read: what the later cores
        // leave of it (pulled_part)
        if (feather_ || subpixel_) {
            const auto& rects = stack_.rects();
            std::vector<int> hits;
            for (std::size_t k = 0; k < rects.size(); ++k) shown_.push_back(core_uncovered(k, rects[k], hits));
        }
    }

    void demand(const Rect& r, Demand& need) const override {
        std::vector<int> hits;
        stack_.index().query(r, hits);
        if (subpixel_) return demand_subpixel(r, hits, need);
        if (!feather_) {
            stack_.demand_insert(r, hits, need);
            return;
        }
        const auto& rects = stack_.rects();
        // The visible images: parts not hidden under the cores of later ones.
        std::vector<std::size_t> live;
        for (std::size_t k = 0; k < hits.size(); ++k)
            if (!stack_.covered_by(rects[hits[k]].intersect(r), hits, k + 1, width_)) live.push_back(k);
        // Those that overlap another visible one inside r are blended.
        std::vector<bool> blended(live.size(), false);
        bool any = false;
        for (std::size_t a = 0; a < live.size(); ++a)
            for (std::size_t b = a + 1; b < live.size(); ++b)
                if (rects[hits[live[a]]].intersect(rects[hits[live[b]]]).overlaps(r))
                    any = blended[a] = blended[b] = true;
        const bool base = !stack_.covered_by(r, hits, 0);
        // Placed needs land after compute(), in order: with nothing to blend
        // the base goes first and every visible image over it, as in insert;
        // in a blend tile, compute() does the base and the blended images,
        // and the images alone in r are placed over their own parts.
        if (base) need.push_back({0, r, any ? std::nullopt : std::optional<Point>(r.origin())});
        if (any)
            for (std::size_t a = 0; a < live.size(); ++a)
                if (blended[a]) {
                    const std::size_t k = std::size_t(hits[live[a]]);
                    const Rect& at = rects[k];
                    need.push_back({int(k) + 1, pulled_part(k, r).translate(-at.x, -at.y), std::nullopt});
                }
        // (an image alone in r has no later image over it there: its whole
        // part, as pulled_part would give it)
        for (std::size_t a = 0; a < live.size(); ++a)
            if (!blended[a]) {
                const Rect& at = rects[hits[live[a]]];
                Rect part = at.intersect(r);
                need.push_back({hits[live[a]] + 1, part.translate(-at.x, -at.y), part.origin()});
            }
    }

    // The part of image k's cover of r that a blend reads (output frame):
    // its rows those of the box of what the later images' cores leave of
    // the whole image (shown_), the same for every tile in a row; its
    // columns those of the box of what they leave of this tile's part.
    // Demand and compute both take it from here, so that compute reads the
    // rect it was given. Every pixel left out lies under a later core
    // (boxes are never smaller than what is left): compute's "dead"
    // columns, whose weight is exactly 0, so the blend's bits are those of
    // the whole part. Empty when the cores hide it all (the image is not
    // live in r). An image with no later image over it in r keeps its
    // whole part.
    Rect pulled_part(std::size_t k, const Rect& r) const {
        const Rect part = stack_.rects()[k].intersect(r).intersect(shown_[k]);
        if (part.empty()) return part;
        std::vector<int> hits;
        const Rect shown = core_uncovered(k, part, hits);
        return shown.empty() ? shown : Rect{shown.x, part.y, shown.w, part.h};
    }
    // The box of what the cores of the images after k leave of part
    // (hits: scratch).
    Rect core_uncovered(std::size_t k, const Rect& part, std::vector<int>& hits) const {
        stack_.index().query(part, hits);
        // (hits come in input order: the later images are those after k)
        const auto later = std::size_t(std::upper_bound(hits.begin(), hits.end(), int(k)) - hits.begin());
        return subpixel_ ? stack_.uncovered_box(part, hits, later, cores_)
                         : stack_.uncovered_box(part, hits, later, width_);
    }

    // Case analysis (compute only sees blend tiles; the rest is placed):
    //  0. a fractional image alone in the tile (over the base, if that
    //     shows) is resampled straight into it: the values of case 2;
    //     otherwise a pulled image at a fractional position is resampled into
    //     the part of the tile it covers (bilinear, ops/resample.hpp), and
    //     is from then on an image like the others, with the opacities of
    //     its fractional edges (none: 1, hard edges);
    //  1. pixels no image covers: the base, copied from its pulled part;
    //  2. pixels one pulled image covers: that image's value, unchanged
    //     (for a resampled one: its resampled value);
    //  3. pixels several cover: from the last image down, each takes weight
    //     opacity x (what the later ones left uncovered), and the pixel is
    //     sum(w_k v_k) / sum(w_k), rounded to nearest for integer formats
    //     (a resampled value was rounded once already: <= 1 level apart
    //     from rounding the exact blend). Images hidden under a later core
    //     were not pulled: their weight would be 0.
    // Whole-positioned images alone in the tile are placed afterwards over
    // their own parts.
    void compute(const Tile& out, std::span<const Pulled> in) const override {
        dispatch_format(out.format, [&](auto zero) {
            using T = decltype(zero);
            // float holds 16-bit samples times a weight well enough to round
            // back exactly; wider samples need double.
            using Acc = std::conditional_t<(sizeof(T) <= 2 && !std::is_floating_point_v<T>), float, double>;
            blend<T, Acc>(out, in);
        });
    }

private:
    // The opacity of pixel column (or row) v of an image spanning [lo, hi).
    float opacity(int v, int lo, int hi) const {
        int e = std::min(v - lo, hi - 1 - v);
        return std::size_t(e) < ramp_.size() ? ramp_[std::size_t(e)] : 1.0f;
    }
    // The same for an image of `size` pixels at `pos`, whole or not (see the
    // header); a whole pos gives opacity()'s value.
    float opacity_at(int v, double pos, int size) const {
        if (!feather_) return 1.0f;
        if (std::floor(pos) == pos) return opacity(v, int(pos), int(pos) + size);
        const double d = std::min(v + 0.5 - pos, pos + size - (v + 0.5));
        if (d >= width_) return 1.0f;
        if (d >= 0.5) return float(0.5 - 0.5 * std::cos(std::numbers::pi * d / width_));
        return float((d + 0.5) * ramp0_);
    }

    // Builds the stack (the images' integer rects: where each covers) from
    // the positions, and each image's opaque core.
    void place(const std::vector<NumPair>& at, std::span<const ImageInfo> in) {
        std::vector<IntPair> origin;
        std::vector<Point> grow;
        for (std::size_t k = 0; k < at.size(); ++k) {
            for (double v : at[k])
                if (!(std::fabs(v) <= kMaxDimension))
                    throw ParamError("at", "position " + std::to_string(k) + " is out of range");
            const bool fx = std::floor(at[k][0]) != at[k][0], fy = std::floor(at[k][1]) != at[k][1];
            subpixel_ = subpixel_ || fx || fy;
            // the w columns whose centres lie in [x, x + w): a pixel whose
            // centre is outside the image is not the image's (at the
            // mosaic's border the base shows there, as with whole positions)
            auto start = [&](double v) { return std::int64_t(std::ceil(v - 0.5)); };
            origin.push_back({start(at[k][0]), start(at[k][1])});
            grow.push_back({0, 0});
        }
        if (!subpixel_) {  // whole positions: exactly the op without fractions
            stack_ = Stack(origin, in);
            return;
        }
        stack_ = Stack(origin, in, grow);
        pos_ = at;
        for (std::size_t k = 0; k < at.size(); ++k) {
            size_.push_back({in[k + 1].width, in[k + 1].height});
            const Rect& r = stack_.rects()[k];
            // the columns (rows) where the opacity is 1: an interval
            auto core = [&](int lo, int n, double pos, int size) {
                int a = lo, b = lo + n;
                while (a < b && opacity_at(a, pos, size) < 1.0f) ++a;
                while (b > a && opacity_at(b - 1, pos, size) < 1.0f) --b;
                return std::pair{a, b};
            };
            auto [x0, x1] = core(r.x, r.w, at[k][0], size_[k].x);
            auto [y0, y1] = core(r.y, r.h, at[k][1], size_[k].y);
            cores_.push_back(x0 < x1 && y0 < y1 ? Rect{x0, y0, x1 - x0, y1 - y0} : Rect{r.x, r.y, 0, 0});
        }
    }

    bool fractional(std::size_t k) const {
        return subpixel_ && (std::floor(pos_[k][0]) != pos_[k][0] || std::floor(pos_[k][1]) != pos_[k][1]);
    }
    // Image k's pixels that the part of the output it covers needs.
    Rect source_of(std::size_t k, const Rect& part) const {
        const Rect& at = stack_.rects()[k];
        if (!fractional(k)) return part.translate(-at.x, -at.y);
        return (cubic_ ? cubic_support : bilinear_support)(part.translate(-at.x, -at.y), pos_[k][0] - at.x,
                                                           pos_[k][1] - at.y, Rect{0, 0, size_[k].x, size_[k].y});
    }
    // Image k's pulled source resampled into dst (its frame: the output
    // less the image's rect origin).
    void resample(std::size_t k, const ConstTile& src, const Tile& dst) const {
        const Rect& at = stack_.rects()[k];
        (cubic_ ? shift_cubic : shift_bilinear)(src, {0, 0, size_[k].x, size_[k].y}, pos_[k][0] - at.x,
                                                pos_[k][1] - at.y, dst);
    }

    // demand() with fractional positions: the same analysis over the
    // images' cores, and every fractional image pulled for compute().
    void demand_subpixel(const Rect& r, const std::vector<int>& hits, Demand& need) const {
        const auto& rects = stack_.rects();
        std::vector<std::size_t> live;
        for (std::size_t k = 0; k < hits.size(); ++k)
            if (!stack_.covered_by(rects[hits[k]].intersect(r), hits, k + 1, cores_)) live.push_back(k);
        std::vector<bool> blended(live.size(), false);
        bool any = false;
        for (std::size_t a = 0; a < live.size(); ++a) {
            if (fractional(std::size_t(hits[live[a]]))) any = blended[a] = true;
            for (std::size_t b = a + 1; b < live.size(); ++b)
                if (rects[hits[live[a]]].intersect(rects[hits[live[b]]]).overlaps(r))
                    any = blended[a] = blended[b] = true;
        }
        if (!stack_.covered_by(r, hits, 0))
            need.push_back({0, r, any ? std::nullopt : std::optional<Point>(r.origin())});
        for (std::size_t a = 0; a < live.size(); ++a)
            if (blended[a]) {
                const std::size_t k = std::size_t(hits[live[a]]);
                need.push_back({int(k) + 1, source_of(k, pulled_part(k, r)), std::nullopt});
            }
        for (std::size_t a = 0; a < live.size(); ++a)
            if (!blended[a]) {
                const Rect& at = rects[hits[live[a]]];
                Rect part = at.intersect(r);
                need.push_back({hits[live[a]] + 1, part.translate(-at.x, -at.y), part.origin()});
            }
    }

    // A pulled image: where it lies (output frame), its pixels, the
    // opacities of its part's columns and where its opacity is 1.
    struct Src {
        Rect at;    // the whole image (where it covers)
        Rect part;  // its pulled part
        ConstTile tile;
        std::vector<float> ax;
        Rect core;
        std::size_t image;
    };
    // The opacity of row y of image k.
    float row_opacity(std::size_t k, int y) const {
        const Rect& at = stack_.rects()[k];
        return subpixel_ ? opacity_at(y, pos_[k][1], size_[k].y) : opacity(y, at.y, at.bottom());
    }

    template <class T, class Acc>
    void blend(const Tile& out, std::span<const Pulled> in) const {
        const auto& rects = stack_.rects();
        if (!in.empty() && (in.size() == 1 || (in.size() == 2 && in[0].input == 0)) && in.back().input > 0 &&
            fractional(std::size_t(in.back().input - 1))) {
            // one fractional image (over the base, if that shows): its
            // resampled pixels straight into the tile, the value case 3
            // would round back to
            const std::size_t k = std::size_t(in.back().input - 1);
            const Rect& at = rects[k];
            if (in.size() == 2) copy_pixels(in[0].tile, out);
            // (the only image pulled: none over it here, so its pulled part
            // is all it covers of the tile)
            Tile dst = out.sub(pulled_part(k, out.rect));
            dst.rect = dst.rect.translate(-at.x, -at.y);
            resample(k, in.back().tile, dst);
            return;
        }
        std::vector<Src> srcs;
        std::vector<Buffer> resampled;  // case 0
        resampled.reserve(in.size());
        for (const Pulled& p : in) {
            if (p.input == 0) {  // case 1: the base under everything
                copy_pixels(p.tile, out);
                continue;
            }
            const std::size_t k = std::size_t(p.input - 1);
            const Rect& at = rects[k];
            const Rect part = pulled_part(k, out.rect);  // what demand asked of it
            ConstTile tile = p.tile;
            if (fractional(k)) {
                const Buffer& b = resampled.emplace_back(nullptr, part.translate(-at.x, -at.y), out.bands, out.format);
                resample(k, p.tile, b.tile());
                tile = b.view();
            }
            const Rect core =
                subpixel_ ? cores_[k] : Rect{at.x + width_, at.y + width_, at.w - 2 * width_, at.h - 2 * width_};
            Src s{at, part, tile, {}, core, k};
            s.ax.resize(std::size_t(s.part.w));
            for (int x = 0; x < s.part.w; ++x)
                s.ax[std::size_t(x)] = subpixel_ ? opacity_at(s.part.x + x, pos_[k][0], size_[k].x)
                                                 : opacity(s.part.x + x, at.x, at.right());
            srcs.push_back(std::move(s));
        }
        // One kernel per band count that scans use, so the band loop unrolls.
        switch (out.bands) {
            case 1: return blend_rows<T, Acc, 1>(out, srcs);
            case 3: return blend_rows<T, Acc, 3>(out, srcs);
            case 4: return blend_rows<T, Acc, 4>(out, srcs);
            default: return blend_rows<T, Acc, 0>(out, srcs);
        }
    }

    // Row by row, cases 2 and 3 alike: for one image the quotient rounds
    // back to its value exactly (the sums are exact enough); f64 alone is
    // not, and is copied instead. Loops run over contiguous pixels or
    // samples so that they vectorise.
    template <class T, class Acc, int kBands>
    void blend_rows(const Tile& out, const std::vector<Src>& srcs) const {
        const Rect& r = out.rect;
        const int bands = kBands ? kBands : out.bands;
        const std::size_t n = std::size_t(r.w);
        std::vector<Acc> acc(n * bands), wsum(n), left(n), w(n), ws(n * bands);
        std::vector<std::pair<int, int>> spans;  // the row's covered columns, merged
        std::vector<std::pair<int, int>> dead, pieces, copied;
        std::vector<int> count;
        for (int y = r.y; y < r.bottom(); ++y) {
            spans.clear();
            for (const Src& s : srcs)
                if (y >= s.part.y && y < s.part.bottom()) spans.push_back({s.part.x - r.x, s.part.right() - r.x});
            if (spans.empty()) continue;
            std::sort(spans.begin(), spans.end());
            std::size_t m = 0;
            for (std::size_t k = 1; k < spans.size(); ++k) {
                if (spans[k].first <= spans[m].second)
                    spans[m].second = std::max(spans[m].second, spans[k].second);
                else
                    spans[++m] = spans[k];
            }
            spans.resize(m + 1);
            for (auto [x0, x1] : spans) {
                std::fill(acc.begin() + std::ptrdiff_t(x0) * bands, acc.begin() + std::ptrdiff_t(x1) * bands, Acc(0));
                std::fill(wsum.begin() + x0, wsum.begin() + x1, Acc(0));
                std::fill(left.begin() + x0, left.begin() + x1, Acc(1));
            }
            // The last image first: it takes its opacity, earlier ones what
            // is left. Where an image is opaque (its core) nothing is left,
            // and earlier images skip those columns ("dead"): their weight
            // there is exactly 0, so the sums are the same bits, and only the
            // edge bands cost more than a copy.
            // The top image's core is opaque and comes first: its weight is
            // 1, nothing is left for the others, and the pixel is its value
            // (v x 1 / 1, exactly). Those columns are copied, and left out
            // of the sums (dead from the start).
            dead.clear();
            copied.clear();
            bool top = true;
            for (std::size_t k = srcs.size(); k-- > 0;) {
                const Src& s = srcs[k];
                if (y < s.part.y || y >= s.part.bottom()) continue;
                const Acc ay = row_opacity(s.image, y);
                const T* src = s.tile.template row<T>(y - s.at.y);
                const int o = s.part.x - r.x;  // the part's first column in the tile
                // the row's core columns (none where the row is not in the core's rows)
                const bool core_row = y >= s.core.y && y < s.core.bottom();
                const int c0 = std::max(o, s.core.x - r.x), c1 = std::min(o + s.part.w, s.core.right() - r.x);
                if (top && core_row && c0 < c1) {
                    std::copy(src + std::size_t(c0 - o) * bands, src + std::size_t(c1 - o) * bands,
                              out.row<T>(y) + std::size_t(c0) * bands);
                    copied.push_back({c0, c1});
                    dead.push_back({c0, c1});
                }
                top = false;
                live_pieces(o, o + s.part.w, dead, pieces);
                for (auto [p0, p1] : pieces) {
                    const float* ax = s.ax.data() + (p0 - o);
                    const T* sp = src + std::size_t(p0 - o) * bands;
                    const int pw = p1 - p0;
                    for (int x = 0; x < pw; ++x) {
                        const Acc a = Acc(ax[x]) * ay;
                        w[std::size_t(x)] = a * left[std::size_t(p0 + x)];
                        wsum[std::size_t(p0 + x)] += w[std::size_t(x)];
                        left[std::size_t(p0 + x)] *= Acc(1) - a;
                    }
                    for (int x = 0; x < pw; ++x)
                        for (int b = 0; b < bands; ++b) ws[std::size_t(x) * bands + b] = w[std::size_t(x)];
                    Acc* a = acc.data() + std::size_t(p0) * bands;
                    for (int i = 0; i < pw * bands; ++i) a[i] += ws[std::size_t(i)] * Acc(sp[i]);
                }
                if (core_row && c0 < c1) add_interval(dead, c0, c1);
            }
            T* dst = out.row<T>(y);
            for (auto [s0, s1] : spans) {
                live_pieces(s0, s1, copied, pieces);
                for (auto [x0, x1] : pieces) {
                    for (int x = x0; x < x1; ++x) w[std::size_t(x)] = Acc(1) / wsum[std::size_t(x)];
                    for (int x = x0; x < x1; ++x)
                        for (int b = 0; b < bands; ++b)
                            dst[x * bands + b] = to_sample<T>(acc[std::size_t(x) * bands + b] * w[std::size_t(x)]);
                }
            }
            if constexpr (std::is_same_v<T, double>) {
                // case 2 for doubles: w * v / w may miss v by an ulp; copy it
                count.assign(n, 0);
                for (const Src& s : srcs)
                    if (y >= s.part.y && y < s.part.bottom())
                        for (int x = s.part.x; x < s.part.right(); ++x) ++count[std::size_t(x - r.x)];
                for (const Src& s : srcs) {
                    if (y < s.part.y || y >= s.part.bottom()) continue;
                    const T* src = s.tile.template row<T>(y - s.at.y);
                    for (int x = s.part.x; x < s.part.right(); ++x)
                        if (count[std::size_t(x - r.x)] == 1)
                            for (int b = 0; b < bands; ++b)
                                dst[std::size_t(x - r.x) * bands + b] = src[std::size_t(x - s.part.x) * bands + b];
                }
            }
        }
    }

    // Adds [c0, c1) to a sorted list of disjoint intervals, merging.
    static void add_interval(std::vector<std::pair<int, int>>& list, int c0, int c1) {
        std::vector<std::pair<int, int>> out;
        bool placed = false;
        for (auto [a, b] : list) {
            if (b < c0) {
                out.push_back({a, b});
            } else if (c1 < a) {
                if (!placed) out.push_back({c0, c1}), placed = true;
                out.push_back({a, b});
            } else {
                c0 = std::min(c0, a), c1 = std::max(c1, b);
            }
        }
        if (!placed) out.push_back({c0, c1});
        std::sort(out.begin(), out.end());
        list = std::move(out);
    }

    // [x0, x1) less the sorted disjoint intervals `dead`, as pieces.
    static void live_pieces(int x0, int x1, const std::vector<std::pair<int, int>>& dead,
                            std::vector<std::pair<int, int>>& pieces) {
        pieces.clear();
        for (auto [a, b] : dead) {
            if (b <= x0) continue;
            if (a >= x1) break;
            if (a > x0) pieces.push_back({x0, a});
            x0 = std::max(x0, b);
            if (x0 >= x1) return;
        }
        if (x0 < x1) pieces.push_back({x0, x1});
    }

    template <class T, class Acc>
    static T to_sample(Acc v) {
        if constexpr (std::is_floating_point_v<T>) {
            return T(v);
        } else {
            // A weighted mean lies between its samples: only rounding (half
            // away from zero) is left; the clamp only guards the last ulp.
            // (Written out, since std::round is a library call per sample.)
            const Acc lo = Acc(std::numeric_limits<T>::lowest()), hi = Acc(std::numeric_limits<T>::max());
            v = std::min(std::max(v, lo), hi);
            if constexpr (std::is_unsigned_v<T>)
                return T(v + Acc(0.5));
            else
                return T(v >= 0 ? v + Acc(0.5) : v - Acc(0.5));
        }
    }

    Stack stack_;
    bool feather_ = true;
    bool cubic_ = false;  // interpolate: cubic (else bilinear)
    int width_ = 64;
    std::vector<float> ramp_;
    double ramp0_ = 0;  // ramp_[0] in double, for edges at fractions
    // Set only when some position is fractional (subpixel_):
    bool subpixel_ = false;
    std::vector<NumPair> pos_;  // the positions
    std::vector<Point> size_;   // the images' sizes
    std::vector<Rect> cores_;   // where each image's opacity is 1 (output frame)
    // With feather or fractions: the box of what the later images' cores
    // leave of each image (output frame), for pulled_part.
    std::vector<Rect> shown_;
};

}  // namespace

OpSpec mosaic_op_spec() {
    return {"mosaic",
            "images at [x, y] positions on a base, later on top, with feathered edges (blend none: insert)",
            1,
            -1,
            {{"at", ParamType::coords, true, "",
              "one [x, y] per image: its top-left on the base; fractions resample it (bilinear)"},
             {.name = "blend",
              .type = ParamType::string,
              .doc = "feather (each image fades in from its edges over blend_width) or none (hard edges, as insert)",
              .default_value = std::string("feather"),
              .choices = {"feather", "none"}},
             {.name = "blend_width",
              .type = ParamType::integer,
              .doc = "pixels over which an image's opacity rises from its edge to 1",
              .default_value = std::int64_t(64),
              .min = 1,
              .max = 100000},
             {.name = "interpolate",
              .type = ParamType::string,
              .doc = "for fractional positions: bilinear (never overshoots) or cubic (Catmull-Rom: sharper, may ring "
                     "at sharp edges)",
              .default_value = std::string("bilinear"),
              .choices = {"bilinear", "cubic"}}},
            false,
            &make_op<MosaicOp>,
            false,
            "mosaic",
            "0 (fractional positions: 1, cubic 2)"};
}

}  // namespace tessera
