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

}  // namespace

void write_registration_svg(const std::string& path, const std::vector<Placement>& tiles, const RegisterReport& r) {
    if (r.positions.size() != tiles.size())
        throw Error("write_registration_svg: the report has " + std::to_string(r.positions.size()) +
                    " positions for " + std::to_string(tiles.size()) + " tiles; pass the tiles it was made from");
    if (tiles.empty()) throw Error("write_registration_svg: no tiles to draw");
    Graph g(standard_registry());
    std::vector<NodeId> loads = add_tile_loads(g, tiles);
    // the solved places as they are (fractional ones too)
    struct Box {
        double x, y, w, h;
    };
    std::vector<Box> at;
    Box box{0, 0, 0, 0};
    double right = 0, bottom = 0;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        at.push_back({double(r.positions[i][0]), double(r.positions[i][1]), double(g.info(loads[i]).width),
                      double(g.info(loads[i]).height)});
        const Box& t = at.back();
        box.x = i == 0 ? t.x : std::min(box.x, t.x);
        box.y = i == 0 ? t.y : std::min(box.y, t.y);
        right = i == 0 ? t.x + t.w : std::max(right, t.x + t.w);
        bottom = i == 0 ? t.y + t.h : std::max(bottom, t.y + t.h);
    }
    box.w = right - box.x;
    box.h = bottom - box.y;
    double small = at[0].w;
    for (const Box& t : at) small = std::min({small, t.w, t.h});
    const double font = std::max(4.0, small / 14.0);  // 14 characters fit a tile
    const double pad = small / 4.0;
    const double legend_font = std::max(font, std::max(box.w, box.h) / 60.0);
    const double legend_h = legend_font * 15;
    const double vx = box.x - pad, vy = box.y - pad, vw = box.w + 2 * pad, vh = box.h + 2 * pad + legend_h;
    const double display_w = 1600, display_h = std::max(200.0, display_w * vh / vw);
    // pair lines (outlines half as wide): thin beside a tile, but at least
    // 1.5 px of the picture at its nominal size, so that 2000 tiles still
    // show their pairs
    const double lw = std::max({1.0, small / 60.0, 1.5 * vw / display_w});

    auto placement = [&](std::size_t i) {
        return i < r.placement.size() ? r.placement[i] : TilePlacement::registered;
    };
    std::size_t n_registered = 0, n_model = 0, n_group = 0, n_used = 0, n_dropped = 0, n_untrusted = 0;
    for (std::size_t i = 0; i < tiles.size(); ++i)
        ++(placement(i) == TilePlacement::registered ? n_registered
           : placement(i) == TilePlacement::stage_model ? n_model
                                                          : n_group);
    for (const PairResult& p : r.pairs) ++(p.used ? n_used : p.trusted ? n_dropped : n_untrusted);

    std::string s;
    s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"" + num(vx) + " " + num(vy) + " " + num(vw) +
         " " + num(vh) + "\" width=\"" + num(display_w) + "\" height=\"" + num(display_h) + "\">\n";
    s += "<title>Registration of " + std::to_string(tiles.size()) + " tiles</title>\n";
    s += "<defs><linearGradient id=\"score\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">"
         "<stop offset=\"0\" stop-color=\"" + score_colour(0.5) + "\"/><stop offset=\"0.5\" stop-color=\"" +
         score_colour(0.75) + "\"/><stop offset=\"1\" stop-color=\"" + score_colour(1) +
         "\"/></linearGradient></defs>\n";
    s += "<style>\n"
         ".tile{fill:none;stroke:#444;stroke-width:" + num(lw / 2) + "}\n"
         ".tile.stage_model{fill:#f28e2b;fill-opacity:0.2;stroke:#d66a00;stroke-width:" + num(lw) + "}\n"
         ".tile.group{fill:#d73027;fill-opacity:0.25;stroke:#b00000;stroke-width:" + num(lw) + "}\n"
         ".pair{stroke-width:" + num(lw) + ";stroke-linecap:round}\n"
         ".pair.dropped{stroke-dasharray:" + num(3 * lw) + " " + num(2 * lw) + "}\n"
         ".pair.untrusted{stroke:#8c8c8c;stroke-width:" + num(lw * 0.7) + ";stroke-dasharray:" + num(0.1 * lw) + " " +
         num(1.5 * lw) + "}\n"
         "text{font-family:sans-serif;fill:#222}\n"
         "</style>\n";
    s += "<rect x=\"" + num(vx) + "\" y=\"" + num(vy) + "\" width=\"" + num(vw) + "\" height=\"" + num(vh) +
         "\" fill=\"#ffffff\"/>\n";

    static const char* kPlacement[] = {"registered", "group", "stage_model"};  // TilePlacement's order
    s += "<g id=\"tiles\">\n";
    for (std::size_t i = 0; i < tiles.size(); ++i)
        s += "<rect class=\"tile " + std::string(kPlacement[int(placement(i))]) + "\" x=\"" + num(at[i].x) + "\" y=\"" +
             num(at[i].y) + "\" width=\"" + num(at[i].w) + "\" height=\"" + num(at[i].h) + "\"><title>" +
             std::to_string(i) + ": " + xml_escape(tiles[i].file) + " (" + kPlacement[int(placement(i))] +
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
    s += "</g>\n<g id=\"labels\" font-size=\"" + num(font) + "\">\n";
    for (std::size_t i = 0; i < tiles.size(); ++i)
        s += "<text x=\"" + num(at[i].x + font / 2) + "\" y=\"" + num(at[i].y + font * 1.3) + "\">" +
             xml_escape(short_name(tiles[i].file)) + "</text>\n";
    s += "</g>\n";

    // The legend, under the tiles.
    const double lx = box.x, ly = bottom + pad + legend_font * 1.5, f = legend_font;
    s += "<g id=\"legend\" font-size=\"" + num(f) + "\">\n";
    s += "<text x=\"" + num(lx) + "\" y=\"" + num(ly) + "\">pair score (normalised cross-correlation)</text>\n";
    s += "<rect x=\"" + num(lx) + "\" y=\"" + num(ly + f * 0.5) + "\" width=\"" + num(f * 12) + "\" height=\"" +
         num(f) + "\" fill=\"url(#score)\"/>\n";
    s += "<text x=\"" + num(lx) + "\" y=\"" + num(ly + f * 2.6) + "\">0.5</text><text x=\"" + num(lx + f * 5.3) +
         "\" y=\"" + num(ly + f * 2.6) + "\">0.75</text><text x=\"" + num(lx + f * 11) + "\" y=\"" +
         num(ly + f * 2.6) + "\">1</text>\n";
    const double kx = lx, ky = ly + f * 4.5;
    auto key_line = [&](double y, const char* kind, const std::string& colour, const std::string& label) {
        // the pairs' dashes at the legend's scale
        const std::string dash = std::string(kind) == "dropped"     ? num(f * 0.6) + " " + num(f * 0.4)
                                 : std::string(kind) == "untrusted" ? num(f * 0.02) + " " + num(f * 0.3)
                                                                    : "none";
        s += "<line class=\"pair " + std::string(kind) + "\" style=\"stroke-width:" + num(f / 4) +
             ";stroke-dasharray:" + dash + "\"" +
             (colour.empty() ? "" : " stroke=\"" + colour + "\"") + " x1=\"" + num(kx) + "\" y1=\"" + num(y) +
             "\" x2=\"" + num(kx + f * 3) + "\" y2=\"" + num(y) + "\"/><text x=\"" + num(kx + f * 3.5) + "\" y=\"" +
             num(y + f * 0.35) + "\">" + label + "</text>\n";
    };
    key_line(ky, "used", score_colour(0.9), "pair used (" + std::to_string(n_used) + ")");
    key_line(ky + f * 1.5, "dropped", score_colour(0.9), "outlier, dropped by the solve (" + std::to_string(n_dropped) + ")");
    key_line(ky + f * 3, "untrusted", "", "no trustworthy match (" + std::to_string(n_untrusted) + ")");
    const double tx = lx, ty = ky + f * 4.5;
    auto key_tile = [&](double y, const char* kind, const std::string& label) {
        s += "<rect class=\"key " + std::string(kind) + "\" x=\"" + num(tx) + "\" y=\"" + num(y - f * 0.6) +
             "\" width=\"" + num(f * 2) + "\" height=\"" + num(f) + "\"/><text x=\"" + num(tx + f * 2.5) + "\" y=\"" +
             num(y + f * 0.35) + "\">" + label + "</text>\n";
    };
    key_tile(ty, "registered", "tile placed by registration (" + std::to_string(n_registered) + ")");
    key_tile(ty + f * 1.5, "stage_model", "no trusted pair: placed by the stage model (" + std::to_string(n_model) + ")");
    key_tile(ty + f * 3, "group", "in a smaller group: placed as a whole by the stage model (" + std::to_string(n_group) + ")");
    s += "</g>\n</svg>\n";
    // the key swatches take the tiles' looks
    const std::string key_style = ".key{fill:none;stroke:#444;stroke-width:" + num(f / 10) +
                                  "}\n.key.stage_model{fill:#f28e2b;fill-opacity:0.2;stroke:#d66a00}\n"
                                  ".key.group{fill:#d73027;fill-opacity:0.25;stroke:#b00000}\n</style>";
    s.replace(s.find("</style>"), 8, key_style);

    write_output_file(path, s, "the registration report");
}

}  // namespace tessera
