// mosaic: a base image with N overlapping images at given positions, blended
// where they overlap (a feathered seam instead of insert's hard edge).
//
// Inputs: base, then the N images; "at" gives one [x, y] per image, as in
// insert. The output is the base's size; parts outside it are clipped.
//
// "blend": "feather" (default) weighs each image by a raised cosine of its
// pixel's distance to that image's nearest edge, rising from ~0 at the edge
// to 1 at "blend_width" pixels in, and a pixel covered by several images is
// their weighted mean. A pixel covered by one image is that image's, exactly;
// one covered by none is the base's. So each image fades in over
// blend_width pixels from its edge and the overlaps show no step: a tile
// brighter than its neighbour changes by at most (difference x pi/2 /
// blend_width) per pixel across the seam. The weights depend on the pixel's
// position alone, so neither tile size nor thread count changes a bit.
// "blend": "none" is insert: later images on top, hard edges.
//
// Positions are integers: registration (tools/mosaic.cpp, ops/registration)
// finds whole-pixel offsets, and resampling every tile to place it at a
// fraction of a pixel would soften the whole mosaic for at most half a
// pixel of accuracy.
//
// Demand is insert's (placed needs, nothing hidden asked for) wherever the
// images meeting a tile do not overlap inside it, which is most of a scan.
// Only the images that overlap another one inside a tile are pulled for
// compute(); the others in that tile are still placed.
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
        std::string blend = p.string("blend", "feather");
        if (blend != "feather" && blend != "none")
            throw ParamError("blend", "is '" + blend + "'; use feather (a weighted seam) or none (insert: later on top)");
        feather_ = blend == "feather";
        int width = p.integer_in("blend_width", 1, 100000, 64);
        // ramp_[e]: the weight of a pixel e whole pixels from its image's
        // edge (its centre is e + 0.5 in); 1 from blend_width on.
        ramp_.resize(std::size_t(width));
        for (int e = 0; e < width; ++e)
            ramp_[std::size_t(e)] = float(0.5 - 0.5 * std::cos(std::numbers::pi * (e + 0.5) / width));
    }

    void demand(const Rect& r, Demand& need) const override {
        std::vector<int> hits;
        stack_.index().query(r, hits);
        std::vector<bool> blended = overlapping(r, hits);
        bool any = false;
        for (bool b : blended) any = any || b;
        if (!feather_ || !any) {
            stack_.demand_insert(r, hits, need);
            return;
        }
        // A blend tile. Pulled: the base (unless the images cover r), then
        // every image that overlaps another one in r, for compute(). Placed,
        // after compute(): images alone in r, over their own part, where
        // compute() put only base.
        if (!stack_.covered_by(r, hits, 0)) need.push_back({0, r, std::nullopt});
        const auto& rects = stack_.rects();
        for (std::size_t k = 0; k < hits.size(); ++k) {
            const Rect& at = rects[hits[k]];
            Rect part = at.intersect(r);
            if (blended[k])
                need.push_back({hits[k] + 1, part.translate(-at.x, -at.y), std::nullopt});
        }
        for (std::size_t k = 0; k < hits.size(); ++k) {
            const Rect& at = rects[hits[k]];
            Rect part = at.intersect(r);
            if (!blended[k]) need.push_back({hits[k] + 1, part.translate(-at.x, -at.y), part.origin()});
        }
    }

    // Case analysis (compute only sees blend tiles; the rest is placed):
    //  1. pixels no image covers: the base, copied from its pulled part;
    //  2. pixels one pulled image covers: that image's value, unchanged;
    //  3. pixels two or more cover: sum(w_k * v_k) / sum(w_k) over them, in
    //     input order, rounded to nearest for integer formats.
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
    // For each hit, whether it overlaps another hit inside r.
    std::vector<bool> overlapping(const Rect& r, const std::vector<int>& hits) const {
        const auto& rects = stack_.rects();
        std::vector<bool> out(hits.size(), false);
        for (std::size_t a = 0; a < hits.size(); ++a)
            for (std::size_t b = a + 1; b < hits.size(); ++b)
                if (rects[hits[a]].intersect(rects[hits[b]]).overlaps(r)) out[a] = out[b] = true;
        return out;
    }

    // The weight of pixel column (or row) v of an image spanning [lo, hi).
    float weight(int v, int lo, int hi) const {
        int e = std::min(v - lo, hi - 1 - v);
        return std::size_t(e) < ramp_.size() ? ramp_[std::size_t(e)] : 1.0f;
    }

    template <class T, class Acc>
    void blend(const Tile& out, std::span<const Pulled> in) const {
        const Rect& r = out.rect;
        const int bands = out.bands;
        const auto& rects = stack_.rects();
        // The pulled images as (placed rect in the output frame, pixels).
        struct Src {
            Rect at;     // the whole image, output frame
            Rect part;   // its pulled part, output frame
            ConstTile tile;
            std::vector<float> wx;  // weights of the part's columns
        };
        std::vector<Src> srcs;
        for (const Pulled& p : in) {
            if (p.input == 0) {  // case 1: the base under everything
                copy_pixels(p.tile, out);
                continue;
            }
            const Rect& at = rects[std::size_t(p.input - 1)];
            Src s{at, p.tile.rect.translate(at.x, at.y), p.tile, {}};
            s.wx.resize(std::size_t(s.part.w));
            for (int x = 0; x < s.part.w; ++x) s.wx[std::size_t(x)] = weight(s.part.x + x, at.x, at.right());
            srcs.push_back(std::move(s));
        }
        std::vector<Acc> acc(std::size_t(r.w) * bands);
        std::vector<Acc> wsum(std::size_t(r.w));
        std::vector<int> count(std::size_t(r.w));
        std::vector<const T*> only(std::size_t(r.w));
        for (int y = r.y; y < r.bottom(); ++y) {
            std::fill(acc.begin(), acc.end(), Acc(0));
            std::fill(wsum.begin(), wsum.end(), Acc(0));
            std::fill(count.begin(), count.end(), 0);
            for (const Src& s : srcs) {
                if (y < s.part.y || y >= s.part.bottom()) continue;
                const Acc wy = weight(y, s.at.y, s.at.bottom());
                const T* src = s.tile.template row<T>(y - s.at.y);
                const int x0 = s.part.x - r.x;
                for (int x = 0; x < s.part.w; ++x) {
                    const std::size_t o = std::size_t(x0 + x);
                    const Acc w = Acc(s.wx[std::size_t(x)]) * wy;
                    const T* v = src + std::size_t(x) * bands;
                    wsum[o] += w;
                    ++count[o];
                    only[o] = v;
                    for (int b = 0; b < bands; ++b) acc[o * bands + b] += w * Acc(v[b]);
                }
            }
            T* dst = out.row<T>(y);
            for (int x = 0; x < r.w; ++x) {
                const std::size_t o = std::size_t(x);
                if (count[o] == 0) continue;  // case 1: the base stays
                T* d = dst + o * bands;
                if (count[o] == 1) {  // case 2
                    for (int b = 0; b < bands; ++b) d[b] = only[o][b];
                    continue;
                }
                for (int b = 0; b < bands; ++b) d[b] = to_sample<T>(acc[o * bands + b] / wsum[o]);  // case 3
            }
        }
    }

    template <class T, class Acc>
    static T to_sample(Acc v) {
        if constexpr (std::is_floating_point_v<T>) {
            return T(v);
        } else {
            // a weighted mean lies between its samples: only rounding is left
            Acc lo = Acc(std::numeric_limits<T>::lowest()), hi = Acc(std::numeric_limits<T>::max());
            return T(std::clamp(std::round(v), lo, hi));
        }
    }

    Stack stack_;
    bool feather_ = true;
    std::vector<float> ramp_;
};

}  // namespace

OpSpec mosaic_op_spec() {
    return {"mosaic",
            "images at [x, y] positions on a base, feathered where they overlap (blend none: insert)",
            1,
            -1,
            {{"at", ParamType::points, true, "", "one [x, y] per image: its top-left on the base"},
             {"blend", ParamType::string, false, "feather",
              "feather (weighted mean in overlaps, weights rising from each image's edge) or none (later on top)"},
             {"blend_width", ParamType::integer, false, "64", "pixels over which an image's weight rises from its edge"}},
            false,
            &make_op<MosaicOp>};
}

}  // namespace tessera
