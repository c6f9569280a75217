#include "resample.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tessera/core/format.hpp"

namespace tessera {
namespace {

// The two samples and the weight of the second for destination columns
// [d0, d0 + n) shifted by `shift`, within [lo, hi): every column's u is
// X - shift computed on its own, so the weights are those of the pixel, not
// of the tile. A whole u takes its sample alone (weight 0 on the next,
// which is then not read), so a whole shift is a plain copy.
struct Taps {
    std::vector<int> i0, i1;
    std::vector<double> t;
};
Taps taps(int d0, int n, double shift, int lo, int hi) {
    Taps k;
    k.i0.resize(std::size_t(n));
    k.i1.resize(std::size_t(n));
    k.t.resize(std::size_t(n));
    for (int j = 0; j < n; ++j) {
        const double u = double(d0 + j) - shift;
        const double f = std::floor(u);
        double t = u - f;
        int i0 = int(std::clamp(f, double(lo) - 1, double(hi)));
        int i1 = t > 0 ? i0 + 1 : i0;
        // outside the samples: the nearest one alone
        if (i0 < lo) i0 = i1 = lo, t = 0;
        if (i1 >= hi) i1 = i0 = std::min(i0, hi - 1), t = 0;
        k.i0[std::size_t(j)] = i0;
        k.i1[std::size_t(j)] = i1;
        k.t[std::size_t(j)] = t;
    }
    return k;
}

// Interpolated values as samples: floats as they are, integers clamped to
// T's range (bilinear stays within its samples: the clamp only guards the
// last ulp) and rounded half away from zero, written with selects and a
// conversion through a signed integer wide enough for T so that it
// vectorises.
// kWithin: the kernel's weights are >= 0 (bilinear), so values stay within
// their samples; a cubic's are not, and its overshoot is clamped.
template <bool kWithin, class T, class Acc>
void to_samples(const Acc* __restrict in, T* __restrict out, std::size_t n) {
    if constexpr (std::is_floating_point_v<T>) {
        for (std::size_t i = 0; i < n; ++i) out[i] = T(in[i]);
    } else {
        using I = std::conditional_t<(sizeof(T) <= 2), std::int32_t, std::int64_t>;
        if constexpr (kWithin && std::is_unsigned_v<T> && sizeof(T) <= 2) {
            // weights >= 0 summing to 1 within an ulp: v in [0, max + 0.03],
            // which rounds into range without a clamp (the clamp's branches
            // would keep this loop scalar)
            for (std::size_t i = 0; i < n; ++i) out[i] = T(I(in[i] + Acc(0.5)));
            return;
        }
        if constexpr (std::is_unsigned_v<T> && sizeof(T) <= 2) {
            // overshoot clamped after the conversion, in integers with
            // masks (a compare-and-select compiles to branches and keeps
            // the loop scalar): truncating v + 0.5 is rounding for
            // v >= -0.5, and anything below ends <= 0, clamped to 0. A
            // cubic's weights sum to <= 1.25 in absolute value per axis, so
            // |v| <= 1.6 x max fits I.
            constexpr I top = I(std::numeric_limits<T>::max());
            for (std::size_t i = 0; i < n; ++i) {
                I q = I(in[i] + Acc(0.5));
                q &= ~(q >> 31);  // max(q, 0)
                const I over = q - top;
                q -= over & ~(over >> 31);  // min(q, top)
                out[i] = T(q);
            }
            return;
        }
        const Acc lo = Acc(std::numeric_limits<T>::lowest()), hi = Acc(std::numeric_limits<T>::max());
        for (std::size_t i = 0; i < n; ++i) {
            Acc v = in[i];
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            if constexpr (std::is_unsigned_v<T>)
                v += Acc(0.5);
            else
                v += v >= 0 ? Acc(0.5) : Acc(-0.5);
            out[i] = T(I(v));
        }
    }
}

template <class T>
void shift(const ConstTile& src, const Rect& bounds, double dx, double dy, const Tile& dst) {
    using Acc = std::conditional_t<(sizeof(T) <= 2 && !std::is_floating_point_v<T>), float, double>;
    const Rect& r = dst.rect;
    const int bands = dst.bands;
    const std::size_t n = std::size_t(r.w) * std::size_t(bands);
    const Taps kx = taps(r.x, r.w, dx, bounds.x, bounds.right());
    const Taps ky = taps(r.y, r.h, dy, bounds.y, bounds.bottom());
    // per sample: offsets of the two source samples in a row, and weights
    std::vector<std::size_t> o0(n), o1(n);
    std::vector<Acc> w0(n), w1(n);
    for (int x = 0; x < r.w; ++x)
        for (int b = 0; b < bands; ++b) {
            const std::size_t s = std::size_t(x) * bands + b;
            o0[s] = std::size_t(kx.i0[std::size_t(x)] - src.rect.x) * bands + b;
            o1[s] = std::size_t(kx.i1[std::size_t(x)] - src.rect.x) * bands + b;
            w1[s] = Acc(kx.t[std::size_t(x)]);
            w0[s] = Acc(1) - w1[s];
        }
    // Where the columns step one sample each with one weight (a shift's
    // interior), [j0, j1): a contiguous loop there, which vectorises; the
    // same products and sums as the general one, so the same bits.
    int j0 = 0, j1 = 0;
    for (int a = 0; a < r.w;) {
        int b = a + 1;
        while (b < r.w && kx.i0[std::size_t(b)] == kx.i0[std::size_t(a)] + (b - a) &&
               kx.i1[std::size_t(b)] == kx.i1[std::size_t(a)] + (b - a) && kx.t[std::size_t(b)] == kx.t[std::size_t(a)])
            ++b;
        if (b - a > j1 - j0) j0 = a, j1 = b;
        a = b;
    }
    const std::size_t c0 = std::size_t(j0) * bands, c1 = std::size_t(j1) * bands;
    // The columns' interpolation of the two source rows in use, each done
    // once per source row (rows are visited in order).
    std::vector<Acc> h[2] = {std::vector<Acc>(n), std::vector<Acc>(n)}, v(n);
    int held[2] = {std::numeric_limits<int>::min(), std::numeric_limits<int>::min()};
    auto row = [&](int sy, int keep) -> const Acc* {
        for (int s = 0; s < 2; ++s)
            if (held[s] == sy) return h[s].data();
        const int s = held[0] == keep ? 1 : 0;
        const T* p = src.row<T>(sy);
        Acc* q = h[s].data();
        for (std::size_t i = 0; i < c0; ++i) q[i] = w0[i] * Acc(p[o0[i]]) + w1[i] * Acc(p[o1[i]]);
        if (c1 > c0) {
            // (restrict: T may be a char type, which could alias q)
            const T* __restrict p0 = p + o0[c0];
            const T* __restrict p1 = p + o1[c0];
            const Acc a = w0[c0], b = w1[c0];
            Acc* __restrict qq = q + c0;
            for (std::size_t i = 0; i < c1 - c0; ++i) qq[i] = a * Acc(p0[i]) + b * Acc(p1[i]);
        }
        for (std::size_t i = c1; i < n; ++i) q[i] = w0[i] * Acc(p[o0[i]]) + w1[i] * Acc(p[o1[i]]);
        held[s] = sy;
        return q;
    };
    for (int y = 0; y < r.h; ++y) {
        const int y0 = ky.i0[std::size_t(y)], y1 = ky.i1[std::size_t(y)];
        const Acc b = Acc(ky.t[std::size_t(y)]), a = Acc(1) - b;
        T* __restrict d = dst.row<T>(r.y + y);
        const Acc* __restrict p0 = row(y0, y1);
        if (y1 == y0) {
            to_samples<true>(p0, d, n);
            continue;
        }
        const Acc* __restrict p1 = row(y1, y0);
        for (std::size_t i = 0; i < n; ++i) v[i] = a * p0[i] + b * p1[i];
        to_samples<true>(v.data(), d, n);
    }
}

// Catmull-Rom: four samples around u (i - 1 .. i + 2, each clamped into
// [lo, hi): past the edge the edge sample stands in, as libvips extends an
// image) and their weights; a whole u takes its sample alone.
struct Taps4 {
    std::vector<std::array<int, 4>> i;
    std::vector<std::array<double, 4>> w;
};
Taps4 taps4(int d0, int n, double shift, int lo, int hi) {
    Taps4 k;
    k.i.resize(std::size_t(n));
    k.w.resize(std::size_t(n));
    for (int j = 0; j < n; ++j) {
        const double u = double(d0 + j) - shift;
        const double f = std::floor(u), t = u - f;
        const int base = int(std::clamp(f, double(lo) - 3, double(hi) + 2));
        auto c = [&](int i) { return std::clamp(i, lo, hi - 1); };
        if (t == 0) {
            k.i[std::size_t(j)] = {c(base), c(base), c(base), c(base)};
            k.w[std::size_t(j)] = {0, 1, 0, 0};
            continue;
        }
        k.i[std::size_t(j)] = {c(base - 1), c(base), c(base + 1), c(base + 2)};
        const double t2 = t * t, t3 = t2 * t;
        k.w[std::size_t(j)] = {(-t3 + 2 * t2 - t) / 2, (3 * t3 - 5 * t2 + 2) / 2, (-3 * t3 + 4 * t2 + t) / 2,
                               (t3 - t2) / 2};
    }
    return k;
}

template <class T>
void shift4(const ConstTile& src, const Rect& bounds, double dx, double dy, const Tile& dst) {
    using Acc = std::conditional_t<(sizeof(T) <= 2 && !std::is_floating_point_v<T>), float, double>;
    const Rect& r = dst.rect;
    const int bands = dst.bands;
    const std::size_t n = std::size_t(r.w) * std::size_t(bands);
    const Taps4 kx = taps4(r.x, r.w, dx, bounds.x, bounds.right());
    const Taps4 ky = taps4(r.y, r.h, dy, bounds.y, bounds.bottom());
    std::array<std::vector<std::size_t>, 4> o;
    std::array<std::vector<Acc>, 4> w;
    for (int k = 0; k < 4; ++k) o[std::size_t(k)].resize(n), w[std::size_t(k)].resize(n);
    for (int x = 0; x < r.w; ++x)
        for (int b = 0; b < bands; ++b) {
            const std::size_t s = std::size_t(x) * bands + b;
            for (std::size_t k = 0; k < 4; ++k) {
                o[k][s] = std::size_t(kx.i[std::size_t(x)][k] - src.rect.x) * bands + b;
                w[k][s] = Acc(kx.w[std::size_t(x)][k]);
            }
        }
    // the interior, where the taps step one sample a column with one set of
    // weights: contiguous (as in shift(); the same sums in the same order)
    int j0 = 0, j1 = 0;
    auto steps = [&](int a, int b) {
        for (std::size_t k = 0; k < 4; ++k)
            if (kx.i[std::size_t(b)][k] != kx.i[std::size_t(a)][k] + (b - a) ||
                kx.w[std::size_t(b)][k] != kx.w[std::size_t(a)][k])
                return false;
        return true;
    };
    for (int a = 0; a < r.w;) {
        int b = a + 1;
        while (b < r.w && steps(a, b)) ++b;
        if (b - a > j1 - j0) j0 = a, j1 = b;
        a = b;
    }
    const std::size_t c0 = std::size_t(j0) * bands, c1 = std::size_t(j1) * bands;
    std::array<std::vector<Acc>, 4> h;
    std::array<int, 4> held;
    for (std::size_t s = 0; s < 4; ++s) h[s].resize(n), held[s] = std::numeric_limits<int>::min();
    std::vector<Acc> v(n);
    auto row = [&](int sy, const std::array<int, 4>& need) -> const Acc* {
        for (std::size_t s = 0; s < 4; ++s)
            if (held[s] == sy) return h[s].data();
        std::size_t s = 0;  // a slot no row of this output row needs
        while (std::find(need.begin(), need.end(), held[s]) != need.end()) ++s;
        const T* p = src.row<T>(sy);
        Acc* q = h[s].data();
        auto one = [&](std::size_t i) {
            return w[0][i] * Acc(p[o[0][i]]) + w[1][i] * Acc(p[o[1][i]]) + w[2][i] * Acc(p[o[2][i]]) +
                   w[3][i] * Acc(p[o[3][i]]);
        };
        for (std::size_t i = 0; i < c0; ++i) q[i] = one(i);
        if (c1 > c0) {
            const T* __restrict p0 = p + o[0][c0];
            const T* __restrict p1 = p + o[1][c0];
            const T* __restrict p2 = p + o[2][c0];
            const T* __restrict p3 = p + o[3][c0];
            const Acc a0 = w[0][c0], a1 = w[1][c0], a2 = w[2][c0], a3 = w[3][c0];
            Acc* __restrict qq = q + c0;
            for (std::size_t i = 0; i < c1 - c0; ++i)
                qq[i] = a0 * Acc(p0[i]) + a1 * Acc(p1[i]) + a2 * Acc(p2[i]) + a3 * Acc(p3[i]);
        }
        for (std::size_t i = c1; i < n; ++i) q[i] = one(i);
        held[s] = sy;
        return q;
    };
    for (int y = 0; y < r.h; ++y) {
        const auto& iy = ky.i[std::size_t(y)];
        const auto& wy = ky.w[std::size_t(y)];
        T* __restrict d = dst.row<T>(r.y + y);
        if (wy[1] == 1 && wy[0] == 0) {  // a whole row: that row alone
            to_samples<false>(row(iy[1], iy), d, n);
            continue;
        }
        const Acc* __restrict p0 = row(iy[0], iy);
        const Acc* __restrict p1 = row(iy[1], iy);
        const Acc* __restrict p2 = row(iy[2], iy);
        const Acc* __restrict p3 = row(iy[3], iy);
        const Acc b0 = Acc(wy[0]), b1 = Acc(wy[1]), b2 = Acc(wy[2]), b3 = Acc(wy[3]);
        for (std::size_t i = 0; i < n; ++i) v[i] = b0 * p0[i] + b1 * p1[i] + b2 * p2[i] + b3 * p3[i];
        to_samples<false>(v.data(), d, n);
    }
}

// The samples [lo, hi) that destination [d0, d0 + n) reads along one axis.
std::pair<int, int> span4(int d0, int n, double shift, int lo, int hi) {
    if (n <= 0) return {lo, lo};
    const Taps4 k = taps4(d0, 1, shift, lo, hi), e = taps4(d0 + n - 1, 1, shift, lo, hi);
    return {k.i[0][0], e.i[0][3] + 1};
}

// The samples [lo, hi) that destination [d0, d0 + n) reads along one axis.
std::pair<int, int> span(int d0, int n, double shift, int lo, int hi) {
    if (n <= 0) return {lo, lo};
    const Taps k = taps(d0, 1, shift, lo, hi), e = taps(d0 + n - 1, 1, shift, lo, hi);
    return {k.i0[0], e.i1[0] + 1};
}

}  // namespace

Rect bilinear_support(const Rect& dst, double dx, double dy, const Rect& bounds) {
    if (dst.empty() || bounds.empty()) return {bounds.x, bounds.y, 0, 0};
    auto [x0, x1] = span(dst.x, dst.w, dx, bounds.x, bounds.right());
    auto [y0, y1] = span(dst.y, dst.h, dy, bounds.y, bounds.bottom());
    return Rect{x0, y0, x1 - x0, y1 - y0}.intersect(bounds);
}

void shift_bilinear(const ConstTile& src, const Rect& bounds, double dx, double dy, const Tile& dst) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format, [&](auto zero) { shift<decltype(zero)>(src, bounds, dx, dy, dst); });
}

}  // namespace tessera

namespace tessera {

Rect cubic_support(const Rect& dst, double dx, double dy, const Rect& bounds) {
    if (dst.empty() || bounds.empty()) return {bounds.x, bounds.y, 0, 0};
    auto [x0, x1] = span4(dst.x, dst.w, dx, bounds.x, bounds.right());
    auto [y0, y1] = span4(dst.y, dst.h, dy, bounds.y, bounds.bottom());
    return Rect{x0, y0, x1 - x0, y1 - y0}.intersect(bounds);
}

void shift_cubic(const ConstTile& src, const Rect& bounds, double dx, double dy, const Tile& dst) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format, [&](auto zero) { shift4<decltype(zero)>(src, bounds, dx, dy, dst); });
}

}  // namespace tessera
