#include "gdal_common.hpp"

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "tessera/core/error.hpp"

namespace tessera::io {

void gdal_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        GDALAllRegister();
        if (!CPLGetConfigOption("GDAL_CACHEMAX", nullptr)) GDALSetCacheMax64(kGdalCacheBytes);
    });
}

GdalErrorScope::GdalErrorScope() {
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
}
GdalErrorScope::~GdalErrorScope() { CPLPopErrorHandler(); }
std::string GdalErrorScope::last() const {
    const char* m = CPLGetLastErrorMsg();
    return m && *m ? std::string(m) : std::string("no detail from GDAL");
}

void write_georeference(const std::string& file, const GeoRef& geo, const std::string& target) {
    gdal_init();
    GdalErrorScope errors;
    // no side-car .aux.xml beside the temporary name (see the header)
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
    struct Restore {
        ~Restore() { CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", nullptr); }
    } restore;
    GDALDatasetH ds = GDALOpenEx(file.c_str(), GDAL_OF_RASTER | GDAL_OF_UPDATE, nullptr, nullptr, nullptr);
    if (!ds) throw IoError(target, "cannot reopen the written TIFF to add its georeference (" + errors.last() + ")");
    bool ok = true;
    std::string what;
    double t[6];
    for (int i = 0; i < 6; ++i) t[i] = geo.transform[i];
    if (GDALSetGeoTransform(ds, t) != CE_None) ok = false, what = "geotransform";
    if (ok && !geo.crs_wkt.empty() && GDALSetProjection(ds, geo.crs_wkt.c_str()) != CE_None) ok = false, what = "CRS";
    // GeoTIFF keeps one nodata for all bands (the GDAL_NODATA tag)
    if (ok && !geo.nodata.empty() && geo.nodata[0]) {
        for (int b = 1; ok && b <= GDALGetRasterCount(ds); ++b)
            if (GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b), *geo.nodata[0]) != CE_None)
                ok = false, what = "nodata";
    }
    if (ok) CPLErrorReset();
    GDALClose(ds);  // void in GDAL 3.6: a failed flush shows as an error
    if (ok && CPLGetLastErrorType() >= CE_Failure) ok = false, what = "file";
    if (!ok) throw IoError(target, "cannot write the GeoTIFF " + what + " (" + errors.last() + ")");
}

namespace {

std::size_t tiff_type_size(std::uint16_t type) {
    switch (type) {
        case 1:
        case 2:
        case 6:
        case 7: return 1;  // BYTE ASCII SBYTE UNDEFINED
        case 3:
        case 8: return 2;  // SHORT SSHORT
        case 4:
        case 9:
        case 11: return 4;  // LONG SLONG FLOAT
        case 5:
        case 10:
        case 12:
        case 16:
        case 17: return 8;  // RATIONALs DOUBLE LONG8 SLONG8
        default: return 0;
    }
}

template <class T>
T read_le(const std::uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);  // GDAL wrote the file in this machine's order
    return v;
}

}  // namespace

std::vector<TiffTag> geotiff_tags(const GeoRef& geo, const std::string& target) {
    gdal_init();
    GdalErrorScope errors;
    static std::atomic<unsigned> counter{0};
    const std::string name = "/vsimem/tessera-geokeys-" + std::to_string(counter++) + ".tif";
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
    struct Cleanup {
        const std::string& name;
        ~Cleanup() {
            VSIUnlink(name.c_str());
            CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", nullptr);
        }
    } cleanup{name};
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    if (!drv) throw IoError(target, "GDAL has no GTiff driver, which writes the GeoTIFF keys");
    GDALDatasetH ds = GDALCreate(drv, name.c_str(), 1, 1, 1, GDT_Float64, nullptr);
    if (!ds) throw IoError(target, "cannot prepare the GeoTIFF keys (" + errors.last() + ")");
    double t[6];
    for (int i = 0; i < 6; ++i) t[i] = geo.transform[i];
    bool ok = GDALSetGeoTransform(ds, t) == CE_None;
    if (ok && !geo.crs_wkt.empty()) ok = GDALSetProjection(ds, geo.crs_wkt.c_str()) == CE_None;
    // GeoTIFF keeps one nodata for all bands (the GDAL_NODATA tag): band 1's
    if (ok && !geo.nodata.empty() && geo.nodata[0])
        ok = GDALSetRasterNoDataValue(GDALGetRasterBand(ds, 1), *geo.nodata[0]) == CE_None;
    GDALClose(ds);
    if (!ok) throw IoError(target, "cannot express the georeference as GeoTIFF keys (" + errors.last() + ")");

    vsi_l_offset len = 0;
    const std::uint8_t* f = VSIGetMemFileBuffer(name.c_str(), &len, FALSE);
    auto bad = [&] { return IoError(target, "cannot read back the GeoTIFF keys GDAL wrote"); };
    if (!f || len < 8 || f[0] != f[1] || (f[0] != 'I' && f[0] != 'M') || read_le<std::uint16_t>(f + 2) != 42)
        throw bad();
    const bool native = (f[0] == 'I') == (std::endian::native == std::endian::little);
    if (!native) throw bad();  // GDAL writes in the machine's own order
    std::uint32_t ifd = read_le<std::uint32_t>(f + 4);
    if (ifd + 2 > len) throw bad();
    const std::uint16_t n = read_le<std::uint16_t>(f + ifd);
    if (ifd + 2 + std::uint64_t(n) * 12 > len) throw bad();
    std::vector<TiffTag> tags;
    for (std::uint16_t i = 0; i < n; ++i) {
        const std::uint8_t* e = f + ifd + 2 + std::size_t(i) * 12;
        TiffTag tag;
        tag.tag = read_le<std::uint16_t>(e);
        switch (tag.tag) {
            case 33550:
            case 33922:
            case 34264:
            case 34735:
            case 34736:
            case 34737:
            case 42113: break;
            default: continue;
        }
        tag.type = read_le<std::uint16_t>(e + 2);
        tag.count = read_le<std::uint32_t>(e + 4);
        const std::uint64_t bytes = std::uint64_t(tag.count) * tiff_type_size(tag.type);
        if (bytes == 0) throw bad();
        const std::uint8_t* v = e + 8;
        if (bytes > 4) {
            const std::uint32_t off = read_le<std::uint32_t>(e + 8);
            if (off + bytes > len) throw bad();
            v = f + off;
        }
        tag.data.assign(v, v + bytes);
        tags.push_back(std::move(tag));
    }
    return tags;
}

bool is_vsi_path(const std::string& path) { return path.rfind("/vsi", 0) == 0; }

void copy_to_vsi(const std::string& from, const std::string& to, void (*between_chunks)()) {
    gdal_init();
    GdalErrorScope errors;
    std::FILE* in = std::fopen(from.c_str(), "rb");
    if (!in) throw IoError(to, "cannot read back the temporary file '" + from + "'");
    struct CloseIn {
        std::FILE* f;
        ~CloseIn() { std::fclose(f); }
    } close_in{in};
    VSILFILE* out = VSIFOpenL(to.c_str(), "wb");
    if (!out)
        throw IoError(to, "cannot be written through GDAL (" + errors.last() +
                              "); check the virtual file system prefix (e.g. /vsimem/)");
    std::vector<char> buf(1 << 20);
    bool ok = true;
    try {
        for (std::size_t k; ok && (k = std::fread(buf.data(), 1, buf.size(), in)) > 0;) {
            ok = VSIFWriteL(buf.data(), 1, k, out) == k;
            if (between_chunks) between_chunks();
        }
    } catch (...) {  // stopped half-way: no half file at the target
        VSIFCloseL(out);
        VSIUnlink(to.c_str());
        throw;
    }
    ok = ok && !std::ferror(in);
    if (VSIFCloseL(out) != 0) ok = false;
    if (!ok) {
        VSIUnlink(to.c_str());
        throw IoError(to, "cannot be written through GDAL (" + errors.last() + ")");
    }
}

}  // namespace tessera::io
