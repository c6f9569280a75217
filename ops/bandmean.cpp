// bandmean: the mean of the bands of each pixel, one band in the input's
// format (libvips bandmean). Demand halo: none.
//
// libvips 8.14's arithmetic (conversion/bandmean.c): integers summed and
// divided rounding half away from zero ((sum + n/2) / n, or (sum - n/2) / n
// for a negative sum, in integer division); floats summed in their own
// type and divided by n. One deviation: the integer sum is 64-bit here, so
// u32 and i32 pixels whose bands sum past 32 bits average correctly where
// libvips's 32-bit sum wraps.
#include <cstdint>
#include <string>
#include <type_traits>

#include "ops_list.hpp"

namespace tessera {
namespace {

class BandmeanOp final : public Op {
public:
    BandmeanOp(const Params&, std::span<const ImageInfo> in) {
        info_ = in[0];
        bands_ = in[0].bands;
        info_.bands = 1;
        info_.interpretation = default_interpretation(1, info_.format);
        if (in[0].interpretation == Interpretation::rgb16) info_.interpretation = Interpretation::grey16;
        if (info_.geo) {
            info_.geo->nodata.clear();
            info_.geo->alpha_band = -1;
        }
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, each pixel's bands averaged.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        dispatch_format(out.format, [&](auto zero) {
            using T = decltype(zero);
            const std::int64_t n = bands_;
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                const T* p = reinterpret_cast<const T*>(in[0].tile.at(out.rect.x, y));
                T* q = out.row<T>(y);
                for (int x = 0; x < out.rect.w; ++x, p += n) {
                    if constexpr (std::is_floating_point_v<T>) {
                        T sum = 0;
                        for (std::int64_t k = 0; k < n; ++k) sum += p[k];
                        q[x] = sum / T(n);
                    } else {
                        std::int64_t sum = 0;
                        for (std::int64_t k = 0; k < n; ++k) sum += p[k];
                        q[x] = T(sum > 0 ? (sum + n / 2) / n : (sum - n / 2) / n);
                    }
                }
            }
        });
    }

private:
    int bands_ = 1;
};

}  // namespace

OpSpec bandmean_op_spec() {
    return {"bandmean",
            "the mean of each pixel's bands, one band in the input format, integers rounded (libvips bandmean); "
            "halo: none",
            1,
            1,
            {},
            false,
            &make_op<BandmeanOp>,
            false,
            "bands",
            "0"};
}

}  // namespace tessera
