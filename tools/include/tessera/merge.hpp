// The georeferenced merge as a graph: one gdal_load per input, one merge
// node (rasterio.merge semantics) and a tiled GeoTIFF save.
// `tessera merge` is this plus a run; C++ users can call it the same way.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tessera/graphs/graph.hpp"

namespace tessera {

struct MergeOptions {
    std::vector<std::string> inputs;  // anything GDAL opens, in merge order
    std::string output;               // the GeoTIFF to write
    std::string method = "first";     // first, last, min, max, sum, count
    std::optional<double> nodata;
    std::vector<double> res;     // empty, [r] or [rx, ry]
    std::vector<double> bounds;  // empty or [w, s, e, n]
    bool tap = false;
    std::string dtype;  // empty: input 0's
    std::string resampling = "nearest";
    std::string format = "gtiff";  // gtiff (cog: not yet)
    int tile_size = 256;
    std::string compression = "deflate";
};

// Reads every input's header (no pixels) and builds the graph. Errors name
// the node and key (e.g. node 'merge' (op merge), key 'inputs': ...) or the
// file.
Graph merge_graph(const MergeOptions& options, const OpRegistry& registry);

}  // namespace tessera
