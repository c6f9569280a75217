#include "kernels.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <utility>
#include <type_traits>

#include "tessera/core/format.hpp"

namespace tessera {

double kernel_support(Kernel k) {
    switch (k) {
        case Kernel::nearest: return 0;
        case Kernel::linear: return 1;
        case Kernel::cubic: return 2;
        case Kernel::lanczos3: return 3;
    }
    return 0;
}

double kernel_weight(Kernel k, double d) {
    const double a = std::fabs(d);
    switch (k) {
        case Kernel::nearest: return a < 0.5 ? 1 : 0;
        case Kernel::linear: return std::max(0.0, 1 - a);
        case Kernel::cubic:  // Catmull-Rom: B = 0, C = 0.5
            if (a < 1) return 1.5 * a * a * a - 2.5 * a * a + 1;
            if (a < 2) return -0.5 * a * a * a + 2.5 * a * a - 4 * a + 2;
            return 0;
        case Kernel::lanczos3: {
            if (a == 0) return 1;
            if (a >= 3) return 0;
            const double pi = std::numbers::pi;
            return 3 * std::sin(pi * a) * std::sin(pi * a / 3) / (pi * pi * a * a);
        }
    }
    return 0;
}

int Taps::lo() const {
    int v = std::numeric_limits<int>::max();
    for (int f : first) v = std::min(v, std::clamp(f, 0, size - 1));
    return first.empty() ? 0 : v;
}

int Taps::hi() const {
    int v = std::numeric_limits<int>::min();
    for (int f : first) v = std::max(v, std::clamp(f + n - 1, 0, size - 1) + 1);
    return first.empty() ? 0 : v;
}

Taps reduce_taps(Kernel k, double shrink, double offset, int size, int d0, int count, bool quantise) {
    Taps t;
    t.size = size;
    t.fixed = true;
    t.first.resize(std::size_t(count));
    if (k == Kernel::nearest) {
        t.n = 1;
        t.w.assign(std::size_t(count), 1.0);
        for (int i = 0; i < count; ++i) {
            const double u = (d0 + i + 0.5) * shrink - 0.5 - offset;
            t.first[std::size_t(i)] = int(std::floor(u + 0.5));
        }
        return t;
    }
    // vips_reduce_get_points: 2 rint(support * shrink) + 1
    const int half = int(std::rint(kernel_support(k) * shrink));
    t.n = 2 * half + 1;
    t.w.resize(std::size_t(count) * std::size_t(t.n));
    for (int i = 0; i < count; ++i) {
        double u = (d0 + i + 0.5) * shrink - 0.5 - offset;
        // the taps centred on the sample nearest u, as libvips (its masks
        // are built half a pixel on from the truncated position)
        const int c = int(std::floor(u + 0.5));
        if (quantise) {
            // libvips's mask tables: the position within its pixel rounded
            // to 1/64 (VIPS_TRANSFORM_SCALE; libvips/include/vips/
            // interpolate.h), ty = ((Y 128 & 127) + 1) >> 1
            const double y = u + 0.5;
            const int ty = ((int(std::floor(y * 128)) & 127) + 1) >> 1;
            u = c - 0.5 + ty / 64.0;
        }
        t.first[std::size_t(i)] = c - half;
        double* w = &t.w[std::size_t(i) * std::size_t(t.n)];
        double sum = 0;
        for (int j = 0; j < t.n; ++j) sum += w[j] = kernel_weight(k, (c - half + j - u) / shrink);
        for (int j = 0; j < t.n; ++j) w[j] /= sum;
    }
    return t;
}

Taps upscale_taps(Kernel k, double scale, double offset, int size, int d0, int count) {
    Taps t;
    t.size = size;
    t.first.resize(std::size_t(count));
    t.n = k == Kernel::nearest ? 1 : k == Kernel::linear ? 2 : 4;
    t.w.resize(std::size_t(count) * std::size_t(t.n));
    for (int i = 0; i < count; ++i) {
        const double u = (d0 + i) / scale - offset;
        const double f = std::floor(u), x = u - f;
        double* w = &t.w[std::size_t(i) * std::size_t(t.n)];
        if (t.n == 1) {
            t.first[std::size_t(i)] = int(f);
            w[0] = 1;
        } else if (t.n == 2) {
            t.first[std::size_t(i)] = int(f);
            w[0] = 1 - x, w[1] = x;
        } else {
            t.first[std::size_t(i)] = int(f) - 1;
            for (int j = 0; j < 4; ++j) w[j] = kernel_weight(Kernel::cubic, j - 1 - x);
        }
    }
    return t;
}

namespace {

// A double as a sample of T: integers rounded half up and clipped.
template <class T>
T to_sample(double v) {
    if constexpr (std::is_floating_point_v<T>) {
        return T(v);
    } else {
        const double r = std::floor(v + 0.5);
        if (!(r >= double(std::numeric_limits<T>::lowest()))) return std::numeric_limits<T>::lowest();
        if (r >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
        return T(r);
    }
}

constexpr int kFixedShift = 12;  // VIPS_INTERPOLATE_SHIFT

// libvips's fixed-point sum as a sample: unsigned_fixed_round or
// signed_fixed_round, then clipped. Acc is the sum's type (int32 where it
// cannot overflow, see fixed_weights32): the same bits either way.
template <class T, class Acc = std::int64_t>
T fixed_to_sample(Acc v) {
    constexpr Acc half = Acc(1) << (kFixedShift - 1);
    if constexpr (std::is_unsigned_v<T>)
        v = (v + half) >> kFixedShift;
    else
        v = (v + (v > 0 ? half : -half)) >> kFixedShift;
    return T(std::clamp<Acc>(v, Acc(std::numeric_limits<T>::lowest()), Acc(std::numeric_limits<T>::max())));
}

std::vector<std::int64_t> fixed_weights(const Taps& t) {
    std::vector<std::int64_t> iw(t.w.size());
    for (std::size_t i = 0; i < iw.size(); ++i) iw[i] = std::int64_t(int(t.w[i] * (1 << kFixedShift)));
    return iw;
}

// The weights as int32 when T's fixed-point sums fit int32 for every output
// (the largest |sum| is max |sample| x the largest sum of |weights| of one
// output, plus the rounding half: lanczos3's |weights| sum to at most about
// 1.54 x 4096 at the shrinks resize uses, so u16's worst is near 4.1e8, far
// below 2^31), else none. int32 sums vectorise twice as wide and multiply
// natively, which int64 does not before AVX-512.
template <class T>
std::optional<std::vector<std::int32_t>> fixed_weights32(const std::vector<std::int64_t>& iw, int n) {
    if constexpr (!std::is_integral_v<T> || sizeof(T) > 2) {
        return std::nullopt;
    } else {
        const double most =
            std::max(std::fabs(double(std::numeric_limits<T>::lowest())), double(std::numeric_limits<T>::max()));
        std::int64_t worst = 0;
        for (std::size_t i = 0; i + std::size_t(n) <= iw.size(); i += std::size_t(n)) {
            std::int64_t s = 0;
            for (int j = 0; j < n; ++j) s += std::abs(iw[i + std::size_t(j)]);
            worst = std::max(worst, s);
        }
        if (double(worst) * most + (1 << kFixedShift) >= double(std::numeric_limits<std::int32_t>::max()))
            return std::nullopt;
        return std::vector<std::int32_t>(iw.begin(), iw.end());
    }
}

// One output row of the vertical pass: q[i] = sum_j w[j] p_j[i], the sums
// kept for a block of samples across every tap (in registers or L1) rather
// than a whole row's accumulators swept once per tap.
template <class T, class Acc>
TESSERA_VECTOR_CLONES void fixed_row(const T* const* rows, const Acc* w, int taps, std::size_t n, T* __restrict q) {
    constexpr std::size_t kBlock = 64;
    for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
        const std::size_t m = std::min(kBlock, n - i0);
        Acc acc[kBlock] = {};
        for (int j = 0; j < taps; ++j) {
            const T* __restrict p = rows[j] + i0;
            const Acc wj = w[j];
            for (std::size_t k = 0; k < m; ++k) acc[k] += wj * Acc(p[k]);
        }
        for (std::size_t k = 0; k < m; ++k) q[i0 + k] = fixed_to_sample<T, Acc>(acc[k]);
    }
}

template <class T, class Acc>
void rows_fixed_as(const ConstTile& src, const Taps& t, const std::vector<Acc>& iw, const Tile& dst) {
    const std::size_t n = std::size_t(dst.rect.w) * std::size_t(dst.bands);
    std::vector<const T*> rows;
    std::vector<Acc> w;
    for (int y = 0; y < dst.rect.h; ++y) {
        // the taps of this row with a weight (a zero one reads nothing)
        rows.clear();
        w.clear();
        for (int j = 0; j < t.n; ++j) {
            const Acc wj = iw[std::size_t(y) * std::size_t(t.n) + std::size_t(j)];
            if (wj == 0) continue;
            const int sy = std::clamp(t.first[std::size_t(y)] + j, 0, t.size - 1);
            rows.push_back(reinterpret_cast<const T*>(src.at(dst.rect.x, sy)));
            w.push_back(wj);
        }
        fixed_row<T, Acc>(rows.data(), w.data(), int(w.size()), n, dst.row<T>(dst.rect.y + y));
    }
}

template <class T>
void rows_fixed(const ConstTile& src, const Taps& t, const Tile& dst) {
    const std::vector<std::int64_t> iw = fixed_weights(t);
    if (const auto iw32 = fixed_weights32<T>(iw, t.n))
        rows_fixed_as<T, std::int32_t>(src, t, *iw32, dst);
    else
        rows_fixed_as<T, std::int64_t>(src, t, iw, dst);
}

template <class T>
void rows_kernel(const ConstTile& src, const Taps& t, const Tile& dst) {
    if constexpr (std::is_integral_v<T>)
        if (t.fixed) return rows_fixed<T>(src, t, dst);
    const std::size_t n = std::size_t(dst.rect.w) * std::size_t(dst.bands);
    std::vector<double> acc(n);
    for (int y = 0; y < dst.rect.h; ++y) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const double* w = &t.w[std::size_t(y) * std::size_t(t.n)];
        for (int j = 0; j < t.n; ++j) {
            if (w[j] == 0) continue;
            const int sy = std::clamp(t.first[std::size_t(y)] + j, 0, t.size - 1);
            const T* __restrict p = reinterpret_cast<const T*>(src.at(dst.rect.x, sy));
            const double wj = w[j];
            for (std::size_t i = 0; i < n; ++i) acc[i] += wj * double(p[i]);
        }
        T* __restrict q = dst.row<T>(dst.rect.y + y);
        for (std::size_t i = 0; i < n; ++i) q[i] = to_sample<T>(acc[i]);
    }
}

// The horizontal pass's fixed-point sums; off holds each output column's
// source sample offsets (clamped), as columns_kernel made them.
template <class T, class Acc>
void columns_fixed(const ConstTile& src, const Taps& t, const std::vector<Acc>& iw, const std::vector<std::size_t>& off,
                   const Tile& dst) {
    const int bands = dst.bands;
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const T* __restrict p = src.row<T>(y);
        T* __restrict q = dst.row<T>(y);
        for (int x = 0; x < dst.rect.w; ++x) {
            const Acc* w = &iw[std::size_t(x) * std::size_t(t.n)];
            const std::size_t* o = &off[std::size_t(x) * std::size_t(t.n)];
            for (int b = 0; b < bands; ++b) {
                Acc s = 0;
                for (int j = 0; j < t.n; ++j) s += w[j] * Acc(p[o[j] + std::size_t(b)]);
                q[std::size_t(x) * bands + b] = fixed_to_sample<T, Acc>(s);
            }
        }
    }
}

template <class T>
void columns_kernel(const ConstTile& src, const Taps& t, const Tile& dst) {
    const int bands = dst.bands;
    // per output column: the clamped source columns' offsets in a row
    std::vector<std::size_t> off(std::size_t(dst.rect.w) * std::size_t(t.n));
    for (int x = 0; x < dst.rect.w; ++x)
        for (int j = 0; j < t.n; ++j)
            off[std::size_t(x) * std::size_t(t.n) + std::size_t(j)] =
                std::size_t(std::clamp(t.first[std::size_t(x)] + j, 0, t.size - 1) - src.rect.x) * std::size_t(bands);
    if constexpr (std::is_integral_v<T>) {
        if (t.fixed) {
            const std::vector<std::int64_t> iw = fixed_weights(t);
            if (const auto iw32 = fixed_weights32<T>(iw, t.n))
                columns_fixed<T, std::int32_t>(src, t, *iw32, off, dst);
            else
                columns_fixed<T, std::int64_t>(src, t, iw, off, dst);
            return;
        }
    }
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const T* __restrict p = src.row<T>(y);
        T* __restrict q = dst.row<T>(y);
        for (int x = 0; x < dst.rect.w; ++x) {
            const double* w = &t.w[std::size_t(x) * std::size_t(t.n)];
            const std::size_t* o = &off[std::size_t(x) * std::size_t(t.n)];
            for (int b = 0; b < bands; ++b) {
                double s = 0;
                for (int j = 0; j < t.n; ++j) s += w[j] * double(p[o[j] + std::size_t(b)]);
                q[std::size_t(x) * bands + b] = to_sample<T>(s);
            }
        }
    }
}

int interp_points(Interpolator ip) { return ip == Interpolator::nearest ? 1 : ip == Interpolator::bilinear ? 2 : 4; }

// Positions whose floor lies outside [-1, size) give the background (see
// the header); the whole position range of a pixel is kept far from int
// overflow by this test too.
bool inside(double u, int size) { return u >= -1 && u < size; }

// libvips's Catmull-Rom coefficients for an offset x in [0, 1]
// (calculate_coefficients_catmull, the same operations in the same order).
void catmull(double x, double c[4]) {
    const double cr1 = 1. - x;
    const double cr2 = -.5 * x;
    const double cr3 = cr1 * cr2;
    const double cone = cr1 * cr3;
    const double cfou = x * cr3;
    const double cr4 = cfou - cone;
    const double ctwo = cr1 - cone + cr4;
    const double cthr = x - cfou - cr4;
    c[0] = cone, c[1] = ctwo, c[2] = cthr, c[3] = cfou;
}

// The position within its pixel as libvips's tables index it: rounded to
// 1/64 (VIPS_TRANSFORM_SCALE), tx = ((int(x 128) & 127) + 1) >> 1, from
// the position in libvips's padded input (x + the window offset, >= 0).
int table_index(double padded) { return ((int(padded * 128) & 127) + 1) >> 1; }

template <class T>
T fixed_round(std::int64_t v) {
    if constexpr (std::is_unsigned_v<T>)
        return T(std::clamp<std::int64_t>((v + 2048) >> 12, 0, std::numeric_limits<T>::max()));
    else
        return T(std::clamp<std::int64_t>((v + (v > 0 ? 2048 : -2048)) >> 12, std::numeric_limits<T>::lowest(),
                                          std::numeric_limits<T>::max()));
}

// The arithmetic of libvips 8.14's interpolators (resample/interpolate.c,
// bicubic.cpp), as measured against the installed library:
//  - bilinear: float weights from the exact offsets (c4 = Y X, c2 = (1 - Y)
//    X, c3 = Y - c4, c1 = 1 - Y - c2); u8: each weight x 4096 truncated,
//    (sum + 2048) >> 12; 16-bit: the float sum rounded (within 24 levels
//    of libvips, whose 16-bit rounding this does not reproduce); other
//    formats: the float sum in the format's type (double for f64);
//  - bicubic: the offsets rounded to 1/64 for the coefficient tables
//    (except f64: exact); u8: weights x 4096 truncated, each row rounded
//    then the column; other formats: each row summed in double, then the
//    column, stored as the format (integers truncated; libvips's 16-bit
//    path is its float one).
// v as a C conversion to T would store it (floats rounded to T, integers
// truncated toward zero), kept in double and unclipped, as libvips's
// float-table bicubic passes its row sums on.
template <class T>
double as_sample(double v) {
    if constexpr (std::is_floating_point_v<T>)
        return double(T(v));
    else
        return std::trunc(v);
}
template <class T>
double clip_sample(double v) {
    if constexpr (std::is_floating_point_v<T>)
        return v;
    else
        return std::clamp(v, double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max()));
}

template <class T>
struct Interp {
    static T bilinear(const T* p1, const T* p2, const T* p3, const T* p4, float X, float Y) {
        const float Yd = 1.0f - Y;
        const float c4 = Y * X, c2 = Yd * X, c3 = Y - c4, c1 = Yd - c2;
        if constexpr (std::is_integral_v<T> && sizeof(T) == 1) {
            const int s1 = int(4096 * c1), s2 = int(4096 * c2), s3 = int(4096 * c3), s4 = int(4096 * c4);
            return T((s1 * int(*p1) + s2 * int(*p2) + s3 * int(*p3) + s4 * int(*p4) + 2048) >> 12);
        } else if constexpr (std::is_same_v<T, double>) {
            return c1 * *p1 + c2 * *p2 + c3 * *p3 + c4 * *p4;
        } else if constexpr (std::is_integral_v<T> && sizeof(T) == 2) {
            return T(clip_sample<T>(c1 * float(*p1) + c2 * float(*p2) + c3 * float(*p3) + c4 * float(*p4) + 0.5f));
        } else {
            return T(clip_sample<T>(c1 * float(*p1) + c2 * float(*p2) + c3 * float(*p3) + c4 * float(*p4)));
        }
    }
};

template <class T>
void affine_kernel(const ConstTile& src, const Rect& bounds, const InverseAffine& m, Interpolator ip, bool copy_edges,
                   const std::vector<double>& bg, const Tile& dst) {
    const int bands = dst.bands;
    const int np = interp_points(ip), back = ip == Interpolator::bicubic ? 1 : 0;
    std::vector<T> bgs(static_cast<std::size_t>(bands));
    for (int b = 0; b < bands; ++b) bgs[std::size_t(b)] = to_sample<T>(bg[std::size_t(bg.size() == 1 ? 0 : b)]);
    // the window of samples, edges resolved (background or copy)
    std::vector<T> win(std::size_t(np * np * bands));
    // libvips's bicubic tables: 65 offsets
    static const auto tables = [] {
        std::array<std::array<double, 4>, 65> f{};
        std::array<std::array<int, 4>, 65> i{};
        for (int t = 0; t <= 64; ++t) {
            catmull(double(float(t) / 64), f[std::size_t(t)].data());
            for (int k = 0; k < 4; ++k)
                i[std::size_t(t)][std::size_t(k)] = int(f[std::size_t(t)][std::size_t(k)] * 4096);
        }
        return std::pair{f, i};
    }();
    for (int Y = dst.rect.y; Y < dst.rect.bottom(); ++Y) {
        T* q = dst.row<T>(Y);
        for (int X = dst.rect.x; X < dst.rect.right(); ++X, q += bands) {
            // each pixel's position from its own coordinates (not stepped
            // along the row), so a pixel's value does not depend on where
            // its tile starts
            const double u = m[0] * X + m[1] * Y + m[2] - bounds.x;
            const double v = m[3] * X + m[4] * Y + m[5] - bounds.y;
            if (!inside(u, bounds.w) || !inside(v, bounds.h)) {
                for (int b = 0; b < bands; ++b) q[b] = bgs[std::size_t(b)];
                continue;
            }
            // (libvips reads the input padded by the window's offset, where
            // positions are >= 0: its tables index that position)
            const double pu = u + back, pv = v + back;
            const int iu = int(std::floor(u)), iv = int(std::floor(v));
            const int x0 = iu - back, y0 = iv - back;
            for (int j = 0; j < np; ++j)
                for (int i = 0; i < np; ++i) {
                    int sx = x0 + i, sy = y0 + j;
                    T* w = &win[std::size_t((j * np + i) * bands)];
                    const bool out = sx < 0 || sx >= bounds.w || sy < 0 || sy >= bounds.h;
                    if (out && !copy_edges) {
                        for (int b = 0; b < bands; ++b) w[b] = bgs[std::size_t(b)];
                        continue;
                    }
                    sx = std::clamp(sx, 0, bounds.w - 1) + bounds.x;
                    sy = std::clamp(sy, 0, bounds.h - 1) + bounds.y;
                    std::memcpy(w, src.at(sx, sy), std::size_t(bands) * sizeof(T));
                }
            if (ip == Interpolator::nearest) {
                std::memcpy(q, win.data(), std::size_t(bands) * sizeof(T));
                continue;
            }
            if (ip == Interpolator::bilinear) {
                const float fx = float(u - iu), fy = float(v - iv);
                const std::size_t rb = std::size_t(2 * bands);
                for (int b = 0; b < bands; ++b)
                    q[b] = Interp<T>::bilinear(&win[std::size_t(b)], &win[std::size_t(bands + b)],
                                               &win[rb + std::size_t(b)], &win[rb + std::size_t(bands + b)], fx, fy);
                continue;
            }
            // bicubic
            const std::size_t rb = std::size_t(4 * bands);
            if constexpr (std::is_same_v<T, double>) {
                double cx[4], cy[4];
                catmull(u - iu, cx);
                catmull(v - iv, cy);
                for (int b = 0; b < bands; ++b) {
                    double r[4];
                    for (int j = 0; j < 4; ++j) {
                        const T* w = &win[std::size_t(j) * rb + std::size_t(b)];
                        r[j] = cx[0] * w[0] + cx[1] * w[bands] + cx[2] * w[2 * bands] + cx[3] * w[3 * bands];
                    }
                    q[b] = cy[0] * r[0] + cy[1] * r[1] + cy[2] * r[2] + cy[3] * r[3];
                }
            } else {
                const int tx = table_index(pu), ty = table_index(pv);
                if constexpr (std::is_integral_v<T> && sizeof(T) == 1) {
                    const auto& cx = tables.second[std::size_t(tx)];
                    const auto& cy = tables.second[std::size_t(ty)];
                    for (int b = 0; b < bands; ++b) {
                        std::int64_t r[4];
                        for (int j = 0; j < 4; ++j) {
                            const T* w = &win[std::size_t(j) * rb + std::size_t(b)];
                            const std::int64_t s = std::int64_t(cx[0]) * w[0] + std::int64_t(cx[1]) * w[bands] +
                                                   std::int64_t(cx[2]) * w[2 * bands] +
                                                   std::int64_t(cx[3]) * w[3 * bands];
                            // libvips rounds each row in int, unclipped
                            r[j] = std::is_unsigned_v<T> ? (s + 2048) >> 12 : (s + (s > 0 ? 2048 : -2048)) >> 12;
                        }
                        q[b] = fixed_round<T>(cy[0] * r[0] + cy[1] * r[1] + cy[2] * r[2] + cy[3] * r[3]);
                    }
                } else {
                    const auto& cx = tables.first[std::size_t(tx)];
                    const auto& cy = tables.first[std::size_t(ty)];
                    // each row's sum as a sample (truncated, for integers),
                    // then the column's
                    for (int b = 0; b < bands; ++b) {
                        double r[4];
                        for (int j = 0; j < 4; ++j) {
                            const T* w = &win[std::size_t(j) * rb + std::size_t(b)];
                            r[j] = cx[0] * w[0] + cx[1] * w[bands] + cx[2] * w[2 * bands] + cx[3] * w[3 * bands];
                            if constexpr (std::is_floating_point_v<T>) r[j] = as_sample<T>(r[j]);
                        }
                        q[b] =
                            T(clip_sample<T>(as_sample<T>(cy[0] * r[0] + cy[1] * r[1] + cy[2] * r[2] + cy[3] * r[3])));
                    }
                }
            }
        }
    }
}

}  // namespace

void resample_rows(const ConstTile& src, const Taps& taps, const Tile& dst) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format, [&](auto zero) { rows_kernel<decltype(zero)>(src, taps, dst); });
}

void resample_columns(const ConstTile& src, const Taps& taps, const Tile& dst) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format, [&](auto zero) { columns_kernel<decltype(zero)>(src, taps, dst); });
}

Rect affine_support(const Rect& dst, const InverseAffine& m, Interpolator ip, const Rect& bounds) {
    if (dst.empty() || bounds.empty()) return {bounds.x, bounds.y, 0, 0};
    // The map is affine, so the positions of dst's pixels lie in the hull
    // of its four corner pixels' positions.
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (int X : {dst.x, dst.right() - 1})
        for (int Y : {dst.y, dst.bottom() - 1}) {
            const double u = m[0] * X + m[1] * Y + m[2], v = m[3] * X + m[4] * Y + m[5];
            x0 = std::min(x0, u), x1 = std::max(x1, u), y0 = std::min(y0, v), y1 = std::max(y1, v);
        }
    const int np = interp_points(ip), back = ip == Interpolator::bicubic ? 1 : 0;
    // clamp before the conversion: a far-off position must not overflow int
    auto lo = [&](double u, int a, int b) {
        return int(std::clamp(std::floor(u), double(a) - 8, double(b) + 8)) - back;
    };
    auto hi = [&](double u, int a, int b) {
        return int(std::clamp(std::floor(u), double(a) - 8, double(b) + 8)) - back + np;
    };
    // one more sample each side for the rounding of the corner positions
    Rect r{lo(x0, bounds.x, bounds.right()) - 1, lo(y0, bounds.y, bounds.bottom()) - 1, 0, 0};
    r.w = hi(x1, bounds.x, bounds.right()) + 1 - r.x;
    r.h = hi(y1, bounds.y, bounds.bottom()) + 1 - r.y;
    return r.intersect(bounds);
}

void affine_sample(const ConstTile& src, const Rect& bounds, const InverseAffine& m, Interpolator ip, bool copy_edges,
                   const std::vector<double>& background, const Tile& dst) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format,
                    [&](auto zero) { affine_kernel<decltype(zero)>(src, bounds, m, ip, copy_edges, background, dst); });
}

}  // namespace tessera

namespace tessera {

GeoRef mapped_geo(const GeoRef& g, const InverseAffine& m) {
    GeoRef o = g;
    const auto& t = g.transform;
    auto& u = o.transform;
    // X_geo = t0 + x t1 + y t2 with x = m0 X + m1 Y + m2, y = m3 X + m4 Y + m5
    u[0] = t[0] + m[2] * t[1] + m[5] * t[2];
    u[1] = m[0] * t[1] + m[3] * t[2];
    u[2] = m[1] * t[1] + m[4] * t[2];
    u[3] = t[3] + m[2] * t[4] + m[5] * t[5];
    u[4] = m[0] * t[4] + m[3] * t[5];
    u[5] = m[1] * t[4] + m[4] * t[5];
    return o;
}

void remap_pixels(const ConstTile& src, const InverseAffine& m, const Tile& dst) {
    const std::size_t ps = dst.pixel_bytes();
    const int a = int(m[0]), b = int(m[1]), c = int(m[2]), d = int(m[3]), e = int(m[4]), f = int(m[5]);
    for (int Y = dst.rect.y; Y < dst.rect.bottom(); ++Y) {
        std::byte* q = dst.at(dst.rect.x, Y);
        if (a == 1 && b == 0 && d == 0) {  // rows kept in order: one copy
            std::memcpy(q, src.at(dst.rect.x + c, e * Y + f), dst.row_bytes());
            continue;
        }
        for (int X = dst.rect.x; X < dst.rect.right(); ++X, q += ps)
            std::memcpy(q, src.at(a * X + b * Y + c, d * X + e * Y + f), ps);
    }
}

}  // namespace tessera

namespace tessera {

Mask intize(const Mask& m) {
    Mask o = m;
    for (double& v : o.c) v = std::rint(v);
    // libvips's vips__image_intize goes on to move the scale by the gain the
    // rounding lost, but convi's C path never divides by that: it reads the
    // scale and offset off the mask it was given (vips_convi_gen), rint.
    o.scale = std::rint(m.scale);
    if (o.scale == 0) o.scale = 1;  // (libvips would divide by zero; conv refuses such a scale)
    o.offset = std::rint(m.offset);
    return o;
}

namespace {

// Per output row, each mask row's source row is read in place when the
// tile's columns need no clamping (or copied once with its columns
// clamped, the copy extension, at the image's left and right edges), then
// the nonzero coefficients are added over the whole row at their column
// shifts: contiguous loops the compiler vectorises (a row of interleaved
// bands is one run of samples, each tap a shift by whole pixels). Up to
// four terms go through the row of sums at a time, and the last ones
// straight into the output, so the sums touch memory twice for a 7-tap
// mask instead of eight times; each sample's terms are still summed in mask
// order, from 0 (so float sums round as libvips's do). The row of sums and
// the padded rows are the thread's, kept from tile to tile.
//
// Integer sums run in the narrowest lanes no partial sum can overflow:
// 16-bit for 8-bit samples when sum(|c|) x 255 < 2^15 (gaussblur's masks,
// a 3x3 edge mask), else 32-bit, else 64-bit. The division by the scale,
// C's truncating n / d, which libvips does in scalar code and x86 has no
// vector instruction for, is done exactly as
// sign(n d) trunc((|n| + 1/2) x fl(1 / |d|)) in F lanes: (|n| + 1/2) / |d|
// lies at least 1 / (2 |d|) from every whole number, and the product's
// relative error is below 2 u (u: F's unit roundoff), so it truncates to
// floor(|n| / |d|) whenever (|n| + 1/2) 2 u < 1 / 2: |n| < 2^21 in float
// (u = 2^-24; |d| < 2^24, so that it converts exactly) and every 32-bit n
// in double (u = 2^-53). 64-bit sums divide in integers.
//
// On x86-64 the convolution is built twice, for the baseline (SSE2) and
// for AVX2, and the loader picks one by the CPU (GCC's target_clones): the
// same integer operations and the same IEEE float operations (AVX2 brings
// no fused multiply-add), so the same bits (TESSERA_VECTOR_CLONES,
// kernels.hpp).

// A mask's nonzero coefficient (libvips squeezes the zeros out).
template <class A>
struct Term {
    A c;
    int j;           // mask row
    std::size_t at;  // column shift, in samples
};

// What a thread keeps from tile to tile.
template <class S, class A>
struct ConvScratch {
    std::vector<S> pad;
    std::vector<const S*> rows;
    std::vector<A> acc;
    std::vector<std::ptrdiff_t> col;
    std::vector<Term<A>> terms;
    static ConvScratch& mine() {
        thread_local ConvScratch s;
        return s;
    }
};

// sum_k c[k] p[k][e] for G terms, added to a[e] (from 0 if First), in order.
template <int G, bool First, class P, class A>
[[gnu::always_inline]] inline A terms_at(const A* a, const P& p, const A* c, std::size_t e) {
    A s = First ? A(0) : a[e];
    s = A(s + c[0] * A(p[0][e]));
    if constexpr (G > 1) s = A(s + c[1] * A(p[1][e]));
    if constexpr (G > 2) s = A(s + c[2] * A(p[2][e]));
    if constexpr (G > 3) s = A(s + c[3] * A(p[3][e]));
    return s;
}

template <int G, bool First, class S, class A>
[[gnu::always_inline]] inline void add_terms(A* __restrict a, const S* const* pp, const A* c, std::size_t n) {
    const S* __restrict p[4] = {pp[0], G > 1 ? pp[1] : pp[0], G > 2 ? pp[2] : pp[0], G > 3 ? pp[3] : pp[0]};
    for (std::size_t e = 0; e < n; ++e) a[e] = terms_at<G, First>(a, p, c, e);
}

// The last G terms of a row (First: the only ones), each sum then stored.
template <int G, bool First, class S, class A, class Store>
[[gnu::always_inline]] inline void last_terms(const A* __restrict a, const S* const* pp, const A* c, std::size_t n,
                                              Store store) {
    const S* __restrict p[4] = {pp[0], G > 1 ? pp[1] : pp[0], G > 2 ? pp[2] : pp[0], G > 3 ? pp[3] : pp[0]};
    for (std::size_t e = 0; e < n; ++e) store(e, terms_at<G, First>(a, p, c, e));
}

template <class S, class D, bool Int, class A, class F = double>
TESSERA_VECTOR_CLONES void convolve_as(const ConstTile& src, const Rect& bounds, const Mask& m, const Tile& dst) {
    const Rect& r = dst.rect;
    const int nb = dst.bands;
    const std::size_t n = std::size_t(r.w) * std::size_t(nb);             // samples per output row
    const std::size_t pn = std::size_t(r.w + m.w - 1) * std::size_t(nb);  // per padded row
    const bool inside = r.x - m.left() >= bounds.x && r.right() + m.right() <= bounds.right();
    ConvScratch<S, A>& k = ConvScratch<S, A>::mine();
    if (!inside) k.pad.resize(std::size_t(m.h) * pn);
    k.rows.resize(std::size_t(m.h));
    k.acc.resize(n);
    k.col.resize(std::size_t(r.w + m.w - 1));
    for (std::size_t x = 0; x < k.col.size(); ++x)
        k.col[x] = std::ptrdiff_t(std::clamp(r.x + int(x) - m.left(), bounds.x, bounds.right() - 1) - src.rect.x) * nb;
    k.terms.clear();
    for (int j = 0; j < m.h; ++j)
        for (int i = 0; i < m.w; ++i) {
            const double v = m.c[std::size_t(j) * std::size_t(m.w) + std::size_t(i)];
            if (v != 0) k.terms.push_back({A(v), j, std::size_t(i) * std::size_t(nb)});
        }
    const std::size_t nt = k.terms.size();
    // the integer rounding, scale and offset from the mask, not A (a 16-bit
    // sum's scale may not fit 16 bits)
    using I = std::conditional_t<sizeof(A) <= 4, std::int32_t, long long>;
    const I rnd = I((long long)m.scale / 2), off = I(m.offset);
    const F rcp = F(1) / F(m.scale);
    const double dscale = m.scale, doffset = m.offset;
    for (int y = r.y; y < r.bottom(); ++y) {
        D* __restrict q = dst.row<D>(y);
        for (int j = 0; j < m.h; ++j) {
            const S* p = src.row<S>(std::clamp(y + j - m.up(), bounds.y, bounds.bottom() - 1));
            if (inside) {
                k.rows[std::size_t(j)] = p + k.col[0];
                continue;
            }
            S* o = k.pad.data() + std::size_t(j) * pn;
            for (std::size_t x = 0; x < k.col.size(); ++x)
                for (int b = 0; b < nb; ++b) *o++ = p[k.col[x] + b];
            k.rows[std::size_t(j)] = k.pad.data() + std::size_t(j) * pn;
        }
        // each sum as a sample of D (the lambda holds copies: through the
        // mask, every step would reload the scale, and the loop stay scalar)
        auto store = [q, rnd, rcp, off, dscale, doffset](std::size_t e, A sum) {
            if constexpr (Int && sizeof(A) <= 4) {
                const std::int32_t v = std::int32_t(sum) + rnd;
                const F t = F(v) + (v < 0 ? F(-0.5) : F(0.5));
                const std::int32_t s = std::int32_t(t * rcp) + off;
                q[e] = D(std::min(std::max(s, std::int32_t(std::numeric_limits<D>::lowest())),
                                  std::int32_t(std::numeric_limits<D>::max())));
            } else if constexpr (Int) {
                const long long v = (sum + rnd) / (long long)dscale + off;
                q[e] = D(std::clamp<long long>(v, (long long)std::numeric_limits<D>::lowest(),
                                               (long long)std::numeric_limits<D>::max()));
            } else {
                q[e] = D(sum / dscale + doffset);
            }
        };
        if (nt == 0) {
            for (std::size_t e = 0; e < n; ++e) store(e, A(0));
            continue;
        }
        // the terms in groups of four: all but the last group through the
        // row of sums, the last into the output
        A* __restrict a = k.acc.data();
        for (std::size_t t0 = 0; t0 < nt;) {
            const std::size_t g = std::min<std::size_t>(4, nt - t0);
            const S* p[4] = {};
            A c[4] = {};
            for (std::size_t i = 0; i < g; ++i) {
                const Term<A>& t = k.terms[t0 + i];
                p[i] = k.rows[std::size_t(t.j)] + t.at;
                c[i] = t.c;
            }
            const bool first = t0 == 0, last = t0 + g == nt;
            t0 += g;
            if (last) {
                switch (g * 2 + first) {
                    case 2: last_terms<1, false>(a, p, c, n, store); break;
                    case 3: last_terms<1, true>(a, p, c, n, store); break;
                    case 4: last_terms<2, false>(a, p, c, n, store); break;
                    case 5: last_terms<2, true>(a, p, c, n, store); break;
                    case 6: last_terms<3, false>(a, p, c, n, store); break;
                    case 7: last_terms<3, true>(a, p, c, n, store); break;
                    case 8: last_terms<4, false>(a, p, c, n, store); break;
                    default: last_terms<4, true>(a, p, c, n, store); break;
                }
            } else if (first) {
                add_terms<4, true>(a, p, c, n);  // not the last group: a full one
            } else {
                add_terms<4, false>(a, p, c, n);
            }
        }
    }
}

}  // namespace

void convolve(const ConstTile& src, const Rect& bounds, const Mask& m, bool integer, const Tile& dst) {
    dispatch_format(src.format, [&](auto s0) {
        using S = decltype(s0);
        dispatch_format(dst.format, [&](auto d0) {
            using D = decltype(d0);
            if constexpr (std::is_integral_v<S> && std::is_same_v<S, D>) {
                if (integer) {
                    // the largest |partial sum|, and |n| with the rounding
                    double reach = 0;
                    for (double v : m.c) reach += std::abs(v);
                    const double sums = reach * std::max(-double(std::numeric_limits<S>::lowest()),
                                                         double(std::numeric_limits<S>::max()));
                    const double num = sums + std::abs(double((long long)m.scale / 2));
                    if constexpr (sizeof(S) <= 2) {
                        if (num + std::abs(m.offset) < 2147483647.0) {
                            const bool f32 = num < double(1 << 21) && std::abs(m.scale) < double(1 << 24);
                            if constexpr (sizeof(S) == 1)
                                if (sums < 32768) {
                                    if (f32) return convolve_as<S, D, true, std::int16_t, float>(src, bounds, m, dst);
                                    return convolve_as<S, D, true, std::int16_t, double>(src, bounds, m, dst);
                                }
                            if (f32) return convolve_as<S, D, true, std::int32_t, float>(src, bounds, m, dst);
                            return convolve_as<S, D, true, std::int32_t, double>(src, bounds, m, dst);
                        }
                    }
                    return convolve_as<S, D, true, long long>(src, bounds, m, dst);
                }
            }
            convolve_as<S, D, false, double>(src, bounds, m, dst);
        });
    });
}

}  // namespace tessera
