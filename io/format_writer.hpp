// The part of a format table entry (tessera/io/formats.hpp) that only io/
// sees: how a save node's keys become the writer's settings, and the sink.
// Internal to io/.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "dzsave.hpp"
#include "ome_zarr.hpp"
#include "tessera/core/op.hpp"
#include "tessera/io/formats.hpp"
#include "tiff_pyramid.hpp"

struct _VipsOperation;
struct _VipsImage;

namespace tessera::io {

// Everything a save node's sink needs, fixed when the op is built.
struct SaveSettings {
    std::string path;
    const OutputFormat* format = nullptr;
    ImageInfo info;
    int quality = 75;
    int level = 0;  // compression effort (0: the codec's default), formats.cpp
    // The whole-image TIFF (strips, through libvips' tiffsave).
    Compression compression = Compression::none;
    int tile_w = 256, tile_h = 256;
    bool bigtiff = false;
    // A streaming writer's settings (the tiled TIFF / COG, the Deep Zoom one).
    std::optional<TiffOptions> tiled;
    std::optional<DzOptions> dz;
    std::optional<OmeZarrOptions> zarr;
};

struct FormatWriter {
    // Reads the entry's keys (already checked against the save spec, and
    // keys of other formats refused) and checks what one key cannot say
    // alone; throws ParamError naming the key. `s` has path, format and info.
    void (*configure)(const Params& p, SaveSettings& s) = nullptr;
    // The sink: a thin wrapper around the writer's constructor.
    std::unique_ptr<Sink> (*make_sink)(const SaveSettings& s) = nullptr;
    // Whole-image formats: libvips' saver, and the options it is given
    // (null: none) beside "in" and "filename".
    const char* vips_saver = nullptr;
    void (*vips_options)(_VipsOperation* op, const _VipsImage* in, const SaveSettings& s) = nullptr;
    // The end of the temporary file's name libvips encodes into.
    const char* temp_suffix = "";
    // The output is a folder (an OME-Zarr store), replaced whole.
    bool folder = false;
};

// The libvips whole-image writer (save.cpp): assembles the image, then
// encodes it with s.format->writer->vips_saver.
std::unique_ptr<Sink> make_vips_save_sink(const SaveSettings& s);

}  // namespace tessera::io
