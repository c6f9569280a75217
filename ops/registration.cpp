// Registration math: see tessera/ops/registration.hpp.
#include "tessera/ops/registration.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <type_traits>

#include "tessera/core/format.hpp"

namespace tessera::registration {

// ---------------------------------------------------------------- pixels

GreyImage to_grey(const ConstTile& tile) {
    const Rect& r = tile.rect;
    GreyImage out{r, std::vector<std::int16_t>(std::size_t(r.area()))};
    if (r.empty()) return out;
    const int bands = tile.bands;
    dispatch_format(tile.format, [&](auto zero) {
        using T = decltype(zero);
        if constexpr (std::is_integral_v<T> && sizeof(T) <= 2) {
            // Small integers: the sum of the bands is exact in an int32, and
            // a sum is as good as a mean to a correlation.
            std::vector<std::int32_t> sum(out.px.size());
            for (int y = 0; y < r.h; ++y) {
                const T* src = tile.row<T>(r.y + y);
                std::int32_t* dst = sum.data() + std::size_t(y) * r.w;
                if (bands == 3) {
                    for (int x = 0; x < r.w; ++x) dst[x] = std::int32_t(src[3 * x]) + src[3 * x + 1] + src[3 * x + 2];
                } else {
                    for (int x = 0; x < r.w; ++x) {
                        std::int32_t s = 0;
                        for (int b = 0; b < bands; ++b) s += src[std::size_t(x) * bands + b];
                        dst[x] = s;
                    }
                }
            }
            auto [lo, hi] = std::minmax_element(sum.begin(), sum.end());
            const std::int32_t base = *lo, range = *hi - *lo;
            if (range <= 1023) {  // fits as it is (3 x 8 bits does)
                for (std::size_t i = 0; i < sum.size(); ++i) out.px[i] = std::int16_t(sum[i] - base);
            } else {
                const float scale = 1023.0f / float(range);
                for (std::size_t i = 0; i < sum.size(); ++i)
                    out.px[i] = std::int16_t(float(sum[i] - base) * scale + 0.5f);
            }
        } else {
            std::vector<double> mean(out.px.size());
            for (int y = 0; y < r.h; ++y) {
                const T* src = tile.row<T>(r.y + y);
                double* dst = mean.data() + std::size_t(y) * r.w;
                for (int x = 0; x < r.w; ++x) {
                    double s = 0;
                    for (int b = 0; b < bands; ++b) s += double(src[std::size_t(x) * bands + b]);
                    dst[x] = s / bands;
                }
            }
            auto [lo, hi] = std::minmax_element(mean.begin(), mean.end());
            const double base = *lo, range = *hi - *lo;
            if (!(range > 0) || !std::isfinite(range)) return;  // flat (or not finite): all zero, match() says so
            const double scale = 1023.0 / range;
            for (std::size_t i = 0; i < mean.size(); ++i) out.px[i] = std::int16_t((mean[i] - base) * scale + 0.5);
        }
    });
    return out;
}

GreyImage shrink(const GreyImage& im, int f) {
    if (f == 1) return im;
    const int w = im.rect.w / f, h = im.rect.h / f;
    GreyImage out{{im.rect.x / f, im.rect.y / f, w, h}, std::vector<std::int16_t>(std::size_t(w) * std::max(h, 0))};
    const int n = f * f;
    std::vector<std::int32_t> acc(std::size_t(std::max(w, 0)));
    for (int y = 0; y < h; ++y) {
        std::fill(acc.begin(), acc.end(), 0);
        for (int v = 0; v < f; ++v) {
            const std::int16_t* row = im.row(y * f + v);
            for (int x = 0; x < w; ++x)
                for (int u = 0; u < f; ++u) acc[std::size_t(x)] += row[x * f + u];
        }
        std::int16_t* dst = out.px.data() + std::size_t(y) * w;
        for (int x = 0; x < w; ++x) dst[x] = std::int16_t((acc[std::size_t(x)] + n / 2) / n);
    }
    return out;
}

// ---------------------------------------------------------------- match

namespace {

// Normalised cross-correlation of a window with every placement in a
// region, from integer sums: the window's sums once, the region's through
// integral images, one dot product per placement.
class Correlator {
public:
    Correlator(const GreyImage& win, const GreyImage& reg) : win_(win), reg_(reg) {
        n_ = double(win.rect.area());
        for (std::int16_t v : win.px) {
            sw_ += v;
            sww_ += std::int64_t(v) * v;
        }
        const int W = reg.rect.w, H = reg.rect.h;
        sum_.assign(std::size_t(W + 1) * (H + 1), 0);
        sq_.assign(sum_.size(), 0);
        for (int y = 0; y < H; ++y) {
            std::int64_t rs = 0, rq = 0;
            const std::int16_t* row = reg.row(y);
            for (int x = 0; x < W; ++x) {
                rs += row[x];
                rq += std::int64_t(row[x]) * row[x];
                at(sum_, x + 1, y + 1) = at(sum_, x + 1, y) + rs;
                at(sq_, x + 1, y + 1) = at(sq_, x + 1, y) + rq;
            }
        }
    }

    bool flat() const { return n_ * double(sww_) - double(sw_) * double(sw_) <= 0; }
    int max_x() const { return reg_.rect.w - win_.rect.w; }
    int max_y() const { return reg_.rect.h - win_.rect.h; }

    // NCC of the window placed at (ox, oy) in the region (region pixels).
    double ncc(int ox, int oy) const {
        const int w = win_.rect.w, h = win_.rect.h;
        std::int64_t dot = 0;
        for (int v = 0; v < h; ++v) {
            const std::int16_t* a = win_.row(v);
            const std::int16_t* b = reg_.row(oy + v) + ox;
            std::int32_t s = 0;  // 1023^2 x (w <= 2048) fits
            for (int u = 0; u < w; ++u) s += std::int32_t(a[u]) * std::int32_t(b[u]);
            dot += s;
        }
        auto box = [&](const std::vector<std::int64_t>& t) {
            return at(t, ox + w, oy + h) - at(t, ox, oy + h) - at(t, ox + w, oy) + at(t, ox, oy);
        };
        const double sr = double(box(sum_)), srr = double(box(sq_));
        const double vw = n_ * double(sww_) - double(sw_) * double(sw_);
        const double vr = n_ * srr - sr * sr;
        if (vr <= 0) return -1;
        return (n_ * double(dot) - double(sw_) * sr) / std::sqrt(vw * vr);
    }

private:
    std::int64_t& at(std::vector<std::int64_t>& t, int x, int y) const {
        return t[std::size_t(y) * (reg_.rect.w + 1) + x];
    }
    std::int64_t at(const std::vector<std::int64_t>& t, int x, int y) const {
        return t[std::size_t(y) * (reg_.rect.w + 1) + x];
    }
    const GreyImage& win_;
    const GreyImage& reg_;
    double n_ = 0;
    std::int64_t sw_ = 0, sww_ = 0;
    std::vector<std::int64_t> sum_, sq_;
};

struct Best {
    Point at{0, 0};
    double score = -2;
};

// The best placement over [x0, x1] x [y0, y1] (clipped to the valid ones);
// ties go to the first in row-major order, so the answer is deterministic.
Best search(const Correlator& c, int x0, int x1, int y0, int y1) {
    x0 = std::max(x0, 0), y0 = std::max(y0, 0);
    x1 = std::min(x1, c.max_x()), y1 = std::min(y1, c.max_y());
    Best best;
    for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
            double s = c.ncc(x, y);
            if (s > best.score) best = {{x, y}, s};
        }
    return best;
}

}  // namespace

Match match(const GreyImage& window, const GreyImage& region, double min_score) {
    Match m;
    const Rect& wr = window.rect;
    const Rect& rr = region.rect;
    if (wr.empty() || rr.w < wr.w || rr.h < wr.h) {
        m.why = "the region is smaller than the window";
        return m;
    }
    // Coarsest level: shrink by powers of two while the search is more than
    // a few pixels wide there and the window keeps some detail.
    const int range = std::max(rr.w - wr.w, rr.h - wr.h);
    int f = 1;
    while (f < 16 && range / (2 * f) > 6 && wr.w / (2 * f) >= 16 && wr.h / (2 * f) >= 16) f *= 2;
    // Halved again and again: level k is shrunk by 2^k, and the region's
    // block grid starts at its own origin, so a placement (cx, cy) at level k
    // is (2 cx, 2 cy) at level k - 1.
    std::vector<GreyImage> wl, rl;  // levels 1.. (level 0 is the input)
    for (int level = 2; level <= f; level *= 2) {
        wl.push_back(shrink(wl.empty() ? window : wl.back(), 2));
        rl.push_back(shrink(rl.empty() ? region : rl.back(), 2));
    }
    Best best;
    for (int k = int(wl.size()); k >= 0; --k) {
        Correlator c(k ? wl[std::size_t(k - 1)] : window, k ? rl[std::size_t(k - 1)] : region);
        if (c.flat()) {
            m.why = "the window is flat (no texture to align)";
            return m;
        }
        if (k == int(wl.size())) {
            best = search(c, 0, c.max_x(), 0, c.max_y());
        } else {
            Point p{best.at.x * 2, best.at.y * 2};
            best = search(c, p.x - 2, p.x + 2, p.y - 2, p.y + 2);
        }
    }
    m.offset = {wr.x - rr.x - best.at.x, wr.y - rr.y - best.at.y};
    m.score = best.score;
    if (best.at.x == 0 || best.at.y == 0 || best.at.x == rr.w - wr.w || best.at.y == rr.h - wr.h) {
        m.why = "the best match lies on the edge of the search area; the error may be larger: raise the search radius";
        return m;
    }
    if (best.score < min_score) {
        m.why = "poor correlation (" + std::to_string(best.score).substr(0, 5) + ")";
        return m;
    }
    m.found = true;
    return m;
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

}  // namespace

std::optional<PairPlan> plan_window(const std::vector<Rect>& nominal, int a, int b, const PlanOptions& o, int attempt) {
    const int R = std::max(o.search, 0);
    const Rect& A = nominal[std::size_t(a)];
    const Rect& B = nominal[std::size_t(b)];
    Rect ov = A.intersect(B);
    // shrunk by the radius: a window in here stays inside B under any error up to R
    Rect in{ov.x + R, ov.y + R, ov.w - 2 * R, ov.h - 2 * R};
    if (in.w < o.min_window || in.h < o.min_window) return std::nullopt;
    const int w = std::min(in.w, o.window_w), h = std::min(in.h, o.window_h);
    // The places to try, best first: top centre (the cheapest rows), then
    // the middle and the bottom of the overlap, then its left and right
    // ends; each distinct from those before it.
    const int cx = in.x + (in.w - w) / 2, my = in.y + (in.h - h) / 2;
    const Point at[] = {{cx, in.y}, {cx, my}, {cx, in.bottom() - h}, {in.x, my}, {in.right() - w, my}};
    std::vector<Point> distinct;
    for (Point p : at)
        if (std::find(distinct.begin(), distinct.end(), p) == distinct.end()) distinct.push_back(p);
    if (attempt < 0 || std::size_t(attempt) >= distinct.size()) return std::nullopt;
    Rect win{distinct[std::size_t(attempt)].x, distinct[std::size_t(attempt)].y, w, h};
    Rect reg{win.x - R, win.y - R, w + 2 * R, h + 2 * R};
    PairPlan p{a, b, win.translate(-A.x, -A.y), reg.translate(-B.x, -B.y), false};
    p.deep = p.window.bottom() > o.shallow_depth * A.h || p.region.bottom() > o.shallow_depth * B.h;
    return p;
}

std::vector<PairPlan> plan_pairs(const std::vector<Rect>& nominal, const PlanOptions& o) {
    // Candidates: every overlapping pair with room for a window. A grid
    // cell index would do this in O(n); the pairs are few and n is
    // thousands, so sorting by x and sweeping is enough.
    std::vector<int> by_x(nominal.size());
    std::iota(by_x.begin(), by_x.end(), 0);
    std::sort(by_x.begin(), by_x.end(), [&](int p, int q) { return nominal[std::size_t(p)].x < nominal[std::size_t(q)].x; });
    std::vector<PairPlan> all;
    for (std::size_t s = 0; s < by_x.size(); ++s) {
        const Rect& A0 = nominal[std::size_t(by_x[s])];
        for (std::size_t t = s + 1; t < by_x.size() && nominal[std::size_t(by_x[t])].x < A0.right(); ++t) {
            int a = std::min(by_x[s], by_x[t]), b = std::max(by_x[s], by_x[t]);
            if (auto p = plan_window(nominal, a, b, o, 0)) all.push_back(*p);
        }
    }
    std::sort(all.begin(), all.end(), [](const PairPlan& p, const PairPlan& q) {
        return std::pair(p.a, p.b) < std::pair(q.a, q.b);
    });
    if (o.deep_share >= 1) return all;

    // Groups of images the shallow pairs join.
    UnionFind uf(nominal.size());
    for (const PairPlan& p : all)
        if (!p.deep) uf.join(p.a, p.b);
    // The images a deep pair must read deep, and the deep pairs by the two
    // groups they join.
    auto deep_sides = [&](const PairPlan& p) {
        std::vector<int> s;
        if (p.window.bottom() > o.shallow_depth * nominal[std::size_t(p.a)].h) s.push_back(p.a);
        if (p.region.bottom() > o.shallow_depth * nominal[std::size_t(p.b)].h) s.push_back(p.b);
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
    const double stop = 1e-20 * std::max(dot(r, r), 1e-300);
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

}  // namespace

Solution solve_positions(const std::vector<Point>& nominal, const std::vector<Link>& links, double max_residual) {
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
    std::vector<double> cx(n, 0), cy(n, 0);
    for (;;) {
        UnionFind uf(n);
        for (std::size_t k = 0; k < links.size(); ++k)
            if (s.used[k]) uf.join(links[k].a, links[k].b);
        std::vector<int> group(n);
        std::vector<bool> anchor(n, false), seen(n, false);
        for (std::size_t i = 0; i < n; ++i) {
            group[i] = uf.find(int(i));
            if (!seen[std::size_t(group[i])]) anchor[i] = seen[std::size_t(group[i])] = true;
        }
        cx = solve_axis(n, links, s.used, ex, group, anchor);
        cy = solve_axis(n, links, s.used, ey, group, anchor);
        std::size_t worst = links.size();
        double worst_r = max_residual;
        for (std::size_t k = 0; k < links.size(); ++k) {
            const Link& l = links[k];
            double rx = cx[std::size_t(l.b)] - cx[std::size_t(l.a)] - ex[k];
            double ry = cy[std::size_t(l.b)] - cy[std::size_t(l.a)] - ey[k];
            s.residual[k] = std::hypot(rx, ry);
            if (s.used[k] && s.residual[k] > worst_r) {
                worst_r = s.residual[k];
                worst = k;
            }
        }
        if (worst == links.size()) break;
        s.used[worst] = false;
        ++s.rejected;
    }
    s.positions.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        s.positions[i] = {nominal[i].x + int(std::lround(cx[i])), nominal[i].y + int(std::lround(cy[i]))};
    return s;
}

}  // namespace tessera::registration
