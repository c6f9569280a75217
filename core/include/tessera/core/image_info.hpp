// The image header: what an op knows about an image without any pixels.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/core/format.hpp"
#include "tessera/core/rect.hpp"

namespace tessera {

// Georeference of a raster: the GDAL convention. Pixel (col, row) has its
// top-left corner at
//   X = t[0] + col * t[1] + row * t[2],  Y = t[3] + col * t[4] + row * t[5].
struct GeoRef {
    std::array<double, 6> transform{0, 1, 0, 0, 0, 1};
    std::string crs_wkt;                        // empty: unknown CRS
    std::vector<std::optional<double>> nodata;  // one per band (empty: none)
    // The band (from 0) that is an alpha band: a pixel is valid where it is
    // nonzero (GDAL's GMF_ALPHA). -1: none.
    int alpha_band = -1;
    friend bool operator==(const GeoRef&, const GeoRef&) = default;

    // The georeference of the sub-image whose pixel (0,0) is pixel (dx, dy)
    // here (extract_area: dx, dy >= 0; embed: negative).
    GeoRef shifted(double dx, double dy) const;
    // The georeference after a box shrink by (xf, yf).
    GeoRef scaled(double xf, double yf) const;
};

struct ImageInfo {
    int width = 0;
    int height = 0;
    int bands = 1;
    Format format = Format::u8;
    Interpretation interpretation = Interpretation::multiband;
    std::optional<GeoRef> geo;

    Rect rect() const { return {0, 0, width, height}; }
    std::size_t pixel_bytes() const { return std::size_t(bands) * format_size(format); }
    // Bytes of the whole image; callers check this against limits, so it is
    // computed in 64 bits and never overflows for valid headers.
    std::uint64_t bytes() const { return std::uint64_t(width) * std::uint64_t(height) * pixel_bytes(); }
    friend bool operator==(const ImageInfo&, const ImageInfo&) = default;
};

// Largest width or height an image may have (as libvips: 10 million).
inline constexpr int kMaxDimension = 10'000'000;
inline constexpr int kMaxBands = 1024;

}  // namespace tessera
