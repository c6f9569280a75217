// The scanned-mosaic stitch as a graph: a canvas, every tile of a
// positions CSV placed by one insert node, and a tiled (pyramid) TIFF save.
// `tessera stitch` is this plus a run; C++ users can call it the same way.
#pragma once

#include <string>
#include <vector>

#include "tessera/graphs/graph.hpp"

namespace tessera {

struct StitchOptions {
    std::string positions;  // CSV with header file,x,y; paths relative to its folder
    int canvas_w = 0, canvas_h = 0;
    std::string output;
    int tile_size = 256;
    std::string compression = "none";
    int quality = 75;
    bool pyramid = false;
    std::string bigtiff = "auto";
    std::vector<double> background{0};
};

// Reads the CSV and builds the graph (headers of every tile are read, no
// pixels). Errors name the CSV and line, or the node and key.
Graph stitch_graph(const StitchOptions& options, const OpRegistry& registry);

}  // namespace tessera
