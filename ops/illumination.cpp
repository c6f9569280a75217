// Flat-field estimation from an acquisition's own tiles: the
// method and its steps are in tessera/ops/illumination.hpp.
#include "tessera/ops/illumination.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "tessera/core/error.hpp"

namespace tessera::illumination {

Grid working_grid(int tile_w, int tile_h, int max_side) {
    Grid g{tile_w, tile_h, tile_w, tile_h};
    const int side = std::max(tile_w, tile_h);
    if (side > max_side) {
        // one box size for both axes, so cells stay square
        const double f = double(side) / max_side;
        g.w = std::max(1, int(std::lround(tile_w / f)));
        g.h = std::max(1, int(std::lround(tile_h / f)));
        g.w = std::min(g.w, max_side);
        g.h = std::min(g.h, max_side);
    }
    return g;
}

Shrinker::Shrinker(const Grid& grid) : grid_(grid), sum_(std::size_t(grid.w) * grid.h, 0.0) {
    cell_of_x_.resize(std::size_t(grid.tile_w));
    for (int i = 0; i < grid.w; ++i)
        for (int x = grid.x0(i); x < grid.x0(i + 1); ++x) cell_of_x_[std::size_t(x)] = i;
}

void Shrinker::add(const ConstTile& rows) {
    const Rect r = rows.rect.intersect({0, 0, grid_.tile_w, grid_.tile_h});
    dispatch_format(rows.format, [&](auto s) {
        using S = decltype(s);
        for (int y = r.y, j = 0; y < r.bottom(); ++y) {
            while (grid_.y0(j + 1) <= y) ++j;
            double* cells = sum_.data() + std::size_t(j) * grid_.w;
            const S* p = reinterpret_cast<const S*>(rows.at(r.x, y));
            for (int x = r.x; x < r.right(); ++x) {
                double v = 0;
                for (int b = 0; b < rows.bands; ++b) v += double(*p++);
                cells[cell_of_x_[std::size_t(x)]] += v;
            }
        }
    });
    bands_ = rows.bands;
}

std::vector<float> Shrinker::finish() const {
    std::vector<float> out(sum_.size());
    for (int j = 0; j < grid_.h; ++j)
        for (int i = 0; i < grid_.w; ++i) {
            const double n = double(grid_.x0(i + 1) - grid_.x0(i)) * (grid_.y0(j + 1) - grid_.y0(j)) * bands_;
            out[std::size_t(j) * grid_.w + i] = float(sum_[std::size_t(j) * grid_.w + i] / n);
        }
    return out;
}

std::vector<std::size_t> spread_sample(std::size_t n, std::size_t max) {
    std::vector<std::size_t> out;
    if (n <= max) {
        for (std::size_t i = 0; i < n; ++i) out.push_back(i);
        return out;
    }
    if (max == 1) return {n / 2};
    for (std::size_t k = 0; k < max; ++k)
        out.push_back(std::size_t(std::llround(double(k) * double(n - 1) / double(max - 1))));
    return out;
}

namespace {

// Legendre polynomials P_0..P_degree at u in [-1, 1].
void legendre(double u, int degree, double* p) {
    p[0] = 1;
    if (degree >= 1) p[1] = u;
    for (int n = 2; n <= degree; ++n) p[n] = ((2 * n - 1) * u * p[n - 1] - (n - 1) * p[n - 2]) / n;
}

// The terms P_i(u) P_j(v) with i + j <= degree.
struct Basis {
    int degree;
    std::vector<std::pair<int, int>> terms;
    explicit Basis(int d) : degree(d) {
        for (int i = 0; i <= d; ++i)
            for (int j = 0; i + j <= d; ++j) terms.push_back({i, j});
    }
};

// Solves the symmetric positive (semi-)definite system A x = y in place
// (Gaussian elimination, partial pivoting); a singular direction gets 0.
std::vector<double> solve(std::vector<double> a, std::vector<double> y) {
    const std::size_t n = y.size();
    for (std::size_t c = 0; c < n; ++c) {
        std::size_t piv = c;
        for (std::size_t r = c + 1; r < n; ++r)
            if (std::abs(a[r * n + c]) > std::abs(a[piv * n + c])) piv = r;
        if (std::abs(a[piv * n + c]) < 1e-12) continue;
        if (piv != c) {
            for (std::size_t k = 0; k < n; ++k) std::swap(a[c * n + k], a[piv * n + k]);
            std::swap(y[c], y[piv]);
        }
        for (std::size_t r = 0; r < n; ++r) {
            if (r == c) continue;
            const double f = a[r * n + c] / a[c * n + c];
            if (f == 0) continue;
            for (std::size_t k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
            y[r] -= f * y[c];
        }
    }
    std::vector<double> x(n, 0.0);
    for (std::size_t c = 0; c < n; ++c)
        if (std::abs(a[c * n + c]) >= 1e-12) x[c] = y[c] / a[c * n + c];
    return x;
}

// Cell centres in [-1, 1] (the same mapping as pixel centres below).
std::vector<double> cell_u(int cells, int size, int (Grid::*edge)(int) const, const Grid& g) {
    std::vector<double> u(std::size_t(cells), 0.0);
    for (int i = 0; i < cells; ++i) u[std::size_t(i)] = double((g.*edge)(i) + (g.*edge)(i + 1)) / size - 1;
    return u;
}

// Least-squares coefficients of the basis fitted to the cell values z.
std::vector<double> fit(const Basis& basis, const Grid& g, const std::vector<double>& z) {
    const std::vector<double> u = cell_u(g.w, g.tile_w, &Grid::x0, g), v = cell_u(g.h, g.tile_h, &Grid::y0, g);
    const std::size_t n = basis.terms.size();
    std::vector<double> ata(n * n, 0.0), aty(n, 0.0), row(n), pu(std::size_t(basis.degree) + 1),
        pv(std::size_t(basis.degree) + 1);
    for (int j = 0; j < g.h; ++j) {
        legendre(v[std::size_t(j)], basis.degree, pv.data());
        for (int i = 0; i < g.w; ++i) {
            legendre(u[std::size_t(i)], basis.degree, pu.data());
            for (std::size_t t = 0; t < n; ++t)
                row[t] = pu[std::size_t(basis.terms[t].first)] * pv[std::size_t(basis.terms[t].second)];
            const double zz = z[std::size_t(j) * g.w + i];
            for (std::size_t r = 0; r < n; ++r) {
                aty[r] += row[r] * zz;
                for (std::size_t c = 0; c < n; ++c) ata[r * n + c] += row[r] * row[c];
            }
        }
    }
    return solve(std::move(ata), std::move(aty));
}

// The fitted surface at the cells (for the residual).
std::vector<double> at_cells(const Basis& basis, const Grid& g, const std::vector<double>& coef) {
    const std::vector<double> u = cell_u(g.w, g.tile_w, &Grid::x0, g), v = cell_u(g.h, g.tile_h, &Grid::y0, g);
    std::vector<double> out(std::size_t(g.w) * g.h), pu(std::size_t(basis.degree) + 1), pv(pu.size());
    for (int j = 0; j < g.h; ++j) {
        legendre(v[std::size_t(j)], basis.degree, pv.data());
        for (int i = 0; i < g.w; ++i) {
            legendre(u[std::size_t(i)], basis.degree, pu.data());
            double s = 0;
            for (std::size_t t = 0; t < coef.size(); ++t)
                s += coef[t] * pu[std::size_t(basis.terms[t].first)] * pv[std::size_t(basis.terms[t].second)];
            out[std::size_t(j) * g.w + i] = s;
        }
    }
    return out;
}

// The surface at every pixel centre of the tile: separable, so the Legendre
// values are computed once per column and per row.
std::vector<float> at_pixels(const Basis& basis, const Grid& g, const std::vector<double>& coef, double scale,
                             double offset) {
    const std::size_t d = std::size_t(basis.degree) + 1;
    std::vector<double> px(std::size_t(g.tile_w) * d), py(std::size_t(g.tile_h) * d);
    for (int x = 0; x < g.tile_w; ++x) legendre((2.0 * x + 1) / g.tile_w - 1, basis.degree, &px[std::size_t(x) * d]);
    for (int y = 0; y < g.tile_h; ++y) legendre((2.0 * y + 1) / g.tile_h - 1, basis.degree, &py[std::size_t(y) * d]);
    std::vector<float> out(std::size_t(g.tile_w) * g.tile_h);
    std::vector<double> rowc(d);  // for one row y: sum over j of coef(i, j) P_j(v), per i
    for (int y = 0; y < g.tile_h; ++y) {
        std::fill(rowc.begin(), rowc.end(), 0.0);
        for (std::size_t t = 0; t < coef.size(); ++t)
            rowc[std::size_t(basis.terms[t].first)] +=
                coef[t] * py[std::size_t(y) * d + std::size_t(basis.terms[t].second)];
        float* o = out.data() + std::size_t(y) * g.tile_w;
        for (int x = 0; x < g.tile_w; ++x) {
            double s = 0;
            for (std::size_t i = 0; i < d; ++i) s += rowc[i] * px[std::size_t(x) * d + i];
            o[x] = float(s * scale + offset);
        }
    }
    return out;
}

}  // namespace

Profiles estimate(const Grid& g, const std::vector<std::vector<float>>& samples, const Options& o) {
    const std::size_t n = samples.size(), cells = std::size_t(g.w) * g.h;
    if (n < 3)
        throw Error("flat-field estimation needs at least 3 tiles (has " + std::to_string(n) +
                    "); give a flat-field instead (--flatfield)");
    const int degree = o.degree;
    if (degree < 0 || degree > 8) throw Error("flat-field estimation: degree must be 0..8");
    for (const auto& s : samples)
        if (s.size() != cells) throw Error("internal: flat-field sample of the wrong size");

    // Step 1: each sample over its own mean, so that bright and dim tiles
    // (content, exposure) weigh the same.
    std::vector<double> scale(n, 0.0);
    for (std::size_t k = 0; k < n; ++k) {
        double mean = 0;
        for (float v : samples[k]) mean += double(v);
        mean /= double(cells);
        if (mean > 0 && std::isfinite(mean)) scale[k] = 1.0 / mean;
    }
    // Step 2: at each cell, the mean of the middle 80 % of the samples.
    std::vector<double> level(cells), stack;
    for (std::size_t c = 0; c < cells; ++c) {
        stack.clear();
        for (std::size_t k = 0; k < n; ++k)
            if (scale[k] > 0) stack.push_back(double(samples[k][c]) * scale[k]);
        std::sort(stack.begin(), stack.end());
        double sum = 0;
        const std::size_t lo = stack.size() / 10, hi = stack.size() - stack.size() / 10;
        for (std::size_t k = lo; k < hi; ++k) sum += stack[k];
        level[c] = hi > lo ? sum / double(hi - lo) : 0.0;
    }
    const double lmax = *std::max_element(level.begin(), level.end());
    if (!(lmax > 0))
        throw Error("flat-field estimation: the " + std::to_string(n) +
                    " sampled tiles are black (nothing to measure the illumination from); give a flat-field instead "
                    "(--flatfield)");
    // Step 3: smooth, evaluate at every pixel, normalise to mean 1.
    const Basis basis(degree);
    const std::vector<double> coef = fit(basis, g, level);
    const std::vector<double> fitted = at_cells(basis, g, coef);
    Profiles out;
    out.width = g.tile_w;
    out.height = g.tile_h;
    out.tiles = n;
    out.degree = degree;
    double res = 0;
    for (std::size_t c = 0; c < cells; ++c) res += std::pow((level[c] - fitted[c]) / std::max(fitted[c], 1e-12), 2);
    out.flat_residual = std::sqrt(res / double(cells));
    std::vector<float> flat = at_pixels(basis, g, coef, 1.0, 0.0);
    double mean = 0, fmin = flat.empty() ? 0 : flat[0];
    for (float f : flat) mean += f, fmin = std::min(fmin, double(f));
    mean /= double(flat.size());
    if (!(fmin > 0))
        throw Error("flat-field estimation: the fitted flat-field is not positive everywhere (too few tiles or too "
                    "little signal at the tiles' edges); give a flat-field instead (--flatfield)");
    for (float& f : flat) f = float(f / mean);
    out.flat = std::move(flat);
    return out;
}

namespace {

struct Edge {
    std::size_t a, b;
    double r;  // log(mean_b / mean_a)
};

// min sum (x_b - x_a - r)^2 with mean x = 0 on each connected group:
// conjugate gradients on L x = B^T r. L's null space is the groups'
// indicator vectors and B^T r is orthogonal to it, so from x = 0 the
// iterates stay orthogonal too: the minimum-norm (zero-mean) solution.
std::vector<double> solve_log_gains(std::size_t n, const std::vector<Edge>& edges) {
    std::vector<std::vector<std::size_t>> adj(n);
    for (const Edge& e : edges) adj[e.a].push_back(e.b), adj[e.b].push_back(e.a);
    auto apply = [&](const std::vector<double>& x, std::vector<double>& y) {
        for (std::size_t i = 0; i < n; ++i) {
            double s = double(adj[i].size()) * x[i];
            for (std::size_t j : adj[i]) s -= x[j];
            y[i] = s;
        }
    };
    std::vector<double> x(n, 0.0), rres(n, 0.0), p, q(n);
    for (const Edge& e : edges) rres[e.b] += e.r, rres[e.a] -= e.r;
    p = rres;
    double rr = 0;
    for (double v : rres) rr += v * v;
    const double stop = rr * 1e-24;
    for (std::size_t it = 0; it < 4 * n + 100 && rr > stop && rr > 0; ++it) {
        apply(p, q);
        double pq = 0;
        for (std::size_t i = 0; i < n; ++i) pq += p[i] * q[i];
        if (!(pq > 0)) break;
        const double alpha = rr / pq;
        double rr2 = 0;
        for (std::size_t i = 0; i < n; ++i) {
            x[i] += alpha * p[i];
            rres[i] -= alpha * q[i];
            rr2 += rres[i] * rres[i];
        }
        const double beta = rr2 / rr;
        rr = rr2;
        for (std::size_t i = 0; i < n; ++i) p[i] = rres[i] + beta * p[i];
    }
    return x;
}

double rms_of(const std::vector<Edge>& edges, const std::vector<double>& x) {
    if (edges.empty()) return 0;
    double s = 0;
    for (const Edge& e : edges) s += std::pow(e.r - (x[e.b] - x[e.a]), 2);
    return std::sqrt(s / double(edges.size()));
}

}  // namespace

Gains solve_gains(std::size_t tiles, const std::vector<Overlap>& overlaps) {
    std::vector<Edge> edges;
    Gains out;
    for (const Overlap& o : overlaps) {
        if (o.a < tiles && o.b < tiles && o.a != o.b && o.mean_a > 0 && o.mean_b > 0 && std::isfinite(o.mean_a) &&
            std::isfinite(o.mean_b))
            edges.push_back({o.a, o.b, std::log(o.mean_b / o.mean_a)});
        else
            ++out.dropped;
    }
    std::vector<double> x = solve_log_gains(tiles, edges);
    // The worst overlap out while it disagrees by more than 4x the median
    // (and 2 %), one at a time: least squares spreads an outlier over its
    // neighbours, so only the worst is surely wrong. At most a quarter go.
    for (std::size_t drops = 0; edges.size() > 2 && drops < edges.size() / 4 + 1; ++drops) {
        std::vector<double> res;
        for (const Edge& e : edges) res.push_back(std::abs(e.r - (x[e.b] - x[e.a])));
        std::vector<double> sorted = res;
        std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(sorted.size() / 2), sorted.end());
        const double limit = std::max(4 * sorted[sorted.size() / 2], 0.02);
        const std::size_t worst = std::size_t(std::max_element(res.begin(), res.end()) - res.begin());
        if (res[worst] <= limit) break;
        edges.erase(edges.begin() + std::ptrdiff_t(worst));
        ++out.dropped;
        x = solve_log_gains(tiles, edges);
    }
    out.used = edges.size();
    out.rms_before = rms_of(edges, std::vector<double>(tiles, 0.0));
    out.rms_after = rms_of(edges, x);
    std::vector<bool> linked(tiles, false);
    for (const Edge& e : edges) linked[e.a] = linked[e.b] = true;
    for (std::size_t i = 0; i < tiles; ++i) {
        out.gain.push_back(std::exp(x[i]));
        if (!linked[i]) ++out.unlinked;
    }
    return out;
}

}  // namespace tessera::illumination
