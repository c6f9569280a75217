// invert: the photographic negative (libvips invert): an unsigned sample
// becomes max - x (255 - x for u8, 65535 - x for u16, 4294967295 - x for
// u32), a signed or float one -x (libvips: "-1 * x"; i16 -32768 stays
// -32768, as libvips's int arithmetic wraps it back, and i32 likewise).
// libvips writes signed results in the input format too, so the format is
// kept. Demand halo: none.
#include <limits>
#include <string>
#include <type_traits>

#include "ops_list.hpp"

namespace tessera {
namespace {

template <class T>
T inverted(T v) {
    if constexpr (std::is_unsigned_v<T>)
        return T(std::numeric_limits<T>::max() - v);
    else if constexpr (std::is_integral_v<T>)
        // -1 * v in the type's own width, wrapping as libvips's does
        return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(v));
    else
        return T(-1 * v);
}

class InvertOp final : public Op {
public:
    InvertOp(const Params&, std::span<const ImageInfo> in) {
        info_ = in[0];
        if (info_.geo) info_.geo->nodata.clear();  // no longer marks the same pixels
    }

    // Case analysis for an output rect r: one case, the same input rect,
    // every sample inverted.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const ConstTile& src = in[0].tile;
        dispatch_format(out.format, [&](auto zero) {
            using T = decltype(zero);
            const std::size_t n = std::size_t(out.rect.w) * std::size_t(out.bands);
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                const T* p = reinterpret_cast<const T*>(src.at(out.rect.x, y));
                T* q = out.row<T>(y);
                for (std::size_t i = 0; i < n; ++i) q[i] = inverted(p[i]);
            }
        });
    }
};

}  // namespace

OpSpec invert_op_spec() {
    return {"invert",
            "the negative: max - x for unsigned formats, -x for signed and float (libvips invert); halo: none",
            1,
            1,
            {},
            false,
            &make_op<InvertOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
