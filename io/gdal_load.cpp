// gdal_load: a raster GDAL opens as a source (GeoTIFF, COG, VRT, JPEG 2000,
// /vsimem/, /vsizip/, subdataset strings such as SENTINEL2_L1C:...), with
// its georeference.
//
// Building the op opens the dataset once for its header (size, bands, data
// type, geotransform, CRS, per-band nodata) and closes it again, so a
// pipeline of thousands of sources holds no handles until it runs.
// compute() reads exactly out.rect with one RasterIO call, through a
// process-wide pool of open datasets: a GDAL dataset must not be used by
// two threads at once, so each read borrows a handle of its own (reusing an
// idle one when there is one, opening another otherwise) and gives it back
// after. Idle handles beyond IoLimits::max_open_files are closed, oldest
// first; release() closes a source's idle handles.
//
// GDAL's block cache is capped at 64 MB (gdal_common.hpp) rather than
// GDAL's 5% of RAM; the environment variable GDAL_CACHEMAX overrides it.
#include <gdal.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>
#include <string>
#include <vector>

#include "gdal_common.hpp"
#include "gdal_types.hpp"
#include "io_list.hpp"
#include "tessera/core/compute_slots.hpp"
#include "tessera/io/io.hpp"

namespace tessera {
namespace {

using io::format_of;
using io::gdal_type;

GDALDatasetH open_dataset(const std::string& path, io::GdalErrorScope& errors) {
    GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY, nullptr, nullptr, nullptr);
    if (!ds)
        throw IoError(path, "GDAL cannot open it (" + errors.last() +
                                "); check the path, or that GDAL has a driver for it (gdalinfo --formats)");
    return ds;
}

// Open datasets shared by every gdal_load op, one borrower at a time each.
class DatasetPool {
public:
    static DatasetPool& instance() {
        static DatasetPool* pool = new DatasetPool;  // never destroyed: ops may outlive statics
        return *pool;
    }

    // An idle handle of `path`, or nullptr (the caller opens one; the pool
    // counts it as open from here).
    GDALDatasetH take(const std::string& path) {
        std::lock_guard lock(mu_);
        for (auto it = idle_.begin(); it != idle_.end(); ++it)
            if (it->path == path) {
                GDALDatasetH ds = it->ds;
                idle_.erase(it);
                return ds;
            }
        ++open_;
        return nullptr;
    }
    // The caller failed to open what take() counted.
    void opened_nothing() {
        std::lock_guard lock(mu_);
        --open_;
    }
    // Back to the pool (most recent first); closes the oldest idle handles
    // beyond the limit.
    void give_back(const std::string& path, GDALDatasetH ds) {
        std::vector<GDALDatasetH> close;
        {
            std::lock_guard lock(mu_);
            idle_.push_front({path, ds});
            const int limit = std::max(1, io_limits().max_open_files);
            while (open_ > limit && !idle_.empty()) {
                close.push_back(idle_.back().ds);
                idle_.pop_back();
                --open_;
            }
        }
        for (GDALDatasetH h : close) GDALClose(h);
    }
    // A borrowed handle that must not be reused (a read failed).
    void discard(GDALDatasetH ds) {
        {
            std::lock_guard lock(mu_);
            --open_;
        }
        GDALClose(ds);
    }
    // Closes the idle handles of `path`.
    void close_idle(const std::string& path) {
        std::vector<GDALDatasetH> close;
        {
            std::lock_guard lock(mu_);
            for (auto it = idle_.begin(); it != idle_.end();)
                if (it->path == path) {
                    close.push_back(it->ds);
                    it = idle_.erase(it);
                    --open_;
                } else {
                    ++it;
                }
        }
        for (GDALDatasetH h : close) GDALClose(h);
    }

private:
    struct Idle {
        std::string path;
        GDALDatasetH ds;
    };
    std::mutex mu_;
    std::list<Idle> idle_;  // most recently returned first
    int open_ = 0;          // idle + borrowed
};

// One mutex per path, for the sources whose handles share file state.
std::mutex& path_mutex(const std::string& path) {
    static std::mutex guard;
    static auto* table = new std::unordered_map<std::string, std::unique_ptr<std::mutex>>;  // never destroyed
    std::lock_guard lock(guard);
    auto& m = (*table)[path];
    if (!m) m = std::make_unique<std::mutex>();
    return *m;
}

// The bands to read, from 1 ("bands", else all), all of one data type;
// ParamError on "bands" naming the file's bands otherwise. (The spec has
// checked that each is at least 1.)
std::vector<int> select_bands(const Params& p, GDALDatasetH ds, const std::string& path, int count) {
    std::vector<int> bands;
    if (p.has("bands")) {
        for (std::int64_t b : p.integers("bands")) {
            if (b > count)
                throw ParamError("bands", "band " + std::to_string(b) + " does not exist: '" + path +
                                              "' has bands 1 to " + std::to_string(count) + " (bands count from 1)");
            bands.push_back(int(b));
        }
        if (bands.empty())
            throw ParamError("bands", "is empty; list the bands to read, from 1, or leave it out for all");
    } else {
        for (int b = 1; b <= count; ++b) bands.push_back(b);
    }
    if (int(bands.size()) > kMaxBands)
        throw ParamError("bands", "more than " + std::to_string(kMaxBands) + " bands; select fewer");

    GDALDataType type = GDALGetRasterDataType(GDALGetRasterBand(ds, bands[0]));
    for (int b : bands) {
        GDALDataType t = GDALGetRasterDataType(GDALGetRasterBand(ds, b));
        if (t != type)
            throw ParamError("bands", "band " + std::to_string(bands[0]) + " of '" + path + "' holds " +
                                          GDALGetDataTypeName(type) + " and band " + std::to_string(b) + " " +
                                          GDALGetDataTypeName(t) + "; select bands of one type with \"bands\"");
    }
    return bands;
}

// GDAL reads whole blocks (tiles, strips): a header claiming tiles of
// 2147483632 pixels a side makes it allocate exabytes on the first read
// (found with the hostile corpus under ASan), and a merely huge block (a 3 GB
// strip) is a decompression bomb. Blocks of all `count` bands
// (pixel-interleaved files hold them together) must fit the libvips loaders'
// whole-decode limit; IoError naming the file otherwise.
void check_block_size(GDALDatasetH ds, int band, GDALDataType type, int count, const std::string& path) {
    int bx = 0, by = 0;
    GDALGetBlockSize(GDALGetRasterBand(ds, band), &bx, &by);
    const std::uint64_t block_bytes = std::uint64_t(std::max(bx, 0)) * std::uint64_t(std::max(by, 0)) *
                                      std::uint64_t(GDALGetDataTypeSizeBytes(type)) * std::uint64_t(count);
    const std::uint64_t limit = std::uint64_t(io_limits().max_decode_mb) << 20;
    if (block_bytes > limit)
        throw IoError(path, "has blocks (tiles or strips) of " + std::to_string(bx) + "x" + std::to_string(by) +
                                " pixels, " + std::to_string(block_bytes >> 20) + " MB each with its " +
                                std::to_string(count) + " band(s), over the limit of " + std::to_string(limit >> 20) +
                                " MB; if the file is genuine, retile it "
                                "(gdal_translate -co TILED=YES) or raise IoLimits::max_decode_mb");
}

// The dataset's georeference for the selected bands (nodata, alpha), or
// none without a geotransform; IoError naming the file for a broken one.
std::optional<GeoRef> read_georef(GDALDatasetH ds, const std::vector<int>& bands, const std::string& path) {
    // only with a geotransform (GDAL's default one says nothing about
    // where the pixels are)
    double t[6];
    if (GDALGetGeoTransform(ds, t) != CE_None) return std::nullopt;
    // A GeoTIFF's tags can hold NaN, infinities or a zero pixel size
    // (the hostile corpus of issue 5): GDAL hands them on, and merge
    // would only say its output is "nan x -inf pixels". Refuse them
    // here, naming the file.
    const bool finite = std::all_of(t, t + 6, [](double v) { return std::isfinite(v); });
    if (!finite || t[1] * t[5] - t[2] * t[4] == 0)
        throw IoError(path, "has a broken geotransform (origin " + std::to_string(t[0]) + ", " + std::to_string(t[3]) +
                                ", pixel size " + std::to_string(t[1]) + " x " + std::to_string(t[5]) + ", rotation " +
                                std::to_string(t[2]) + ", " + std::to_string(t[4]) +
                                "): it must be finite with a non-zero pixel size; "
                                "fix the georeference (gdal_edit.py -a_ullr or -unsetgt)");
    GeoRef g;
    for (int i = 0; i < 6; ++i) g.transform[i] = t[i];
    const char* wkt = GDALGetProjectionRef(ds);
    g.crs_wkt = wkt ? wkt : "";
    bool any = false;
    for (int b : bands) {
        int has = 0;
        double v = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, b), &has);
        g.nodata.push_back(has ? std::optional<double>(v) : std::nullopt);
        any = any || has;
    }
    if (!any) g.nodata.clear();
    for (std::size_t i = 0; i < bands.size(); ++i)
        if (GDALGetRasterColorInterpretation(GDALGetRasterBand(ds, bands[i])) == GCI_AlphaBand) g.alpha_band = int(i);
    return g;
}

// Tessera's format for a GDAL data type; IoError naming the file for one it
// has none for.
Format format_for(GDALDataType type, const std::string& path) {
    auto f = format_of(type);
    if (!f)
        throw IoError(path, std::string("holds GDAL data type ") + GDALGetDataTypeName(type) +
                                ", which Tessera has no format for (it takes Byte, UInt16, Int16, UInt32, Int32, "
                                "Float32, Float64); convert it first, e.g. gdal_translate -ot Float64");
    return *f;
}

// The header of the selected bands (all of `format`): size (IoError beyond
// Tessera's limits), georeference, and an interpretation
// from GDAL's colour interpretations (RGB or grey where they say so, else
// multiband).
ImageInfo dataset_header(GDALDatasetH ds, const std::vector<int>& bands, Format format, const std::string& path) {
    ImageInfo info;
    info.width = GDALGetRasterXSize(ds);
    info.height = GDALGetRasterYSize(ds);
    if (info.width < 1 || info.height < 1 || info.width > kMaxDimension || info.height > kMaxDimension)
        throw IoError(path, "is " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                                " pixels; Tessera takes 1 to " + std::to_string(kMaxDimension) + " a side");
    info.bands = int(bands.size());
    info.format = format;
    auto interp = [&](std::size_t i) { return GDALGetRasterColorInterpretation(GDALGetRasterBand(ds, bands[i])); };
    const bool rgb =
        info.bands >= 3 && interp(0) == GCI_RedBand && interp(1) == GCI_GreenBand && interp(2) == GCI_BlueBand;
    info.interpretation = rgb || (info.bands == 1 && interp(0) == GCI_GrayIndex)
                              ? default_interpretation(info.bands, info.format)
                              : Interpretation::multiband;
    info.geo = read_georef(ds, bands, path);
    return info;
}

// "mask" against the file: GDAL's mask becomes one more band, the alpha band
// (no nodata of its own), which only a georeferenced raster can use (merge
// honours it); ParamError on "mask" otherwise.
void add_mask_band(ImageInfo& info, const std::string& path) {
    if (!info.geo)
        throw ParamError("mask", "'" + path +
                                     "' has no georeference; masks mark valid pixels for merge, "
                                     "which places rasters by their georeference");
    if (info.bands + 1 > kMaxBands) throw ParamError("mask", "too many bands with the mask");
    info.bands += 1;
    info.geo->alpha_band = info.bands - 1;
    if (!info.geo->nodata.empty()) info.geo->nodata.push_back(std::nullopt);
    info.interpretation = Interpretation::multiband;
}

class GdalLoadOp final : public Op {
public:
    GdalLoadOp(const Params& p, std::span<const ImageInfo> in) {
        path_ = p.string("path");
        if (path_.empty())
            throw ParamError("path", "is empty; give the raster to read (a file, /vsimem/..., a subdataset)");
        io::gdal_init();
        // handles left idle from an earlier graph may predate a rewrite
        DatasetPool::instance().close_idle(path_);
        if (!in.empty()) {
            promised(p, in[0]);
            return;
        }
        // GDAL's /vsi paths and subdataset strings name no file of their own
        // (stat finds none); a folder may be a dataset
        if (!io::is_vsi_path(path_)) refuse_special_file(path_, "a raster to read");
        io::GdalErrorScope errors;
        GDALDatasetH ds = open_dataset(path_, errors);
        struct Close {
            GDALDatasetH ds;
            ~Close() { GDALClose(ds); }
        } close{ds};

        const int count = GDALGetRasterCount(ds);
        if (count == 0)
            throw IoError(path_, "has no raster bands; if it holds subdatasets, open one of them "
                                 "(gdalinfo lists them as SUBDATASET_n_NAME)");
        bands_ = select_bands(p, ds, path_, count);
        const GDALDataType type = GDALGetRasterDataType(GDALGetRasterBand(ds, bands_[0]));
        const Format format = format_for(type, path_);
        check_block_size(ds, bands_[0], type, count, path_);
        info_ = dataset_header(ds, bands_, format, path_);
        // "mask": GDAL's mask of the dataset (a .msk file, an internal mask,
        // the alpha band or the nodata) as one more band, the alpha band
        mask_ = p.boolean("mask", false);
        if (mask_) add_mask_band(info_, path_);
        type_ = type;
        count_ = count;
        // A VRT's raw sources are opened with CPLOpenShared: every handle of
        // the VRT in the process reads through one FILE*, so two threads
        // reading through two handles race on its position. Such reads are
        // serialised per path (seen as wrong pixels under load in the tests).
        GDALDriverH driver = GDALGetDatasetDriver(ds);
        serialise_ = driver && std::string(GDALGetDriverShortName(driver)) == "VRT";
    }

    // A source: its optional input (the writer of the file) is only an
    // ordering, never pulled.
    void demand(const Rect&, Demand&) const override {}

    void release() const override { DatasetPool::instance().close_idle(path_); }

    // One case: out.rect lies inside the raster (the evaluator asks no more);
    // one RasterIO into the tile, bands interleaved as Tessera keeps them.
    void compute(const Tile& out, std::span<const Pulled>) const override {
        if (out.rect.empty()) return;
        io::GdalErrorScope errors;
        DatasetPool& pool = DatasetPool::instance();
        GDALDatasetH ds = pool.take(path_);
        if (!ds) {
            try {
                ds = open_dataset(path_, errors);
            } catch (...) {
                pool.opened_nothing();
                throw;
            }
            const bool bands_ok = GDALGetRasterCount(ds) == count_ && GDALGetRasterCount(ds) >= bands_.back();
            if (GDALGetRasterXSize(ds) != info_.width || GDALGetRasterYSize(ds) != info_.height || !bands_ok ||
                GDALGetRasterDataType(GDALGetRasterBand(ds, bands_[0])) != type_) {
                pool.discard(ds);
                throw IoError(path_, promise_ ? "does not hold what the node that writes it was given (size, bands "
                                                "or data type differ); read it in a pipeline of its own"
                                              : "changed since the pipeline was built (size, bands or data type "
                                                "differ); build the pipeline again");
            }
        }
        GDALRasterIOExtraArg extra;
        INIT_RASTERIO_EXTRA_ARG(extra);
        const auto sample = GSpacing(format_size(info_.format));
        std::unique_lock<std::mutex> one_at_a_time;
        if (serialise_) one_at_a_time = lock_or_lend(path_mutex(path_));
        CPLErr e = GDALDatasetRasterIOEx(ds, GF_Read, out.rect.x, out.rect.y, out.rect.w, out.rect.h, out.data,
                                         out.rect.w, out.rect.h, gdal_type(info_.format), int(bands_.size()),
                                         const_cast<int*>(bands_.data()), GSpacing(out.pixel_bytes()),
                                         GSpacing(out.stride), sample, &extra);
        if (e == CE_None && mask_) {  // the mask, 0 or 255, into the last band
            GDALRasterBandH m = GDALGetMaskBand(GDALGetRasterBand(ds, bands_[0]));
            e = m ? GDALRasterIOEx(m, GF_Read, out.rect.x, out.rect.y, out.rect.w, out.rect.h,
                                   out.data + std::size_t(info_.bands - 1) * sample, out.rect.w, out.rect.h,
                                   gdal_type(info_.format), GSpacing(out.pixel_bytes()), GSpacing(out.stride), &extra)
                  : CE_Failure;
        }
        if (e != CE_None) {
            pool.discard(ds);
            throw IoError(path_, "cannot read pixels (" + errors.last() +
                                     "); the file may be truncated or damaged: check it with gdalinfo -checksum");
        }
        pool.give_back(path_, ds);
    }

    // (a file this pipeline writes itself is read after its save: no clash)
    std::vector<std::string> files_read() const override {
        return promise_ ? std::vector<std::string>{} : std::vector<std::string>{path_};
    }

private:
    // The file does not exist yet: the node that writes it (`writer`, a sink
    // earlier in the pipeline) promises its header, checked when the file is
    // first opened.
    void promised(const Params& p, const ImageInfo& writer) {
        info_ = writer;
        promise_ = true;
        count_ = writer.bands;
        for (int b = 1; b <= writer.bands; ++b) bands_.push_back(b);
        for (const char* key : {"bands", "mask"})
            if (p.has(key))
                throw ParamError(key, "cannot be used on a file this pipeline writes itself; apply it before the "
                                      "save, or read the file in a pipeline of its own");
        type_ = gdal_type(writer.format);
        serialise_ = false;
    }

    std::string path_;
    bool promise_ = false;
    bool mask_ = false;  // the last band is GDAL's mask
    std::vector<int> bands_;
    GDALDataType type_ = GDT_Byte;
    int count_ = 0;
    bool serialise_ = false;
};

}  // namespace

OpSpec gdal_load_op_spec() {
    return {"gdal_load",
            "a raster GDAL opens (GeoTIFF, COG, VRT, JPEG 2000, /vsimem/, /vsizip/, subdatasets), with its "
            "georeference; read lazily. An input, if given, is the node that writes this path earlier in the "
            "run (pipelines link it by path): the raster is read after it has finished",
            0,
            1,
            {{"path", ParamType::string, true, "",
              "what GDAL opens: a file (relative to the pipeline's folder), /vsi... path or subdataset string", true},
             // bands and mask have no default_value: a node reading a file the
             // pipeline writes refuses them when given (promised())
             {.name = "bands",
              .type = ParamType::integers,
              .default_text = "all",
              .doc = "bands to read, from 1, in this order (all of one data type)",
              .min = 1},
             {"mask", ParamType::boolean, false, "false",
              "add GDAL's mask of the dataset (.msk, internal mask, alpha or nodata) as a last band, the alpha band "
              "merge honours"}},
            false,
            &make_op<GdalLoadOp>,
            true,
            "source",
            "0"};
}

}  // namespace tessera
