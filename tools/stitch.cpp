#include "tessera/stitch.hpp"

#include <cmath>
#include <filesystem>

#include "tessera/core/error.hpp"
#include "tessera/io/formats.hpp"

namespace tessera {

IntPair placed_at(const std::array<double, 2>& at) {
    // floor(x + 0.5), not lround: lround rounds halves away from zero, which
    // would make shifting every position by whole pixels (a fitted canvas)
    // move some tiles by one pixel more than others
    return {std::int64_t(std::floor(at[0] + 0.5)), std::int64_t(std::floor(at[1] + 0.5))};
}

CanvasFit fit_canvas(const std::vector<Placement>& rows, const std::vector<std::array<int, 2>>& sizes, bool subpixel) {
    if (rows.empty()) throw Error("no tiles to fit a canvas to");
    Rect box;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (subpixel) {
            const double x0 = std::floor(rows[i].at[0]), y0 = std::floor(rows[i].at[1]);
            box = box.unite(
                Rect{int(x0), int(y0), sizes[i][0] + (rows[i].at[0] != x0), sizes[i][1] + (rows[i].at[1] != y0)});
            continue;
        }
        const IntPair p = placed_at(rows[i].at);
        box = box.unite(Rect{int(p[0]), int(p[1]), sizes[i][0], sizes[i][1]});
    }
    return {box.w, box.h, {-double(box.x), -double(box.y)}};
}

std::vector<std::array<int, 2>> tile_sizes(const std::vector<Placement>& rows, const OpRegistry& registry) {
    Graph g(registry);
    std::vector<std::array<int, 2>> sizes;
    for (NodeId n : add_tile_loads(g, rows)) sizes.push_back({g.info(n).width, g.info(n).height});
    return sizes;
}

CanvasFit fit_canvas(const std::vector<Placement>& rows, const OpRegistry& registry) {
    return fit_canvas(rows, tile_sizes(rows, registry));
}

void shift_positions(std::vector<Placement>& rows, const std::array<double, 2>& shift) {
    for (Placement& r : rows) r.at = {r.at[0] + shift[0], r.at[1] + shift[1]};
}

std::vector<NodeId> add_tile_loads(Graph& g, const std::vector<Placement>& rows, const Illumination& ill) {
    std::vector<NodeId> tiles;
    for (std::size_t i = 0; i < rows.size(); ++i)
        tiles.push_back(g.add("load", {},
                              rows[i].page > 0 ? Params{{"path", rows[i].file}, {"page", std::int64_t(rows[i].page)}}
                                               : Params{{"path", rows[i].file}},
                              "tile" + std::to_string(i)));
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
                                        std::to_string(p.bands) + " band(s), but a " + what +
                                        " must be one band of the " + "tiles' size, and '" + rows[i].file + "' is " +
                                        std::to_string(t.width) + "x" + std::to_string(t.height) +
                                        "; give the profile made for these tiles");
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
    if (o.tile_size > 0) return o.tile_size;
    const OutputFormat& f = output_format_for(o.output, o.format);
    if (f.takes("layout") && o.layout == "google") return 256;  // vips dzsave's
    if (f.takes("layout") && (o.layout == "iiif" || o.layout == "iiif3")) return 512;
    return f.default_tile > 0 ? f.default_tile : 256;
}

std::string stitch_tile_key(const StitchOptions& o) {
    try {
        if (output_format_for(o.output, o.format).takes("tile_size")) return "tile_size";
    } catch (const Error&) {}
    return "tile_width";
}

namespace {

// The formats that read `key`, and the name an output of the first would have.
std::pair<std::string, std::string> readers_of(const std::string& key) {
    std::vector<std::string> names;
    std::string ext;
    for (const OutputFormat& f : output_formats())
        if (f.takes(key)) {
            names.push_back(f.name);
            if (ext.empty() && !f.extensions.empty()) ext = f.extensions[0];
        }
    return {or_list(names), ext};
}

}  // namespace

// The format comes from the table (the -o extension, or --format); the
// command's output options become the save keys the format reads, and those
// it does not read are errors when given, rather than ignored.
NodeId add_stitch_save(Graph& g, NodeId image, const StitchOptions& o) {
    namespace fs = std::filesystem;
    const OutputFormat& f = output_format_for(o.output, o.format);
    // (--pyramid asks nothing of a tile pyramid: Deep Zoom is one)
    const bool compressed = !o.compression.empty() && o.compression != "none";
    if (!f.takes("compression") &&
        (compressed || o.level > 0 || o.bigtiff != "auto" || (o.pyramid && !f.takes("tile_size")))) {
        const auto [names, ext] = readers_of("compression");
        throw IoError(o.output, "compression, level, bigtiff and pyramid apply to TIFF outputs (" + names +
                                    "), not to " + f.name + "; name the output NAME" + ext + " for them");
    }
    if (!f.takes("suffix") && (o.overlap >= 0 || !o.suffix.empty() || o.layout != "dz" || !o.container.empty() ||
                               o.skip_blanks != -2 || !o.id.empty())) {
        const auto [names, ext] = readers_of("suffix");
        throw IoError(o.output, "overlap, suffix, layout, container, skip-blanks and id apply to Deep Zoom outputs (" +
                                    names + "), not to " + f.name + "; name the output NAME" + ext);
    }
    const int tile = stitch_tile_size(o);
    Params save{{"path", fs::absolute(o.output).lexically_normal().string()}, {"format", f.name}};
    if (f.takes("quality")) save.set("quality", std::int64_t(o.quality));
    if (f.takes("tile_size")) {
        // a Deep Zoom (or google) pyramid, options as vips dzsave's
        save.set("tile_size", std::int64_t(tile));
        if (o.overlap >= 0) save.set("overlap", std::int64_t(o.overlap));
        if (!o.suffix.empty()) save.set("suffix", o.suffix);
        save.set("layout", o.layout);
        if (!o.container.empty()) save.set("container", o.container);
        if (o.skip_blanks != -2) save.set("skip_blanks", std::int64_t(o.skip_blanks));
        if (!o.id.empty()) save.set("id", o.id);
    }
    if (f.takes("tile_width")) {
        // the TIFF family, tiled (the streaming writer); the options left at
        // the command's defaults leave the format's (a COG's deflate and
        // overviews)
        save.set("tile", true);
        save.set("tile_width", std::int64_t(tile));
        save.set("tile_height", std::int64_t(tile));
        if (!o.compression.empty()) save.set("compression", o.compression);
        if (o.level > 0) save.set("level", std::int64_t(o.level));
        if (o.pyramid) save.set("pyramid", true);
        if (o.bigtiff != "auto") save.set("bigtiff", o.bigtiff);
    }
    for (auto [key, value] : {std::pair{"pixel_size", &o.pixel_size}, std::pair{"channel_names", &o.channel_names}}) {
        if (value->empty()) continue;
        if (!f.takes(key)) {
            const auto [names, ext] = readers_of(key);
            throw IoError(o.output, std::string("--") + (key[0] == 'p' ? "pixel-size" : "channel-names") +
                                        " applies to " + names + " outputs, not to " + f.name +
                                        "; name the output NAME" + ext);
        }
        if (std::string_view(key) == "channel_names")
            save.set(key, channel_names_list(*value));
        else
            save.set(key, *value);
    }
    if (f.takes("description")) {
        // and what the stitch knows: how many tiles, from where
        const std::size_t tiles = g.node(image).inputs.size();
        save.set("description", "tessera: " + std::to_string(tiles > 1 ? tiles - 1 : tiles) + " tiles from " +
                                    fs::path(o.positions).filename().string());
    }
    return g.add("save", {image}, save, "save");
}

Graph stitch_graph(const StitchOptions& o, const OpRegistry& registry) {
    return stitch_graph(o, read_positions(o.positions), registry);
}

Graph stitch_graph(const StitchOptions& options, std::vector<Placement> rows, const OpRegistry& registry,
                   CanvasFit* fitted) {
    StitchOptions o = options;
    const int tile = stitch_tile_size(o);
    Graph g(registry);
    g.execution.tile_w = g.execution.tile_h = tile;
    // Loads first (the canvas takes the first tile's bands and format, and
    // a fitted canvas their sizes), then the canvas, one insert for every
    // tile, and the save.
    std::vector<NodeId> tiles = add_tile_loads(g, rows, o.illumination);
    if (o.canvas_w == 0 && o.canvas_h == 0) {
        std::vector<std::array<int, 2>> sizes;
        for (NodeId n : tiles) sizes.push_back({g.info(n).width, g.info(n).height});
        const CanvasFit fit = fit_canvas(rows, sizes);
        shift_positions(rows, fit.shift);
        o.canvas_w = fit.width;
        o.canvas_h = fit.height;
        if (fitted) *fitted = fit;
    }
    std::vector<IntPair> at;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        at.push_back(placed_at(rows[i].at));
        const ImageInfo& t = g.info(tiles[i]);
        if (Rect{int(at[i][0]), int(at[i][1]), t.width, t.height}.intersect({0, 0, o.canvas_w, o.canvas_h}).empty())
            throw Error(o.positions + (rows[i].line > 0 ? " line " + std::to_string(rows[i].line) : std::string()) +
                        ": '" + rows[i].file + "' (" + std::to_string(t.width) + "x" + std::to_string(t.height) +
                        ") at " + std::to_string(at[i][0]) + "," + std::to_string(at[i][1]) +
                        " lies wholly outside the " + std::to_string(o.canvas_w) + "x" + std::to_string(o.canvas_h) +
                        " canvas; check its position or --canvas (or leave --canvas out to fit the tiles)");
    }
    std::vector<NodeId> inputs{add_canvas(g, o, g.info(tiles[0]))};
    inputs.insert(inputs.end(), tiles.begin(), tiles.end());
    NodeId mosaic = g.add("insert", inputs, {{"at", at}}, "mosaic");
    add_stitch_save(g, mosaic, o);
    return g;
}

}  // namespace tessera
