// Box-shrink kernels, side by side: free functions on views, in the style of
// OpenImageIO's ImageBufAlgo (dst's rect says what to compute; src must
// cover what it needs). Each matches one libvips (or GDAL) rule bit for bit,
// and the rules differ, so a caller picks the rule of the peer it matches:
//
//  - shrink_box: vips_shrink with integer factors (libvips 8.14
//    resample/shrinkv.c then shrinkh.c). Two passes, each rounded to the
//    format: integers (sum + n/2) / n (C division), floats sum / n in
//    double. So a u8 2x2 is the rounded mean of two rounded column means,
//    not the rounded mean of 4: (1 0 / 0 0) gives 1 here and 0 below. Used
//    by the shrink op (ops/shrink.cpp).
//  - shrink2x2_mean: the pyramid "average" of libvips's region shrink
//    (vips_region_shrink_method, VIPS_REGION_SHRINK_MEAN), which
//    vips_tiffsave's pyramid and vips_dzsave apply level to level: one
//    pass, integers (a + b + c + d + 2) >> 2 (half up), floats sum / 4 in
//    double. Used by the pyramid TIFF/COG writer (io/tiff_pyramid.cpp) and
//    the Deep Zoom writer (io/dzsave.cpp, on a source whose odd last
//    column and row it repeated first, as dzsave does).
//  - shrink2x2_valid_mean: GDAL's AVERAGE overviews where a nodata value
//    is set (gcore/overview.cpp): the mean of the valid samples of each
//    2x2, integers rounded to nearest, nodata where none is valid. Used by
//    the GeoTIFF/COG writer for an image with a nodata value.
//
// Frames: src is in the larger level's frame, dst in the smaller one's;
// dst pixel (x, y) averages src pixels [2x, 2x + 2) x [2y, 2y + 2) (for
// shrink_box, [x h, (x + 1) h) x [y v, (y + 1) v)). Pure functions: no
// allocation, any thread.
#pragma once

#include <optional>

#include "tessera/core/buffer.hpp"

namespace tessera {

// vips_shrink by integer factors. Source pixels past `bounds` (the input
// image's rect: its right and bottom edges) read as the last column and row
// inside it (libvips's copy extension when the output size rounded up).
void shrink_box(const ConstTile& src, const Tile& dst, int hshrink, int vshrink, const Rect& bounds);

// libvips's pyramid region shrink ("average"): src must cover 2 x dst.
void shrink2x2_mean(const ConstTile& src, const Tile& dst);

// Whether shrink2x2_mean may use the CPU's vector instructions where it has
// them (the default): the same bits either way. Returns the previous
// setting; tests turn it off to check the portable loops on this machine.
bool set_shrink_simd(bool allowed);

// GDAL's AVERAGE with a nodata value: src must cover 2 x dst.
void shrink2x2_valid_mean(const ConstTile& src, const Tile& dst, double nodata);

// The pyramid writers' level step: shrink2x2_valid_mean where a nodata value
// is given that a sample of src's format can hold, else shrink2x2_mean (a
// nodata of -9999 marks nothing in a u16 image).
void shrink2x2_pyramid(const ConstTile& src, const Tile& dst, const std::optional<double>& nodata);

}  // namespace tessera
