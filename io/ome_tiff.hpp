// OME-TIFF's metadata, internal to io/: what the save keys channel_names,
// pixel_size and description say, and the OME-XML the pyramid TIFF writer
// (tiff_pyramid.cpp, its OME mode) puts in the first ImageDescription.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pixel_size.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera::io {

struct OmeOptions {
    std::vector<std::string> channel_names;  // one per channel; empty: "C0", "C1", ...
    double pixel_x = 0, pixel_y = 0;         // physical pixel size; 0: not given
    double pixel_z = 0;                      // the focal planes' spacing; 0: not given
    PlaneSizes planes;                       // the bands as C x Z x T (pixel_size.hpp)
    std::string unit = "µm";                 // an OME UnitsLength symbol
    std::string description;                 // Image/Description; empty: none
};

// (the save keys channel_names, pixel_size, size_z and size_t are parsed by
// pixel_size.hpp, shared with OME-Zarr)

// Whether an image is stored as one interleaved RGB plane (8-bit sRGB with 3
// bands and no z or t: what Bio-Formats and QuPath read as a brightfield RGB
// image, and JPEG-compresses as YCbCr) rather than one plane per band.
bool ome_interleaved_rgb(const ImageInfo& info, const PlaneSizes& planes);

// The OME-XML of an image written as `planes` main IFDs (the bands, in
// their XYCZT order, or one interleaved RGB plane) into a file named
// `file_name`, with this UUID.
std::string ome_xml(const ImageInfo& info, const OmeOptions& o, int planes, const std::string& file_name,
                    const std::string& uuid);

// "urn:uuid:..." from 128 bits (made a version-4-shaped UUID).
std::string ome_uuid(std::uint64_t hi, std::uint64_t lo);

}  // namespace tessera::io
