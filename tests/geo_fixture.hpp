// Georeferenced test rasters without linking GDAL into the tests: the
// samples go to a raw file and a VRT (GDAL's XML format) describes them:
// size, data type, geotransform, CRS, nodata. GDAL reads them like any
// raster; gdal_translate turns them into GeoTIFFs where a test needs one.
#pragma once

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "support.hpp"

namespace geo {

using namespace tessera;

inline const char* gdal_type_name(Format f) {
    switch (f) {
        case Format::u8: return "Byte";
        case Format::u16: return "UInt16";
        case Format::i16: return "Int16";
        case Format::u32: return "UInt32";
        case Format::i32: return "Int32";
        case Format::f32: return "Float32";
        case Format::f64: return "Float64";
    }
    return "Byte";
}

struct Raster {
    int width = 1, height = 1, bands = 1;
    Format format = Format::u8;
    std::array<double, 6> transform{0, 1, 0, 0, 0, -1};
    std::string srs;  // e.g. "EPSG:4326"; empty: none
    std::optional<double> nodata;
    // sample (x, y, band); pixel-interleaved in the raw file
    std::function<double(int, int, int)> value = [](int, int, int) { return 0.0; };
};

// Writes dir/NAME.raw and dir/NAME.vrt; returns the .vrt path.
inline std::string write_vrt(const std::filesystem::path& dir, const std::string& name, const Raster& r) {
    const std::size_t size = format_size(r.format);
    std::vector<char> bytes(std::size_t(r.width) * r.height * r.bands * size);
    std::size_t at = 0;
    for (int y = 0; y < r.height; ++y)
        for (int x = 0; x < r.width; ++x)
            for (int b = 0; b < r.bands; ++b, at += size)
                dispatch_format(r.format, [&](auto t) {
                    using T = decltype(t);
                    T v = T(r.value(x, y, b));
                    std::memcpy(bytes.data() + at, &v, sizeof v);
                });
    std::ofstream(dir / (name + ".raw"), std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    std::ofstream vrt(dir / (name + ".vrt"));
    char gt[256];
    std::snprintf(gt, sizeof gt, "%.17g, %.17g, %.17g, %.17g, %.17g, %.17g", r.transform[0], r.transform[1],
                  r.transform[2], r.transform[3], r.transform[4], r.transform[5]);
    vrt << "<VRTDataset rasterXSize=\"" << r.width << "\" rasterYSize=\"" << r.height << "\">\n";
    if (!r.srs.empty()) vrt << "  <SRS>" << r.srs << "</SRS>\n";
    vrt << "  <GeoTransform>" << gt << "</GeoTransform>\n";
    for (int b = 0; b < r.bands; ++b) {
        vrt << "  <VRTRasterBand dataType=\"" << gdal_type_name(r.format) << "\" band=\"" << b + 1
            << "\" subClass=\"VRTRawRasterBand\">\n";
        if (r.nodata) {
            char nd[64];
            std::snprintf(nd, sizeof nd, "%.17g", *r.nodata);
            vrt << "    <NoDataValue>" << nd << "</NoDataValue>\n";
        }
        vrt << "    <SourceFilename relativetoVRT=\"1\">" << name << ".raw</SourceFilename>\n"
            << "    <ImageOffset>" << b * size << "</ImageOffset>\n"
            << "    <PixelOffset>" << r.bands * size << "</PixelOffset>\n"
            << "    <LineOffset>" << std::size_t(r.width) * r.bands * size << "</LineOffset>\n"
            << "    <ByteOrder>LSB</ByteOrder>\n"
            << "  </VRTRasterBand>\n";
    }
    vrt << "</VRTDataset>\n";
    return (dir / (name + ".vrt")).string();
}

// Sample (x, y, band) of a rendered buffer, as a double.
inline double sample(const Buffer& b, int x, int y, int band = 0) {
    const Tile t = b.tile();
    return dispatch_format(t.format, [&](auto v) {
        using T = decltype(v);
        return double(t.row<T>(y)[std::size_t(x - t.rect.x) * t.bands + band]);
    });
}

// The buffer's band as rows of doubles, for exact comparisons.
inline std::vector<std::vector<double>> rows(const Buffer& b, int band = 0) {
    std::vector<std::vector<double>> out;
    const Rect r = b.rect();
    for (int y = r.y; y < r.bottom(); ++y) {
        out.emplace_back();
        for (int x = r.x; x < r.right(); ++x) out.back().push_back(sample(b, x, y, band));
    }
    return out;
}

}  // namespace geo
