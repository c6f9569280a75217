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
// Positions are integers: registration (tools/mosaic.cpp, ops/registration)
// finds whole-pixel offsets, and resampling every tile to place it at a
// fraction of a pixel would soften the whole mosaic for at most half a
// pixel of accuracy. The opacities depend on a pixel's position alone, so
// neither tile size nor thread count changes a bit.
//
// Demand stays close to insert's: an image is asked for only where it is not
// hidden under the opaque cores (the image less blend_width on each side)
// of later ones, and where the images left in a tile do not overlap there,
// it is insert's demand exactly (placed needs). Only images that overlap
// another visible one inside a tile are pulled for compute().
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "ops_list.hpp"
#include "stack.hpp"

namespace tessera {
namespace {

class MosaicOp final : public Op {
public:
    MosaicOp(const Params& p, std::span<const ImageInfo> in) : stack_(p.points("at"), in) {
        info_ = in[0];
        feather_ = p.string("blend") == "feather";  // or "none": the spec's choices
        width_ = int(p.integer("blend_width"));
        // ramp_[e]: the opacity of a pixel e whole pixels from its image's
        // edge (its centre is e + 0.5 in); 1 from blend_width on.
        ramp_.resize(std::size_t(width_));
        for (int e = 0; e < width_; ++e)
            ramp_[std::size_t(e)] = float(0.5 - 0.5 * std::cos(std::numbers::pi * (e + 0.5) / width_));
    }

    void demand(const Rect& r, Demand& need) const override {
        std::vector<int> hits;
        stack_.index().query(r, hits);
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
                if (rects[hits[live[a]]].intersect(rects[hits[live[b]]]).overlaps(r)) any = blended[a] = blended[b] = true;
        const bool base = !stack_.covered_by(r, hits, 0);
        // Placed needs land after compute(), in order: with nothing to blend
        // the base goes first and every visible image over it, as in insert;
        // in a blend tile, compute() does the base and the blended images,
        // and the images alone in r are placed over their own parts.
        if (base) need.push_back({0, r, any ? std::nullopt : std::optional<Point>(r.origin())});
        if (any)
            for (std::size_t a = 0; a < live.size(); ++a)
                if (blended[a]) {
                    const Rect& at = rects[hits[live[a]]];
                    need.push_back({hits[live[a]] + 1, at.intersect(r).translate(-at.x, -at.y), std::nullopt});
                }
        for (std::size_t a = 0; a < live.size(); ++a)
            if (!blended[a]) {
                const Rect& at = rects[hits[live[a]]];
                Rect part = at.intersect(r);
                need.push_back({hits[live[a]] + 1, part.translate(-at.x, -at.y), part.origin()});
            }
    }

    // Case analysis (compute only sees blend tiles; the rest is placed):
    //  1. pixels no image covers: the base, copied from its pulled part;
    //  2. pixels one pulled image covers: that image's value, unchanged;
    //  3. pixels several cover: from the last image down, each takes weight
    //     opacity x (what the later ones left uncovered), and the pixel is
    //     sum(w_k v_k) / sum(w_k), rounded to nearest for integer formats.
    //     Images hidden under a later core were not pulled: their weight
    //     would be 0.
    // Images alone in the tile are placed afterwards over their own parts.
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

    // A pulled image: where it lies (output frame), its pixels, and the
    // opacities of its part's columns.
    struct Src {
        Rect at;    // the whole image
        Rect part;  // its pulled part
        ConstTile tile;
        std::vector<float> ax;
    };

    template <class T, class Acc>
    void blend(const Tile& out, std::span<const Pulled> in) const {
        const auto& rects = stack_.rects();
        std::vector<Src> srcs;
        for (const Pulled& p : in) {
            if (p.input == 0) {  // case 1: the base under everything
                copy_pixels(p.tile, out);
                continue;
            }
            const Rect& at = rects[std::size_t(p.input - 1)];
            Src s{at, p.tile.rect.translate(at.x, at.y), p.tile, {}};
            s.ax.resize(std::size_t(s.part.w));
            for (int x = 0; x < s.part.w; ++x) s.ax[std::size_t(x)] = opacity(s.part.x + x, at.x, at.right());
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
        std::vector<std::pair<int, int>> dead, pieces;
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
            dead.clear();
            for (std::size_t k = srcs.size(); k-- > 0;) {
                const Src& s = srcs[k];
                if (y < s.part.y || y >= s.part.bottom()) continue;
                const Acc ay = opacity(y, s.at.y, s.at.bottom());
                const T* src = s.tile.template row<T>(y - s.at.y);
                const int o = s.part.x - r.x;  // the part's first column in the tile
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
                if (y >= s.at.y + width_ && y < s.at.bottom() - width_) {  // this row is in the core's rows
                    int c0 = std::max(o, s.at.x + width_ - r.x), c1 = std::min(o + s.part.w, s.at.right() - width_ - r.x);
                    if (c0 < c1) add_interval(dead, c0, c1);
                }
            }
            T* dst = out.row<T>(y);
            for (auto [x0, x1] : spans) {
                for (int x = x0; x < x1; ++x) w[std::size_t(x)] = Acc(1) / wsum[std::size_t(x)];
                for (int x = x0; x < x1; ++x)
                    for (int b = 0; b < bands; ++b)
                        dst[x * bands + b] = to_sample<T>(acc[std::size_t(x) * bands + b] * w[std::size_t(x)]);
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
    int width_ = 64;
    std::vector<float> ramp_;
};

}  // namespace

OpSpec mosaic_op_spec() {
    return {"mosaic",
            "images at [x, y] positions on a base, later on top, with feathered edges (blend none: insert)",
            1,
            -1,
            {{"at", ParamType::points, true, "", "one [x, y] per image: its top-left on the base"},
             {.name = "blend", .type = ParamType::string,
              .doc = "feather (each image fades in from its edges over blend_width) or none (hard edges, as insert)",
              .default_value = std::string("feather"), .choices = {"feather", "none"}},
             {.name = "blend_width", .type = ParamType::integer,
              .doc = "pixels over which an image's opacity rises from its edge to 1",
              .default_value = std::int64_t(64), .min = 1, .max = 100000}},
            false,
            &make_op<MosaicOp>};
}

}  // namespace tessera
