// The scanned-mosaic stitch as a graph: a canvas, every tile of a
// positions CSV placed by one insert node, and a tiled (pyramid) TIFF save,
// or a Deep Zoom pyramid when the output ends in .dzi.
// `tessera stitch` is this plus a run; C++ users can call it the same way.
#pragma once

#include <string>
#include <vector>

#include "tessera/graphs/graph.hpp"

namespace tessera {

// Flat-field correction of every tile before it is placed: each tile source
// becomes flatfield(load(tile), F[, D]) (ops/flatfield.cpp). Paths of
// one-band images of the tile size (BaSiC's or ASHLAR's profiles, or
// tessera's --flatfield-out); a /vsimem/ path is read by gdal_load (an
// estimate held in memory). Empty: no correction. `gains`: one per tile,
// each tile divided by its own (estimate_gains in tessera/flatfield.hpp);
// empty: none.
struct Illumination {
    std::string flatfield;
    std::string darkfield;  // needs flatfield
    std::vector<double> gains;
};

struct StitchOptions {
    std::string positions;  // CSV with header file,x,y; paths relative to its folder
    int canvas_w = 0, canvas_h = 0;
    std::string output;  // .tif/.tiff: tiled TIFF; .dzi: Deep Zoom (or google) pyramid
    int tile_size = 0;   // 0: the output's default (TIFF 256, dz 254, google 256)
    std::string compression = "none";  // TIFF
    int quality = 75;
    bool pyramid = false;
    std::string bigtiff = "auto";
    std::vector<double> background{0};
    // .dzi outputs (as vips dzsave); -1: the layout's default (dz 1, google 0)
    int overlap = -1;
    std::string suffix = "jpeg";  // jpeg, png or webp
    std::string layout = "dz";    // dz or google
    Illumination illumination;    // none by default
};

// Reads the CSV and builds the graph (headers of every tile are read, no
// pixels). Errors name the CSV and line, or the node and key.
Graph stitch_graph(const StitchOptions& options, const OpRegistry& registry);

// One row of a positions CSV: the tile's path (a relative one resolved
// against the CSV's folder) and its top-left on the canvas.
struct Placement {
    std::string file;
    IntPair at;
    int line = 0;  // in the CSV it was read from (0: not read from one)
};
// The rows of a positions CSV (header file,x,y), in order. Errors name the
// CSV and line.
std::vector<Placement> read_positions_csv(const std::string& path);
// Writes a positions CSV with paths relative to its own folder, so that it
// can be stitched from wherever it is.
void write_positions_csv(const std::string& path, const std::vector<Placement>& rows);

// The tile size of the output: the option, else the output's default
// (TIFF 256, Deep Zoom 254, google 256).
int stitch_tile_size(const StitchOptions& o);

// The parts of the stitch graph other jobs on the same CSVs reuse: a load
// node per tile ("tile0", ...), the canvas under them (first tile's bands
// and format), and the tiled (pyramid) TIFF save of `image`.
// With a flat-field or gains, the nodes returned are the corrected tiles
// ("flat0", ...; the loads stay "tile0", ...), the profiles loaded once
// ("flatfield", "darkfield"); a profile of another size than a tile is an
// error naming both files.
std::vector<NodeId> add_tile_loads(Graph& g, const std::vector<Placement>& rows,
                                   const Illumination& illumination = {});
NodeId add_canvas(Graph& g, const StitchOptions& options, const ImageInfo& like);
NodeId add_stitch_save(Graph& g, NodeId image, const StitchOptions& options);

}  // namespace tessera
