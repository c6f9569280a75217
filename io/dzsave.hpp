// The Deep Zoom / Google tile-pyramid writer, internal to io/: used by the
// save op for .dzi outputs.
#pragma once

#include <memory>
#include <string>

#include "tessera/core/op.hpp"

namespace tessera::io {

struct DzOptions {
    // dz: NAME.dzi + NAME_files/LEVEL/COL_ROW.EXT; google: NAME/Z/Y/X.EXT;
    // iiif, iiif3: NAME/REGION/SIZE/0/default.EXT + NAME/info.json (IIIF
    // Image API 2 / 3, level 0), as `vips dzsave --layout` names them.
    enum class Layout { dz, google, iiif, iiif3 } layout = Layout::dz;
    // fs: the files; zip: NAME.zip holding them under NAME/; szi: the same
    // zip as NAME.szi with NAME/scan-properties.xml (vips dzsave --container).
    enum class Container { fs, zip, szi } container = Container::fs;
    // Defaults as `vips dzsave`: 254 and 1 for dz; google tiles are 256 and
    // iiif ones 512, and neither overlaps (the save op picks these when the
    // keys are not given).
    int tile_size = 254;
    int overlap = 1;
    // The tiles' file extension as given: jpeg or jpg (both JPEG), png or
    // webp. vips dzsave's default is jpeg for dz, jpg for the others.
    std::string suffix = "jpeg";
    int quality = 75;  // jpeg and webp
    // Google tiles are always whole: the part outside the image is this
    // value (libvips's default background, white). Also what skip_blanks
    // compares with.
    double background = 255;
    // A tile whose every sample (overlap included) is within this of the
    // background is not written; -1: every tile is (vips dzsave's default,
    // but 5 for google, which the save op picks when the key is not given).
    int skip_blanks = -1;
    // iiif, iiif3: the base URL info.json names the image by (its id is
    // ID/NAME), vips dzsave's default.
    std::string id = "https://example.com/iiif";
    // Level 0 is asked for in vertical bands about this wide, as the pyramid
    // TIFF writer does; only the schedule changes, never the bytes.
    int band_width = 16384;

    bool google_like() const { return layout != Layout::dz; }  // stops at one tile, never overlaps
    bool zipped() const { return container != Container::fs; }
};

// Throws ParamError (naming the key) for options this image cannot be
// written with; called when the graph is built.
void check_dz_options(const ImageInfo& info, const DzOptions& options);

// Where a save to `path` goes: the archive (container zip: NAME.zip, szi:
// NAME.szi, NAME being `path`'s stem), or `path` itself (fs).
std::string dz_target(const std::string& path, const DzOptions& options);

// A sink writing `path` (NAME.dzi): for layout dz NAME.dzi and NAME_files/,
// for the others the folder NAME/ (google: z/y/x.EXT and blank.png; iiif:
// the regions and info.json), as `vips dzsave` names them. Everything is
// written into a temporary folder beside the target and moved into place
// when complete; zipped, into a temporary archive beside NAME.zip (.szi),
// tile by tile as they are encoded, renamed onto it when complete. Zipped
// pyramids are written by one process (an archive has one writer): under
// MPI rank 0 makes them alone.
std::unique_ptr<Sink> make_dz_sink(const std::string& path, const DzOptions& options);

}  // namespace tessera::io
