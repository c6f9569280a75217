// The Deep Zoom / Google tile-pyramid writer, internal to io/: used by the
// save op for .dzi outputs.
#pragma once

#include <memory>
#include <string>

#include "tessera/core/op.hpp"

namespace tessera::io {

struct DzOptions {
    enum class Layout { dz, google } layout = Layout::dz;
    // Defaults as `vips dzsave`: 254 and 1 for dz; google tiles are 256 and
    // never overlap (the save op picks these when the keys are not given).
    int tile_size = 254;
    int overlap = 1;
    std::string suffix = "jpeg";  // jpeg, png or webp
    int quality = 75;             // jpeg and webp
    // Google tiles are always whole: the part outside the image is this
    // value (libvips's default background, white).
    double background = 255;
    // Level 0 is asked for in vertical bands about this wide, as the pyramid
    // TIFF writer does; only the schedule changes, never the bytes.
    int band_width = 16384;
};

// Throws ParamError (naming the key) for options this image cannot be
// written with; called when the graph is built.
void check_dz_options(const ImageInfo& info, const DzOptions& options);

// A sink writing `path` (NAME.dzi): for layout dz NAME.dzi and NAME_files/,
// for layout google the folder NAME/ (z/y/x.EXT and blank.png), as
// `vips dzsave` names them. Everything is written into a temporary folder
// beside the target and moved into place when complete.
std::unique_ptr<Sink> make_dz_sink(const std::string& path, const DzOptions& options);

}  // namespace tessera::io
