#include "gdal_common.hpp"

#include <cmath>
#include <mutex>

#include <cpl_conv.h>
#include <cpl_error.h>
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

}  // namespace tessera::io
