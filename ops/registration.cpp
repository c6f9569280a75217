// Registration math: see tessera/ops/registration.hpp.
#include "tessera/ops/registration.hpp"

#include <kiss_fft.h>
#include <kiss_fftr.h>

#include <algorithm>
#include <deque>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "kernels.hpp"
#include "tessera/core/format.hpp"

namespace tessera::registration {

// ---------------------------------------------------------------- pixels

Plane to_plane(const ConstTile& tile, int band) {
    const Rect& r = tile.rect;
    Plane out{r, std::vector<float>(std::size_t(std::max<std::int64_t>(r.area(), 0)))};
    if (r.empty()) return out;
    const int bands = tile.bands;
    const int b0 = band < 0 ? 0 : std::min(band, bands - 1), nb = band < 0 ? bands : 1;
    dispatch_format(tile.format, [&](auto zero) {
        using T = decltype(zero);
        for (int y = 0; y < r.h; ++y) {
            const T* src = tile.row<T>(r.y + y) + b0;
            float* dst = out.px.data() + std::size_t(y) * std::size_t(r.w);
            if (nb == 1) {
                for (int x = 0; x < r.w; ++x) dst[x] = float(src[std::size_t(x) * bands]);
            } else if (nb == 3 && bands == 3 && std::is_integral_v<T>) {
                // the common case (RGB scans) on its own, in float: the sum
                // of three integers is exact there, and the loop vectorises
                for (int x = 0; x < r.w; ++x) {
                    const T* q = src + std::size_t(x) * 3;
                    dst[x] = (float(q[0]) + float(q[1]) + float(q[2])) / 3.0f;
                }
            } else {
                const double inv = 1.0 / nb;
                for (int x = 0; x < r.w; ++x) {
                    double s = 0;
                    for (int k = 0; k < nb; ++k) s += double(src[std::size_t(x) * bands + k]);
                    dst[x] = float(s * inv);
                }
            }
        }
    });
    // Not finite (a float image's NaN or inf) would poison every sum: such
    // samples count as 0. (Integer samples always are: no pass over them.)
    if (tile.format == Format::f32 || tile.format == Format::f64)
        for (float& v : out.px)
            if (!std::isfinite(v)) v = 0;
    return out;
}

Plane shrink(const Plane& im, int f) {
    if (f == 1) return im;
    const int w = im.rect.w / f, h = im.rect.h / f;
    Plane out{{im.rect.x / f, im.rect.y / f, w, h}, std::vector<float>(std::size_t(std::max(w, 0)) * std::max(h, 0))};
    const float n = float(f * f);
    std::vector<float> acc(std::size_t(std::max(w, 0)));
    for (int y = 0; y < h; ++y) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int v = 0; v < f; ++v) {
            const float* row = im.row(y * f + v);
            for (int x = 0; x < w; ++x)
                for (int u = 0; u < f; ++u) acc[std::size_t(x)] += row[x * f + u];
        }
        float* dst = out.px.data() + std::size_t(y) * w;
        for (int x = 0; x < w; ++x) dst[x] = acc[std::size_t(x)] / n;
    }
    return out;
}

// ---------------------------------------------------------------- match

namespace {

// The five sums a correlation needs over a run of two rows, added to s:
// in four independent lanes per sum (which the compiler vectorises; the
// order is fixed, so every machine and thread gets the same bits), each
// product exact in double. Integer samples' sums are exact too (16-bit
// squares over a row stay far below 2^53), whatever the order.
struct RunSums {
    double ab = 0, a = 0, aa = 0, b = 0, bb = 0;
};
TESSERA_VECTOR_CLONES void add_run(const float* pa, const float* pb, int n, RunSums& s) {
    // (GCC and Clang vector types: four floats loaded and widened at once;
    // written as arrays of lanes, the compiler widened them one by one)
    using f4 = float __attribute__((vector_size(16)));
    using d4 = double __attribute__((vector_size(32)));
    d4 ab = {}, a = {}, aa = {}, b = {}, bb = {};
    int x = 0;
    for (; x + 4 <= n; x += 4) {
        f4 fu, fv;
        std::memcpy(&fu, pa + x, sizeof fu);
        std::memcpy(&fv, pb + x, sizeof fv);
        const d4 u = __builtin_convertvector(fu, d4), v = __builtin_convertvector(fv, d4);
        ab += u * v, a += u, aa += u * u, b += v, bb += v * v;
    }
    for (; x < n; ++x) {
        const double u = pa[x], v = pb[x];
        ab[0] += u * v, a[0] += u, aa[0] += u * u, b[0] += v, bb[0] += v * v;
    }
    auto total = [](const d4& l) { return (l[0] + l[2]) + (l[1] + l[3]); };
    s.ab += total(ab), s.a += total(a), s.aa += total(aa), s.b += total(b), s.bb += total(bb);
}

// The score of reading t: crop b shifted by t (b's pixel q shows what a's
// pixel q + t shows), as normalised cross-correlation over the two crops'
// common part, and that part's size. Sums in double: 16-bit data squared
// and summed over a strip overflow float's precision.
struct Score {
    double ncc = -2;
    std::int64_t area = 0;
};

Score ncc(const Plane& a, const Plane& b, Point t) {
    const int x0 = std::max(0, t.x), x1 = std::min(a.rect.w, b.rect.w + t.x);
    const int y0 = std::max(0, t.y), y1 = std::min(a.rect.h, b.rect.h + t.y);
    Score s;
    if (x1 <= x0 || y1 <= y0) return s;
    s.area = std::int64_t(x1 - x0) * (y1 - y0);
    RunSums r;
    for (int y = y0; y < y1; ++y) add_run(a.row(y) + x0, b.row(y - t.y) + (x0 - t.x), x1 - x0, r);
    const double n = double(s.area);
    const double va = n * r.aa - r.a * r.a, vb = n * r.bb - r.b * r.b;
    if (!(va > 0) || !(vb > 0)) {
        s.ncc = -1;
        return s;
    }
    s.ncc = (n * r.ab - r.a * r.b) / std::sqrt(va * vb);
    return s;
}

// ncc() for many readings of the same two planes, cheaper: a large common
// part is scored on every step-th of its rows (some 2^14 pixels: plenty to
// rank readings, and a large strip's cost stays bounded; the step is odd,
// as in gradient_fraction), each row's five sums in one vectorised pass
// (add_run); readings already scored are remembered.
class Correlator {
public:
    Correlator(const Plane& a, const Plane& b)
        : a_(a),
          b_(b),
          step_(int(std::max<std::int64_t>(1, (std::max(a.rect.area(), b.rect.area()) + 16383) / 16384)) | 1) {}

    Score operator()(Point t) {
        const std::uint64_t key = (std::uint64_t(std::uint32_t(t.x)) << 32) | std::uint32_t(t.y);
        if (auto it = seen_.find(key); it != seen_.end()) return it->second;
        return seen_[key] = score(t);
    }

private:
    Score score(Point t) {
        const int x0 = std::max(0, t.x), x1 = std::min(a_.rect.w, b_.rect.w + t.x);
        const int y0 = std::max(0, t.y), y1 = std::min(a_.rect.h, b_.rect.h + t.y);
        Score s;
        if (x1 <= x0 || y1 <= y0) return s;
        s.area = std::int64_t(x1 - x0) * (y1 - y0);
        RunSums r;
        double n = 0;
        for (int y = y0; y < y1; y += step_) {
            add_run(a_.row(y) + x0, b_.row(y - t.y) + (x0 - t.x), x1 - x0, r);
            n += x1 - x0;
        }
        const double va = n * r.aa - r.a * r.a, vb = n * r.bb - r.b * r.b;
        // (a variance lost to cancellation in the sums counts as flat)
        if (!(va > 1e-9 * n * r.aa) || !(vb > 1e-9 * n * r.bb)) {
            s.ncc = -1;
            return s;
        }
        s.ncc = (n * r.ab - r.a * r.b) / std::sqrt(va * vb);
        return s;
    }
    const Plane& a_;
    const Plane& b_;
    int step_;
    std::unordered_map<std::uint64_t, Score> seen_;
};

// Every sample the same (stops at the first that differs: a textured
// strip is told at once).
bool flat(const Plane& p) {
    if (p.px.empty()) return true;
    const float v = p.px.front();
    return std::all_of(p.px.begin(), p.px.end(), [v](float u) { return u == v; });
}

// A 2-D real FFT of a size (rows x cols, cols even) and its inverse, as
// real FFTs of the rows and complex FFTs of the columns (Debian's KissFFT
// 131 crashes in its own n-dimensional real transform).
class Fft {
public:
    int rows, cols;
    Fft(int r, int c)
        : rows(r),
          cols(c),
          rf_(kiss_fftr_alloc(c, 0, nullptr, nullptr), &std::free),
          ri_(kiss_fftr_alloc(c, 1, nullptr, nullptr), &std::free),
          cf_(kiss_fft_alloc(r, 0, nullptr, nullptr), &std::free),
          ci_(kiss_fft_alloc(r, 1, nullptr, nullptr), &std::free) {}
    std::size_t spectrum() const { return std::size_t(rows) * half(); }

    // time (rows x cols) -> freq (rows x (cols / 2 + 1))
    void forward(const float* time, kiss_fft_cpx* freq) const {
        for (int y = 0; y < rows; ++y)
            kiss_fftr(rf_.get(), time + std::size_t(y) * cols, freq + std::size_t(y) * half());
        columns(cf_.get(), freq);
    }
    // freq -> time, unnormalised (scaled by rows x cols); freq is destroyed
    void inverse(kiss_fft_cpx* freq, float* time) const {
        columns(ci_.get(), freq);
        for (int y = 0; y < rows; ++y)
            kiss_fftri(ri_.get(), freq + std::size_t(y) * half(), time + std::size_t(y) * cols);
    }

private:
    std::size_t half() const { return std::size_t(cols / 2 + 1); }
    void columns(kiss_fft_cfg cfg, kiss_fft_cpx* freq) const {
        std::vector<kiss_fft_cpx> in(static_cast<std::size_t>(rows)), out(static_cast<std::size_t>(rows));
        for (std::size_t x = 0; x < half(); ++x) {
            for (int y = 0; y < rows; ++y) in[std::size_t(y)] = freq[std::size_t(y) * half() + x];
            kiss_fft(cfg, in.data(), out.data());
            for (int y = 0; y < rows; ++y) freq[std::size_t(y) * half() + x] = out[std::size_t(y)];
        }
    }
    std::unique_ptr<kiss_fftr_state, decltype(&std::free)> rf_, ri_;
    std::unique_ptr<kiss_fft_state, decltype(&std::free)> cf_, ci_;
};

int fast_even(int n) { return kiss_fftr_next_fast_size_real(std::max(n, 2)); }
int fast(int n) { return kiss_fft_next_fast_size(std::max(n, 2)); }

// The crop less its mean, zero-padded to fft's size. No window tapers
// its borders: the part two strips have in common lies at a tile's edge in
// both, and a taper would fade out the very pixels a thin overlap has.
// (The wrap-around edges this leaves make false peaks; every peak is
// checked by correlation over the actual common part.)
std::vector<float> prepare(const Plane& p, const Fft& fft) {
    std::vector<float> out(std::size_t(fft.rows) * std::size_t(fft.cols), 0.0f);
    double mean = 0;
    for (float v : p.px) mean += v;
    mean /= double(std::max<std::size_t>(p.px.size(), 1));
    for (int y = 0; y < p.rect.h; ++y) {
        const float* src = p.row(y);
        float* dst = out.data() + std::size_t(y) * std::size_t(fft.cols);
        for (int x = 0; x < p.rect.w; ++x) dst[x] = float(src[x] - mean);
    }
    return out;
}

// The phase correlation of a and b (same level): a peak at (px, py) means b
// is a shifted by (px, py) modulo the transform's size.
std::vector<float> phase_correlation(const Plane& a, const Plane& b, const Fft& fft) {
    std::vector<float> ta = prepare(a, fft), tb = prepare(b, fft);
    std::vector<kiss_fft_cpx> fa(fft.spectrum()), fb(fft.spectrum());
    fft.forward(ta.data(), fa.data());
    fft.forward(tb.data(), fb.data());
    float peak = 0;
    for (std::size_t i = 0; i < fa.size(); ++i) {
        // a * conj(b), whitened: only the phase is left
        const float re = fa[i].r * fb[i].r + fa[i].i * fb[i].i;
        const float im = fa[i].i * fb[i].r - fa[i].r * fb[i].i;
        const float mag = std::sqrt(re * re + im * im);
        peak = std::max(peak, mag);
        fa[i].r = re, fa[i].i = im;
        fb[i].r = mag;
    }
    const float eps = peak * 1e-6f + std::numeric_limits<float>::min();
    for (std::size_t i = 0; i < fa.size(); ++i) {
        const float m = fb[i].r + eps;
        fa[i].r /= m, fa[i].i /= m;
    }
    fft.inverse(fa.data(), ta.data());
    return ta;
}

// The k highest local maxima (3x3, wrapping) of a correlation surface.
std::vector<Point> peaks(const std::vector<float>& c, int rows, int cols, std::size_t k) {
    // the k best so far, highest first; ties in scan order (a later equal
    // one goes after), so the answer is deterministic
    std::vector<std::pair<float, Point>> best;
    best.reserve(k + 1);
    auto at = [&](int x, int y) {
        return c[std::size_t((y + rows) % rows) * std::size_t(cols) + std::size_t((x + cols) % cols)];
    };
    for (int y = 0; y < rows; ++y)
        for (int x = 0; x < cols; ++x) {
            const float v = at(x, y);
            if (best.size() == k && !(v > best.back().first)) continue;  // (most samples end here)
            bool top = true;
            for (int dy = -1; dy <= 1 && top; ++dy)
                for (int dx = -1; dx <= 1; ++dx)
                    if ((dx || dy) && at(x + dx, y + dy) > v) {
                        top = false;
                        break;
                    }
            if (!top) continue;
            auto pos =
                std::upper_bound(best.begin(), best.end(), v, [](float u, const auto& p) { return u > p.first; });
            best.insert(pos, {v, {x, y}});
            if (best.size() > k) best.pop_back();
        }
    std::vector<Point> out;
    for (const auto& p : best) out.push_back(p.second);
    return out;
}

struct Candidate {
    Point t;  // at the level it was scored
    Score s;
};

// The plane less its local mean (a box of 2r + 1, clipped at the borders):
// what illumination adds is smooth (vignetting, a dark offset, a tile's
// gain, a slope across the slide) and every strip cut at a tile's edge
// shares it, so without this two strips that show different things would
// still correlate through their common shading.
Plane highpass(const Plane& p, int r) {
    const int w = p.rect.w, h = p.rect.h;
    // Row y + 1 of `sums` holds, for every column, the sum of the
    // horizontal box means of rows 0..y (row 0 is zero): the vertical box
    // of rows [y0, y1) is then sums[y1] - sums[y0]. Built row by row, which
    // walks memory in order (a column at a time strode by the width and
    // missed the cache on tall strips); per column the additions are the
    // same, in the same order, as a column's running sum.
    std::vector<double> sums(std::size_t(w) * std::size_t(h + 1));
    std::vector<double> acc(std::size_t(w + 1));
    for (int y = 0; y < h; ++y) {
        const float* src = p.row(y);
        acc[0] = 0;
        for (int x = 0; x < w; ++x) acc[std::size_t(x + 1)] = acc[std::size_t(x)] + src[x];
        const double* above = sums.data() + std::size_t(y) * std::size_t(w);
        double* here = sums.data() + std::size_t(y + 1) * std::size_t(w);
        for (int x = 0; x < w; ++x) {
            const int x0 = std::max(0, x - r), x1 = std::min(w, x + r + 1);
            here[x] = above[x] + (acc[std::size_t(x1)] - acc[std::size_t(x0)]) / (x1 - x0);
        }
    }
    Plane out{p.rect, std::vector<float>(p.px.size())};
    for (int y = 0; y < h; ++y) {
        const int y0 = std::max(0, y - r), y1 = std::min(h, y + r + 1);
        const double* lo = sums.data() + std::size_t(y0) * std::size_t(w);
        const double* hi = sums.data() + std::size_t(y1) * std::size_t(w);
        const double n = y1 - y0;
        const float* src = p.row(y);
        float* dst = out.px.data() + std::size_t(y) * std::size_t(w);
        for (int x = 0; x < w; ++x) dst[x] = float(src[x] - (hi[x] - lo[x]) / n);
    }
    return out;
}

// Solves the n x n system m x = r (row-major, n <= 8) by Gaussian
// elimination with partial pivoting; false when it is singular.
bool solve_small(std::vector<double> m, std::vector<double> r, int n, std::vector<double>& x) {
    for (int c = 0; c < n; ++c) {
        int piv = c;
        for (int i = c + 1; i < n; ++i)
            if (std::abs(m[std::size_t(i * n + c)]) > std::abs(m[std::size_t(piv * n + c)])) piv = i;
        if (!(std::abs(m[std::size_t(piv * n + c)]) > 1e-12)) return false;
        if (piv != c) {
            for (int k = 0; k < n; ++k) std::swap(m[std::size_t(c * n + k)], m[std::size_t(piv * n + k)]);
            std::swap(r[std::size_t(c)], r[std::size_t(piv)]);
        }
        for (int i = c + 1; i < n; ++i) {
            const double f = m[std::size_t(i * n + c)] / m[std::size_t(c * n + c)];
            for (int k = c; k < n; ++k) m[std::size_t(i * n + k)] -= f * m[std::size_t(c * n + k)];
            r[std::size_t(i)] -= f * r[std::size_t(c)];
        }
    }
    x.assign(std::size_t(n), 0);
    for (int i = n - 1; i >= 0; --i) {
        double v = r[std::size_t(i)];
        for (int k = i + 1; k < n; ++k) v -= m[std::size_t(i * n + k)] * x[std::size_t(k)];
        x[std::size_t(i)] = v / m[std::size_t(i * n + i)];
    }
    return true;
}

// For gradient_fraction: column P's dot products with columns P..N of
// `cols` (N + 1 columns of `stride` floats, a multiple of 8; column N is
// the residual), added to row P of the N x N matrix M and, for column N, to
// R[P]. Each product sum in eight float lanes, combined as
// ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)); the N + 1 - P sums run
// side by side in one pass over column P, so no sum waits on its own last
// addition (one sum at a time was bound by the adder's latency).
template <int P, int N>
[[gnu::always_inline]] inline void dots_from(const float* cols, std::size_t stride, double* M, double* R) {
    constexpr int Q = N + 1 - P;
    float acc[Q][8] = {};
    const float* p = cols + std::size_t(P) * stride;
    for (std::size_t i = 0; i < stride; i += 8)
        for (int q = 0; q < Q; ++q) {
            const float* c = cols + std::size_t(P + q) * stride + i;
            for (int k = 0; k < 8; ++k) acc[q][k] += p[i + std::size_t(k)] * c[k];
        }
    for (int q = 0; q < Q; ++q) {
        const float* l = acc[q];
        const double d = double((l[0] + l[4]) + (l[1] + l[5])) + double((l[2] + l[6]) + (l[3] + l[7]));
        if (P + q < N)
            M[P * N + P + q] += d;
        else
            R[P] += d;
    }
}

// The fraction of a pixel by which b's best whole-pixel reading t is off,
// from the strips' gradients (Lucas-Kanade, symmetric, with the light
// modelled): with f = a and g = b shifted by t over their common part (each
// less its mean, over its deviation), f(p) = (1 + k + kx u + ky v) g(p - d)
// + c(u, v) for the true d, a gain k that may change linearly across the
// part and an offset c that may change as a quadratic (u, v: the pixel's
// centred, scaled position). Vignetting is why: it makes the two tiles'
// light ramp in opposite directions over their overlap, which moves the
// correlation's peak (by a tenth of a pixel and more at 8 % overlap). To
// first order f - g = -d . (grad f + grad g) / 2 + k g + kx u g + ky v g +
// c + cx u + cy v + cxx u^2 + cyy v^2, solved by least squares. Both images' gradients
// enter alike, so neither one's sampling biases the answer toward whole
// pixels as a parabola through correlation scores does.
// For gradient_fraction: one row's columns of the Jacobian and the
// residual, from the two planes' rows at the common part's first column
// (pa: a's row, pau and pad the rows above and below; pb... b's) into
// the columns (see gradient_fraction's col()). On its own, and with
// restrict (the columns overlap neither each other nor the planes), the
// loop vectorises; inside gradient_fraction it did not.
struct RowScale {
    float ma, mb, ia, ib, v;  // the means, their inverse deviations, the row's centred position
};
TESSERA_VECTOR_CLONES void jacobian_row(int w, const float* __restrict pa, const float* __restrict pau,
                                        const float* __restrict pad, const float* __restrict pb,
                                        const float* __restrict pbu, const float* __restrict pbd, RowScale k,
                                        const float* __restrict cu, float* __restrict jx, float* __restrict jy,
                                        float* __restrict jg, float* __restrict jug, float* __restrict jvg,
                                        float* __restrict jv, float* __restrict jvv, float* __restrict je) {
    // (restrict pointers derived from one parameter inside the function
    // kept GCC 12 from vectorising: each column is its own parameter)
    const float v = k.v, ma = k.ma, mb = k.mb, ia = k.ia, ib = k.ib;
    for (int i = 0; i < w; ++i) {
        const float f = (pa[i] - ma) * ia, g = (pb[i] - mb) * ib;
        jx[i] = -0.25f * ((pa[i + 1] - pa[i - 1]) * ia + (pb[i + 1] - pb[i - 1]) * ib);
        jy[i] = -0.25f * ((pad[i] - pau[i]) * ia + (pbd[i] - pbu[i]) * ib);
        jg[i] = g, jug[i] = cu[i] * g, jvg[i] = v * g, jv[i] = v, jvv[i] = v * v;
        je[i] = f - g;
    }
}

// dots_from for every column (inlined, like dots_from, into its caller's
// clone).
template <int N, int... P>
[[gnu::always_inline]] inline void all_dots(const float* cols, std::size_t stride, double* M, double* R,
                                            std::integer_sequence<int, P...>) {
    (dots_from<P, N>(cols, stride, M, R), ...);
}

TESSERA_VECTOR_CLONES std::optional<Vec2> gradient_fraction(const Plane& a, const Plane& b, Point t) {
    // interior of the common part: central differences need a neighbour
    const int x0 = std::max(0, t.x) + 1, x1 = std::min(a.rect.w, b.rect.w + t.x) - 1;
    const int y0 = std::max(0, t.y) + 1, y1 = std::min(a.rect.h, b.rect.h + t.y) - 1;
    if (x1 - x0 < 2 || y1 - y0 < 2) return std::nullopt;
    // Every row of a small common part; of a large one every step-th, so
    // that some 2^16 pixels enter (a large strip's cost stays bounded; 2^14
    // cost a fifth less time and doubled the error: 0.072 px RMS on the
    // seed scans' 2000 tiles, where a position sums the errors of a long
    // chain of pairs).
    // The step is odd, so rows of both parities enter: a 4:2:0 JPEG's
    // chroma is upsampled differently on even and odd rows, and every
    // second row alone biased the offset across them by a tenth of a pixel.
    const std::int64_t total = std::int64_t(x1 - x0) * (y1 - y0);
    const int step = int(std::max<std::int64_t>(1, (total + 65535) / 65536)) | 1;
    RunSums sums;  // (its cross term is not needed here)
    double n = 0;
    for (int y = y0; y < y1; y += step) {
        add_run(a.row(y) + x0, b.row(y - t.y) + (x0 - t.x), x1 - x0, sums);
        n += x1 - x0;
    }
    const double sa = sums.a, sb = sums.b, saa = sums.aa, sbb = sums.bb;
    const double ma = sa / n, mb = sb / n;
    const double da = std::sqrt(std::max(saa / n - ma * ma, 0.0)), db = std::sqrt(std::max(sbb / n - mb * mb, 0.0));
    if (!(da > 0) || !(db > 0)) return std::nullopt;
    const double ia = 1 / da, ib = 1 / db;
    const double cx = 0.5 * (x0 + x1 - 1), cy = 0.5 * (y0 + y1 - 1);
    const double sx = 2.0 / std::max(x1 - x0, 1), sy = 2.0 / std::max(y1 - y0, 1);
    constexpr int N = 10;  // dx, dy, k, kx, ky, and the offset's c, cx, cy, cxx, cyy
    // Row by row: the row's Jacobian columns in float (j[p][x]), then every
    // product sum j_p . j_q as a dot product over the row, in float with
    // eight independent lanes (which the compiler vectorises, and which
    // give the same bits on every machine and thread), added to the double
    // totals per row: a row of a few thousand samples keeps float's
    // precision, and the cost per sample is some 65 vector lanes instead of
    // 65 scalar double products (dots_from: a column's products with all
    // the later ones in one pass).
    const int w = x1 - x0;
    const int padded = (w + 7) / 8 * 8;
    thread_local std::vector<float> scratch;
    scratch.assign(std::size_t(N + 1) * std::size_t(padded), 0.0f);
    auto col = [&](int p) { return scratch.data() + std::size_t(p) * std::size_t(padded); };
    float* const e = col(N);
    {  // the columns that do not depend on the row
        float *c1 = col(5), *cu = col(6), *cuu = col(8);
        for (int i = 0; i < w; ++i) {
            const float u = float((x0 + i - cx) * sx);
            c1[i] = 1, cu[i] = u, cuu[i] = u * u;
        }
    }
    double M[N * N] = {}, R[N] = {};
    for (int y = y0; y < y1; y += step) {
        const float *a0 = a.row(y), *au = a.row(y - 1), *ad = a.row(y + 1);
        const float *b0 = b.row(y - t.y), *bu = b.row(y - 1 - t.y), *bd = b.row(y + 1 - t.y);
        const float v = float((y - cy) * sy);
        jacobian_row(w, a0 + x0, au + x0, ad + x0, b0 + (x0 - t.x), bu + (x0 - t.x), bd + (x0 - t.x),
                     {float(ma), float(mb), float(ia), float(ib), v}, col(6), col(0), col(1), col(2), col(3), col(4),
                     col(7), col(9), e);
        // the upper triangle (mirrored below) and the right-hand side
        all_dots<N>(scratch.data(), std::size_t(padded), M, R, std::make_integer_sequence<int, N>{});
    }
    std::vector<double> m(M, M + N * N), r(R, R + N);
    for (int p = 0; p < N; ++p)
        for (int q = 0; q < p; ++q) m[std::size_t(p * N + q)] = m[std::size_t(q * N + p)];
    std::vector<double> sol;
    if (!solve_small(m, r, N, sol)) return std::nullopt;
    return Vec2{sol[0], sol[1]};
}

// One pair's search: the strips, the nominal reading and the bound, and
// what a reading must keep in common. Readings t are in crop pixels: b's
// pixel q shows what a's q + t shows. The nominal offset is t0, and
//   offset (b's position - a's) = t + crop_a origin - crop_b origin.
struct Search {
    const Plane& a;
    const Plane& b;
    Point t0, E;
    // Candidates must keep a common part worth scoring: an eighth of the
    // smaller crop along each axis, and at least 3 pixels (an overlap of
    // 8 px with a stage error of 5 px leaves 3).
    int min_w, min_h;

    Search(const Plane& pa, const Plane& pb, const PairPlan& plan)
        : a(pa),
          b(pb),
          t0{plan.nominal.x + plan.crop_b.x - plan.crop_a.x, plan.nominal.y + plan.crop_b.y - plan.crop_a.y},
          E(plan.error),
          min_w(std::max(3, std::min(a.rect.w, b.rect.w) / 8)),
          min_h(std::max(3, std::min(a.rect.h, b.rect.h) / 8)) {}

    // reading t of the strips shrunk by f keeps enough in common
    bool common_ok(Point t, int f) const {
        const int w = std::min(a.rect.w, b.rect.w + t.x * f) - std::max(0, t.x * f);
        const int h = std::min(a.rect.h, b.rect.h + t.y * f) - std::max(0, t.y * f);
        return w >= min_w && h >= min_h;
    }
    // a full-resolution reading inside the stage error
    bool in_bound(Point t) const { return std::abs(t.x - t0.x) <= E.x && std::abs(t.y - t0.y) <= E.y; }
};

// Level f: shrunk until the transform is small (cost) while the
// thinner side keeps some 24 samples (detail).
int coarse_level(const Plane& a, const Plane& b) {
    int f = 1;
    const std::int64_t area = std::max(a.rect.area(), b.rect.area());
    const int thin = std::min({a.rect.w, a.rect.h, b.rect.w, b.rect.h});
    while (f < 16 && area / (std::int64_t(f) * f) > 16384 && thin / (2 * f) >= 24) f *= 2;
    return f;
}

// The strips at every level from full resolution to f (la[k], lb[k]: shrunk
// by 2^k; level 0 is the caller's strips themselves, not a copy) and a
// Correlator per level (corr[k]), which remembers what it scored. Not
// copied: the Correlators refer to the planes (a deque keeps the shrunk
// ones where they are as it grows).
struct Pyramid {
    int f;
    std::deque<Plane> shrunk;
    std::vector<const Plane*> la, lb;
    std::vector<Correlator> corr;

    Pyramid(const Plane& a, const Plane& b) : f(coarse_level(a, b)), la{&a}, lb{&b} {
        for (int g = 2; g <= f; g *= 2) {
            la.push_back(&shrunk.emplace_back(shrink(*la.back(), 2)));
            lb.push_back(&shrunk.emplace_back(shrink(*lb.back(), 2)));
        }
        corr.reserve(la.size());
        for (std::size_t k = 0; k < la.size(); ++k) corr.emplace_back(*la[k], *lb[k]);
    }
    Pyramid(const Pyramid&) = delete;
    Pyramid& operator=(const Pyramid&) = delete;
};

// The readings worth refining: every peak's readings inside the bound (and
// the nominal reading itself), scored at level f; the best three, none when
// no reading keeps enough of the strips in common.
std::vector<Candidate> coarse_candidates(const Search& s, Pyramid& lv) {
    const int f = lv.f;
    const Plane &A = *lv.la.back(), &B = *lv.lb.back();
    // Zero-padded by the error bound, so that a reading and its wrapped
    // twin are told apart by the bound.
    const int ex = s.E.x / f + 2, ey = s.E.y / f + 2;
    const Fft fft(fast(std::max(A.rect.h, B.rect.h) + ey), fast_even(std::max(A.rect.w, B.rect.w) + ex));
    const std::vector<float> pcm = phase_correlation(A, B, fft);
    std::vector<Candidate> cands;
    auto consider = [&](Point t) {
        const Point full{t.x * f, t.y * f};
        if (std::abs(full.x - s.t0.x) > s.E.x + f || std::abs(full.y - s.t0.y) > s.E.y + f) return;
        if (!s.common_ok(t, f)) return;
        for (const Candidate& c : cands)
            if (c.t == t) return;
        cands.push_back({t, lv.corr.back()(t)});
    };
    // t0 at level f, rounded toward the nearest block
    auto div_round = [](int v, int d) { return int(std::floor(double(v) / d + 0.5)); };
    consider({div_round(s.t0.x, f), div_round(s.t0.y, f)});
    for (Point p : peaks(pcm, fft.rows, fft.cols, 8))
        for (int wx = 0; wx < 2; ++wx)
            for (int wy = 0; wy < 2; ++wy) consider({p.x - wx * fft.cols, p.y - wy * fft.rows});
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Candidate& p, const Candidate& q) { return p.s.ncc > q.s.ncc; });
    if (cands.size() > 3) cands.resize(3);
    return cands;
}

// From `from` at level k (scored by that level's corr): the best of the 3x3
// around it, again while that moves, `steps` times at most (0: one look
// around). At full resolution only readings inside the bound count.
Candidate climb(const Search& s, Correlator& corr, Point from, int k, int steps) {
    const int g = 1 << k;
    Candidate here{from, {}};
    for (int step = 0; step <= steps; ++step) {
        const Point c = here.t;
        for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
                const Point t{c.x + dx, c.y + dy};
                if (k == 0 && !s.in_bound(t)) continue;
                if (!s.common_ok(t, g)) continue;
                const Score sc = corr(t);
                if (sc.ncc > here.s.ncc) here = {t, sc};
            }
        if (here.t == c) break;  // a local maximum
    }
    return here;
}

// The best three, refined level by level (x2, then the best of the 3x3
// around it) down to half resolution, and the best of them at full
// resolution climbed to a local maximum inside the bound (a peak of a
// thin strip's phase correlation may be a pixel or two off its score's
// maximum). A score of -2 or less: no reading kept enough in common.
Candidate refine(const Search& s, Pyramid& lv, std::vector<Candidate> cands) {
    for (int k = int(lv.la.size()) - 2; k >= 1; --k)
        for (Candidate& c : cands) c = climb(s, lv.corr[std::size_t(k)], {c.t.x * 2, c.t.y * 2}, k, 0);
    const bool shrunk = lv.la.size() > 1;
    const Candidate best = *std::max_element(cands.begin(), cands.end(),
                                             [](const Candidate& p, const Candidate& q) { return p.s.ncc < q.s.ncc; });
    return climb(s, lv.corr[0], shrunk ? Point{best.t.x * 2, best.t.y * 2} : best.t, 0, s.E.x + s.E.y);
}

// The confidence: the correlation of the strips' detail at reading t
// (the position comes from the strips as they are: the local mean,
// clipped at a crop's border, would bias it there).
double detail_score(const Plane& a, const Plane& b, Point t) {
    // (over the common part alone: what lies outside it does not count;
    // of a large one, its middle, cut along its longer side to some 2^15
    // pixels: plenty for a score, and its cost stays bounded)
    int x0 = std::max(0, t.x), x1 = std::min(a.rect.w, b.rect.w + t.x);
    int y0 = std::max(0, t.y), y1 = std::min(a.rect.h, b.rect.h + t.y);
    constexpr std::int64_t most = 1 << 15;
    if (std::int64_t(x1 - x0) * (y1 - y0) > most) {
        int &lo = x1 - x0 >= y1 - y0 ? x0 : y0, &hi = x1 - x0 >= y1 - y0 ? x1 : y1;
        const int other = x1 - x0 >= y1 - y0 ? y1 - y0 : x1 - x0;
        const int keep = int(std::max<std::int64_t>(most / other, 16));
        if (keep < hi - lo) {
            lo += (hi - lo - keep) / 2;
            hi = lo + keep;
        }
    }
    auto cut = [](const Plane& p, int x, int y, int w, int h) {
        Plane c{{0, 0, w, h}, std::vector<float>(std::size_t(w) * std::size_t(h))};
        for (int r = 0; r < h; ++r) std::copy_n(p.row(y + r) + x, w, c.px.data() + std::size_t(r) * std::size_t(w));
        return c;
    };
    const Plane ca = cut(a, x0, y0, x1 - x0, y1 - y0), cb = cut(b, x0 - t.x, y0 - t.y, x1 - x0, y1 - y0);
    return ncc(highpass(ca, 4), highpass(cb, 4), {0, 0}).ncc;
}

// The best whole-pixel reading to a fraction: the whole-pixel reading the
// fraction applies to (the gradients may move it) and the fraction per axis.
struct Fraction {
    Point at;
    double fx = 0, fy = 0;
};

Fraction sub_pixel(const Search& s, Correlator& corr, const Candidate& best) {
    const Point t = best.t;
    // To a fraction: a parabola through the scores either side, per axis,
    // where the gradients (below) give no answer.
    auto vertex = [&](Point lo, Point hi) {
        if (!s.common_ok(lo, 1) || !s.common_ok(hi, 1)) return 0.0;
        const double sl = corr(lo).ncc, sh = corr(hi).ncc, s0 = best.s.ncc;
        // (s0 is the raw strips' score, as sl and sh)
        const double d = sl - 2 * s0 + sh;
        if (!(d < 0)) return 0.0;
        return std::clamp(0.5 * (sl - sh) / d, -0.5, 0.5);
    };
    double fx = 0, fy = 0;
    bool fraction = false;
    // The gradients' answer where they give one: when it lies more than
    // half a pixel away, the whole-pixel reading moves there (the scores'
    // maximum of a noisy thin strip may be a pixel off) and it is asked
    // again, twice at most.
    Point at = t, used = t;  // where the gradients are asked; where fx, fy apply
    for (int round = 0; round < 3; ++round) {
        const std::optional<Vec2> d = gradient_fraction(s.a, s.b, at);
        if (!d) break;
        fx = std::clamp(d->x, -0.5, 0.5), fy = std::clamp(d->y, -0.5, 0.5);
        used = at;
        fraction = true;
        const Point next{at.x + (d->x > 0.5    ? 1
                                 : d->x < -0.5 ? -1
                                               : 0),
                         at.y + (d->y > 0.5    ? 1
                                 : d->y < -0.5 ? -1
                                               : 0)};
        if (next == at || !s.in_bound(next) || !s.common_ok(next, 1) || round == 2) break;
        at = next;
    }
    if (!fraction) fx = vertex({t.x - 1, t.y}, {t.x + 1, t.y}), fy = vertex({t.x, t.y - 1}, {t.x, t.y + 1});
    return {used, fx, fy};
}

}  // namespace

Match match(const Plane& a, const Plane& b, const PairPlan& plan) {
    // Cases: an empty or a flat strip has nothing to align; no reading
    // inside the bound keeps enough of the strips in common (at the coarse
    // level, or after the climb); the best reading lies on the bound's edge
    // (measured and scored, but not found: the error may be larger); found.
    Match m;
    if (a.rect.empty() || b.rect.empty()) {
        m.why = "a strip is empty";
        return m;
    }
    if (flat(a) || flat(b)) {
        m.why = "a strip is flat (no texture to align)";
        return m;
    }
    const Search s(a, b, plan);
    Pyramid levels(a, b);
    std::vector<Candidate> cands = coarse_candidates(s, levels);
    if (cands.empty()) {
        m.why = "no reading within the stage error keeps enough of the strips in common";
        return m;
    }
    const Candidate best = refine(s, levels, std::move(cands));
    if (best.s.ncc <= -2) {
        m.why = "no reading within the stage error keeps enough of the strips in common";
        return m;
    }
    const Point t = best.t;
    m.common = best.s.area;
    m.score = detail_score(a, b, t);
    // (a permutation-test pair is read for its score alone; its whole-pixel
    // offset is reported as it is)
    const Fraction fr = plan.score_only ? Fraction{t} : sub_pixel(s, levels.corr[0], best);
    m.offset = {fr.at.x + fr.fx + plan.crop_a.x - plan.crop_b.x, fr.at.y + fr.fy + plan.crop_a.y - plan.crop_b.y};
    if (std::abs(t.x - s.t0.x) >= s.E.x || std::abs(t.y - s.t0.y) >= s.E.y) {
        m.why = "the best match lies on the edge of the stage error; the error may be larger: raise --stage-error";
        return m;
    }
    m.found = true;
    return m;
}

double learned_threshold(std::vector<double> null_scores, double floor, double quantile, std::size_t min_samples) {
    if (null_scores.size() < min_samples) return floor;
    std::sort(null_scores.begin(), null_scores.end());
    // linear interpolation between order statistics
    const double pos = quantile * double(null_scores.size() - 1);
    const std::size_t i = std::size_t(pos);
    const double frac = pos - double(i);
    double q = null_scores[i];
    if (i + 1 < null_scores.size()) q += frac * (null_scores[i + 1] - null_scores[i]);
    return std::max(floor, q);
}

// ---------------------------------------------------------------- plan

namespace {

struct UnionFind {
    std::vector<int> parent;
    explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
    int find(int a) {
        while (parent[std::size_t(a)] != a) a = parent[std::size_t(a)] = parent[std::size_t(parent[std::size_t(a)])];
        return a;
    }
    void join(int a, int b) { parent[std::size_t(find(a))] = find(b); }
};

// Side by side (the overlap is a column strip: across is x) or stacked.
bool side_by_side(const Rect& ov) { return ov.w <= ov.h; }

}  // namespace

bool deep_read(const std::vector<Rect>& nominal, const PlanOptions& o, int i, const Rect& crop) {
    const std::size_t k = std::size_t(i);
    if (k < o.top_down.size() && !o.top_down[k]) return false;
    return crop.bottom() > o.shallow_depth * nominal[k].h;
}

std::optional<PairPlan> plan_window(const std::vector<Rect>& nominal, int a, int b, const PlanOptions& o, int attempt) {
    const Rect& A = nominal[std::size_t(a)];
    const Rect& B = nominal[std::size_t(b)];
    const Rect ov = A.intersect(B);
    if (ov.empty()) return std::nullopt;
    const bool sbs = side_by_side(ov);
    const int across = sbs ? ov.w : ov.h, along = sbs ? ov.h : ov.w;
    if (across < o.min_overlap || along < o.min_along) return std::nullopt;
    if (!o.corners && 2 * ov.w < std::min(A.w, B.w) && 2 * ov.h < std::min(A.h, B.h)) return std::nullopt;
    const int ex = std::max(o.error_x, 0), ey = std::max(o.error_y, 0);
    // The window: across, the middle of the overlap (at most max_across);
    // along, as long as keeps it within max_area. (a's crop is the window
    // grown by the error: a larger error costs more reading, but never a
    // shorter window, which would leave a long search too little to go by.)
    const int wa = std::min(across, std::max(o.max_across, 1));
    int wl = int(std::clamp<std::int64_t>(o.max_area / wa, o.min_along, o.max_along));
    wl = std::min(wl, along);
    // The places along the overlap, best first: side by side, the top
    // (the cheapest rows), then the middle and the bottom; stacked, the
    // middle, then the left and right ends; each distinct.
    std::vector<int> at;
    const int lo = 0, mid = (along - wl) / 2, hi = along - wl;
    for (int p : sbs ? std::vector<int>{lo, mid, hi} : std::vector<int>{mid, lo, hi})
        if (std::find(at.begin(), at.end(), p) == at.end()) at.push_back(p);
    if (attempt < 0 || std::size_t(attempt) >= at.size()) return std::nullopt;
    const int s = at[std::size_t(attempt)];
    const int ac = (across - wa) / 2;
    const Rect win = sbs ? Rect{ov.x + ac, ov.y + s, wa, wl} : Rect{ov.x + s, ov.y + ac, wl, wa};
    // Only a's crop is grown by the error: b's window then stays inside it
    // at every reading the search may take, so each reading is scored over
    // the same pixels (the whole window, where the true overlap allows),
    // and b's read is the window alone (a grown crop on both sides read
    // and scored some four times the pixels at a tenth-of-a-tile error).
    const Rect g{win.x - ex, win.y - ey, win.w + 2 * ex, win.h + 2 * ey};
    PairPlan p;
    p.a = a, p.b = b;
    p.crop_a = g.intersect(A).translate(-A.x, -A.y);
    p.crop_b = win.intersect(B).translate(-B.x, -B.y);
    p.nominal = {B.x - A.x, B.y - A.y};
    p.error = {ex, ey};
    p.deep = deep_read(nominal, o, a, p.crop_a) || deep_read(nominal, o, b, p.crop_b);
    return p;
}

std::optional<PairPlan> plan_null(const std::vector<Rect>& nominal, const PairPlan& pair, int variant) {
    if (variant < 0 || variant > 2) return std::nullopt;
    const Rect& A = nominal[std::size_t(pair.a)];
    const Rect& B = nominal[std::size_t(pair.b)];
    const bool sbs = side_by_side(A.intersect(B));
    // a crop mirrored through its image's centre on the axis across the
    // overlap: the image's far side
    auto mirror = [&](Rect c, const Rect& im) {
        if (sbs)
            c.x = im.w - c.right();
        else
            c.y = im.h - c.bottom();
        return c;
    };
    PairPlan p = pair;
    p.score_only = true;
    if (variant != 1) p.crop_b = mirror(pair.crop_b, B);
    if (variant != 0) p.crop_a = mirror(pair.crop_a, A);
    // the same reading means the same: the crops' nominal shift
    // (nominal + crop_b - crop_a) is kept
    p.nominal.x += (pair.crop_b.x - p.crop_b.x) - (pair.crop_a.x - p.crop_a.x);
    p.nominal.y += (pair.crop_b.y - p.crop_b.y) - (pair.crop_a.y - p.crop_a.y);
    // Each crop must miss the other image's crop by more than the error,
    // wherever the images truly are.
    const Rect ca = p.crop_a.translate(A.x, A.y);
    const Rect cb = p.crop_b.translate(B.x, B.y);
    const Rect grown{cb.x - 2 * pair.error.x, cb.y - 2 * pair.error.y, cb.w + 4 * pair.error.x,
                     cb.h + 4 * pair.error.y};
    if (grown.overlaps(ca) || (p.crop_a == pair.crop_a && p.crop_b == pair.crop_b)) return std::nullopt;
    // and both must still be one size, so that they read like the pair
    if (p.crop_a.w != pair.crop_a.w || p.crop_b.h != pair.crop_b.h) return std::nullopt;
    return p;
}

namespace {

// Every overlapping pair (a < b), by a sweep over x.
template <class F>
void each_overlap(const std::vector<Rect>& nominal, F&& f) {
    std::vector<int> by_x(nominal.size());
    std::iota(by_x.begin(), by_x.end(), 0);
    std::sort(by_x.begin(), by_x.end(),
              [&](int p, int q) { return nominal[std::size_t(p)].x < nominal[std::size_t(q)].x; });
    for (std::size_t s = 0; s < by_x.size(); ++s) {
        const Rect& A0 = nominal[std::size_t(by_x[s])];
        for (std::size_t t = s + 1; t < by_x.size() && nominal[std::size_t(by_x[t])].x < A0.right(); ++t)
            if (A0.overlaps(nominal[std::size_t(by_x[t])])) f(std::min(by_x[s], by_x[t]), std::max(by_x[s], by_x[t]));
    }
}

}  // namespace

std::vector<std::pair<int, int>> too_thin(const std::vector<Rect>& nominal, const PlanOptions& o) {
    std::vector<std::pair<int, int>> out;
    each_overlap(nominal, [&](int a, int b) {
        const Rect ov = nominal[std::size_t(a)].intersect(nominal[std::size_t(b)]);
        const bool sbs = side_by_side(ov);
        const int across = sbs ? ov.w : ov.h, along = sbs ? ov.h : ov.w;
        const Rect &A = nominal[std::size_t(a)], &B = nominal[std::size_t(b)];
        const bool corner = 2 * ov.w < std::min(A.w, B.w) && 2 * ov.h < std::min(A.h, B.h);
        if (along >= o.min_along && across < o.min_overlap && (o.corners || !corner)) out.push_back({a, b});
    });
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<PairPlan> plan_pairs(const std::vector<Rect>& nominal, const PlanOptions& o) {
    // Candidates: every overlapping pair with room for a strip. A grid
    // cell index would do this in O(n); the pairs are few and n is
    // thousands, so sorting by x and sweeping is enough.
    std::vector<PairPlan> all;
    each_overlap(nominal, [&](int a, int b) {
        if (auto p = plan_window(nominal, a, b, o, 0)) all.push_back(*p);
    });
    std::sort(all.begin(), all.end(),
              [](const PairPlan& p, const PairPlan& q) { return std::pair(p.a, p.b) < std::pair(q.a, q.b); });
    if (o.deep_share >= 1) return all;

    // Groups of images the shallow pairs join.
    UnionFind uf(nominal.size());
    for (const PairPlan& p : all)
        if (!p.deep) uf.join(p.a, p.b);
    // The images a deep pair must read deep, and the deep pairs by the two
    // groups they join.
    auto deep_sides = [&](const PairPlan& p) {
        std::vector<int> s;
        if (deep_read(nominal, o, p.a, p.crop_a)) s.push_back(p.a);
        if (deep_read(nominal, o, p.b, p.crop_b)) s.push_back(p.b);
        return s;
    };
    std::map<std::pair<int, int>, std::vector<std::size_t>> groups;
    for (std::size_t k = 0; k < all.size(); ++k)
        if (all[k].deep) {
            int ga = uf.find(all[k].a), gb = uf.find(all[k].b);
            groups[{std::min(ga, gb), std::max(ga, gb)}].push_back(k);
        }
    std::vector<bool> read_deep(nominal.size(), false);
    auto centre_order = [&](int p, int q) {
        const Rect &P = nominal[std::size_t(p)], &Q = nominal[std::size_t(q)];
        return std::pair(2 * P.x + P.w, 2 * P.y + P.h) < std::pair(2 * Q.x + Q.w, 2 * Q.y + Q.h);
    };
    for (auto& [key, pairs] : groups) {
        std::vector<int> cand;
        for (std::size_t k : pairs)
            for (int t : deep_sides(all[k])) cand.push_back(t);
        std::sort(cand.begin(), cand.end(), centre_order);
        cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
        const std::size_t n = cand.size();
        std::size_t m = std::max<std::size_t>(std::size_t(o.min_links), std::size_t(std::ceil(o.deep_share * n)));
        m = std::min(m, n);
        // evenly spread: the middle of each of m equal runs
        for (std::size_t t = 0; t < m; ++t) read_deep[std::size_t(cand[(2 * t + 1) * n / (2 * m)])] = true;
    }
    auto served = [&](const PairPlan& p) {
        for (int t : deep_sides(p))
            if (!read_deep[std::size_t(t)]) return false;
        return true;
    };
    // A group whose chosen images serve too few of its pairs (the deep
    // side of a pair may be both images) registers all of its pairs.
    for (auto& [key, pairs] : groups) {
        std::size_t n = 0;
        for (std::size_t k : pairs) n += served(all[k]);
        if (n < std::min(pairs.size(), std::size_t(o.min_links)))
            for (std::size_t k : pairs)
                for (int t : deep_sides(all[k])) read_deep[std::size_t(t)] = true;
    }
    std::vector<PairPlan> out;
    for (const PairPlan& p : all)
        if (!p.deep || served(p)) out.push_back(p);
    return out;
}

// ---------------------------------------------------------------- solve

namespace {

// Least squares for one axis: corrections c (position - nominal) that
// minimise sum w (c_b - c_a - e)^2 over the used links, e being each link's
// measured offset minus the nominal one. One image per connected group is
// held at 0 (the normal equations are then positive definite) and
// conjugate gradients with a Jacobi preconditioner solve for the rest; the
// group is then shifted to a mean correction of zero.
std::vector<double> solve_axis(std::size_t n, const std::vector<Link>& links, const std::vector<bool>& used,
                               const std::vector<double>& e, const std::vector<int>& group,
                               const std::vector<bool>& anchor) {
    std::vector<double> diag(n, 0), rhs(n, 0);
    for (std::size_t k = 0; k < links.size(); ++k) {
        if (!used[k]) continue;
        const Link& l = links[k];
        diag[std::size_t(l.a)] += l.weight;
        diag[std::size_t(l.b)] += l.weight;
        rhs[std::size_t(l.b)] += l.weight * e[k];
        rhs[std::size_t(l.a)] -= l.weight * e[k];
    }
    auto free_var = [&](std::size_t i) { return diag[i] > 0 && !anchor[i]; };
    auto apply = [&](const std::vector<double>& x, std::vector<double>& y) {
        std::fill(y.begin(), y.end(), 0.0);
        for (std::size_t k = 0; k < links.size(); ++k) {
            if (!used[k]) continue;
            const Link& l = links[k];
            double d = l.weight * (x[std::size_t(l.b)] - x[std::size_t(l.a)]);
            y[std::size_t(l.b)] += d;
            y[std::size_t(l.a)] -= d;
        }
        for (std::size_t i = 0; i < n; ++i)
            if (!free_var(i)) y[i] = 0;
    };
    std::vector<double> x(n, 0), r(n, 0), z(n, 0), p(n, 0), q(n, 0);
    for (std::size_t i = 0; i < n; ++i) r[i] = free_var(i) ? rhs[i] : 0;
    auto precondition = [&] {
        for (std::size_t i = 0; i < n; ++i) z[i] = free_var(i) ? r[i] / diag[i] : 0;
    };
    auto dot = [&](const std::vector<double>& u, const std::vector<double>& v) {
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += u[i] * v[i];
        return s;
    };
    precondition();
    p = z;
    double rz = dot(r, z);
    const double stop = 1e-24 * std::max(dot(r, r), 1e-300);
    for (std::size_t it = 0; it < 10 * n + 10 && dot(r, r) > stop; ++it) {
        apply(p, q);
        double pq = dot(p, q);
        if (!(pq > 0)) break;
        double alpha = rz / pq;
        for (std::size_t i = 0; i < n; ++i) {
            x[i] += alpha * p[i];
            r[i] -= alpha * q[i];
        }
        precondition();
        double rz2 = dot(r, z);
        for (std::size_t i = 0; i < n; ++i) p[i] = z[i] + (rz2 / rz) * p[i];
        rz = rz2;
    }
    // each group to a mean correction of zero
    std::map<int, std::pair<double, int>> mean;
    for (std::size_t i = 0; i < n; ++i) {
        auto& m = mean[group[i]];
        m.first += x[i];
        m.second += 1;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const auto& m = mean[group[i]];
        x[i] -= m.first / m.second;
    }
    return x;
}

// Least squares fit of v ~ m0 X + m1 Y + m2 over the points (3x3 normal
// equations, solved by Cramer's rule); false when they are (nearly) on a line.
bool fit_affine(const std::vector<Vec2>& at, const std::vector<double>& v, double m[3]) {
    double s[3][3] = {}, r[3] = {};
    // centred, so that the equations are well conditioned whatever the
    // canvas coordinates
    Vec2 c;
    for (const Vec2& p : at) c.x += p.x, c.y += p.y;
    c.x /= double(at.size()), c.y /= double(at.size());
    for (std::size_t i = 0; i < at.size(); ++i) {
        const double u[3] = {at[i].x - c.x, at[i].y - c.y, 1};
        for (int j = 0; j < 3; ++j) {
            for (int k = 0; k < 3; ++k) s[j][k] += u[j] * u[k];
            r[j] += u[j] * v[i];
        }
    }
    auto det3 = [](const double a[3][3]) {
        return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
               a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    };
    const double d = det3(s);
    const double scale = s[0][0] * s[1][1] * s[2][2];
    if (!(std::abs(d) > 1e-9 * std::max(scale, 1e-300))) return false;
    double sol[3];
    for (int j = 0; j < 3; ++j) {
        double t[3][3];
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < 3; ++b) t[a][b] = b == j ? r[a] : s[a][b];
        sol[j] = det3(t) / d;
    }
    m[0] = sol[0], m[1] = sol[1], m[2] = sol[2] - sol[0] * c.x - sol[1] * c.y;
    return true;
}

// The groups the used links join (group[i]: image i's) and the image held
// at 0 in each (anchor: the group's first image in input order).
struct Groups {
    std::vector<int> group;
    std::vector<bool> anchor;
};

Groups link_groups(std::size_t n, const std::vector<Link>& links, const std::vector<bool>& used) {
    Groups g{std::vector<int>(n), std::vector<bool>(n, false)};
    UnionFind uf(n);
    for (std::size_t k = 0; k < links.size(); ++k)
        if (used[k]) uf.join(links[k].a, links[k].b);
    std::vector<bool> seen(n, false);
    for (std::size_t i = 0; i < n; ++i) {
        g.group[i] = uf.find(int(i));
        if (!seen[std::size_t(g.group[i])]) g.anchor[i] = seen[std::size_t(g.group[i])] = true;
    }
    return g;
}

// The link the solve drops next (links.size(): none), from s.used and
// s.residual. An outlier disagrees by more than max_residual and by more
// than 3 times what the used links typically do: real tiles that do not
// fit together by a translation alone (lens distortion, a stage that
// tilts) leave every link a residual of a pixel or two, and dropping the
// best-measured ones for it would help nothing. Of several, the worst.
std::size_t worst_outlier(const Solution& s, double max_residual) {
    std::vector<double> used_r;
    for (std::size_t k = 0; k < s.used.size(); ++k)
        if (s.used[k]) used_r.push_back(s.residual[k]);
    double typical = 0;
    if (!used_r.empty()) {
        std::nth_element(used_r.begin(), used_r.begin() + std::ptrdiff_t(used_r.size() / 2), used_r.end());
        typical = used_r[used_r.size() / 2];
    }
    std::size_t worst = s.used.size();
    double worst_r = std::max(max_residual, 3 * typical);
    for (std::size_t k = 0; k < s.used.size(); ++k)
        if (s.used[k] && s.residual[k] > worst_r) {
            worst_r = s.residual[k];
            worst = k;
        }
    return worst;
}

// The corrections (position - nominal) per axis, and the groups they were
// solved in.
struct Corrections {
    std::vector<double> cx, cy;
    std::vector<int> group;
};

// Solves with the links s.used keeps, drops the worst outlier and solves
// again, until none is left; s.used, s.residual (every link's |solved
// offset - measured offset|) and s.rejected record it. ex, ey: each link's
// measured offset minus the nominal one.
Corrections solve_dropping_outliers(std::size_t n, const std::vector<Link>& links, const std::vector<double>& ex,
                                    const std::vector<double>& ey, double max_residual, Solution& s) {
    Corrections c;
    for (;;) {
        Groups g = link_groups(n, links, s.used);
        c.cx = solve_axis(n, links, s.used, ex, g.group, g.anchor);
        c.cy = solve_axis(n, links, s.used, ey, g.group, g.anchor);
        c.group = std::move(g.group);
        for (std::size_t k = 0; k < links.size(); ++k) {
            const Link& l = links[k];
            double rx = c.cx[std::size_t(l.b)] - c.cx[std::size_t(l.a)] - ex[k];
            double ry = c.cy[std::size_t(l.b)] - c.cy[std::size_t(l.a)] - ey[k];
            s.residual[k] = std::hypot(rx, ry);
        }
        const std::size_t worst = worst_outlier(s, max_residual);
        if (worst == links.size()) return c;
        s.used[worst] = false;
        ++s.rejected;
    }
}

// The images some used link holds (linked[i] = 1), and the largest of their
// groups (ties: the one holding the lowest image first), -1 when there is
// none: the group the stage model is fitted to.
int main_group(std::size_t n, const std::vector<Link>& links, const std::vector<bool>& used,
               const std::vector<int>& group, std::vector<int>& linked) {
    linked.assign(n, 0);
    for (std::size_t k = 0; k < links.size(); ++k)
        if (used[k]) linked[std::size_t(links[k].a)] = linked[std::size_t(links[k].b)] = 1;
    std::map<int, std::size_t> size;
    for (std::size_t i = 0; i < n; ++i)
        if (linked[i]) ++size[group[i]];
    int main = -1;
    for (std::size_t i = 0; i < n; ++i)
        if (linked[i] && (main < 0 || size[group[i]] > size[main])) main = group[i];
    return main;
}

// The stage model from the largest group: an affine map of nominal to
// solved positions, or the identity (its mean correction is zero), into
// s.model; the group's images are marked registered.
void fit_stage_model(const std::vector<Vec2>& nominal, const std::vector<int>& linked, const std::vector<int>& group,
                     int main, Solution& s) {
    std::vector<Vec2> at;
    std::vector<double> vx, vy;
    for (std::size_t i = 0; i < nominal.size(); ++i)
        if (linked[i] && group[i] == main) {
            at.push_back(nominal[i]);
            vx.push_back(s.positions[i].x);
            vy.push_back(s.positions[i].y);
            s.placed[i] = Placed::registered;
        }
    double mx[3] = {1, 0, 0}, my[3] = {0, 1, 0};
    if (at.size() >= 6 && !(fit_affine(at, vx, mx) && fit_affine(at, vy, my))) {
        mx[0] = 1, mx[1] = 0, mx[2] = 0, my[0] = 0, my[1] = 1, my[2] = 0;
    }
    std::copy(mx, mx + 3, s.model);
    std::copy(my, my + 3, s.model + 3);
}

// Smaller groups: shifted as a whole to the model's mean place for them;
// images no used link holds: where the model puts them.
void place_by_model(const std::vector<Vec2>& nominal, const std::vector<int>& linked, const std::vector<int>& group,
                    int main, Solution& s) {
    const double *mx = s.model, *my = s.model + 3;
    auto model = [&](const Vec2& p) {
        return Vec2{mx[0] * p.x + mx[1] * p.y + mx[2], my[0] * p.x + my[1] * p.y + my[2]};
    };
    const std::size_t n = nominal.size();
    std::map<int, std::pair<Vec2, int>> shift;
    for (std::size_t i = 0; i < n; ++i)
        if (linked[i] && group[i] != main) {
            const Vec2 want = model(nominal[i]);
            auto& sh = shift[group[i]];
            sh.first.x += want.x - s.positions[i].x;
            sh.first.y += want.y - s.positions[i].y;
            sh.second += 1;
        }
    for (std::size_t i = 0; i < n; ++i) {
        if (!linked[i]) {
            s.positions[i] = model(nominal[i]);
        } else if (group[i] != main) {
            const auto& sh = shift[group[i]];
            s.positions[i].x += sh.first.x / sh.second;
            s.positions[i].y += sh.first.y / sh.second;
            s.placed[i] = Placed::group;
        }
    }
}

}  // namespace

std::vector<bool> fits_stage(const std::vector<Vec2>& nominal, const std::vector<Link>& links,
                             const std::vector<int>& kind, double spread, double slack) {
    std::vector<bool> out(links.size(), true);
    auto error = [&](const Link& l, int axis) {
        const Vec2 &a = nominal[std::size_t(l.a)], &b = nominal[std::size_t(l.b)];
        return axis ? l.offset.y - (b.y - a.y) : l.offset.x - (b.x - a.x);
    };
    std::vector<int> kinds(kind.begin(), kind.end());
    std::sort(kinds.begin(), kinds.end());
    kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
    for (int k : kinds)
        for (int axis = 0; axis < 2; ++axis) {
            std::vector<double> e;
            for (std::size_t i = 0; i < links.size(); ++i)
                if (kind[i] == k) e.push_back(error(links[i], axis));
            if (e.size() < 4) continue;
            // Tukey's fences, widened by the slack: the quartiles hold the
            // stage's usual errors (two modes too, as backlash makes)
            std::sort(e.begin(), e.end());
            auto q = [&](double f) {
                const double pos = f * double(e.size() - 1);
                const std::size_t i = std::size_t(pos);
                return i + 1 < e.size() ? e[i] + (pos - double(i)) * (e[i + 1] - e[i]) : e[i];
            };
            const double q1 = q(0.25), q3 = q(0.75), iqr = q3 - q1;
            const double lo = q1 - spread * iqr - slack, hi = q3 + spread * iqr + slack;
            for (std::size_t i = 0; i < links.size(); ++i)
                if (kind[i] == k && (error(links[i], axis) < lo || error(links[i], axis) > hi)) out[i] = false;
        }
    return out;
}

Solution solve_positions(const std::vector<Vec2>& nominal, const std::vector<Link>& links, double max_residual) {
    // Cases: links without weight are never used; an outlier is dropped and
    // the rest solved again (worst_outlier says what counts as one); images
    // of the largest group are placed by their links, those of smaller
    // groups as a group onto the stage model, those no used link holds by
    // the model alone.
    const std::size_t n = nominal.size();
    Solution s;
    s.used.assign(links.size(), true);
    s.residual.assign(links.size(), 0);
    std::vector<double> ex(links.size()), ey(links.size());
    for (std::size_t k = 0; k < links.size(); ++k) {
        const Link& l = links[k];
        ex[k] = l.offset.x - (nominal[std::size_t(l.b)].x - nominal[std::size_t(l.a)].x);
        ey[k] = l.offset.y - (nominal[std::size_t(l.b)].y - nominal[std::size_t(l.a)].y);
        if (!(l.weight > 0)) s.used[k] = false;
    }
    const Corrections c = solve_dropping_outliers(n, links, ex, ey, max_residual, s);
    std::vector<int> linked;
    const int main = main_group(n, links, s.used, c.group, linked);

    s.positions.resize(n);
    s.placed.assign(n, Placed::stage_model);
    for (std::size_t i = 0; i < n; ++i) s.positions[i] = {nominal[i].x + c.cx[i], nominal[i].y + c.cy[i]};
    fit_stage_model(nominal, linked, c.group, main, s);
    place_by_model(nominal, linked, c.group, main, s);
    return s;
}

}  // namespace tessera::registration
