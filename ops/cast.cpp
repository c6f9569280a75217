// cast: converts the pixels to another sample format (libvips cast, without
// the "shift" option).
//
// The conversion rules are those of libvips 8.14 (libvips/conversion/cast.c,
// the CAST_* macros and vips_cast_gen), checked against the installed
// library by tests/ops_cast_test.cpp:
//   - int -> int: the value is clipped to the output range (a u32 above
//     INT_MAX becomes INT_MAX, a negative i16 becomes 0 in u8 or u16);
//   - float -> int: clipped to the output range in double, then truncated
//     toward zero (CAST_FLOAT_INT assigns the clipped double to the int
//     type): 1.9 -> 1, -1.5 -> -1, 300.7 -> 255 in u8;
//   - anything -> float: the plain C conversion (f64 -> f32 rounds to the
//     nearest float and overflows to +-inf).
// Two deviations, both where libvips has no sane result:
//   - u32 values above INT_MAX cast to u8, u16 or i16: libvips passes them
//     through an int, where they wrap negative, so 3000000000 becomes 0 in
//     u8 and -32768 in i16. Here they saturate like every other value (255,
//     32767), as the clipping rule says.
//   - NaN: libvips' clip lets it through into an undefined int conversion;
//     here it becomes 0 so the output is defined.
//
// Same format in and out is a copy, which costs nothing: a placed need.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "ops_list.hpp"

namespace tessera {
namespace {

// One sample, converted as libvips cast does (see the file comment).
template <class O, class I>
O cast_sample(I v) {
    if constexpr (std::is_floating_point_v<O>) {
        return static_cast<O>(v);
    } else if constexpr (std::is_floating_point_v<I>) {
        double d = double(v);
        if (std::isnan(d)) return O(0);
        if (d <= double(std::numeric_limits<O>::lowest())) return std::numeric_limits<O>::lowest();
        if (d >= double(std::numeric_limits<O>::max())) return std::numeric_limits<O>::max();
        return static_cast<O>(d);  // in range: truncates toward zero
    } else {
        // Every int format fits in int64, so the clip is exact.
        std::int64_t t = std::int64_t(v);
        std::int64_t lo = std::int64_t(std::numeric_limits<O>::lowest());
        std::int64_t hi = std::int64_t(std::numeric_limits<O>::max());
        return static_cast<O>(t < lo ? lo : t > hi ? hi : t);
    }
}

// The kernel: one instance per (input, output) type pair, picked once when
// the op is built, so compute() does no per-tile dispatch.
template <class I, class O>
void cast_tile(const ConstTile& src, const Tile& dst) {
    const std::size_t n = std::size_t(dst.rect.w) * dst.bands;
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const I* p = reinterpret_cast<const I*>(src.at(dst.rect.x, y));
        O* q = dst.row<O>(y);
        for (std::size_t i = 0; i < n; ++i) q[i] = cast_sample<O>(p[i]);
    }
}

using CastKernel = void (*)(const ConstTile&, const Tile&);

CastKernel pick_kernel(Format in, Format out) {
    return dispatch_format(in, [&](auto i) {
        return dispatch_format(out, [&](auto o) -> CastKernel { return &cast_tile<decltype(i), decltype(o)>; });
    });
}

// A value (nodata) converted as a sample of `in` would be, so that pixels
// equal to nodata before the cast still equal it after.
double cast_value(double v, Format in, Format out) {
    return dispatch_format(in, [&](auto i) {
        using I = decltype(i);
        I s = cast_sample<I>(v);
        return dispatch_format(out, [&](auto o) { return double(cast_sample<decltype(o)>(s)); });
    });
}

class CastOp final : public Op {
public:
    CastOp(const Params& p, std::span<const ImageInfo> in) {
        auto fmt = parse_format(p.string("format"));  // one of the spec's choices
        // libvips keeps every other header field, the interpretation included.
        info_ = in[0];
        info_.format = *fmt;
        if (info_.geo)
            for (auto& nd : info_.geo->nodata)
                if (nd) nd = cast_value(*nd, in[0].format, *fmt);
        in_format_ = in[0].format;
        kernel_ = pick_kernel(in_format_, *fmt);
    }

    // Case analysis for an output rect r:
    //  1. same format in and out: the input's r, placed, is the output;
    //  2. otherwise: the input's r, pulled into scratch for compute to convert
    //     (pixel for pixel, so the rect is the same).
    void demand(const Rect& r, Demand& need) const override {
        if (in_format_ == info_.format)
            need.push_back({0, r, r.origin()});  // case 1
        else
            need.push_back({0, r, std::nullopt});  // case 2
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (in.empty()) return;  // case 1: the placed need is the output
        kernel_(in[0].tile, out);
    }

private:
    Format in_format_ = Format::u8;
    CastKernel kernel_ = nullptr;
};

}  // namespace

OpSpec cast_op_spec() {
    return {"cast",
            "converts pixels to another sample format as libvips cast does: clipped to the range, floats truncated "
            "toward zero",
            1,
            1,
            {{.name = "format",
              .type = ParamType::string,
              .required = true,
              .doc = "output format: u8 u16 i16 u32 i32 f32 f64",
              .choices = format_spellings()}},
            false,
            &make_op<CastOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
