// The OME-Zarr (NGFF 0.4 on Zarr v2) writer, internal to io/: used by the
// save op for format ome-zarr (NAME.ome.zarr or NAME.zarr, a folder).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pixel_size.hpp"
#include "tessera/core/op.hpp"
#include "zarr_codec.hpp"

namespace tessera::io {

struct OmeZarrOptions {
    // A chunk's y and x extent (every chunk holds all channels); the
    // evaluator's tiles are chunks. Even, so that a level's 2x2 groups never
    // straddle two chunks.
    int tile_w = 256, tile_h = 256;
    ZarrCodec codec;
    // Every 2x smaller level down to one chunk (else level "0" alone).
    bool pyramid = true;
    // Level 0 is asked for in vertical bands about this wide (pyramid_layout).
    int band_width = 16384;
    std::optional<PixelSize> pixel_size;     // none: scale 1 (pixels), no unit
    std::vector<std::string> channel_names;  // empty: "Channel 0", ...
    PlaneSizes planes;                       // the bands as C x Z x T: axes (t, c, z, y, x), those of size 1 left out
};

// Throws ParamError (naming the key) for options this image cannot be
// written with; called when the graph is built.
void check_ome_zarr_options(const ImageInfo& info, const OmeZarrOptions& options);

// A sink writing the store `path` (a folder): built in a temporary folder
// beside it and moved into place when complete.
std::unique_ptr<Sink> make_ome_zarr_sink(const std::string& path, const OmeZarrOptions& options);

}  // namespace tessera::io
