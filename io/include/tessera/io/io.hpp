// io: sources and sinks backed by libvips (and, later, GDAL).
//
// The evaluator reaches files only through core's Op and Sink interfaces;
// nothing of libvips or GDAL is visible in this header.
#pragma once

#include <string>

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

// Limits of the io layer: open files held at once by sources.
struct IoLimits {
    int max_open_files = 64;
};
void set_io_limits(const IoLimits& limits);

}  // namespace tessera
