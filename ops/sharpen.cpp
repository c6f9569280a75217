// sharpen: libvips 8.14's vips_sharpen (convolution/sharpen.c), unsharp
// masking of lightness: the image is converted to LABS (ops/colour.hpp:
// libvips's chain and formulas), L is blurred with vips_gaussmat(sigma,
// 0.1, integer) along rows then columns in libvips's integer convolution
// (exact for its 16-bit L, no vector path there), and each pixel's L
// becomes L + lut[(L & 0x7fff) - (blur & 0x7fff)] clipped to [0, 32767],
// the lookup table libvips builds from x1, y2, y3, m1, m2 (in L* units:
// slope m1 for |difference| < x1, m2 beyond, at most y2 brighter and y3
// darker); a and b are kept, and the result is converted back to the
// input's space, as libvips does. The input's space is its header's
// (sRGB, RGB16, B_W, GREY16); the format is kept. Against vips sharpen
// 8.14: bit for bit on 8-bit sRGB and 16-bit grey (tests/ops_colour_test.cpp).
//
// Demand halo: the blur's radius each side (sigma 0.5: 1; the mask is
// 2 max(x - 1, 0) + 1 wide for the first x with exp(-x^2 / 2 sigma^2) <
// 0.1, libvips's "stop at 10 % of max" since its sigma 0.5 fix), clipped
// to the image; the border is copied, as libvips's conv.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "colour.hpp"
#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

// vips_gaussmat(sigma, min_ampl, separable, integer) as a w x 1 mask.
Mask gauss_integer(double sigma, double min_ampl) {
    const double sig2 = 2 * sigma * sigma;
    const int max_x = std::clamp(int(8 * sigma), 0, 5000);
    int x = 0;
    for (; x < max_x; ++x)
        if (std::exp(-double(x * x) / sig2) < min_ampl) break;
    Mask m;
    m.w = 2 * std::max(x - 1, 0) + 1;
    double sum = 0;
    for (int i = 0; i < m.w; ++i) {
        const int d = i - m.w / 2;
        m.c.push_back(std::rint(20 * std::exp(-double(d * d) / sig2)));
        sum += m.c.back();
    }
    m.scale = sum == 0 ? 1 : sum;
    return intize(m);
}

class SharpenOp final : public Op {
public:
    SharpenOp(const Params& p, std::span<const ImageInfo> in) {
        const auto s = space_of(in[0].interpretation);
        if (!s)
            throw Error("sharpen works on sRGB, RGB16, B_W or GREY16 images; the input is " +
                        std::string(interpretation_name(in[0].interpretation)) +
                        " (convert it with colourspace first, or load it as one of those)");
        space_ = *s;
        if (in[0].bands < space_bands(space_))
            throw Error("sharpen: the input has fewer bands than its colour space needs");
        h_ = gauss_integer(p.number("sigma"), 0.1);
        v_ = h_;
        v_.w = 1;
        v_.h = h_.w;
        const double x1 = p.number("x1"), y2 = p.number("y2"), y3 = p.number("y3"), m1 = p.number("m1"),
                     m2 = p.number("m2");
        lut_.resize(65536);
        for (int i = 0; i < 65536; ++i) {
            const double v = (i - 32767) / 327.67;
            double y;
            if (v < -x1)
                y = (v + x1) * m2 + -x1 * m1;
            else if (v < x1)
                y = v * m1;
            else
                y = (v - x1) * m2 + x1 * m1;
            y = std::clamp(y, -y3, y2);
            lut_[std::size_t(i)] = int(std::rint(y * 327.67));
        }
        info_ = in[0];
    }

    // Case analysis for an output rect r: one case, r grown by the blur's
    // radius and clipped to the image; compute converts that to LABS,
    // blurs its L (rows, then columns into r), sharpens r's L and converts
    // r back.
    void demand(const Rect& r, Demand& need) const override {
        need.push_back({0, support(r), std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const Rect& r = out.rect;
        const Rect big = support(r);
        const int extra = info_.bands - space_bands(space_);
        const int nb = 3 + extra;
        // the input region in LABS
        std::vector<std::int16_t> labs(std::size_t(big.area()) * std::size_t(nb));
        const Tile lt{big, nb, Format::i16, reinterpret_cast<std::byte*>(labs.data()), std::size_t(big.w) * nb * 2};
        convert_colour(in[0].tile.sub(big), space_, lt, Space::labs);
        // its L alone, blurred as libvips's convsep
        std::vector<std::int16_t> l(std::size_t(big.area()));
        for (std::size_t i = 0; i < l.size(); ++i) l[i] = labs[i * std::size_t(nb)];
        const ConstTile lsrc{big, 1, Format::i16, reinterpret_cast<const std::byte*>(l.data()), std::size_t(big.w) * 2};
        const Rect mid = v_.support(r, info_.rect());
        std::vector<std::int16_t> m(std::size_t(mid.area()));
        const Tile mt{mid, 1, Format::i16, reinterpret_cast<std::byte*>(m.data()), std::size_t(mid.w) * 2};
        convolve(lsrc, info_.rect(), h_, true, mt);
        std::vector<std::int16_t> blur(std::size_t(r.area()));
        const Tile bt{r, 1, Format::i16, reinterpret_cast<std::byte*>(blur.data()), std::size_t(r.w) * 2};
        convolve(mt, info_.rect(), v_, true, bt);
        // sharpen r's L in place (sharpen.c's generate)
        for (int y = r.y; y < r.bottom(); ++y) {
            std::int16_t* q = lt.row<std::int16_t>(y) + std::size_t(r.x - big.x) * nb;
            const std::int16_t* b = bt.row<std::int16_t>(y);
            for (int x = 0; x < r.w; ++x, q += nb) {
                const int v1 = q[0], v2 = b[x];
                const int diff = (v1 & 0x7fff) - (v2 & 0x7fff);
                q[0] = std::int16_t(std::clamp(v1 + lut_[std::size_t(diff + 32768)], 0, 32767));
            }
        }
        convert_colour(ConstTile(lt).sub(r), Space::labs, out, space_);
    }

private:
    Rect support(const Rect& r) const { return h_.support(v_.support(r, info_.rect()), info_.rect()); }

    Space space_ = Space::srgb;
    Mask h_, v_;
    std::vector<int> lut_;
};

}  // namespace

OpSpec sharpen_op_spec() {
    return {"sharpen",
            "unsharp masking of L in LABS with libvips sharpen's parameters and lookup table, converted back to "
            "the input's space; halo: the blur's radius",
            1,
            1,
            {{.name = "sigma",
              .type = ParamType::number,
              .doc = "sigma of the Gaussian blur",
              .default_value = 0.5,
              .min = 0.000001,
              .max = 10000},
             {.name = "x1", .type = ParamType::number, .doc = "flat/jaggy threshold (L*)", .default_value = 2.0,
              .min = 0, .max = 1000000},
             {.name = "y2", .type = ParamType::number, .doc = "maximum brightening (L*)", .default_value = 10.0,
              .min = 0, .max = 1000000},
             {.name = "y3", .type = ParamType::number, .doc = "maximum darkening (L*)", .default_value = 20.0,
              .min = 0, .max = 1000000},
             {.name = "m1", .type = ParamType::number, .doc = "slope for flat areas", .default_value = 0.0,
              .min = 0, .max = 1000000},
             {.name = "m2", .type = ParamType::number, .doc = "slope for jaggy areas", .default_value = 3.0,
              .min = 0, .max = 1000000}},
            false,
            &make_op<SharpenOp>,
            false,
            "neighbourhood",
            "the blur's radius (sigma 0.5: 1)"};
}

}  // namespace tessera
