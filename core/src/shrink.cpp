// The box-shrink kernels (shrink.hpp says which rule each one matches).
#include "tessera/core/shrink.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <tmmintrin.h>
#define TESSERA_SHRINK_SSSE3 1
#endif

namespace tessera {

namespace {

// Average of n samples whose sum is s, stored as T the way vips_shrink
// does: (s + n / 2) / n, truncated toward zero, for integers; s / n for
// floats.
template <class T, class Acc>
T average(Acc s, int n) {
    if constexpr (std::is_integral_v<T>)
        return T((s + n / 2) / n);
    else
        return T(s / n);
}

// The same for sums in int32 (8/16-bit samples), through a double division,
// which vectorises where an integer division by a run-time n does not (a
// scalar divide per sample, the kernel's largest cost). The same bits:
// the quotient q = (s + n / 2) / n has |q| <= 65536, so the division's
// rounding error (< 2^-36) cannot carry a quotient that is not whole across
// a whole number (its fraction is at least 1 / n away, n < 2^31), and a
// whole quotient is exact; the conversion truncates toward zero as integer
// division does.
template <class T>
T average_int32(std::int32_t s, std::int32_t half, double n) {
    return T(double(s + half) / n);
}

// Case analysis inside a tile, per output row:
//  1. the vertical pass: each input column the row needs is averaged over
//     the row's vshrink input rows, rows past the bounds' bottom reading the
//     last row (the copy extension), and rounded to T (hshrink 1: straight
//     into the output row, there is nothing more to do);
//  2. the horizontal pass: each output pixel averages hshrink of those
//     column averages, columns past the bounds' right edge reading the last
//     column, and rounds to T again.
// Sums are int32 for 8/16-bit formats where n x the largest |sample| fits
// (u16: any box of fewer than 32768 samples), else int64 (libvips uses int for 8/16
// bit, which can only differ where libvips would overflow), double for
// floats.
template <class T, class Acc>
void shrink_box_rows(const ConstTile& src, const Tile& out, int hshrink, int vshrink, const Rect& bounds) {
    const int bands = out.bands;
    const Rect& box = src.rect;
    const int last_row = bounds.bottom() - 1;
    const int last_col = bounds.right() - 1;
    // the input columns the output's pixels read, as offsets into a row of src
    // (an output pixel wholly past the edge reads the last column)
    const int c0 = std::min(out.rect.x * hshrink, last_col);
    const int c1 = std::min(out.rect.right() * hshrink, last_col + 1);
    const bool direct = hshrink == 1 && c1 - c0 == out.rect.w;
    const std::size_t lo = std::size_t(c0 - box.x) * bands;
    const std::size_t n = std::size_t(c1 - c0) * bands;
    constexpr bool int32 = std::is_same_v<Acc, std::int32_t>;
    std::vector<Acc> sum(n);
    std::vector<T> mid(direct ? 0 : n);  // the row after the vertical pass
    const double vn = vshrink;
    for (int oy = out.rect.y; oy < out.rect.bottom(); ++oy) {
        // 1. vertical
        {
            const T* __restrict p = src.row<T>(std::min(oy * vshrink, last_row)) + lo;
            Acc* __restrict s = sum.data();
            for (std::size_t i = 0; i < n; ++i) s[i] = Acc(p[i]);
        }
        for (int k = 1; k < vshrink; ++k) {
            const T* __restrict p = src.row<T>(std::min(oy * vshrink + k, last_row)) + lo;
            Acc* __restrict s = sum.data();
            for (std::size_t i = 0; i < n; ++i) s[i] += p[i];
        }
        T* __restrict m = direct ? out.row<T>(oy) : mid.data();
        if constexpr (int32) {
            const std::int32_t half = vshrink / 2;
            for (std::size_t i = 0; i < n; ++i) m[i] = average_int32<T>(sum[i], half, vn);
        } else {
            for (std::size_t i = 0; i < n; ++i) m[i] = average<T>(sum[i], vshrink);
        }
        if (direct) continue;
        // 2. horizontal: mid's sample (col - c0) x bands + b is column col's
        T* q = out.row<T>(oy);
        const int hhalf = hshrink / 2;
        const double hn = hshrink;
        for (int ox = out.rect.x; ox < out.rect.right(); ++ox, q += bands) {
            const int first = std::min(ox * hshrink, last_col);
            const int k1 = std::min(hshrink, c1 - first);  // columns inside; the rest repeat the last
            const T* __restrict p = &mid[std::size_t(first - c0) * bands];
            for (int b = 0; b < bands; ++b) {
                Acc s = 0;
                for (int k = 0; k < k1; ++k) s += p[std::size_t(k) * bands + b];
                // added one by one, as a float sum must be to keep its bits
                for (int k = k1; k < hshrink; ++k) s += p[std::size_t(k1 - 1) * bands + b];
                if constexpr (int32)
                    q[b] = average_int32<T>(s, hhalf, hn);
                else
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

// set_shrink_simd's setting: whether shrink2x2_u8_simd may run.
std::atomic<bool> g_simd_allowed{true};

#if TESSERA_SHRINK_SSSE3
// The u8 2x2 mean with SSSE3 (Intel's x86-64 CPUs since 2006, AMD's since
// 2011; checked at run time), the same bits as the loops above,
// about 2x faster than the 3-pass loop on 256^2 RGB tiles (8.5 against
// 17.9 us). Output samples go in groups of 8: sample j of a row averages
// input samples s(j) and s(j) + B of both rows, s(j) = 2B (j / B) + j % B.
// One or two 16-byte loads per row cover a group's inputs; a byte shuffle
// puts each sample's two inputs side by side, and pmaddubsw (times 1)
// adds each pair into 16 bits. Then (row a + row b + 2) >> 2 and a pack.
// The shuffle pattern repeats every B / gcd(8, B) groups (3 for RGB, else 1).
// The row's samples past its last whole repeat take the scalar formula.
template <int B>
struct Ssse3Groups {
    static constexpr int groups = B == 3 ? 3 : 1;  // 8-sample groups per repeat (B = 1, 2, 3, 4)
    struct Group {
        int load0, load1;                          // byte offsets of the two loads in the repeat
        std::array<std::int8_t, 16> pick0, pick1;  // shuffle of each load (-128: zero)
    };
    static constexpr std::array<Group, groups> make() {
        std::array<Group, groups> out{};
        auto s = [](int j) { return 2 * B * (j / B) + j % B; };
        for (int g = 0; g < groups; ++g) {
            const int j0 = 8 * g;
            Group& G = out[std::size_t(g)];
            G.load0 = s(j0);
            G.load1 = std::max(s(j0), s(j0 + 7) + B - 15);  // ends at the group's last input byte
            for (int t = 0; t < 16; ++t) {
                const int byte = s(j0 + t / 2) + (t % 2) * B;
                const bool first = byte - G.load0 < 16;
                G.pick0[std::size_t(t)] = first ? std::int8_t(byte - G.load0) : std::int8_t(-128);
                G.pick1[std::size_t(t)] = first ? std::int8_t(-128) : std::int8_t(byte - G.load1);
            }
        }
        return out;
    }
    static constexpr std::array<Group, groups> table = make();
};

// One row's input pairs of a group, shuffled side by side and added.
__attribute__((target("ssse3"), always_inline)) inline __m128i ssse3_pairs(const std::uint8_t* p, int load0, int load1,
                                                                           __m128i pick0, __m128i pick1) {
    const __m128i x =
        _mm_or_si128(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + load0)), pick0),
                     _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + load1)), pick1));
    return _mm_maddubs_epi16(x, _mm_set1_epi8(1));
}

template <int B>
__attribute__((target("ssse3"))) void shrink2x2_u8_ssse3(const ConstTile& src, const Tile& dst) {
    constexpr auto& table = Ssse3Groups<B>::table;
    constexpr int groups = Ssse3Groups<B>::groups;
    constexpr int repeat = 8 * groups;  // output samples per repeat
    const int samples = dst.rect.w * B;
    const __m128i two = _mm_set1_epi16(2);
    __m128i pick0[groups], pick1[groups];
    for (int g = 0; g < groups; ++g) {
        pick0[g] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table[std::size_t(g)].pick0.data()));
        pick1[g] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table[std::size_t(g)].pick1.data()));
    }
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const std::uint8_t* a = src.row<std::uint8_t>(2 * y) + std::size_t(2 * dst.rect.x - src.rect.x) * B;
        const std::uint8_t* b = src.row<std::uint8_t>(2 * y + 1) + std::size_t(2 * dst.rect.x - src.rect.x) * B;
        std::uint8_t* o = dst.row<std::uint8_t>(y);
        int j = 0;
        for (; j + repeat <= samples; j += repeat) {
            __m128i mean[groups];
            for (int g = 0; g < groups; ++g) {
                const auto& G = table[std::size_t(g)];
                const __m128i sa = ssse3_pairs(a + 2 * j, G.load0, G.load1, pick0[g], pick1[g]);
                const __m128i sb = ssse3_pairs(b + 2 * j, G.load0, G.load1, pick0[g], pick1[g]);
                mean[g] = _mm_srli_epi16(_mm_add_epi16(_mm_add_epi16(sa, sb), two), 2);
            }
            if constexpr (groups == 3) {
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o + j), _mm_packus_epi16(mean[0], mean[1]));
                _mm_storel_epi64(reinterpret_cast<__m128i*>(o + j + 16), _mm_packus_epi16(mean[2], mean[2]));
            } else {
                _mm_storel_epi64(reinterpret_cast<__m128i*>(o + j), _mm_packus_epi16(mean[0], mean[0]));
            }
        }
        for (; j < samples; ++j) {  // the rest: input sample i = s(j)
            const std::size_t i = std::size_t(2 * B * (j / B) + j % B);
            o[j] = std::uint8_t((unsigned(a[i]) + a[i + B] + b[i] + b[i + B] + 2) >> 2);
        }
    }
}

// Runs the SSSE3 kernel for u8 with 1-4 bands where the CPU has it.
bool shrink2x2_u8_simd(const ConstTile& src, const Tile& dst) {
    static const bool has = __builtin_cpu_supports("ssse3");
    if (!has || !g_simd_allowed.load(std::memory_order_relaxed)) return false;
    switch (src.bands) {
        case 1: return shrink2x2_u8_ssse3<1>(src, dst), true;
        case 2: return shrink2x2_u8_ssse3<2>(src, dst), true;
        case 3: return shrink2x2_u8_ssse3<3>(src, dst), true;
        case 4: return shrink2x2_u8_ssse3<4>(src, dst), true;
        default: return false;
    }
}
#else
bool shrink2x2_u8_simd(const ConstTile&, const Tile&) { return false; }
#endif

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
    dispatch_format(dst.format, [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_floating_point_v<T>) {
            shrink_box_rows<T, double>(src, dst, hshrink, vshrink, bounds);
        } else {
            // the int32 path's bound: a box's sum and its rounding half
            const double most =
                std::max(-double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max()));
            const double worst = most * std::max(hshrink, vshrink) + std::max(hshrink, vshrink);
            if (sizeof(T) <= 2 && worst < double(std::numeric_limits<std::int32_t>::max()))
                shrink_box_rows<T, std::int32_t>(src, dst, hshrink, vshrink, bounds);
            else
                shrink_box_rows<T, std::int64_t>(src, dst, hshrink, vshrink, bounds);
        }
    });
}

bool set_shrink_simd(bool allowed) { return g_simd_allowed.exchange(allowed); }

void shrink2x2_mean(const ConstTile& src, const Tile& dst) {
    if (dst.rect.empty()) return;
    if (src.format == Format::u8 && shrink2x2_u8_simd(src, dst)) return;
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
