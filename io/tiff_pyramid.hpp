// The tiled (pyramid) TIFF writer, internal to io/: used by the save op for
// .tif outputs that are tiled. Its tile order, level geometry, encode queue
// and shard messages are shared with the Deep Zoom writer (pyramid_layout,
// encode_queue, shard_messages); this file and tiff_pyramid.cpp hold the
// TIFF/COG format logic.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "ome_tiff.hpp"
#include "tessera/core/op.hpp"
#include "tile_codec.hpp"

namespace tessera::io {

struct TiffOptions {
    int tile_w = 256, tile_h = 256;
    TileCodec codec;
    bool pyramid = false;
    enum class BigTiff { automatic, yes, no } bigtiff = BigTiff::automatic;
    // The writer asks for level 0 in vertical bands about this wide: what is
    // live at once (decode windows, the pyramid's tiles being assembled) is
    // one band wide. Only the schedule changes, never the pixels.
    int band_width = 16384;
    // Cloud Optimized GeoTIFF layout (GDAL's COG, checked by its validator):
    // every directory at the head of the file, then the tile data from the
    // smallest level to level 0, each level's tiles in row-major order. Tile
    // bytes wait in a temporary file until the end, so the pipeline is still
    // computed once.
    bool cog = false;
    // OME-TIFF (the OME 2016-06 pyramid layout, as Bio-Formats 6+ and
    // raw2ometiff write it): a main IFD per plane (each band, or one
    // interleaved 8-bit RGB plane: ome_tiff.hpp), each with its reduced
    // levels as SubIFDs, and the OME-XML in the first ImageDescription.
    std::optional<OmeOptions> ome;
};

// Throws ParamError (naming the key) for options this image cannot be
// written with; called when the graph is built.
void check_tiff_options(const ImageInfo& info, const TiffOptions& options);

// A sink writing a tiled TIFF; with options.pyramid every level (each a 2x2
// box shrink of the one above, sizes rounded down as libvips does, down to
// one tile) in the same pass over the pipeline. Where the image has a nodata
// value the shrink averages only the valid samples (nodata where none is),
// as GDAL's AVERAGE overviews do. A path under /vsi (e.g. /vsimem/) is
// written in a local temporary file and copied there through GDAL at the end.
std::unique_ptr<Sink> make_tiff_sink(const std::string& path, const TiffOptions& options);

}  // namespace tessera::io
