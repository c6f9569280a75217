// The merge op's rules between its parameters and its inputs, as functions
// of headers alone (no pixels), so that each is tested on its own: which
// inputs it takes, the output grid rasterio.merge picks, the output nodata,
// and where each input lands on that grid. ops/merge.cpp builds the op from
// them; its header states the semantics and cites rasterio and GDAL.
#pragma once

#include <optional>
#include <span>

#include "tessera/core/image_info.hpp"
#include "tessera/core/params.hpp"
#include "tessera/core/rect.hpp"

namespace tessera {

// Every input georeferenced, north up, with input 0's bands and CRS; else a
// ParamError on "inputs" naming the input and saying what to do.
void check_merge_inputs(std::span<const ImageInfo> in);

// The output grid: resolution rx x ry, bounds w, s, e, n (CRS units), and
// its size in pixels.
struct MergeGrid {
    double rx = 0, ry = 0, w = 0, s = 0, e = 0, n = 0;
    int width = 0, height = 0;
};

// rasterio.merge's grid from the parameters res ([r] or [rx, ry]; default
// input 0's), bounds ([w, s, e, n]; default the union of the inputs) and tap
// (bounds widened to multiples of the resolution); size round((e - w) / rx)
// x round((n - s) / ry), half to even. The inputs must pass
// check_merge_inputs. ParamError naming res or bounds for a grid that is
// malformed or empty or over kMaxDimension a side.
MergeGrid plan_merge_grid(const Params& p, std::span<const ImageInfo> in);

// The output nodata: "nodata" if given, else input 0's (band 1), else none;
// a ParamError if `format` cannot hold it (naming nodata, or dtype when it
// is input 0's that the dtype asked for cannot hold).
std::optional<double> merge_nodata(const Params& p, std::span<const ImageInfo> in, Format format);

// Where an input lands on the grid, rounded as gdal_merge.py does: its
// bounds intersected with the output's, as a window of output pixels
// (offset floor(x + 0.1), size floor(x + 0.5)) and the floating window it
// covers on the input. None when they share no area (only an edge, or
// nothing) or the rounded window is empty.
struct MergeWindow {
    Rect window;                            // output pixels it lands on, clipped to the output
    Rect unclipped;                         // the rounded window before clipping (output frame)
    double fx = 0, fy = 0, fw = 0, fh = 0;  // the window on the input, in input pixels
};
std::optional<MergeWindow> merge_window(const ImageInfo& input, const MergeGrid& grid);

}  // namespace tessera
