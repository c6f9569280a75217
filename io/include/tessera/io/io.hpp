// io: sources and sinks backed by libvips (and, later, GDAL).
//
// The evaluator reaches files only through core's Op and Sink interfaces;
// nothing of libvips or GDAL is visible in this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/core/image_info.hpp"
#include "tessera/core/op.hpp"

namespace tessera {

// Adds load and save (and any other io op) to the registry.
void register_io_ops(OpRegistry& registry);

// The header of an image file, read without decoding pixels; IoError naming
// the file if it cannot be opened.
ImageInfo read_image_header(const std::string& path);

// Human-readable facts about a file for `tessera info` (one "key: value" per line).
std::string describe_image(const std::string& path);

// One line of what the io layer did in this process (decoded pixels,
// restarts), for --stats.
std::string io_stats();
// The JPEG pixels decoded in this process so far (rows times the columns
// each decode kept): what cropping and skipping saved, for tests.
std::uint64_t jpeg_pixels_decoded();

// libvips's untrusted loaders (ImageMagick's magickload, ...) are blocked by
// default: a file only they read is refused, naming the file and the
// `--allow-untrusted-loaders` switch, which calls this with true.
void allow_untrusted_loaders(bool allow);

// One of libvips's file loaders, as this libvips has it and as tessera
// leaves it now (read from libvips's operation classes, not a kept list).
struct ImageLoader {
    std::string name;                   // libvips's nickname: "jpegload"
    std::string description;            // libvips's: "load jpeg from file"
    std::vector<std::string> suffixes;  // ".jpg", ...; libvips may pick it by content too
    bool untrusted = false;             // libvips flags it untrusted
    bool blocked = false;               // libvips refuses to run it now
};
// Every loader libvips may pick for a file, in the order it tries them
// (vips_foreign_find_load's).
std::vector<ImageLoader> image_loaders();
// image_loaders() as `tessera info --loaders` prints it.
std::string describe_loaders();

// Limits of the io layer (process-wide settings, like OpenImageIO's).
struct IoLimits {
    // Images held open at once by load ops (a bounded LRU cache shared by all
    // of them); a source is opened on its first tile and may be reopened.
    // Default: a quarter of ulimit -n, between 4 and 256. Streamed JPEGs
    // share a second cache of plain descriptors with the same limit.
    int max_open_files = 64;
    // Outputs of save up to this size are assembled in memory before they are
    // encoded; larger ones in a temporary .v file beside the target.
    std::size_t save_memory_mb = 512;
    // A file whose format libvips decodes whole (PNG, WebP, GIF, ...) is
    // refused when the graph is built if it would take more than this: a
    // header claiming 65535x65535x4 must not take the machine down. Tiled
    // TIFFs and plain JPEGs are read in parts and are not limited. gdal_load
    // refuses a raster whose blocks (tiles, strips; all bands) exceed it.
    std::size_t max_decode_mb = 4096;
};
// Throws Error for a value out of range (max_open_files < 1).
void set_io_limits(const IoLimits& limits);
IoLimits io_limits();

}  // namespace tessera
