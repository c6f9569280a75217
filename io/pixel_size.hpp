// The keys both OME writers read, internal to io/: `pixel_size` ("X[,Y[,Z]]
// UNIT", e.g. "0.325 um" or "0.5,0.52,2 micrometer"), which they turn into
// their physical sizes (OME-Zarr: coordinateTransformations scale and axis
// units; OME-TIFF: PhysicalSizeX/Y/Z and their unit symbols),
// `channel_names`, and `size_z` / `size_t` (how the bands split into
// channels, focal planes and time points).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace tessera::io {

struct PixelSize {
    double x = 1, y = 1;
    double z = 0;        // the focal planes' spacing; 0: not given
    std::string unit;    // as NGFF (UDUNITS-2) names it: "micrometer", "nanometer", ...
    std::string symbol;  // as OME-XML writes it: "µm", "nm", ...
};

// Parses the key's value; ParamError on "pixel_size" naming what is wrong
// (a size that is not a finite number above 0, a unit NGFF does not list).
// Units: the NGFF 0.4 space units by name, and their symbols (nm, um, µm,
// mm, cm, m, pm, A/Å, in, ft), "micron" too. A Z size is the spacing of the
// focal planes (size_z), in the same unit.
PixelSize parse_pixel_size(const std::string& value);

// The save key `channel_names` (a list of strings, ["DAPI", "GFP"], each
// name as given: a name may hold a comma or spaces); an empty list gives
// none. ParamError on "channel_names" when there are names but not one per
// channel (`channels`: the bands, or 1 for an OME-TIFF's interleaved RGB
// plane), or one is empty.
std::vector<std::string> check_channel_names(const std::vector<std::string>& names, int channels);

// The save keys size_z and size_t: an image's bands are C channels x Z
// focal planes x T time points, the channel fastest, then z, then t (OME's
// DimensionOrder XYCZT): band c + C (z + Z t). A z-stack of 2-channel
// planes is then the bandjoin of plane 0's two bands, plane 1's, ... Both
// 1 (the default): every band is a channel.
struct PlaneSizes {
    int z = 1, t = 1;
    int planes() const { return z * t; }
    int channels(int bands) const { return bands / planes(); }
    int band(int c, int zi, int ti, int bands) const { return c + channels(bands) * (zi + z * ti); }
};

// ParamError on "size_z" (or "size_t") when the bands do not split into
// whole planes, naming the band count and what would.
PlaneSizes check_plane_sizes(int size_z, int size_t_, int bands);

}  // namespace tessera::io
