// The save key `pixel_size` ("X[,Y] UNIT", e.g. "0.325 um" or "0.5,0.52
// micrometer"), internal to io/: the OME writers turn it into their
// physical sizes (OME-Zarr: coordinateTransformations scale and axis units;
// OME-TIFF: PhysicalSizeX/Y and their unit symbols), and `channel_names`.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace tessera::io {

struct PixelSize {
    double x = 1, y = 1;
    std::string unit;    // as NGFF (UDUNITS-2) names it: "micrometer", "nanometer", ...
    std::string symbol;  // as OME-XML writes it: "µm", "nm", ...
};

// Parses the key's value; ParamError on "pixel_size" naming what is wrong
// (a size that is not a finite number above 0, a unit NGFF does not list).
// Units: the NGFF 0.4 space units by name, and their symbols (nm, um, µm,
// mm, cm, m, pm, A/Å, in, ft), "micron" too.
PixelSize parse_pixel_size(const std::string& value);

// The save key `channel_names` (a list of strings, ["DAPI", "GFP"], each
// name as given: a name may hold a comma or spaces); an empty list gives
// none. ParamError on "channel_names" when there are names but not one per
// channel (`channels`: the bands, or 1 for an OME-TIFF's interleaved RGB
// plane), or one is empty.
std::vector<std::string> check_channel_names(const std::vector<std::string>& names, int channels);

}  // namespace tessera::io
