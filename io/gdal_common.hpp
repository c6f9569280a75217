// GDAL inside io/: set-up, error capture, and writing a georeference into a
// finished GeoTIFF. No GDAL header is visible here; the .cpp files of io/
// that include gdal.h are gdal_common.cpp and gdal_load.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/core/image_info.hpp"

namespace tessera::io {

// Once per process: registers GDAL's drivers and caps its block cache at
// kGdalCacheBytes (GDAL's own default is 5% of RAM), unless the user set
// GDAL_CACHEMAX in the environment, which then wins.
inline constexpr long long kGdalCacheBytes = 64ll << 20;
void gdal_init();

// While alive, GDAL errors of this thread are not printed but kept: last()
// is GDAL's last message (or "no detail from GDAL").
class GdalErrorScope {
public:
    GdalErrorScope();
    ~GdalErrorScope();
    GdalErrorScope(const GdalErrorScope&) = delete;
    GdalErrorScope& operator=(const GdalErrorScope&) = delete;
    std::string last() const;
};

// Writes geo (geotransform, CRS, nodata of band 1 for all bands, as GDAL
// keeps one nodata per band in the GDAL_NODATA tag) into the finished
// GeoTIFF `file` in place, through GDAL in update mode (GDAL rewrites the
// first directory with the GeoKeys). `target` names the output in errors.
// GDAL's side-car .aux.xml is switched off for this: what the GeoKeys
// cannot say (rare CRS details) is approximated by GDAL, never left in a
// stray file beside a temporary name.
void write_georeference(const std::string& file, const GeoRef& geo, const std::string& target);

// One TIFF tag as it sits in a file: its type code and the raw bytes of its
// values (count values of that type, in this machine's byte order).
struct TiffTag {
    std::uint16_t tag = 0;
    std::uint16_t type = 0;
    std::uint32_t count = 0;
    std::vector<std::uint8_t> data;
};

// The GeoTIFF tags (ModelPixelScale, ModelTiepoint or ModelTransformation,
// GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams) and GDAL_NODATA that
// GDAL writes for `geo`, so that a writer of our own can put them in its
// first directory: GDAL turns the CRS into GeoKeys, we never do. They are
// taken from a 1x1 GeoTIFF GDAL makes in /vsimem/. `target` names the
// output in errors.
std::vector<TiffTag> geotiff_tags(const GeoRef& geo, const std::string& target);

// GDAL virtual file systems (/vsimem/, /vsizip/, ...): paths only GDAL can
// open or write.
bool is_vsi_path(const std::string& path);

// Copies the local file `from` to the GDAL path `to` (e.g. /vsimem/a.tif)
// through VSI, replacing what was there: the "rename" of writers whose
// target lives in a GDAL virtual file system. IoError naming `to`.
// `between_chunks` (if given) is called after each MiB written and may
// throw (Cancelled: the run was stopped); `to` is then removed and the
// exception goes on.
void copy_to_vsi(const std::string& from, const std::string& to, void (*between_chunks)() = nullptr);

}  // namespace tessera::io
