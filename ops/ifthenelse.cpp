// ifthenelse: per pixel, `then` where the condition is nonzero and `else`
// where it is zero (libvips ifthenelse); inputs cond, then, else. Demand
// halo: none.
//
// As libvips 8.14 (conversion/ifthenelse.c): a condition that is not u8 is
// first cast to u8 (clipped to [0, 255], truncated: 0.5 is 0, so false, and
// 300 is 255); then and else are converted to their
// common format (vips_format_common: u8 with u16 gives u16, u8 with i16
// i16 ...), and all three made alike in bands (one band repeats); the
// three must have one size. With blend, the condition is a mix factor
// rather than a switch, c the u8 condition: integers in int arithmetic as
// libvips's (c a + (255 - c) b + 128) / 255, floats in double as
// (c / 255) a + (1 - c / 255) b.
#include <string>
#include <vector>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

// The u8 condition of row y: the input cast to u8 (libvips cast).
template <class C>
void condition_row(const ConstTile& t, int x, int y, int w, std::uint8_t* out) {
    const C* p = reinterpret_cast<const C*>(t.at(x, y));
    const std::size_t n = std::size_t(w) * std::size_t(t.bands);
    for (std::size_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<C, std::uint8_t>)
            out[i] = p[i];
        else
            out[i] = arith::stored_trunc<std::uint8_t>(double(p[i]));
    }
}
using ConditionRow = void (*)(const ConstTile&, int, int, int, std::uint8_t*);

// Row y of a then/else input in the output format O (bands as they are).
template <class I, class O>
void value_row(const ConstTile& t, int x, int y, int w, O* out) {
    const I* p = reinterpret_cast<const I*>(t.at(x, y));
    const std::size_t n = std::size_t(w) * std::size_t(t.bands);
    for (std::size_t i = 0; i < n; ++i) out[i] = arith::stored_trunc<O>(double(p[i]));
}

template <class O>
struct Kernel {
    using Row = void (*)(const ConstTile&, int, int, int, O*);
    static Row row(Format f) {
        return dispatch_format(f, [](auto z) -> Row { return &value_row<decltype(z), O>; });
    }
};

class IfthenelseOp final : public Op {
public:
    IfthenelseOp(const Params& p, std::span<const ImageInfo> in) {
        for (int i = 1; i < 3; ++i)
            if (in[std::size_t(i)].width != in[0].width || in[std::size_t(i)].height != in[0].height)
                throw Error("ifthenelse: input " + std::to_string(i) + " is " +
                            std::to_string(in[std::size_t(i)].width) + "x" + std::to_string(in[std::size_t(i)].height) +
                            " and the condition " + std::to_string(in[0].width) + "x" + std::to_string(in[0].height) +
                            "; give three images of one size");
        blend_ = p.boolean("blend", false);
        info_ = in[1];
        info_.bands =
            arith::alike_bands({{"the condition", in[0].bands}, {"then", in[1].bands}, {"else", in[2].bands}});
        info_.format = arith::common_format(in[1].format, in[2].format);
        if (info_.bands != in[1].bands || info_.format != in[1].format)
            info_.interpretation = default_interpretation(info_.bands, info_.format);
        if (info_.geo) info_.geo->nodata.clear();
        cond_ = dispatch_format(in[0].format, [](auto z) -> ConditionRow { return &condition_row<decltype(z)>; });
        bands_ = {in[0].bands, in[1].bands, in[2].bands};
        formats_ = {in[0].format, in[1].format, in[2].format};
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // three inputs (libvips too reads both branches), selected or blended
    // per sample.
    void demand(const Rect& r, Demand& need) const override {
        for (int i = 0; i < 3; ++i) need.push_back({i, r, std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        dispatch_format(out.format, [&](auto zero) {
            using O = decltype(zero);
            const int w = out.rect.w, n = out.bands;
            std::vector<std::uint8_t> c(std::size_t(w) * std::size_t(bands_[0]));
            std::vector<O> a(std::size_t(w) * std::size_t(bands_[1])), b(std::size_t(w) * std::size_t(bands_[2]));
            auto ra = Kernel<O>::row(formats_[1]), rb = Kernel<O>::row(formats_[2]);
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                cond_(in[0].tile, out.rect.x, y, w, c.data());
                ra(in[1].tile, out.rect.x, y, w, a.data());
                rb(in[2].tile, out.rect.x, y, w, b.data());
                O* q = out.row<O>(y);
                for (int x = 0; x < w; ++x)
                    for (int k = 0; k < n; ++k) {
                        const int v = c[std::size_t(x) * std::size_t(bands_[0]) + std::size_t(bands_[0] == 1 ? 0 : k)];
                        const O va = a[std::size_t(x) * std::size_t(bands_[1]) + std::size_t(bands_[1] == 1 ? 0 : k)];
                        const O vb = b[std::size_t(x) * std::size_t(bands_[2]) + std::size_t(bands_[2] == 1 ? 0 : k)];
                        if (!blend_)
                            *q++ = v ? va : vb;
                        else if constexpr (std::is_floating_point_v<O>)
                            *q++ = O(v / 255.0 * va + (1.0 - v / 255.0) * vb);
                        else
                            *q++ = O((std::int64_t(v) * va + std::int64_t(255 - v) * vb + 128) / 255);
                    }
            }
        });
    }

private:
    bool blend_ = false;
    ConditionRow cond_ = nullptr;
    std::array<int, 3> bands_{};
    std::array<Format, 3> formats_{};
};

}  // namespace

OpSpec ifthenelse_op_spec() {
    return {"ifthenelse",
            "inputs cond, then, else: then where cond is nonzero, else where it is zero, or mixed by cond / 255 with "
            "blend (libvips ifthenelse); halo: none",
            3,
            3,
            {{.name = "blend",
              .type = ParamType::boolean,
              .doc = "mix then and else by the condition (0-255) instead of switching",
              .default_value = false}},
            false,
            &make_op<IfthenelseOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
