// The registration picture of tools/include/tessera/report.hpp, as SVG 1.1
// (one file, no scripts, no external references: it opens in any browser
// and in Inkscape). Coordinates are canvas pixels in the viewBox, so a
// 95000-pixel mosaic is drawn as small as a 3x4 one; line widths and
// fonts follow the tile size.
#include "tessera/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tessera/core/error.hpp"
#include "tessera/io/output_target.hpp"
#include "tessera/tessera.hpp"
#include "markup.hpp"

namespace tessera {

namespace fs = std::filesystem;

namespace {

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s == "-0" ? "0" : s;
}

// RdYlGn: red at 0.5 and below (a score the default threshold refuses),
// yellow at 0.75, green at 1.
std::string score_colour(double score) {
    const double t = std::clamp((score - 0.5) / 0.5, 0.0, 1.0);
    const double red[3] = {215, 48, 39}, yellow[3] = {254, 224, 139}, green[3] = {26, 152, 80};
    const double* a = t < 0.5 ? red : yellow;
    const double* b = t < 0.5 ? yellow : green;
    const double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(std::lround(a[0] + (b[0] - a[0]) * u)),
                  int(std::lround(a[1] + (b[1] - a[1]) * u)), int(std::lround(a[2] + (b[2] - a[2]) * u)));
    return buf;
}

// The end of the file's name: where acquisition software puts the index.
std::string short_name(const std::string& file) {
    std::string s = fs::path(file).stem().string();
    if (s.size() > 14) s = "\xE2\x80\xA6" + s.substr(s.size() - 13);
    return s;
}

// How tile i was placed (a report without placements: by registration).
TilePlacement placement_of(const RegisterReport& r, std::size_t i) {
    return i < r.placement.size() ? r.placement[i] : TilePlacement::registered;
}

struct Box {
    double x, y, w, h;
};

// The picture's geometry: the tiles at their solved places as they are
// (fractional ones too), their bounding box, and the sizes that follow the
// smallest tile side (fonts, padding, line widths).
struct Layout {
    std::vector<Box> at;
    Box box{0, 0, 0, 0};
    double bottom = 0;  // of the box
    double font = 0, pad = 0, legend_font = 0;
    double vx = 0, vy = 0, vw = 0, vh = 0;  // the viewBox
    double display_w = 1600, display_h = 0;
    double lw = 0;  // a pair line's width
};

Layout layout(const std::vector<Placement>& tiles, const RegisterReport& r) {
    Graph g(standard_registry());
    std::vector<NodeId> loads = add_tile_loads(g, tiles);
    Layout L;
    Box& box = L.box;
    double right = 0, &bottom = L.bottom;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        L.at.push_back({double(r.positions[i][0]), double(r.positions[i][1]), double(g.info(loads[i]).width),
                        double(g.info(loads[i]).height)});
        const Box& t = L.at.back();
        box.x = i == 0 ? t.x : std::min(box.x, t.x);
        box.y = i == 0 ? t.y : std::min(box.y, t.y);
        right = i == 0 ? t.x + t.w : std::max(right, t.x + t.w);
        bottom = i == 0 ? t.y + t.h : std::max(bottom, t.y + t.h);
    }
    box.w = right - box.x;
    box.h = bottom - box.y;
    double small = L.at[0].w;
    for (const Box& t : L.at) small = std::min({small, t.w, t.h});
    L.font = std::max(4.0, small / 14.0);  // 14 characters fit a tile
    L.pad = small / 4.0;
    L.legend_font = std::max(L.font, std::max(box.w, box.h) / 60.0);
    const double legend_h = L.legend_font * 15;
    L.vx = box.x - L.pad, L.vy = box.y - L.pad, L.vw = box.w + 2 * L.pad, L.vh = box.h + 2 * L.pad + legend_h;
    L.display_h = std::max(200.0, L.display_w * L.vh / L.vw);
    // pair lines (outlines half as wide): thin beside a tile, but at least
    // 1.5 px of the picture at its nominal size, so that 2000 tiles still
    // show their pairs
    L.lw = std::max({1.0, small / 60.0, 1.5 * L.vw / L.display_w});
    return L;
}

// What the legend counts: tiles by placement, pairs by what the solve did.
struct Counts {
    std::size_t registered = 0, model = 0, group = 0, used = 0, dropped = 0, untrusted = 0;
};

Counts count_kinds(const std::vector<Placement>& tiles, const RegisterReport& r) {
    Counts n;
    for (std::size_t i = 0; i < tiles.size(); ++i)
        ++(placement_of(r, i) == TilePlacement::registered    ? n.registered
           : placement_of(r, i) == TilePlacement::stage_model ? n.model
                                                              : n.group);
    for (const PairResult& p : r.pairs) ++(p.used ? n.used : p.trusted ? n.dropped : n.untrusted);
    return n;
}

// The file's head: the viewBox, the score gradient, the classes' styles
// (the legend's key styles are added at the end) and a white background.
void draw_head(std::string& s, const Layout& L, std::size_t tiles) {
    const double lw = L.lw;
    s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"" + num(L.vx) + " " + num(L.vy) + " " +
         num(L.vw) + " " + num(L.vh) + "\" width=\"" + num(L.display_w) + "\" height=\"" + num(L.display_h) + "\">\n";
    s += "<title>Registration of " + std::to_string(tiles) + " tiles</title>\n";
    s += "<defs><linearGradient id=\"score\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">"
         "<stop offset=\"0\" stop-color=\"" +
         score_colour(0.5) + "\"/><stop offset=\"0.5\" stop-color=\"" + score_colour(0.75) +
         "\"/><stop offset=\"1\" stop-color=\"" + score_colour(1) + "\"/></linearGradient></defs>\n";
    // clang-format off (text laid out as it reads)
    s += "<style>\n"
         ".tile{fill:none;stroke:#444;stroke-width:" +
         num(lw / 2) +
         "}\n"
         ".tile.stage_model{fill:#f28e2b;fill-opacity:0.2;stroke:#d66a00;stroke-width:" +
         num(lw) +
         "}\n"
         ".tile.group{fill:#d73027;fill-opacity:0.25;stroke:#b00000;stroke-width:" +
         num(lw) +
         "}\n"
         ".pair{stroke-width:" +
         num(lw) +
         ";stroke-linecap:round}\n"
         ".pair.dropped{stroke-dasharray:" +
         num(3 * lw) + " " + num(2 * lw) +
         "}\n"
         ".pair.untrusted{stroke:#8c8c8c;stroke-width:" +
         num(lw * 0.7) + ";stroke-dasharray:" + num(0.1 * lw) + " " + num(1.5 * lw) +
         "}\n"
         "text{font-family:sans-serif;fill:#222}\n"
         "</style>\n";
    // clang-format on
    s += "<rect x=\"" + num(L.vx) + "\" y=\"" + num(L.vy) + "\" width=\"" + num(L.vw) + "\" height=\"" + num(L.vh) +
         "\" fill=\"#ffffff\"/>\n";
}

// The tiles (classed by placement, titled with index, file and placement),
// the pairs between their centres (coloured by score where found, titled
// with what happened to them), and each tile's short name.
void draw_tiles_and_pairs(std::string& s, const Layout& L, const std::vector<Placement>& tiles,
                          const RegisterReport& r) {
    const std::vector<Box>& at = L.at;
    static const char* kPlacement[] = {"registered", "group", "stage_model"};  // TilePlacement's order
    s += "<g id=\"tiles\">\n";
    for (std::size_t i = 0; i < tiles.size(); ++i)
        s += "<rect class=\"tile " + std::string(kPlacement[int(placement_of(r, i))]) + "\" x=\"" + num(at[i].x) +
             "\" y=\"" + num(at[i].y) + "\" width=\"" + num(at[i].w) + "\" height=\"" + num(at[i].h) + "\"><title>" +
             std::to_string(i) + ": " + xml_escape(tiles[i].file) + " (" + kPlacement[int(placement_of(r, i))] +
             ")</title></rect>\n";
    s += "</g>\n<g id=\"pairs\">\n";
    auto centre = [&](std::size_t t) { return std::array<double, 2>{at[t].x + at[t].w / 2, at[t].y + at[t].h / 2}; };
    for (const PairResult& p : r.pairs) {
        const auto a = centre(p.a), b = centre(p.b);
        const char* kind = p.used ? "used" : p.trusted ? "dropped" : "untrusted";
        char score[64];
        std::snprintf(score, sizeof score, "score %.3f, residual %.2f px", p.score, p.residual);
        s += "<line class=\"pair " + std::string(kind) + "\"" +
             (p.found ? " stroke=\"" + score_colour(p.score) + "\"" : std::string()) + " x1=\"" + num(a[0]) +
             "\" y1=\"" + num(a[1]) + "\" x2=\"" + num(b[0]) + "\" y2=\"" + num(b[1]) + "\"><title>" +
             xml_escape(short_name(tiles[p.a].file) + " - " + short_name(tiles[p.b].file) + ": " + kind + ", " + score +
                        (p.why.empty() ? "" : "; " + p.why)) +
             "</title></line>\n";
    }
    s += "</g>\n<g id=\"labels\" font-size=\"" + num(L.font) + "\">\n";
    for (std::size_t i = 0; i < tiles.size(); ++i)
        s += "<text x=\"" + num(at[i].x + L.font / 2) + "\" y=\"" + num(at[i].y + L.font * 1.3) + "\">" +
             xml_escape(short_name(tiles[i].file)) + "</text>\n";
    s += "</g>\n";
}

// The legend, under the tiles: the score scale, a key line per kind of
// pair and a key swatch per placement, each with its count; the swatches'
// styles go into the head's <style>.
void draw_legend(std::string& s, const Layout& L, const Counts& n) {
    const double lx = L.box.x, ly = L.bottom + L.pad + L.legend_font * 1.5, f = L.legend_font;
    s += "<g id=\"legend\" font-size=\"" + num(f) + "\">\n";
    s += "<text x=\"" + num(lx) + "\" y=\"" + num(ly) + "\">pair score (normalised cross-correlation)</text>\n";
    s += "<rect x=\"" + num(lx) + "\" y=\"" + num(ly + f * 0.5) + "\" width=\"" + num(f * 12) + "\" height=\"" +
         num(f) + "\" fill=\"url(#score)\"/>\n";
    s += "<text x=\"" + num(lx) + "\" y=\"" + num(ly + f * 2.6) + "\">0.5</text><text x=\"" + num(lx + f * 5.3) +
         "\" y=\"" + num(ly + f * 2.6) + "\">0.75</text><text x=\"" + num(lx + f * 11) + "\" y=\"" + num(ly + f * 2.6) +
         "\">1</text>\n";
    const double kx = lx, ky = ly + f * 4.5;
    auto key_line = [&](double y, const char* kind, const std::string& colour, const std::string& label) {
        // the pairs' dashes at the legend's scale
        const std::string dash = std::string(kind) == "dropped"     ? num(f * 0.6) + " " + num(f * 0.4)
                                 : std::string(kind) == "untrusted" ? num(f * 0.02) + " " + num(f * 0.3)
                                                                    : "none";
        s += "<line class=\"pair " + std::string(kind) + "\" style=\"stroke-width:" + num(f / 4) +
             ";stroke-dasharray:" + dash + "\"" + (colour.empty() ? "" : " stroke=\"" + colour + "\"") + " x1=\"" +
             num(kx) + "\" y1=\"" + num(y) + "\" x2=\"" + num(kx + f * 3) + "\" y2=\"" + num(y) + "\"/><text x=\"" +
             num(kx + f * 3.5) + "\" y=\"" + num(y + f * 0.35) + "\">" + label + "</text>\n";
    };
    key_line(ky, "used", score_colour(0.9), "pair used (" + std::to_string(n.used) + ")");
    key_line(ky + f * 1.5, "dropped", score_colour(0.9),
             "outlier, dropped by the solve (" + std::to_string(n.dropped) + ")");
    key_line(ky + f * 3, "untrusted", "", "no trustworthy match (" + std::to_string(n.untrusted) + ")");
    const double tx = lx, ty = ky + f * 4.5;
    auto key_tile = [&](double y, const char* kind, const std::string& label) {
        s += "<rect class=\"key " + std::string(kind) + "\" x=\"" + num(tx) + "\" y=\"" + num(y - f * 0.6) +
             "\" width=\"" + num(f * 2) + "\" height=\"" + num(f) + "\"/><text x=\"" + num(tx + f * 2.5) + "\" y=\"" +
             num(y + f * 0.35) + "\">" + label + "</text>\n";
    };
    key_tile(ty, "registered", "tile placed by registration (" + std::to_string(n.registered) + ")");
    key_tile(ty + f * 1.5, "stage_model",
             "no trusted pair: placed by the stage model (" + std::to_string(n.model) + ")");
    key_tile(ty + f * 3, "group",
             "in a smaller group: placed as a whole by the stage model (" + std::to_string(n.group) + ")");
    s += "</g>\n";
    // the key swatches take the tiles' looks
    const std::string key_style = ".key{fill:none;stroke:#444;stroke-width:" + num(f / 10) +
                                  "}\n.key.stage_model{fill:#f28e2b;fill-opacity:0.2;stroke:#d66a00}\n"
                                  ".key.group{fill:#d73027;fill-opacity:0.25;stroke:#b00000}\n</style>";
    s.replace(s.find("</style>"), 8, key_style);
}

}  // namespace

void write_registration_svg(const std::string& path, const std::vector<Placement>& tiles, const RegisterReport& r) {
    if (r.positions.size() != tiles.size())
        throw Error("write_registration_svg: the report has " + std::to_string(r.positions.size()) + " positions for " +
                    std::to_string(tiles.size()) + " tiles; pass the tiles it was made from");
    if (tiles.empty()) throw Error("write_registration_svg: no tiles to draw");
    const Layout L = layout(tiles, r);
    std::string s;
    draw_head(s, L, tiles.size());
    draw_tiles_and_pairs(s, L, tiles, r);
    draw_legend(s, L, count_kinds(tiles, r));
    s += "</svg>\n";
    write_output_file(path, s, "the registration report");
}

}  // namespace tessera
