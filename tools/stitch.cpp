#include "tessera/stitch.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tessera/core/error.hpp"

namespace tessera {

namespace {

std::string trim(std::string s) {
    auto b = s.find_first_not_of(" \t\r\n");
    auto e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::int64_t parse_coord(const std::string& s, const std::string& where) {
    std::size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(s, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != s.size()) throw Error(where + ": '" + s + "' is not an integer coordinate");
    return v;
}

}  // namespace

Graph stitch_graph(const StitchOptions& o, const OpRegistry& registry) {
    namespace fs = std::filesystem;
    std::ifstream in(o.positions);
    if (!in) throw IoError(o.positions, "cannot open the positions CSV; check the path");
    fs::path dir = fs::absolute(fs::path(o.positions)).parent_path();
    std::string line;
    if (!std::getline(in, line) || trim(line) != "file,x,y")
        throw IoError(o.positions, "line 1 must be the header file,x,y");

    struct Row {
        std::string file;
        IntPair at;
    };
    std::vector<Row> rows;
    for (int n = 2; std::getline(in, line); ++n) {
        if (trim(line).empty()) continue;
        std::stringstream ss(line);
        std::string f, x, y, extra;
        std::getline(ss, f, ',');
        std::getline(ss, x, ',');
        std::getline(ss, y, ',');
        std::string where = o.positions + " line " + std::to_string(n);
        if (std::getline(ss, extra, ',') || trim(f).empty() || trim(y).empty())
            throw Error(where + ": expected three fields file,x,y");
        rows.push_back({(dir / trim(f)).lexically_normal().string(),
                        {parse_coord(trim(x), where), parse_coord(trim(y), where)}});
    }
    if (rows.empty()) throw IoError(o.positions, "lists no tiles");

    const bool dz = fs::path(o.output).extension() == ".dzi";
    if (dz && (o.compression != "none" || o.bigtiff != "auto"))
        throw IoError(o.output, "compression and bigtiff apply to TIFF outputs; a .dzi takes suffix, quality, overlap "
                                "and layout");
    if (!dz && (o.overlap >= 0 || o.suffix != "jpeg" || o.layout != "dz"))
        throw IoError(o.output, "overlap, suffix and layout apply to Deep Zoom outputs; name the output NAME.dzi");
    const int tile = o.tile_size > 0 ? o.tile_size : !dz ? 256 : o.layout == "google" ? 256 : 254;
    Graph g(registry);
    g.execution.tile_w = g.execution.tile_h = tile;
    // Loads first (the canvas takes the first tile's bands and format), then
    // the canvas, one insert for every tile, and the save.
    std::vector<NodeId> tiles;
    std::vector<IntPair> at;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        tiles.push_back(g.add("load", {}, {{"path", rows[i].file}}, "tile" + std::to_string(i)));
        at.push_back(rows[i].at);
    }
    const ImageInfo& first = g.info(tiles[0]);
    std::vector<NodeId> inputs{g.add("black", {},
                                     {{"width", std::int64_t(o.canvas_w)},
                                      {"height", std::int64_t(o.canvas_h)},
                                      {"bands", std::int64_t(first.bands)},
                                      {"format", std::string(format_name(first.format))},
                                      {"value", o.background}},
                                     "canvas")};
    inputs.insert(inputs.end(), tiles.begin(), tiles.end());
    NodeId mosaic = g.add("insert", inputs, {{"at", at}}, "mosaic");
    Params save{{"path", fs::absolute(o.output).lexically_normal().string()}, {"quality", std::int64_t(o.quality)}};
    if (dz) {
        // a Deep Zoom (or google) pyramid, options as vips dzsave's
        save.set("tile_size", std::int64_t(tile));
        if (o.overlap >= 0) save.set("overlap", std::int64_t(o.overlap));
        save.set("suffix", o.suffix);
        save.set("layout", o.layout);
    } else {
        save.set("format", std::string("tiff"));
        save.set("tile", true);
        save.set("tile_width", std::int64_t(tile));
        save.set("tile_height", std::int64_t(tile));
        save.set("compression", o.compression);
        save.set("pyramid", o.pyramid);
        save.set("bigtiff", o.bigtiff);
    }
    g.add("save", {mosaic}, save, "save");
    return g;
}

}  // namespace tessera
