// The tiled (pyramid) TIFF writer, internal to io/: used by the save op for
// .tif outputs that are tiled.
#pragma once

#include <memory>
#include <string>

#include "tessera/core/op.hpp"
#include "tile_codec.hpp"

namespace tessera::io {

struct TiffOptions {
    int tile_w = 256, tile_h = 256;
    TileCodec codec;
    bool pyramid = false;
    enum class BigTiff { automatic, yes, no } bigtiff = BigTiff::automatic;
    // The writer asks for level 0 in vertical bands about this wide: what is
    // live at once (decode windows, pyramid strips) is one band wide. Only
    // the schedule changes, never the pixels.
    int band_width = 16384;
};

// Throws ParamError (naming the key) for options this image cannot be
// written with; called when the graph is built.
void check_tiff_options(const ImageInfo& info, const TiffOptions& options);

// A sink writing a tiled TIFF; with options.pyramid every level (each a 2x2
// box shrink of the one above, sizes rounded down as libvips does, down to
// one tile) in the same pass over the pipeline.
std::unique_ptr<Sink> make_tiff_sink(const std::string& path, const TiffOptions& options);

}  // namespace tessera::io
