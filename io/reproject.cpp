// reproject: its input warped into another CRS by GDAL's warper, a tile at
// a time.
//
// The output grid is the one gdalwarp picks (GDALSuggestedWarpOutput2: the
// input's outline transformed, its resolution kept along the diagonal),
// unless "res" (gdalwarp -tr) or "bounds" (-te, in the target CRS) say
// otherwise; width and height are then rounded like gdalwarp does. Known
// difference: "bounds" without "res" keeps the whole image's suggested
// resolution, where gdalwarp -te alone works one out for the extent. The
// format is the input's; nodata is "nodata", else the input's (band 1), else
// none (pixels outside the input are 0 then).
//
// A tile: the outline of the output tile (points along every edge) is taken
// back into the input's pixels; their bounding box, widened by the kernel's
// radius plus one, is the only input rect demanded. compute() wraps that
// rect and the tile as GDAL MEM datasets (no copy) and runs one warp between
// them, through a transformer that offsets the full-image one to the chunk
// and the tile. Transformation is exact per pixel: GDAL's approximate
// transformer interpolates along a chunk's scanlines, so pixels would depend
// on the tile size.
//
// GDAL transformers are not for concurrent use: each thread keeps its own,
// made on first use.
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <ogr_srs_api.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gdal_common.hpp"
#include "gdal_types.hpp"
#include "io_list.hpp"
#include "tessera/core/error.hpp"

namespace tessera {
namespace {

using io::gdal_type;

struct TransformerFree {
    void operator()(void* t) const {
        if (t) GDALDestroyGenImgProjTransformer(t);
    }
};
using Transformer = std::unique_ptr<void, TransformerFree>;

// What a warp of one tile needs to map tile pixels to chunk pixels.
struct Offsets {
    void* full = nullptr;  // output pixel <-> input pixel, for the whole images
    double tile_x = 0, tile_y = 0, chunk_x = 0, chunk_y = 0;
};
extern "C" int offset_transform(void* arg, int dst_to_src, int n, double* x, double* y, double* z, int* ok) {
    auto* o = static_cast<Offsets*>(arg);
    // GDAL's "dst" here is the tile, "src" the chunk
    const double in_x = dst_to_src ? o->tile_x : o->chunk_x, in_y = dst_to_src ? o->tile_y : o->chunk_y;
    const double out_x = dst_to_src ? o->chunk_x : o->tile_x, out_y = dst_to_src ? o->chunk_y : o->tile_y;
    for (int i = 0; i < n; ++i) x[i] += in_x, y[i] += in_y;
    int r = GDALGenImgProjTransform(o->full, dst_to_src, n, x, y, z, ok);
    for (int i = 0; i < n; ++i) x[i] -= out_x, y[i] -= out_y;
    return r;
}

// A GDAL MEM dataset over pixels Tessera owns (band-interleaved).
GDALDatasetH wrap(std::byte* data, const Rect& r, int bands, Format f, std::size_t stride) {
    GDALDriverH mem = GDALGetDriverByName("MEM");
    GDALDatasetH ds = mem ? GDALCreate(mem, "", r.w, r.h, 0, gdal_type(f), nullptr) : nullptr;
    if (!ds) return nullptr;
    const std::size_t sample = format_size(f);
    for (int b = 0; b < bands; ++b) {
        char ptr[64], px[64], line[64];
        std::snprintf(ptr, sizeof ptr, "DATAPOINTER=%p", static_cast<void*>(data + std::size_t(b) * sample));
        std::snprintf(px, sizeof px, "PIXELOFFSET=%zu", sample * std::size_t(bands));
        std::snprintf(line, sizeof line, "LINEOFFSET=%zu", stride);
        const char* opts[] = {ptr, px, line, nullptr};
        if (GDALAddBand(ds, gdal_type(f), const_cast<char**>(opts)) != CE_None) {
            GDALClose(ds);
            return nullptr;
        }
    }
    return ds;
}

// The target CRS as WKT; ParamError on "crs" for one GDAL does not know.
std::string target_wkt(const std::string& crs, io::GdalErrorScope& errors) {
    OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
    struct Free {
        OGRSpatialReferenceH s;
        ~Free() { OSRDestroySpatialReference(s); }
    } free_srs{srs};
    char* wkt = nullptr;
    if (OSRSetFromUserInput(srs, crs.c_str()) != OGRERR_NONE || OSRExportToWkt(srs, &wkt) != OGRERR_NONE)
        throw ParamError("crs", "'" + crs + "' is no CRS GDAL knows (" + errors.last() +
                                    "); give e.g. \"EPSG:4326\", a PROJ string or WKT");
    std::string out = wkt;
    CPLFree(wkt);
    return out;
}

// The output grid: top-left (west, north), resolution and size in pixels.
struct WarpGrid {
    double west, north, rx, ry;
    int width, height;
};

// gdalwarp's output grid for the input in `dst_wkt`
// (GDALSuggestedWarpOutput2): its extent [west, south, east, north] into
// `extent`; ParamError on "crs" when there is none.
WarpGrid suggested_grid(const Params& p, const ImageInfo& src, const std::string& dst_wkt, double extent[4],
                        io::GdalErrorScope& errors) {
    GDALDriverH vrt = GDALGetDriverByName("VRT");
    GDALDatasetH shape = vrt ? GDALCreate(vrt, "", src.width, src.height, 0, GDT_Byte, nullptr) : nullptr;
    if (!shape) throw Error("reproject: GDAL cannot make a VRT outline (" + errors.last() + ")");
    double sgt[6];
    std::copy(src.geo->transform.begin(), src.geo->transform.end(), sgt);
    GDALSetGeoTransform(shape, sgt);
    GDALSetProjection(shape, src.geo->crs_wkt.c_str());
    std::string dst_opt = "DST_SRS=" + dst_wkt;
    char* topts[] = {dst_opt.data(), nullptr};
    void* t = GDALCreateGenImgProjTransformer2(shape, nullptr, topts);
    double gt[6];
    int w = 0, h = 0;
    const bool ok = t && GDALSuggestedWarpOutput2(shape, GDALGenImgProjTransform, t, gt, &w, &h, extent, 0) == CE_None;
    if (t) GDALDestroyGenImgProjTransformer(t);
    GDALClose(shape);
    if (!ok)
        throw ParamError("crs", "the input cannot be transformed into '" + p.string("crs") + "' (" + errors.last() +
                                    "); check that its outline lies in the target CRS's area of use");
    return {extent[0], extent[3], gt[1], -gt[5], w, h};
}

// The grid res and bounds make of the suggested one (gdalwarp's -tr and
// -te): bounds replace its extent, res its resolution, and the size is the
// extent over the resolution rounded to nearest; with res alone the
// suggested top-left stays, with bounds alone the resolution is what fits
// them. ParamError naming res or bounds for a malformed one, or a grid
// that is empty or over kMaxDimension a side.
WarpGrid res_bounds_grid(const Params& p, WarpGrid g, const double extent[4]) {
    double minx = extent[0], miny = extent[1], maxx = extent[2], maxy = extent[3];
    if (p.has("bounds")) {
        auto b = p.numbers("bounds", {});
        if (b.size() != 4 || !(b[0] < b[2]) || !(b[1] < b[3]))
            throw ParamError("bounds", "give [west, south, east, north] in the target CRS, west < east, south < north");
        minx = b[0], miny = b[1], maxx = b[2], maxy = b[3];
    }
    if (p.has("res")) {
        auto r = p.numbers("res", {});
        if ((r.size() != 1 && r.size() != 2) || !(r[0] > 0) || !(r.back() > 0))
            throw ParamError("res", "give one positive resolution [r] or two [rx, ry], in target CRS units");
        g.rx = r[0];
        g.ry = r.back();
    }
    if (p.has("bounds") || p.has("res")) {
        g.width = int(std::floor((maxx - minx) / g.rx + 0.5));
        g.height = int(std::floor((maxy - miny) / g.ry + 0.5));
        if (p.has("bounds") && !p.has("res")) {
            g.rx = (maxx - minx) / g.width;
            g.ry = (maxy - miny) / g.height;
        }
    }
    g.west = minx;
    g.north = maxy;
    if (g.width < 1 || g.height < 1 || g.width > kMaxDimension || g.height > kMaxDimension)
        throw ParamError(p.has("res") ? "res" : "crs", "the output would be " + std::to_string(g.width) + "x" +
                                                           std::to_string(g.height) + " pixels; check res and bounds");
    return g;
}

// gdalwarp's output grid for the input in `dst_wkt`, or the one res and
// bounds make of it.
WarpGrid warp_grid(const Params& p, const ImageInfo& src, const std::string& dst_wkt, io::GdalErrorScope& errors) {
    double extent[4];
    const WarpGrid suggested = suggested_grid(p, src, dst_wkt, extent, errors);
    return res_bounds_grid(p, suggested, extent);
}

// The output nodata: "nodata" if given, else the input's (band 1), else none.
std::optional<double> reproject_nodata(const Params& p, const ImageInfo& src) {
    if (p.has("nodata")) return p.number("nodata");
    if (!src.geo->nodata.empty()) return src.geo->nodata[0];
    return std::nullopt;
}

class ReprojectOp final : public Op {
public:
    ReprojectOp(const Params& p, std::span<const ImageInfo> in) : id_(next_id()) {
        io::gdal_init();
        io::GdalErrorScope errors;
        const ImageInfo& src = in[0];
        if (!src.geo || src.geo->crs_wkt.empty())
            throw ParamError("inputs", "the input has no CRS; reproject needs a georeferenced input (gdal_load)");
        src_wkt_ = src.geo->crs_wkt;
        src_gt_ = src.geo->transform;

        const std::string crs = p.string("crs");
        dst_wkt_ = target_wkt(crs, errors);

        const std::string rs = p.string("resampling");  // one of the spec's choices
        alg_ = rs == "bilinear" ? GRA_Bilinear : rs == "cubic" ? GRA_Cubic : GRA_NearestNeighbour;
        radius_ = alg_ == GRA_Cubic ? 2 : 1;

        const WarpGrid grid = warp_grid(p, src, dst_wkt_, errors);
        const int w = grid.width, h = grid.height;
        info_ = src;
        info_.width = w;
        info_.height = h;
        GeoRef g;
        g.transform = {grid.west, grid.rx, 0, grid.north, 0, -grid.ry};
        g.crs_wkt = dst_wkt_;
        const std::optional<double> nodata = reproject_nodata(p, src);
        if (nodata) g.nodata.assign(std::size_t(src.bands), nodata);
        nodata_ = nodata;
        src_nodata_ = src.geo->nodata.empty() ? std::nullopt : src.geo->nodata[0];
        g.alpha_band = src.geo->alpha_band;
        info_.geo = std::move(g);
        dst_gt_ = info_.geo->transform;
        src_w_ = src.width;
        src_h_ = src.height;
        if (!transformer()) throw ParamError("crs", "GDAL cannot transform between the CRSs (" + errors.last() + ")");
        // The warper widens its kernel when it shrinks, by a scale it works
        // out per chunk from the chunk's windows; fixed here to what it
        // works out for the whole image (gdalwarp's single chunk on
        // images of this size), so tiles never change the pixels.
        const Rect whole = source_rect(info_.rect(), 0);
        if (whole.empty()) throw ParamError("crs", "the output grid does not map back onto the input");
        xscale_ = double(w) / whole.w;
        yscale_ = double(h) / whole.h;
    }

    // The input pixels the output rect's outline maps to, widened by the
    // kernel; nothing if it maps outside the input.
    void demand(const Rect& r, Demand& need) const override {
        Rect s = source_rect(r, radius_ + 1);
        if (!s.empty()) need.push_back({0, s, std::nullopt});
    }

    // One case: warp the pulled chunk (if any) into the tile, which starts
    // as nodata (0 without one).
    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const double fill = nodata_.value_or(0.0);
        fill_pixels(out, &fill, 1);
        if (in.empty()) return;  // the tile lies outside the input
        const ConstTile& chunk = in[0].tile;
        io::GdalErrorScope errors;
        GDALDatasetH src =
            wrap(const_cast<std::byte*>(chunk.data), chunk.rect, chunk.bands, chunk.format, chunk.stride);
        GDALDatasetH dst = wrap(out.data, out.rect, out.bands, out.format, out.stride);
        struct Close {
            GDALDatasetH a, b;
            ~Close() {
                if (a) GDALClose(a);
                if (b) GDALClose(b);
            }
        } close{src, dst};
        if (!src || !dst) throw Error("reproject: GDAL cannot wrap a tile (" + errors.last() + ")");
        Offsets off{transformer(), double(out.rect.x), double(out.rect.y), double(chunk.rect.x), double(chunk.rect.y)};
        GDALWarpOptions* o = GDALCreateWarpOptions();
        o->hSrcDS = src;
        o->hDstDS = dst;
        o->nBandCount = out.bands;
        o->panSrcBands = static_cast<int*>(CPLMalloc(sizeof(int) * std::size_t(out.bands)));
        o->panDstBands = static_cast<int*>(CPLMalloc(sizeof(int) * std::size_t(out.bands)));
        for (int b = 0; b < out.bands; ++b) o->panSrcBands[b] = o->panDstBands[b] = b + 1;
        o->eResampleAlg = alg_;
        o->eWorkingDataType = gdal_type(out.format);
        o->pfnTransformer = offset_transform;
        o->pTransformerArg = &off;
        if (src_nodata_) {
            o->padfSrcNoDataReal = static_cast<double*>(CPLMalloc(sizeof(double) * std::size_t(out.bands)));
            for (int b = 0; b < out.bands; ++b) o->padfSrcNoDataReal[b] = *src_nodata_;
        }
        if (nodata_) {
            o->padfDstNoDataReal = static_cast<double*>(CPLMalloc(sizeof(double) * std::size_t(out.bands)));
            for (int b = 0; b < out.bands; ++b) o->padfDstNoDataReal[b] = *nodata_;
        }
        // the tile starts as nodata (without reading it back); one thread per
        // warp (the evaluator runs many)
        o->papszWarpOptions = CSLSetNameValue(o->papszWarpOptions, "INIT_DEST", nodata_ ? "NO_DATA" : "0");
        o->papszWarpOptions = CSLSetNameValue(o->papszWarpOptions, "NUM_THREADS", "1");
        char scale[64];
        std::snprintf(scale, sizeof scale, "%.17g", xscale_);
        o->papszWarpOptions = CSLSetNameValue(o->papszWarpOptions, "XSCALE", scale);
        std::snprintf(scale, sizeof scale, "%.17g", yscale_);
        o->papszWarpOptions = CSLSetNameValue(o->papszWarpOptions, "YSCALE", scale);
        GDALWarpOperationH op = GDALCreateWarpOperation(o);
        CPLErr e = op ? GDALChunkAndWarpImage(op, 0, 0, out.rect.w, out.rect.h) : CE_Failure;
        if (op) GDALDestroyWarpOperation(op);
        o->pTransformerArg = nullptr;
        GDALDestroyWarpOptions(o);
        if (e != CE_None) throw Error("reproject: GDAL's warper failed (" + errors.last() + ")");
    }

private:
    static unsigned next_id() {
        static std::atomic<unsigned> n{0};
        return ++n;
    }

    // This thread's full-image transformer (output pixel <-> input pixel).
    void* transformer() const {
        thread_local std::unordered_map<unsigned, Transformer> mine;
        auto& t = mine[id_];
        if (!t) {
            double sgt[6], dgt[6];
            std::copy(src_gt_.begin(), src_gt_.end(), sgt);
            std::copy(dst_gt_.begin(), dst_gt_.end(), dgt);
            t.reset(GDALCreateGenImgProjTransformer3(src_wkt_.c_str(), sgt, dst_wkt_.c_str(), dgt));
        }
        return t.get();
    }

    // The input rect an output rect reads: its outline (21 points an edge)
    // taken back to the input, widened by `margin` pixels.
    Rect source_rect(const Rect& r, int margin) const {
        constexpr int kSteps = 20;
        std::vector<double> x, y, z;
        for (int i = 0; i <= kSteps; ++i) {
            const double fx = r.x + r.w * double(i) / kSteps, fy = r.y + r.h * double(i) / kSteps;
            for (auto [px, py] : {std::pair{fx, double(r.y)}, std::pair{fx, double(r.bottom())},
                                  std::pair{double(r.x), fy}, std::pair{double(r.right()), fy}}) {
                x.push_back(px);
                y.push_back(py);
            }
        }
        z.assign(x.size(), 0);
        std::vector<int> ok(x.size(), 0);
        GDALGenImgProjTransform(transformer(), TRUE, int(x.size()), x.data(), y.data(), z.data(), ok.data());
        double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
        bool any = false;
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (!ok[i] || !std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
            any = true;
            x0 = std::min(x0, x[i]), x1 = std::max(x1, x[i]), y0 = std::min(y0, y[i]), y1 = std::max(y1, y[i]);
        }
        if (!any) return {};
        const int m = margin;
        const double lo_x = std::max(std::floor(x0) - m, 0.0), lo_y = std::max(std::floor(y0) - m, 0.0);
        const double hi_x = std::min(std::ceil(x1) + m, double(src_w_)),
                     hi_y = std::min(std::ceil(y1) + m, double(src_h_));
        if (lo_x >= hi_x || lo_y >= hi_y) return {};
        return {int(lo_x), int(lo_y), int(hi_x - lo_x), int(hi_y - lo_y)};
    }

    unsigned id_;
    std::string src_wkt_, dst_wkt_;
    std::array<double, 6> src_gt_{}, dst_gt_{};
    int src_w_ = 0, src_h_ = 0;
    GDALResampleAlg alg_ = GRA_NearestNeighbour;
    int radius_ = 1;
    double xscale_ = 1, yscale_ = 1;
    std::optional<double> nodata_, src_nodata_;
};

}  // namespace

OpSpec reproject_op_spec() {
    return {"reproject",
            "its input warped into another CRS by GDAL's warper (gdalwarp's output grid), a tile at a time",
            1,
            1,
            {{"crs", ParamType::string, true, "", "the target CRS: EPSG:code, PROJ string or WKT"},
             {"res", ParamType::numbers, false, "gdalwarp's",
              "output resolution [r] or [rx, ry] in target units (-tr)"},
             {"bounds", ParamType::numbers, false, "the input's outline",
              "output bounds [west, south, east, north] in the target CRS (-te)"},
             {.name = "resampling",
              .type = ParamType::string,
              .doc = "nearest, bilinear or cubic",
              .default_value = std::string("nearest"),
              .choices = {"nearest", "bilinear", "cubic"}},
             {"nodata", ParamType::number, false, "the input's", "output nodata (outside the input)"}},
            false,
            &make_op<ReprojectOp>,
            false,
            "geometry",
            "the mapped outline + the warp kernel's support"};
}

}  // namespace tessera
