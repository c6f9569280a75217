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

std::vector<Placement> read_positions_csv(const std::string& path) {
    namespace fs = std::filesystem;
    std::ifstream in(path);
    if (!in) throw IoError(path, "cannot open the positions CSV; check the path");
    fs::path dir = fs::absolute(fs::path(path)).parent_path();
    std::string line;
    if (!std::getline(in, line) || trim(line) != "file,x,y") throw IoError(path, "line 1 must be the header file,x,y");
    std::vector<Placement> rows;
    for (int n = 2; std::getline(in, line); ++n) {
        if (trim(line).empty()) continue;
        std::stringstream ss(line);
        std::string f, x, y, extra;
        std::getline(ss, f, ',');
        std::getline(ss, x, ',');
        std::getline(ss, y, ',');
        std::string where = path + " line " + std::to_string(n);
        if (std::getline(ss, extra, ',') || trim(f).empty() || trim(y).empty())
            throw Error(where + ": expected three fields file,x,y");
        rows.push_back({(dir / trim(f)).lexically_normal().string(),
                        {parse_coord(trim(x), where), parse_coord(trim(y), where)},
                        n});
    }
    if (rows.empty()) throw IoError(path, "lists no tiles");
    return rows;
}

void write_positions_csv(const std::string& path, const std::vector<Placement>& rows) {
    namespace fs = std::filesystem;
    fs::path dir = fs::absolute(fs::path(path)).parent_path();
    std::string tmp = path + ".part";
    {
        std::ofstream out(tmp);
        out << "file,x,y\n";
        for (const Placement& r : rows)
            out << fs::path(r.file).lexically_relative(dir).generic_string() << "," << r.at[0] << "," << r.at[1] << "\n";
        if (!out.flush()) throw IoError(path, "cannot write the positions CSV; check the folder and free space");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw IoError(path, "cannot write the positions CSV: " + ec.message());
}

std::vector<NodeId> add_tile_loads(Graph& g, const std::vector<Placement>& rows, const Illumination& ill) {
    std::vector<NodeId> tiles;
    for (std::size_t i = 0; i < rows.size(); ++i)
        tiles.push_back(g.add("load", {}, {{"path", rows[i].file}}, "tile" + std::to_string(i)));
    if (!ill.gains.empty() && ill.gains.size() != rows.size())
        throw Error("internal: " + std::to_string(ill.gains.size()) + " gains for " + std::to_string(rows.size()) +
                    " tiles");
    if (ill.flatfield.empty() && !ill.darkfield.empty())
        throw IoError(ill.darkfield, "a dark-field needs a flat-field (--flatfield) too");
    if (ill.flatfield.empty() && ill.gains.empty()) return tiles;
    // The profiles once, read by every tile's correction (the tile cache
    // keeps their tiles: they have many consumers).
    auto profile = [&](const std::string& path, const std::string& id, const std::string& what) {
        const bool mem = path.rfind("/vsimem/", 0) == 0;
        NodeId n = g.add(mem ? "gdal_load" : "load", {}, {{"path", path}}, id);
        const ImageInfo& p = g.info(n);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const ImageInfo& t = g.info(tiles[i]);
            if (p.width != t.width || p.height != t.height || p.bands != 1)
                throw IoError(path, "is " + std::to_string(p.width) + "x" + std::to_string(p.height) + " with " +
                                        std::to_string(p.bands) + " band(s), but a " + what + " must be one band of the " +
                                        "tiles' size, and '" + rows[i].file + "' is " + std::to_string(t.width) + "x" +
                                        std::to_string(t.height) + "; give the profile made for these tiles");
        }
        return n;
    };
    std::vector<NodeId> inputs{0};
    if (!ill.flatfield.empty()) inputs.push_back(profile(ill.flatfield, "flatfield", "flat-field"));
    if (!ill.darkfield.empty()) inputs.push_back(profile(ill.darkfield, "darkfield", "dark-field"));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        inputs[0] = tiles[i];
        Params p;
        if (!ill.gains.empty()) p.set("gain", ill.gains[i]);
        tiles[i] = g.add("flatfield", inputs, p, "flat" + std::to_string(i));
    }
    return tiles;
}

NodeId add_canvas(Graph& g, const StitchOptions& o, const ImageInfo& like) {
    return g.add("black", {},
                 {{"width", std::int64_t(o.canvas_w)},
                  {"height", std::int64_t(o.canvas_h)},
                  {"bands", std::int64_t(like.bands)},
                  {"format", std::string(format_name(like.format))},
                  {"value", o.background}},
                 "canvas");
}

int stitch_tile_size(const StitchOptions& o) {
    namespace fs = std::filesystem;
    const bool dz = fs::path(o.output).extension() == ".dzi";
    return o.tile_size > 0 ? o.tile_size : !dz ? 256 : o.layout == "google" ? 256 : 254;
}

NodeId add_stitch_save(Graph& g, NodeId image, const StitchOptions& o) {
    namespace fs = std::filesystem;
    const bool dz = fs::path(o.output).extension() == ".dzi";
    if (dz && (o.compression != "none" || o.bigtiff != "auto"))
        throw IoError(o.output, "compression and bigtiff apply to TIFF outputs; a .dzi takes suffix, quality, overlap "
                                "and layout");
    if (!dz && (o.overlap >= 0 || o.suffix != "jpeg" || o.layout != "dz"))
        throw IoError(o.output, "overlap, suffix and layout apply to Deep Zoom outputs; name the output NAME.dzi");
    const int tile = stitch_tile_size(o);
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
    return g.add("save", {image}, save, "save");
}

Graph stitch_graph(const StitchOptions& o, const OpRegistry& registry) {
    std::vector<Placement> rows = read_positions_csv(o.positions);
    const int tile = stitch_tile_size(o);
    Graph g(registry);
    g.execution.tile_w = g.execution.tile_h = tile;
    // Loads first (the canvas takes the first tile's bands and format), then
    // the canvas, one insert for every tile, and the save.
    std::vector<NodeId> tiles = add_tile_loads(g, rows, o.illumination);
    std::vector<IntPair> at;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        at.push_back(rows[i].at);
        const ImageInfo& t = g.info(tiles[i]);
        if (Rect{int(rows[i].at[0]), int(rows[i].at[1]), t.width, t.height}.intersect({0, 0, o.canvas_w, o.canvas_h}).empty())
            throw Error(o.positions + " line " + std::to_string(rows[i].line) + ": '" + rows[i].file + "' (" +
                        std::to_string(t.width) + "x" + std::to_string(t.height) + ") at " +
                        std::to_string(rows[i].at[0]) + "," + std::to_string(rows[i].at[1]) +
                        " lies wholly outside the " + std::to_string(o.canvas_w) + "x" + std::to_string(o.canvas_h) +
                        " canvas; check its position or --canvas");
    }
    std::vector<NodeId> inputs{add_canvas(g, o, g.info(tiles[0]))};
    inputs.insert(inputs.end(), tiles.begin(), tiles.end());
    NodeId mosaic = g.add("insert", inputs, {{"at", at}}, "mosaic");
    add_stitch_save(g, mosaic, o);
    return g;
}

}  // namespace tessera
