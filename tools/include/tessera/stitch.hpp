// The scanned-mosaic stitch as a graph: a canvas, every tile of a
// positions CSV placed by one insert node, and a tiled (pyramid) TIFF save,
// or a Deep Zoom pyramid when the output ends in .dzi.
// `tessera stitch` is this plus a run; C++ users can call it the same way.
#pragma once

#include <string>
#include <vector>

#include "tessera/graphs/graph.hpp"

namespace tessera {

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
};

// Reads the CSV and builds the graph (headers of every tile are read, no
// pixels). Errors name the CSV and line, or the node and key.
Graph stitch_graph(const StitchOptions& options, const OpRegistry& registry);

}  // namespace tessera
