// Small shared rules of the arithmetic ops (calc, compare, ifthenelse,
// bandmean, gamma, premultiply, unpremultiply, composite): how libvips picks
// a common format and an alpha's maximum, and how a double result is
// stored. Header-only: each is a few lines, used inside per-sample loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "tessera/core/error.hpp"
#include "tessera/core/format.hpp"
#include "tessera/core/image_info.hpp"
#include "tessera/core/op.hpp"

namespace tessera::arith {

// libvips's vips_interpretation_max_alpha: 65535 for the 16-bit
// interpretations, else 255 (multiband included, whatever the format).
inline double max_alpha(Interpretation i) {
    return i == Interpretation::grey16 || i == Interpretation::rgb16 ? 65535.0 : 255.0;
}

// libvips's vips_format_common (arithmetic.c, format_largest): the smallest
// format holding both. Either float: the wider float. Both unsigned or both
// signed: the wider. Mixed sign: a signed format wider than the unsigned
// one (u8+i16 -> i16, u16+i16 -> i32, u32 + a signed -> i32, as libvips,
// which has no 64-bit int in this table).
inline Format common_format(Format a, Format b) {
    if (format_is_float(a) || format_is_float(b))
        return a == Format::f64 || b == Format::f64 ? Format::f64 : Format::f32;
    auto is_signed = [](Format f) { return f == Format::i16 || f == Format::i32; };
    if (is_signed(a) == is_signed(b)) return format_size(a) >= format_size(b) ? a : b;
    const Format u = is_signed(a) ? b : a, s = is_signed(a) ? a : b;
    if (format_size(s) > format_size(u)) return s;
    return format_size(u) == 1 ? Format::i16 : Format::i32;
}

// A double stored in T: floats as the C conversion; integers clipped to
// the range then truncated toward zero (libvips's VIPS_CLIP and C
// conversion, as cast does), NaN as 0.
template <class T>
T stored_trunc(double v) {
    if constexpr (std::is_floating_point_v<T>)
        return T(v);
    else {
        if (std::isnan(v)) return T(0);
        return T(std::clamp(v, double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max())));
    }
}

// The same, rounded to the nearest (half away from zero) as GDAL's
// GDALCopyWords stores a double in an integer band: how calc's integer
// output matches gdal_calc.py.
template <class T>
T stored_round(double v) {
    if constexpr (std::is_floating_point_v<T>)
        return T(v);
    else {
        if (std::isnan(v)) return T(0);
        return T(
            std::clamp(std::round(v), double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max())));
    }
}

// Bands of several images made alike as libvips's bandalike: each has 1
// band or the largest count. Throws naming the input that has neither.
inline int alike_bands(std::initializer_list<std::pair<const char*, int>> images) {
    int n = 1;
    for (const auto& [what, b] : images) n = std::max(n, b);
    for (const auto& [what, b] : images)
        if (b != 1 && b != n)
            throw Error(std::string(what) + " has " + std::to_string(b) + " bands and another input " +
                        std::to_string(n) + "; give images of one band or the same bands");
    return n;
}

// Converts row y of a tile, columns [x, x + w), to doubles: how calc and
// composite read their inputs whatever the format (row_reader(format)
// picks the instance once, when the op is built).
template <class T>
void row_to_double(const ConstTile& t, int x, int y, int w, double* out) {
    const T* p = reinterpret_cast<const T*>(t.at(x, y));
    const std::size_t n = std::size_t(w) * std::size_t(t.bands);
    for (std::size_t i = 0; i < n; ++i) out[i] = double(p[i]);
}
using RowReader = void (*)(const ConstTile&, int, int, int, double*);
inline RowReader row_reader(Format f) {
    return dispatch_format(f, [](auto z) -> RowReader { return &row_to_double<decltype(z)>; });
}

}  // namespace tessera::arith

namespace tessera::arith {

// What premultiply and unpremultiply share: the last band is alpha (so at
// least 2 bands), the output float (f64 for f64 input) as libvips, max_alpha
// given or libvips's choice from the interpretation, the same rect of the
// input per output pixel (halo none). Each op writes its own compute.
class AlphaScaleOp : public Op {
public:
    // A 1-band image has no alpha: the output is the input as it is (its
    // format too), as libvips premultiply and unpremultiply copy it.
    AlphaScaleOp(const char*, const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        in_format_ = in[0].format;
        max_alpha_ = p.has("max_alpha") ? p.number("max_alpha") : max_alpha(in[0].interpretation);
        if (!(max_alpha_ > 0)) throw ParamError("max_alpha", "must be above 0 (the alpha of an opaque pixel)");
        no_alpha_ = in[0].bands < 2;
        if (no_alpha_) return;
        info_.format = in[0].format == Format::f64 ? Format::f64 : Format::f32;
        if (info_.geo) info_.geo->nodata.clear();
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, per pixel.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

protected:
    // The case of no alpha band: the input's pixels copied (true), else
    // false and the op computes.
    bool copied(const Tile& out, std::span<const Pulled> in) const {
        if (!no_alpha_) return false;
        copy_pixels(in[0].tile, out);
        return true;
    }
    Format in_format_ = Format::u8;
    double max_alpha_ = 255;
    bool no_alpha_ = false;
};

}  // namespace tessera::arith
