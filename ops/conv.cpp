// conv: convolution with a given mask, as libvips 8.14's vips_conv
// (convolution/conv.c, convi.c, convf.c): each output pixel is
// sum(mask x input) / scale + offset, the mask's centre (width / 2,
// height / 2) over the pixel, per band.
//   - precision "float" (libvips's default): every coefficient as given,
//     sums in double, the output f32 (f64 for an f64 input), as convf;
//   - precision "integer": the mask as libvips's convi makes it
//     (coefficients, scale and offset rint: vips__image_intize's
//     coefficients, and the scale and offset vips_convi_gen reads off the
//     mask as given; intize's gain-corrected scale is not what its C path
//     divides by), integer formats summed in integers, (sum + scale / 2) / scale + offset with truncating
//     division, clipped to the input format, which is kept: libvips's C
//     path bit for bit. libvips's u8 vector path (Orc, on by default)
//     quantises the mask to 8-bit mantissas and can differ by a level or
//     two; tests compare with it disabled, as its documentation suggests
//     for exact results, and state the difference with it on. u32/i32
//     sums are clipped here where libvips's int sum would wrap.
//   - precision "approximate" (libvips's layered boxes) is not offered.
// The image border: libvips's conv embeds its input with extend copy
// before convolving, so the output keeps the input's size and samples
// beyond the edge are the nearest edge pixel; tessera does the same (a
// mosaic user expects the size in to be the size out, and a shrunk image
// would move every later op's coordinates).
//
// Demand halo: the mask's reach, width / 2 left, width - 1 - width / 2
// right (height likewise up and down), clipped to the image (the copy
// extension reads the edge instead).
#include <cmath>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class ConvOp final : public Op {
public:
    ConvOp(const Params& p, std::span<const ImageInfo> in) {
        const std::vector<double> c = p.numbers("mask", {});
        if (c.empty()) throw ParamError("mask", "the mask needs at least one coefficient");
        const std::size_t w = std::size_t(p.integer("width", std::int64_t(std::lround(std::sqrt(double(c.size()))))));
        if (w == 0 || c.size() % w != 0)
            throw ParamError("width", std::to_string(c.size()) + " coefficients do not make rows of " +
                                          std::to_string(w) + "; give width so that it divides their count");
        mask_.w = int(w);
        mask_.h = int(c.size() / w);
        mask_.c = c;
        mask_.scale = p.number("scale");
        mask_.offset = p.number("offset");
        if (mask_.scale == 0) throw ParamError("scale", "a scale of 0 divides by zero; use 1 for no scaling");
        for (double v : c)
            if (!std::isfinite(v)) throw ParamError("mask", "every coefficient must be a finite number");
        integer_ = p.string("precision") == "integer";
        if (integer_ && std::rint(mask_.scale) == 0)
            throw ParamError("scale", "precision integer divides by the scale rounded to a whole number, and " +
                                          std::to_string(mask_.scale) +
                                          " rounds to 0; give a scale of at least 0.5 in size, or precision float");
        if (integer_) mask_ = intize(mask_);
        info_ = in[0];
        if (!integer_) info_.format = in[0].format == Format::f64 ? Format::f64 : Format::f32;
        if (info_.geo) info_.geo->nodata.clear();  // a blur moves nodata into its neighbours
    }

    // Case analysis for an output rect r: one case, r grown by the mask's
    // reach and clipped to the image (convolve clamps what lies beyond).
    void demand(const Rect& r, Demand& need) const override {
        need.push_back({0, mask_.support(r, info_.rect()), std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        convolve(in[0].tile, info_.rect(), mask_, integer_, out);
    }

private:
    Mask mask_;
    bool integer_ = false;
};

}  // namespace

OpSpec conv_op_spec() {
    return {"conv",
            "convolution with a given mask: sum(mask x in) / scale + offset (libvips conv; the size kept, edges "
            "copied); halo: the mask's half-size",
            1,
            1,
            {{.name = "mask",
              .type = ParamType::numbers,
              .required = true,
              .doc = "the coefficients, row by row (e.g. [-1, -1, -1, -1, 8, -1, -1, -1, -1])"},
             {.name = "width",
              .type = ParamType::integer,
              .default_text = "(square mask)",
              .doc = "the mask's width; its height is the count / width",
              .min = 1,
              .max = 10000},
             {.name = "scale",
              .type = ParamType::number,
              .doc = "the sum is divided by this (libvips's matrix scale)",
              .default_value = 1.0},
             {.name = "offset",
              .type = ParamType::number,
              .doc = "then this is added (libvips's matrix offset)",
              .default_value = 0.0},
             {.name = "precision",
              .type = ParamType::string,
              .doc = "float: f32 out (f64 for f64); integer: the mask rint, the input format kept (libvips convi)",
              .default_value = std::string("float"),
              .choices = {"float", "integer"}}},
            false,
            &make_op<ConvOp>,
            false,
            "neighbourhood",
            "mask half-size: width / 2 left, width - 1 - width / 2 right (height likewise)"};
}

}  // namespace tessera
