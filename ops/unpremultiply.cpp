// unpremultiply: undoes premultiply: the last band taken as alpha, every
// other band multiplied by max_alpha / alpha (0 where alpha is 0) (libvips
// unpremultiply); alpha clipped to [0, max_alpha]. Output float (f64 for
// f64 input), as libvips; a 1-band image has no alpha and is copied as
// it is (format too), as libvips does. Demand halo: none.
//
// libvips 8.14's arithmetic (conversion/unpremultiply.c): the factor
// max_alpha * (1 / alpha) (vips_recip: 0 for 0) in double stored as the
// output's float type, each band factor * x in that type; the factor uses
// the unclipped alpha, so over- and undershoots cancel as in libvips. max_alpha: 65535 for 16-bit RGB and grey, else
// 255 (libvips's choice from the interpretation), or as given.
#include <algorithm>
#include <string>
#include <type_traits>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class UnpremultiplyOp final : public arith::AlphaScaleOp {
public:
    UnpremultiplyOp(const Params& p, std::span<const ImageInfo> in) : AlphaScaleOp("unpremultiply", p, in) {}

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
                            const O factor = O(max_alpha_ * (alpha == I(0) ? 0.0 : 1.0 / double(alpha)));
                            for (int k = 0; k < n - 1; ++k) q[k] = factor * O(p[k]);
                            q[n - 1] = O(std::clamp(double(alpha), 0.0, max_alpha_));
                        }
                    }
                }
            });
        });
    }
};

}  // namespace

OpSpec unpremultiply_op_spec() {
    return {"unpremultiply",
            "bands times max_alpha / alpha, the last band alpha, float output; 1 band (no alpha): copied (libvips "
            "unpremultiply); halo: none",
            1,
            1,
            {{.name = "max_alpha",
              .type = ParamType::number,
              .default_text = "65535 for 16-bit interpretations, else 255",
              .doc = "the alpha of an opaque pixel"}},
            false,
            &make_op<UnpremultiplyOp>,
            false,
            "bands",
            "0"};
}

}  // namespace tessera
