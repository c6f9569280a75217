// merge: georeferenced rasters combined onto one grid, with the semantics of
// rasterio.merge 1.4 (rasterio/merge.py), computed a tile at a time.
//
// The output grid. Resolution: "res" ([r] or [rx, ry]) or the first
// input's. Bounds [w, s, e, n]: "bounds" or the union of the inputs'; with
// "tap" they are widened to multiples of the resolution (w, s down; e, n
// up). Size: round((e - w) / rx) x round((n - s) / ry), rounding half to
// even as Python's round(). Geotransform (w, rx, 0, n, 0, -ry); CRS, bands
// and (unless "dtype") the pixel format of the first input.
//
// Each input's place. Its bounds are intersected with the output's (no
// overlap, or only an edge: it is skipped); the intersection is a window on
// the output, rounded as gdal_merge.py does (offset floor(x + 0.1), size
// floor(x + 0.5)), and a floating window on the input. The input is read
// into the output window with GDAL's nearest-neighbour RasterIO rule, as
// rasterio's read(out_shape=...) does: if the window's truncated size equals
// the output window's, pixels are copied from the truncated offset;
// otherwise output pixel i takes input pixel int((i + 0.5) * size / n + off
// + 1e-10), clamped to the input. So inputs at another resolution are
// resampled, nearest by default. With "resampling" bilinear or cubic (Keys,
// a = -0.5) they are convolved as GDAL's RasterIO does: output pixel i sits
// at c = off + (i + 0.5) * inc on the input; taps floor(c - R*s + 0.5) to
// int(c + R*s + 0.5) (exclusive), s = max(1, inc), R = 1 or 2, clipped to
// the input, weights kernel((tap - c + 0.5) / s) normalised to sum 1; taps
// that are not valid get no weight (nodata where none is valid); integers
// are rounded to the input's format (floor(v + 0.5), clamped), as GDAL hands
// them to rasterio, before the method applies.
//
// The values. The output starts as nodata: "nodata", else the first input's
// (band 1), else 0. An input sample is valid unless it equals its band's
// nodata (GDAL's nodata mask), or its pixel's alpha is 0 where the input has
// an alpha band (GDAL's alpha mask; gdal_load "mask" turns any GDAL mask into
// one). The alpha band itself is merged like the others. An output sample counts as empty while it
// equals the output nodata (integers: equal; floats: numpy.isclose; NaN:
// isnan), exactly like rasterio, which recomputes that mask before each
// input. Inputs are applied in order, per sample, with valid new value v
// and current value m:
//   first: m = v if m is empty
//   last:  m = v
//   min, max, sum: m = min/max/sum(m, v), or v if m is empty
//   count: m = m + 1, or 1 if m is empty
// Values are converted to the output format as numpy's unsafe casting does
// (integers wrap, floats truncate toward zero; out-of-range floats clamp).
//
// Differences from rasterio, known: rasterio rounds windows per output
// chunk of its mem_limit (64 MB) and Tessera once for the whole output (as
// gdal_merge.py and rasterio for outputs under the limit); CRSs are compared
// by their WKT text (rasterio compares CRS objects); a nodata that the
// output format cannot hold is an error here (rasterio warns and falls back).
//
// Tiles: a spatial index over the inputs' windows, so a tile demands only
// the inputs it overlaps, each for the source rect its pixels map to.
//
// The grid, the nodata, the inputs' checks and windows are free functions of
// headers (tessera/ops/merge.hpp, tested in ops_merge_grid_test.cpp); the
// constructor only chains them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <limits>
#include <string>

#include "ops_list.hpp"
#include "tessera/ops/merge.hpp"
#include "tessera/core/spatial_index.hpp"

namespace tessera {
namespace {

enum class Method { first, last, min, max, sum, count };
enum class Resampling { nearest, bilinear, cubic };

// GDAL's resampling kernels, of the distance in (scaled) input pixels.
double kernel(Resampling r, double x) {
    x = std::fabs(x);
    if (r == Resampling::bilinear) return x < 1 ? 1 - x : 0;
    // Keys' cubic with a = -0.5
    if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
    if (x < 2) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
    return 0;
}
int kernel_radius(Resampling r) { return r == Resampling::cubic ? 2 : 1; }

// The taps of one output column (or row) in a convolution.
struct Taps {
    int start = 0;
    std::vector<double> w;
};

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

// The first quoted name of a WKT ("WGS 84 / UTM zone 32N"), for messages.
std::string crs_name(const std::string& wkt) {
    if (wkt.empty()) return "no CRS";
    auto a = wkt.find('"');
    auto b = a == std::string::npos ? a : wkt.find('"', a + 1);
    return b == std::string::npos ? wkt.substr(0, 40) : "'" + wkt.substr(a + 1, b - a - 1) + "'";
}

// A value in numpy's unsafe cast to T: integers wrap, floats truncate.
template <class T>
T cast_to(double v) {
    if constexpr (std::is_floating_point_v<T>) {
        return T(v);
    } else {
        if (std::isnan(v)) return T(0);
        constexpr double lo = -9.2e18, hi = 9.2e18;
        std::int64_t k = std::int64_t(std::clamp(v, lo, hi));
        return T(k);  // modular for narrower integers (C++20)
    }
}

// GDAL's nodata test for a sample of an input of format f.
bool gdal_is_nodata(double v, double nd, Format f) {
    if (std::isnan(nd)) return std::isnan(v);
    if (f == Format::f32) {
        float a = float(v), b = float(nd);
        return a == b || std::fabs(a - b) < 1e-10 || (b != 0 && std::fabs(1 - a / b) < 1e-10);
    }
    if (f == Format::f64) return v == nd || std::fabs(v - nd) < 1e-10 || (nd != 0 && std::fabs(1 - v / nd) < 1e-10);
    return v == nd;
}

struct Source {
    int input = 0;
    Rect window;         // output pixels this input lands on (clipped to the output)
    int wx = 0, wy = 0;  // the unclipped window's origin (output frame)
    bool direct = false;
    int ix = 0, iy = 0;                                 // direct: input pixel of window pixel (0, 0)
    double x_off = 0, y_off = 0, x_inc = 1, y_inc = 1;  // resampled: GDAL's nearest rule
    int src_w = 0, src_h = 0;
    Format format = Format::u8;
    std::vector<std::optional<double>> nodata;  // per band
    int alpha = -1;                             // the alpha band: where it is 0 the whole pixel is invalid

    Resampling resampling = Resampling::nearest;  // only where !direct

    // The convolution taps of output column x (or row y), GDAL's rule.
    Taps taps(int i, double off, double inc, int size) const {
        const double c = off + (i + 0.5) * inc;
        const double scale = std::max(1.0, inc), radius = kernel_radius(resampling) * scale;
        int a = int(std::floor(c - radius + 0.5)), b = int(c + radius + 0.5);
        a = std::max(a, 0);
        b = std::min(b, size);
        Taps t;
        t.start = a;
        double sum = 0;
        for (int k = a; k < b; ++k) sum += t.w.emplace_back(kernel(resampling, (k - c + 0.5) / scale));
        if (sum != 0)
            for (double& w : t.w) w /= sum;
        return t;
    }
    bool convolves() const { return !direct && resampling != Resampling::nearest; }
    Taps col_taps(int x) const { return taps(x - wx, x_off, x_inc, src_w); }
    Taps row_taps(int y) const { return taps(y - wy, y_off, y_inc, src_h); }

    int col(int x) const {
        const int i = x - wx;
        if (direct) return std::clamp(ix + i, 0, src_w - 1);
        double v = (i + 0.5) * x_inc + x_off + 1e-10;
        return int(std::min(std::max(0.0, v), double(src_w - 1)));
    }
    int row(int y) const {
        const int i = y - wy;
        if (direct) return std::clamp(iy + i, 0, src_h - 1);
        double v = (i + 0.5) * y_inc + y_off + 1e-10;
        return int(std::min(std::max(0.0, v), double(src_h - 1)));
    }
    // The input rect the output pixels `part` (inside window) read.
    Rect source_rect(const Rect& part) const {
        if (convolves()) {
            Taps l = col_taps(part.x), r = col_taps(part.right() - 1), t = row_taps(part.y),
                 b = row_taps(part.bottom() - 1);
            const int x0 = l.start, x1 = r.start + int(r.w.size()), y0 = t.start, y1 = b.start + int(b.w.size());
            return Rect{x0, y0, std::max(1, x1 - x0), std::max(1, y1 - y0)}.intersect({0, 0, src_w, src_h});
        }
        int c0 = col(part.x), c1 = col(part.right() - 1), r0 = row(part.y), r1 = row(part.bottom() - 1);
        return {c0, r0, c1 - c0 + 1, r1 - r0 + 1};
    }
};

// The spec's choices, in the enums' orders.
const std::vector<std::string> kMethodNames = {"first", "last", "min", "max", "sum", "count"};
const std::vector<std::string> kResamplingNames = {"nearest", "bilinear", "cubic"};

}  // namespace

// The rules of tessera/ops/merge.hpp.

void check_merge_inputs(std::span<const ImageInfo> in) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        const std::string which = "input " + std::to_string(i);
        if (!in[i].geo)
            throw ParamError("inputs", which + " has no georeference (no geotransform); merge places images by "
                                               "their georeference: read them with gdal_load");
        const auto& t = in[i].geo->transform;
        if (t[2] != 0 || t[4] != 0)
            throw ParamError("inputs", which + " is rotated (its geotransform has terms " + num(t[2]) + ", " +
                                           num(t[4]) + "); warp it north up first (gdalwarp)");
        if (t[1] <= 0 || t[5] >= 0)
            throw ParamError("inputs", which + " is flipped (pixel size " + num(t[1]) + " x " + num(t[5]) +
                                           "); merge takes north-up rasters (positive width, negative height)");
        if (in[i].bands != in[0].bands)
            throw ParamError("inputs", which + " has " + std::to_string(in[i].bands) + " bands and input 0 " +
                                           std::to_string(in[0].bands) + "; select the same bands of each");
        if (in[i].geo->crs_wkt != in[0].geo->crs_wkt)
            throw ParamError("inputs",
                             which + " is in CRS " + crs_name(in[i].geo->crs_wkt) + " and input 0 in " +
                                 crs_name(in[0].geo->crs_wkt) +
                                 "; reproject it to input 0's CRS first (a reproject node, or gdalwarp -t_srs)");
    }
}

MergeGrid plan_merge_grid(const Params& p, std::span<const ImageInfo> in) {
    const GeoRef& g0 = *in[0].geo;
    MergeGrid g{};
    g.rx = g0.transform[1], g.ry = -g0.transform[5];
    if (p.has("res")) {
        auto r = p.numbers("res", {});
        if (r.size() != 1 && r.size() != 2)
            throw ParamError("res", "give one resolution [r] or two [rx, ry], got " + std::to_string(r.size()));
        g.rx = r[0];
        g.ry = r.size() == 2 ? r[1] : r[0];
        if (!(g.rx > 0) || !(g.ry > 0) || !std::isfinite(g.rx) || !std::isfinite(g.ry))
            throw ParamError("res", "resolutions are positive sizes in CRS units; got " + num(g.rx) + ", " + num(g.ry));
    }
    double &w = g.w, &s = g.s, &e = g.e, &n = g.n;
    if (p.has("bounds")) {
        auto b = p.numbers("bounds", {});
        if (b.size() != 4) throw ParamError("bounds", "give four numbers [west, south, east, north]");
        w = b[0], s = b[1], e = b[2], n = b[3];
        if (!(w < e) || !(s < n))
            throw ParamError("bounds", "west must be below east and south below north; got [" + num(w) + ", " + num(s) +
                                           ", " + num(e) + ", " + num(n) + "]");
    } else {
        w = s = std::numeric_limits<double>::infinity();
        e = n = -std::numeric_limits<double>::infinity();
        for (const ImageInfo& im : in) {
            const auto& t = im.geo->transform;
            w = std::min(w, t[0]);
            n = std::max(n, t[3]);
            e = std::max(e, t[0] + im.width * t[1]);
            s = std::min(s, t[3] + im.height * t[5]);
        }
    }
    if (p.boolean("tap", false)) {
        w = std::floor(w / g.rx) * g.rx;
        e = std::ceil(e / g.rx) * g.rx;
        s = std::floor(s / g.ry) * g.ry;
        n = std::ceil(n / g.ry) * g.ry;
    }
    const double width = std::nearbyint((e - w) / g.rx), height = std::nearbyint((n - s) / g.ry);
    if (!(width >= 1 && height >= 1 && width <= kMaxDimension && height <= kMaxDimension))
        throw ParamError(p.has("bounds") ? "bounds" : "res",
                         "the output would be " + num(width) + " x " + num(height) + " pixels; it must be 1 to " +
                             std::to_string(kMaxDimension) + " a side: check bounds and res");
    g.width = int(width);
    g.height = int(height);
    return g;
}

std::optional<double> merge_nodata(const Params& p, std::span<const ImageInfo> in, Format format) {
    const GeoRef& g0 = *in[0].geo;
    std::optional<double> nodata;
    std::string nodata_key = "nodata";
    if (p.has("nodata")) {
        nodata = p.number("nodata");
    } else if (!g0.nodata.empty() && g0.nodata[0]) {
        nodata = *g0.nodata[0];
        nodata_key = format == in[0].format ? "nodata" : "dtype";
    }
    if (nodata) {
        const double v = *nodata;
        const std::string from = p.has("nodata") ? "nodata " : "input 0's nodata ";
        if (!format_is_float(format) &&
            (std::isnan(v) || v != std::floor(v) || v < format_min(format) || v > format_max(format)))
            throw ParamError(nodata_key, from + num(v) + " cannot be held by " + std::string(format_name(format)) +
                                             " (whole numbers " + num(format_min(format)) + " to " +
                                             num(format_max(format)) + "); give a nodata that fits, or another dtype");
        if (format == Format::f32 && std::isfinite(v) && std::fabs(v) > double(std::numeric_limits<float>::max()))
            throw ParamError(nodata_key,
                             from + num(v) + " is beyond the range of f32; give a nodata that fits, or dtype float64");
    }
    return nodata;
}

std::optional<MergeWindow> merge_window(const ImageInfo& input, const MergeGrid& grid) {
    const auto& t = input.geo->transform;
    const double sw = t[0], sn = t[3], se = t[0] + input.width * t[1], ss = t[3] + input.height * t[5];
    const double iw = std::max(sw, grid.w), ie = std::min(se, grid.e), is = std::max(ss, grid.s),
                 in_ = std::min(sn, grid.n);
    if (iw >= ie || is >= in_) return std::nullopt;  // no overlap
    MergeWindow m;
    // the window on the output, rounded like gdal_merge.py
    m.unclipped = {int(std::floor((iw - grid.w) / grid.rx + 0.1)), int(std::floor((grid.n - in_) / grid.ry + 0.1)),
                   int(std::floor((ie - iw) / grid.rx + 0.5)), int(std::floor((in_ - is) / grid.ry + 0.5))};
    m.window = m.unclipped.intersect({0, 0, grid.width, grid.height});
    if (m.window.empty()) return std::nullopt;
    // the floating window on the input
    m.fx = (iw - sw) / t[1];
    m.fy = (sn - in_) / -t[5];
    m.fw = (ie - iw) / t[1];
    m.fh = (in_ - is) / -t[5];
    return m;
}

namespace {

// The output's header: the grid's size and georeference, input 0's bands,
// CRS and alpha band, the format asked for (input 0's interpretation if it
// is input 0's format).
ImageInfo merge_header(std::span<const ImageInfo> in, const MergeGrid& grid, Format format,
                       std::optional<double> nodata) {
    ImageInfo info;
    info.width = grid.width;
    info.height = grid.height;
    info.bands = in[0].bands;
    info.format = format;
    info.interpretation = format == in[0].format ? in[0].interpretation : Interpretation::multiband;
    GeoRef g;
    g.transform = {grid.w, grid.rx, 0, grid.n, 0, -grid.ry};
    g.crs_wkt = in[0].geo->crs_wkt;
    if (nodata) g.nodata.assign(std::size_t(info.bands), nodata);
    g.alpha_band = in[0].geo->alpha_band;
    info.geo = std::move(g);
    return info;
}

class MergeOp final : public Op {
public:
    // What no spec can say: the rules of tessera/ops/merge.hpp between the
    // parameters and the inputs, then each input's place on the grid.
    MergeOp(const Params& p, std::span<const ImageInfo> in) {
        // method, resampling and dtype are among the spec's choices
        method_ = Method(choice_index(kMethodNames, p.string("method")));
        const Resampling resampling = Resampling(choice_index(kResamplingNames, p.string("resampling")));
        check_merge_inputs(in);
        const MergeGrid grid = plan_merge_grid(p, in);
        const Format format = p.has("dtype") ? *parse_format(p.string("dtype")) : in[0].format;
        const std::optional<double> nodata = merge_nodata(p, in, format);
        fill_ = nodata.value_or(0.0);
        info_ = merge_header(in, grid, format, nodata);

        // each input's window on the output, and how its pixels map there
        std::vector<Rect> windows;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const std::optional<MergeWindow> m = merge_window(in[i], grid);
            if (!m) continue;
            Source src;
            src.input = int(i);
            src.window = m->window;
            src.wx = m->unclipped.x;
            src.wy = m->unclipped.y;
            src.direct = int(m->fw) == m->unclipped.w && int(m->fh) == m->unclipped.h;
            src.ix = int(m->fx);
            src.iy = int(m->fy);
            src.x_off = m->fx;
            src.y_off = m->fy;
            src.x_inc = m->fw / m->unclipped.w;
            src.y_inc = m->fh / m->unclipped.h;
            src.src_w = in[i].width;
            src.src_h = in[i].height;
            src.format = in[i].format;
            src.nodata = in[i].geo->nodata;
            src.nodata.resize(std::size_t(in[i].bands));
            src.alpha = in[i].geo->alpha_band;
            src.resampling = resampling;
            sources_.push_back(std::move(src));
            windows.push_back(m->window);
        }
        index_ = SpatialIndex(info_.rect(), windows);
    }

    // The inputs whose windows overlap r, in input order, each for the
    // input pixels its part of r reads; compute() combines them.
    void demand(const Rect& r, Demand& need) const override {
        std::vector<int> hits;
        index_.query(r, hits);
        for (int k : hits) {
            const Source& s = sources_[k];
            need.push_back({s.input, s.source_rect(s.window.intersect(r)), std::nullopt});
        }
    }

    // 1. the tile starts as nodata (0 without one);
    // 2. each overlapping input, in order, is folded in per sample by the
    //    method (see the top of this file).
    void compute(const Tile& out, std::span<const Pulled> in) const override {
        fill_pixels(out, &fill_, 1);
        std::vector<int> hits;
        index_.query(out.rect, hits);
        std::size_t next = 0;
        for (int k : hits) {
            const Source& s = sources_[k];
            // the pulled tile of this source (demand order = hits order)
            if (next >= in.size() || in[next].input != s.input) continue;
            const ConstTile& src = in[next++].tile;
            dispatch_format(info_.format, [&](auto t) {
                using T = decltype(t);
                if (s.convolves())
                    apply<T, true>(out, s.window.intersect(out.rect), s, src);
                else
                    apply<T, false>(out, s.window.intersect(out.rect), s, src);
            });
        }
    }

private:
    // Whether an output sample counts as empty (rasterio's region mask).
    template <class T>
    bool empty(T m) const {
        if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(fill_)) return std::isnan(m);
            if (std::isinf(fill_)) return std::isinf(m);
            return std::fabs(double(m) - fill_) <= 1e-8 + 1e-5 * std::fabs(fill_);
        } else {
            return double(m) == fill_;
        }
    }

    // Source pixel (x, y)'s samples as doubles into v, and whether each is
    // valid (its band's nodata, the pixel's alpha).
    void read_pixel(const Source& s, const ConstTile& src, int x, int y, double* v, char* valid) const {
        const int nb = info_.bands;
        dispatch_format(s.format, [&](auto st) {
            using S = decltype(st);
            const S* p = reinterpret_cast<const S*>(src.at(x, y));
            for (int b = 0; b < nb; ++b) v[b] = double(p[b]);
        });
        const bool alpha_ok = s.alpha < 0 || v[s.alpha] != 0;
        for (int b = 0; b < nb; ++b) {
            const auto& nd = s.nodata[b];
            valid[b] = alpha_ok && !(nd && gdal_is_nodata(v[b], *nd, s.format));
        }
    }

    // Output row y of `part` from a convolving source, separably as GDAL
    // does where samples may be invalid: each tap row's valid samples are
    // averaged by their column weights, then the valid row means by their
    // row weights; a sample with no valid tap (or a weight sum <= 0) is
    // invalid. The result passes through float (GDAL's output line, but for
    // f64) and is rounded to the input's format.
    void convolve_row(const Source& s, const ConstTile& src, const Rect& part, int y, const std::vector<Taps>& cols,
                      double* v, char* valid) const {
        const int nb = info_.bands;
        const bool narrow = s.format != Format::f64;
        const Taps rows = s.row_taps(y);
        std::vector<double> hsum(std::size_t{0} + nb), hw(std::size_t{0} + nb), vsum(std::size_t{0} + nb),
            vw(std::size_t{0} + nb), px(std::size_t{0} + nb);
        std::vector<char> ok(std::size_t{0} + nb);
        for (int k = 0; k < part.w; ++k) {
            const Taps& c = cols[std::size_t(k)];
            std::fill(vsum.begin(), vsum.end(), 0.0);
            std::fill(vw.begin(), vw.end(), 0.0);
            for (std::size_t j = 0; j < rows.w.size(); ++j) {
                std::fill(hsum.begin(), hsum.end(), 0.0);
                std::fill(hw.begin(), hw.end(), 0.0);
                for (std::size_t i = 0; i < c.w.size(); ++i) {
                    read_pixel(s, src, c.start + int(i), rows.start + int(j), px.data(), ok.data());
                    for (int b = 0; b < nb; ++b)
                        if (ok[b]) hsum[b] += c.w[i] * px[b], hw[b] += c.w[i];
                }
                for (int b = 0; b < nb; ++b) {
                    if (!(hw[b] > 0)) continue;
                    vsum[b] += rows.w[j] * (hsum[b] / hw[b]);
                    vw[b] += rows.w[j];
                }
            }
            for (int b = 0; b < nb; ++b) {
                const std::size_t at = std::size_t(k) * nb + b;
                valid[at] = vw[b] > 0;
                double x = valid[at] ? vsum[b] / vw[b] : 0;
                if (narrow) x = double(float(x));  // GDAL's output line is float
                if (!format_is_float(s.format))
                    x = std::clamp(std::floor(x + 0.5), format_min(s.format), format_max(s.format));
                else if (s.format == Format::f32)
                    x = double(float(x));
                v[at] = x;
            }
        }
    }

    template <class T, bool Convolve>
    void apply(const Tile& out, const Rect& part, const Source& s, const ConstTile& src) const {
        if (part.empty()) return;
        const int nb = info_.bands;
        std::vector<int> cols;
        std::vector<Taps> col_taps;
        for (int k = 0; k < part.w; ++k)
            if constexpr (Convolve)
                col_taps.push_back(s.col_taps(part.x + k));
            else
                cols.push_back(s.col(part.x + k));
        std::vector<double> v(std::size_t(part.w) * nb);
        std::vector<char> valid(v.size());
        for (int y = part.y; y < part.bottom(); ++y) {
            // the input samples of this row, as doubles, and which are valid
            if constexpr (Convolve) {
                convolve_row(s, src, part, y, col_taps, v.data(), valid.data());
            } else {
                const int sy = s.row(y);
                dispatch_format(s.format, [&](auto st) {
                    using S = decltype(st);
                    const S* p = reinterpret_cast<const S*>(src.at(src.rect.x, sy));
                    for (int k = 0; k < part.w; ++k)
                        for (int b = 0; b < nb; ++b)
                            v[std::size_t(k) * nb + b] = double(p[std::size_t(cols[k] - src.rect.x) * nb + b]);
                });
                for (int k = 0; k < part.w; ++k) {
                    const bool alpha_ok = s.alpha < 0 || v[std::size_t(k) * nb + s.alpha] != 0;
                    for (int b = 0; b < nb; ++b) {
                        const auto& nd = s.nodata[b];
                        const std::size_t j = std::size_t(k) * nb + b;
                        valid[j] = alpha_ok && !(nd && gdal_is_nodata(v[j], *nd, s.format));
                    }
                }
            }
            T* o = out.row<T>(y) + std::size_t(part.x - out.rect.x) * nb;
            for (std::size_t j = 0; j < v.size(); ++j) {
                if (!valid[j]) continue;  // an invalid input sample never changes anything
                T& m = o[j];
                const double x = v[j];
                if (method_ == Method::last || empty(m)) {
                    m = method_ == Method::count ? T(1) : cast_to<T>(x);
                    continue;
                }
                switch (method_) {
                    case Method::first:
                    case Method::last: break;
                    case Method::min:
                        m = std::isnan(x) || std::isnan(double(m)) ? cast_to<T>(NAN)
                                                                   : cast_to<T>(std::min(double(m), x));
                        break;
                    case Method::max:
                        m = std::isnan(x) || std::isnan(double(m)) ? cast_to<T>(NAN)
                                                                   : cast_to<T>(std::max(double(m), x));
                        break;
                    case Method::sum: m = cast_to<T>(double(m) + x); break;
                    case Method::count: m = cast_to<T>(double(m) + 1); break;
                }
            }
        }
    }

    Method method_ = Method::first;
    double fill_ = 0;
    std::vector<Source> sources_;  // the inputs that land on the output, in input order
    SpatialIndex index_;
};

}  // namespace

OpSpec merge_op_spec() {
    return {"merge",
            "georeferenced rasters onto one grid, rasterio.merge semantics (first, last, min, max, sum, count)",
            1,
            -1,
            {{.name = "method",
              .type = ParamType::string,
              .doc = "first, last, min, max, sum or count",
              .default_value = std::string("first"),
              .choices = kMethodNames},
             {"nodata", ParamType::number, false, "input 0's",
              "output nodata: the initial value, and what counts as empty"},
             {"res", ParamType::numbers, false, "input 0's", "output resolution: [r] or [rx, ry], in CRS units"},
             {"bounds", ParamType::numbers, false, "union of inputs", "output bounds [west, south, east, north]"},
             {.name = "tap",
              .type = ParamType::boolean,
              .doc = "align the bounds to multiples of the resolution (gdal -tap)",
              .default_value = false},
             {.name = "dtype",
              .type = ParamType::string,
              .default_text = "input 0's",
              .doc = "output format: uint8, uint16, int16, uint32, int32, float32, float64",
              .choices = format_spellings()},
             {.name = "resampling",
              .type = ParamType::string,
              .doc = "how inputs at another resolution are read: nearest, bilinear or cubic (GDAL's kernels)",
              .default_value = std::string("nearest"),
              .choices = kResamplingNames}},
            false,
            &make_op<MergeOp>,
            false,
            "mosaic",
            "the resampling kernel's support (nearest 0)"};
}

}  // namespace tessera
