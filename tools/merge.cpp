#include "tessera/merge.hpp"

#include <filesystem>

#include "tessera/core/error.hpp"

namespace tessera {

Graph merge_graph(const MergeOptions& o, const OpRegistry& registry) {
    namespace fs = std::filesystem;
    if (o.inputs.empty()) throw Error("merge: give at least one input raster");
    if (o.format != "gtiff")
        throw Error("merge: --format " + o.format + " is not available yet; use gtiff (a tiled, compressed GeoTIFF)");
    Graph g(registry);
    g.execution.tile_w = g.execution.tile_h = o.tile_size;
    std::vector<NodeId> loads;
    for (std::size_t i = 0; i < o.inputs.size(); ++i) {
        // local files absolute (so --emit-json runs from anywhere); GDAL
        // paths (/vsimem/..., SENTINEL2_L1C:...) as given
        std::error_code ec;
        std::string path = fs::exists(o.inputs[i], ec) ? fs::absolute(o.inputs[i]).lexically_normal().string()
                                                        : o.inputs[i];
        loads.push_back(g.add("gdal_load", {}, {{"path", path}}, "in" + std::to_string(i)));
    }
    Params mp{{"method", o.method}, {"tap", o.tap}, {"resampling", o.resampling}};
    if (o.nodata) mp.set("nodata", *o.nodata);
    if (!o.res.empty()) mp.set("res", o.res);
    if (!o.bounds.empty()) mp.set("bounds", o.bounds);
    if (!o.dtype.empty()) mp.set("dtype", o.dtype);
    NodeId merged = g.add("merge", loads, mp, "merge");
    g.add("save", {merged},
          {{"path", fs::absolute(o.output).lexically_normal().string()},
           {"format", std::string("tiff")},
           {"tile", true},
           {"tile_width", std::int64_t(o.tile_size)},
           {"tile_height", std::int64_t(o.tile_size)},
           {"compression", o.compression}},
          "save");
    return g;
}

}  // namespace tessera
