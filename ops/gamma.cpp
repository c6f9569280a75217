// gamma: every sample raised to 1 / exponent within the range of its
// format, m (x / m)^(1 / exponent) (libvips gamma; exponent 1 / 2.4 by
// default, as libvips 8.14, so x^2.4), m the format's maximum as libvips's
// table has it: 255, 65535, 32767 (i16), 4294967295, 2147483647 (i32), 1
// for floats (whatever the interpretation). The format is kept. Demand
// halo: none.
//
// libvips's arithmetic (conversion/gamma.c): x^(1/e) in double stored as
// float (vips pow_const; double for f64), times the float 1 / s with
// s = m^(1/e) / m (vips linear, float), then cast to the input format
// (clipped, truncated toward zero; NaN as 0). u8 and u16 go through a
// lookup table of all their values, as libvips's maplut, which gives the
// same values; the other formats compute per sample (double in double).
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class GammaOp final : public Op {
public:
    GammaOp(const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        exponent_ = p.number("exponent");
        const double m = format_is_float(info_.format) ? 1.0 : format_max(info_.format);
        scale_ = std::pow(m, 1.0 / exponent_) / m;
        if (info_.geo) info_.geo->nodata.clear();
        if (info_.format == Format::u8 || info_.format == Format::u16) {
            lut_.resize(info_.format == Format::u8 ? 256 : 65536);
            for (std::size_t v = 0; v < lut_.size(); ++v)
                lut_[v] = info_.format == Format::u8 ? arith::stored_trunc<std::uint8_t>(value(double(v)))
                                                     : arith::stored_trunc<std::uint16_t>(value(double(v)));
        }
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, mapped per sample (a table for u8 and u16).
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        dispatch_format(out.format, [&](auto zero) {
            using T = decltype(zero);
            const std::size_t n = std::size_t(out.rect.w) * std::size_t(out.bands);
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                const T* p = reinterpret_cast<const T*>(in[0].tile.at(out.rect.x, y));
                T* q = out.row<T>(y);
                if constexpr (std::is_same_v<T, std::uint8_t> || std::is_same_v<T, std::uint16_t>)
                    for (std::size_t i = 0; i < n; ++i) q[i] = T(lut_[p[i]]);
                else
                    for (std::size_t i = 0; i < n; ++i) q[i] = stored<T>(value(double(p[i])));
            }
        });
    }

private:
    // The gamma of one sample before storing: float arithmetic, except
    // double for f64 input (libvips's pow and linear keep double).
    double value(double x) const {
        const double powed = (x == 0.0 && 1.0 / exponent_ < 0) ? 0.0 : std::pow(x, 1.0 / exponent_);
        if (info_.format == Format::f64) return powed * (1.0 / scale_);
        return double(float(1.0 / scale_) * float(powed));
    }
    template <class T>
    T stored(double v) const {
        return arith::stored_trunc<T>(v);
    }

    double exponent_ = 1.0 / 2.4, scale_ = 1.0;
    std::vector<std::uint16_t> lut_;  // the stored values, u8 or u16
};

}  // namespace

OpSpec gamma_op_spec() {
    return {"gamma",
            "m (x / m)^(1 / exponent), m the format's maximum (1 for floats), format kept (libvips gamma); halo: none",
            1,
            1,
            {{.name = "exponent",
              .type = ParamType::number,
              .doc = "the gamma: samples are raised to 1 / exponent",
              .default_value = 1.0 / 2.4,
              .min = 0.000001,
              .max = 1000.0}},
            false,
            &make_op<GammaOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
