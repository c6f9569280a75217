// premultiply: the last band taken as alpha, every other band multiplied by
// alpha / max_alpha (libvips premultiply); alpha kept. Output float (f64
// for f64 input), as libvips; a 1-band image has no alpha and is copied as
// it is (format too), as libvips does. Demand halo: none.
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

class PremultiplyOp final : public arith::AlphaScaleOp {
public:
    PremultiplyOp(const Params& p, std::span<const ImageInfo> in) : AlphaScaleOp("premultiply", p, in) {}

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        // Cases: a 1-band image (no alpha) is copied; else per pixel below.
        if (copied(out, in)) return;
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
};

}  // namespace

OpSpec premultiply_op_spec() {
    return {"premultiply",
            "bands times alpha / max_alpha, the last band alpha, float output; 1 band (no alpha): copied (libvips "
            "premultiply); halo: none",
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
