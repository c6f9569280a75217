// premultiply: the last band taken as alpha, every other band multiplied by
// alpha / max_alpha (libvips premultiply); alpha kept. Output float (f64
// for f64 input), as libvips. Demand halo: none.
//
// libvips 8.14's arithmetic (conversion/premultiply.c): alpha clipped to
// [0, max_alpha], nalpha = float(clipped) / max_alpha (double, stored as
// the output's float type), each band x * nalpha in that type; the alpha
// band written unclipped. max_alpha: 65535 for 16-bit RGB and grey, else
// 255 (libvips's choice from the interpretation), or as given.
#include <algorithm>
#include <string>
#include <type_traits>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class PremultiplyOp final : public Op {
public:
    PremultiplyOp(const Params& p, std::span<const ImageInfo> in) {
        if (in[0].bands < 2)
            throw Error("premultiply: the input has 1 band; the last band is taken as alpha, so give at least 2");
        info_ = in[0];
        in_format_ = in[0].format;
        info_.format = in[0].format == Format::f64 ? Format::f64 : Format::f32;
        max_alpha_ = p.has("max_alpha") ? p.number("max_alpha") : arith::max_alpha(in[0].interpretation);
        if (!(max_alpha_ > 0)) throw ParamError("max_alpha", "must be above 0 (the alpha of an opaque pixel)");
        if (info_.geo) info_.geo->nodata.clear();
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, per pixel.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        dispatch_format(in_format_, [&](auto zi) {
            dispatch_format(out.format, [&](auto zo) {
                using I = decltype(zi);
                using O = decltype(zo);
                if constexpr (std::is_floating_point_v<O>) {
                    const int n = out.bands;
                    for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                        const I* p = reinterpret_cast<const I*>(in[0].tile.at(out.rect.x, y));
                        O* q = out.row<O>(y);
                        for (int x = 0; x < out.rect.w; ++x, p += n, q += n) {
                            const I alpha = p[n - 1];
                            const I clip = I(alpha < I(0) ? I(0) : double(alpha) > max_alpha_ ? I(max_alpha_) : alpha);
                            const O nalpha = O(O(clip) / max_alpha_);
                            for (int k = 0; k < n - 1; ++k) q[k] = O(p[k]) * nalpha;
                            q[n - 1] = O(alpha);
                        }
                    }
                }
            });
        });
    }

private:
    Format in_format_ = Format::u8;
    double max_alpha_ = 255;
};

}  // namespace

OpSpec premultiply_op_spec() {
    return {"premultiply",
            "bands times alpha / max_alpha, the last band alpha, float output (libvips premultiply); halo: none",
            1,
            1,
            {{.name = "max_alpha",
              .type = ParamType::number,
              .default_text = "65535 for 16-bit interpretations, else 255",
              .doc = "the alpha of an opaque pixel"}},
            false,
            &make_op<PremultiplyOp>,
            false,
            "bands",
            "0"};
}

}  // namespace tessera
