// The box-shrink kernels (shrink.hpp says which rule each one matches).
#include "tessera/core/shrink.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace tessera {

namespace {

// Average of n samples whose sum is s, stored as T the way vips_shrink does.
template <class T, class Acc>
T average(Acc s, int n) {
    if constexpr (std::is_integral_v<T>)
        return T((s + n / 2) / n);
    else
        return T(s / n);
}

// Case analysis inside a tile, per output row:
//  1. the vertical pass: each input column of src is averaged over the row's
//     vshrink input rows, rows past the bounds' bottom reading the last row
//     (the copy extension), and rounded to T;
//  2. the horizontal pass: each output pixel averages hshrink of those
//     column averages, columns past the bounds' right edge reading the last
//     column, and rounds to T again.
// Sums are int64 for every integer format (libvips uses int for 8/16 bit,
// which can only differ where libvips would overflow, at factors > 32768).
template <class T>
void shrink_box_rows(const ConstTile& src, const Tile& out, int hshrink, int vshrink, const Rect& bounds) {
    using Acc = std::conditional_t<std::is_integral_v<T>, std::int64_t, double>;
    const int bands = out.bands;
    const Rect& box = src.rect;
    const int last_row = bounds.bottom() - 1;
    const int last_col = bounds.right() - 1;
    std::vector<Acc> sum(std::size_t(box.w) * bands);
    std::vector<T> mid(std::size_t(box.w) * bands);  // the row after the vertical pass
    for (int oy = out.rect.y; oy < out.rect.bottom(); ++oy) {
        // 1. vertical
        std::fill(sum.begin(), sum.end(), Acc(0));
        for (int k = 0; k < vshrink; ++k) {
            const T* p = src.row<T>(std::min(oy * vshrink + k, last_row));
            for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += p[i];
        }
        for (std::size_t i = 0; i < sum.size(); ++i) mid[i] = average<T>(sum[i], vshrink);
        // 2. horizontal
        T* q = out.row<T>(oy);
        for (int ox = out.rect.x; ox < out.rect.right(); ++ox, q += bands) {
            for (int b = 0; b < bands; ++b) {
                Acc s = 0;
                for (int k = 0; k < hshrink; ++k) {
                    int col = std::min(ox * hshrink + k, last_col);
                    s += mid[std::size_t(col - box.x) * bands + b];
                }
                q[b] = average<T>(s, hshrink);
            }
        }
    }
}

// dst = the 2x2 mean of src, one pass. Sums in the narrowest type that
// cannot overflow (unsigned for u8/u16), which lets the compiler vectorise
// the loop; NB > 0 fixes the band count at compile time for the same reason.
template <class T, int NB>
void shrink2x2_mean_rows(const ConstTile& src, const Tile& dst, int nb) {
    const int bands = NB > 0 ? NB : nb;
    using Sum =
        std::conditional_t<std::is_floating_point_v<T>, double,
                           std::conditional_t<(sizeof(T) <= 2 && std::is_unsigned_v<T>), std::uint32_t, std::int64_t>>;
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const T* a = src.row<T>(2 * y) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
        const T* b = src.row<T>(2 * y + 1) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
        T* o = dst.row<T>(y);
        const int n = dst.rect.w;
        for (int x = 0; x < n; ++x, a += 2 * bands, b += 2 * bands, o += bands)
            for (int k = 0; k < bands; ++k) {
                Sum sum = Sum(a[k]) + Sum(a[bands + k]) + Sum(b[k]) + Sum(b[bands + k]);
                if constexpr (std::is_floating_point_v<T>)
                    o[k] = T(sum / 4);
                else
                    o[k] = T((sum + 2) >> 2);  // arithmetic shift: rounds half up, like libvips
            }
    }
}

// The same bits for u8 and u16, in three passes over each row that all run
// along contiguous samples (the one-pass loop above strides by 2 * bands,
// which the compiler cannot vectorise for 3 bands: measured 1.6x slower on
// 256^2 RGB tiles):
//  1. v = a + b, the column sums of the two input rows;
//  2. h[i] = (v[i] + v[i + bands] + 2) >> 2 for every sample i, the mean of
//     each pixel with its right neighbour (twice the work needed: the odd
//     pixels' means are thrown away, and that is still faster);
//  3. out pixel x = h's pixel 2x, copied whole; where a pixel is 3 or 6
//     bytes the copy is 4 or 8 bytes, its spare bytes overwritten by the
//     next pixel's copy (the last pixel copied exactly).
template <class T, int NB>
void shrink2x2_mean_rows_3pass(const ConstTile& src, const Tile& dst, int nb) {
    static_assert(std::is_unsigned_v<T> && sizeof(T) <= 2);
    using Sum = std::conditional_t<sizeof(T) == 1, std::uint16_t, std::uint32_t>;
    const int bands = NB > 0 ? NB : nb;
    const int n = dst.rect.w;
    const std::size_t m = std::size_t(2) * n * bands;  // input samples per row
    const std::size_t px = std::size_t(bands) * sizeof(T);
    const std::size_t wide = px == 3 ? 4 : px == 6 ? 8 : px;
    std::vector<Sum> v(m);
    std::vector<T> h(m + 8);
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const T* a = src.row<T>(2 * y) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
        const T* b = src.row<T>(2 * y + 1) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
        Sum* vs = v.data();
        T* hs = h.data();
        for (std::size_t i = 0; i < m; ++i) vs[i] = Sum(Sum(a[i]) + Sum(b[i]));
        for (std::size_t i = 0; i + bands < m; ++i) hs[i] = T((Sum(vs[i] + vs[i + bands]) + 2) >> 2);
        auto* o = reinterpret_cast<std::byte*>(dst.row<T>(y));
        const auto* hb = reinterpret_cast<const std::byte*>(hs);
        int x = 0;
        for (; x + 1 < n; ++x) std::memcpy(o + x * px, hb + 2 * x * px, wide);
        std::memcpy(o + x * px, hb + 2 * x * px, px);
    }
}

template <class T>
void shrink2x2_valid_rows(const ConstTile& src, const Tile& dst, double nodata) {
    const int bands = src.bands;
    const bool nan = std::isnan(nodata);
    const T nd = nan ? T(0) : T(nodata);
    auto valid = [&](T v) {
        if constexpr (std::is_floating_point_v<T>)
            return nan ? !std::isnan(v) : v != nd;
        else
            return v != nd;
    };
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const T* a = src.row<T>(2 * y) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
        const T* b = src.row<T>(2 * y + 1) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
        T* o = dst.row<T>(y);
        for (int x = 0; x < dst.rect.w; ++x, a += 2 * bands, b += 2 * bands, o += bands)
            for (int k = 0; k < bands; ++k) {
                const T v[4] = {a[k], a[bands + k], b[k], b[bands + k]};
                double sum = 0;
                int n = 0;
                for (T s : v)
                    if (valid(s)) sum += double(s), ++n;
                if (n == 0)
                    o[k] = nan ? T(nodata) : nd;
                else if constexpr (std::is_floating_point_v<T>)
                    o[k] = T(sum / n);
                else
                    o[k] = T(std::floor(sum / n + 0.5));
            }
    }
}

}  // namespace

void shrink_box(const ConstTile& src, const Tile& dst, int hshrink, int vshrink, const Rect& bounds) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format, [&](auto t) { shrink_box_rows<decltype(t)>(src, dst, hshrink, vshrink, bounds); });
}

void shrink2x2_mean(const ConstTile& src, const Tile& dst) {
    if (dst.rect.empty()) return;
    dispatch_format(src.format, [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_unsigned_v<T> && sizeof(T) <= 2) {
            switch (src.bands) {
                case 1: return shrink2x2_mean_rows_3pass<T, 1>(src, dst, 1);
                case 3: return shrink2x2_mean_rows_3pass<T, 3>(src, dst, 3);
                case 4: return shrink2x2_mean_rows_3pass<T, 4>(src, dst, 4);
                default: return shrink2x2_mean_rows_3pass<T, 0>(src, dst, src.bands);
            }
        } else {
            switch (src.bands) {
                case 1: return shrink2x2_mean_rows<T, 1>(src, dst, 1);
                case 3: return shrink2x2_mean_rows<T, 3>(src, dst, 3);
                case 4: return shrink2x2_mean_rows<T, 4>(src, dst, 4);
                default: return shrink2x2_mean_rows<T, 0>(src, dst, src.bands);
            }
        }
    });
}

void shrink2x2_valid_mean(const ConstTile& src, const Tile& dst, double nodata) {
    if (dst.rect.empty()) return;
    dispatch_format(src.format, [&](auto t) { shrink2x2_valid_rows<decltype(t)>(src, dst, nodata); });
}

void shrink2x2_pyramid(const ConstTile& src, const Tile& dst, const std::optional<double>& nodata) {
    const bool marks = nodata && dispatch_format(src.format, [&](auto t) {
                           using T = decltype(t);
                           return std::isnan(*nodata) ? std::is_floating_point_v<T>
                                                      : (*nodata >= double(std::numeric_limits<T>::lowest()) &&
                                                         *nodata <= double(std::numeric_limits<T>::max()) &&
                                                         double(T(*nodata)) == *nodata);
                       });
    if (marks)
        shrink2x2_valid_mean(src, dst, *nodata);
    else
        shrink2x2_mean(src, dst);
}

}  // namespace tessera
