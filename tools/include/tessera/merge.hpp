// The georeferenced merge as a graph: one gdal_load per input, one merge
// node (rasterio.merge semantics) and a tiled GeoTIFF or COG save.
// `tessera merge` is this plus a run; C++ users can call it the same way.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tessera/graphs/graph.hpp"

namespace tessera {

struct MergeOptions {
    std::vector<std::string> inputs;  // anything GDAL opens, in merge order
    std::string output;               // the GeoTIFF to write (.tif/.tiff)
    std::string method = "first";     // first, last, min, max, sum, count
    std::optional<double> nodata;
    std::vector<double> res;     // empty, [r] or [rx, ry]
    std::vector<double> bounds;  // empty or [w, s, e, n]
    bool tap = false;
    std::string dtype;  // empty: input 0's
    std::string resampling = "nearest";
    std::string format;  // tiff (gtiff: tiled) or cog; empty: the output's extension's (.tif: tiff)
    int tile_size = 0;   // 0: 256 for gtiff, 512 for cog
    std::string compression = "deflate";
    int level = 0;  // deflate/zstd effort; 0: the codec's default (deflate 6, zstd 9)
    // GDAL-style creation options, KEY=VALUE: BLOCKSIZE, COMPRESS (NONE,
    // DEFLATE, LZW, ZSTD, JPEG), PREDICTOR (YES/NO/2), QUALITY, LEVEL (GTiff's
    // ZLEVEL and ZSTD_LEVEL too), OVERVIEWS
    // (AUTO/NONE; gtiff: NONE unless AUTO), BIGTIFF (YES/NO/IF_NEEDED).
    // They win over tile_size and compression.
    std::vector<std::string> creation_options;
    // OME-TIFF outputs (as StitchOptions'); empty: none
    std::string channel_names;
    std::string pixel_size;
};

// Reads every input's header (no pixels) and builds the graph. Errors name
// the node and key (e.g. node 'merge' (op merge), key 'inputs': ...) or the
// file.
Graph merge_graph(const MergeOptions& options, const OpRegistry& registry);

}  // namespace tessera
