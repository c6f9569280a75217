// gaussblur: a Gaussian blur as libvips 8.14's vips_gaussblur
// (convolution/gaussblur.c): vips_gaussmat's separable mask convolved along
// rows, then along columns (vips_convsep), so the same mask from the same
// formula:
//   - the half-width: the first whole x in [0, int(8 sigma)) with
//     exp(-x^2 / (2 sigma^2)) < min_ampl (or int(8 sigma) if none), the
//     mask 2 max(x - 1, 0) + 1 wide; coefficient at distance d
//     exp(-d^2 / (2 sigma^2)), in precision "integer" (libvips's default)
//     rint(20 x that), the scale their sum;
//   - precision "integer": each pass is libvips's integer convolution (see
//     conv.cpp): integer sums, (sum + scale / 2) / scale, clipped to the
//     input format, which the intermediate and the output keep: libvips's
//     C path bit for bit (its u8 vector path is within a level or two);
//   - precision "float": double sums of the unrounded mask, f32 (f64 for
//     f64) intermediate and output, as libvips's float convsep.
//   - sigma below 0.2: the image unchanged, format kept (libvips's
//     gaussblur copies then).
// The image border: extend copy, as libvips's conv embeds each pass's
// input, so the size is kept (see conv.cpp for why tessera does too).
//
// Demand halo: the mask's radius r = max(x - 1, 0) each side, both axes
// (sigma 2, min_ampl 0.2: 3; about sigma sqrt(2 ln(1 / min_ampl))),
// clipped to the image.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class GaussblurOp final : public Op {
public:
    GaussblurOp(const Params& p, std::span<const ImageInfo> in) {
        const double sigma = p.number("sigma"), min_ampl = p.number("min_ampl");
        integer_ = p.string("precision") == "integer";
        info_ = in[0];
        copy_ = sigma < 0.2;
        if (copy_) return;
        // vips_gaussmat's size search and coefficients
        const double sig2 = 2 * sigma * sigma;
        const int max_x = std::clamp(int(8 * sigma), 0, 5000);
        int x = 0;
        for (; x < max_x; ++x)
            if (std::exp(-double(x * x) / sig2) < min_ampl) break;
        const int width = 2 * std::max(x - 1, 0) + 1;
        h_.w = width;
        h_.c.resize(std::size_t(width));
        double sum = 0;
        for (int i = 0; i < width; ++i) {
            const int d = i - width / 2;
            double v = std::exp(-double(d * d) / sig2);
            if (integer_) v = std::rint(20 * v);
            h_.c[std::size_t(i)] = v;
            sum += v;
        }
        h_.scale = sum == 0 ? 1 : sum;
        if (integer_) h_ = intize(h_);
        v_ = h_;
        v_.w = 1;
        v_.h = width;
        if (!integer_) info_.format = in[0].format == Format::f64 ? Format::f64 : Format::f32;
        if (info_.geo) info_.geo->nodata.clear();
    }

    // Case analysis for an output rect r:
    //  1. sigma < 0.2: r itself, placed (the evaluator copies it);
    //  2. otherwise r grown by the radius on every side, clipped to the
    //     image; compute blurs the rows of that (r's columns only), then
    //     the columns into r.
    void demand(const Rect& r, Demand& need) const override {
        if (copy_) return need.push_back({0, r, Point{r.x, r.y}});
        need.push_back({0, h_.support(v_.support(r, info_.rect()), info_.rect()), std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (copy_) return;
        const Rect mid = v_.support(out.rect, info_.rect());  // r's columns, the rows the column pass reads
        const std::size_t stride = std::size_t(mid.w) * out.pixel_bytes();
        // the row pass's result, the thread's from tile to tile (a tile's
        // worth: 67 KB at 256 x 256 u8, sigma 2)
        thread_local std::vector<std::byte> bytes;
        bytes.resize(stride * std::size_t(mid.h));
        const Tile t{mid, out.bands, out.format, bytes.data(), stride};
        convolve(in[0].tile, info_.rect(), h_, integer_, t);
        convolve(t, info_.rect(), v_, integer_, out);
    }

private:
    Mask h_, v_;  // the row pass's w x 1 mask and the column pass's 1 x w
    bool integer_ = true;
    bool copy_ = false;  // sigma < 0.2
};

}  // namespace

OpSpec gaussblur_op_spec() {
    return {"gaussblur",
            "Gaussian blur with libvips gaussblur's separable mask (sigma, min_ampl, precision; the size kept, "
            "edges copied); halo: the mask radius",
            1,
            1,
            {{.name = "sigma",
              .type = ParamType::number,
              .required = true,
              .doc = "the Gaussian's standard deviation, in pixels",
              .min = 0,
              .max = 1000},
             {.name = "min_ampl",
              .type = ParamType::number,
              .doc = "the mask stops where the Gaussian falls below this share of its peak",
              .default_value = 0.2,
              .min = 0.001,
              .max = 1},
             {.name = "precision",
              .type = ParamType::string,
              .doc = "integer: rint(20 x) mask, input format kept; float: exact mask, f32 out (libvips's)",
              .default_value = std::string("integer"),
              .choices = {"integer", "float"}}},
            false,
            &make_op<GaussblurOp>,
            false,
            "neighbourhood",
            "mask radius: the last x with exp(-x^2 / 2 sigma^2) >= min_ampl (sigma 2: 3)"};
}

}  // namespace tessera
