// The files microscopy users already have: Fiji's TileConfiguration.txt,
// fractional CSVs, grids named by a file pattern, the canvas fitted to the
// tiles, and the registration picture (--report).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support.hpp"
#include "tessera/positions.hpp"
#include "tessera/report.hpp"
#include "tessera/stitch.hpp"

namespace fs = std::filesystem;
using namespace tessera;
using vips::VImage;

namespace {

int tessera_cmd(const std::string& args, std::string* out = nullptr) {
    return tt::run_command(tt::tessera_binary() + " " + args, out);
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

// The error message of `f`, "" if it did not throw.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// A small grey tile whose pixels say which one it is.
void write_tile(const fs::path& p, int w, int h, int seed) {
    fs::create_directories(p.parent_path());
    tt::pattern(w, h, 1, VIPS_FORMAT_UCHAR, seed).pngsave(p.c_str());
}

std::string shell_quoted(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST_CASE("tileconfiguration: the real confocal file reads its 12 tiles at the positions it gives") {
    const fs::path dir = tt::shared_dir() / "data/real/lscm_3x4_10pct";
    const std::string path = (dir / "TileConfiguration.txt").string();
    CHECK(is_tile_configuration(path));
    std::vector<Placement> t = read_positions(path);
    REQUIRE(t.size() == 12);
    // the file's own lines, read independently: "name; ; (x, y)"
    std::ifstream in(path);
    std::size_t k = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#' || line.rfind("dim", 0) == 0) continue;
        REQUIRE(k < t.size());
        const std::string name = line.substr(0, line.find(';'));
        double x = 0, y = 0;
        REQUIRE(std::sscanf(line.c_str() + line.find('('), "(%lf, %lf)", &x, &y) == 2);
        CHECK(t[k].file == (dir / name).lexically_normal().string());
        CHECK(t[k].at == std::array<double, 2>{x, y});
        CHECK(fs::exists(t[k].file));
        ++k;
    }
    CHECK(k == 12);
    // snake order: the second row runs right to left, A008 first at (0, 921)
    CHECK(fs::path(t[4].file).filename() == "x100_epr-jerem_10pct_001_A008_I.tif");
    CHECK(t[4].at == std::array<double, 2>{0, 921});
    CHECK(t[11].at == std::array<double, 2>{2763, 1842});
}

TEST_CASE("tileconfiguration: written and read back with fractional positions and awkward names") {
    tt::TempDir tmp;
    std::vector<Placement> rows;
    const std::vector<std::string> names{"a.tif", "tiles/b c [Grid@1 0].jpg", "tiles/(d); e.png"};
    const std::vector<std::array<double, 2>> at{{0, 0}, {920.75, -3.125}, {1e-4, 12345.5}};
    for (std::size_t i = 0; i < names.size(); ++i) {
        Placement p;
        p.file = (tmp / names[i]).string();
        p.at = at[i];
        rows.push_back(p);
    }
    rows[1].page = 2;
    const std::string txt = (tmp / "TileConfiguration.registered.txt").string();
    write_positions(txt, rows);
    const std::string text = tt::slurp(txt);
    CAPTURE(text);
    CHECK(text.rfind("# Define the number of dimensions we are working on\ndim = 2\n", 0) == 0);
    CHECK(text.find("\na.tif; ; (0.0, 0.0)\n") != std::string::npos);  // as Fiji writes whole values
    CHECK(text.find("\ntiles/b c [Grid@1 0].jpg; 2; (920.75, -3.125)\n") != std::string::npos);
    std::vector<Placement> back = read_positions(txt);
    REQUIRE(back.size() == rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(i);
        CHECK(back[i].file == fs::path(rows[i].file).lexically_normal().string());
        CHECK(std::abs(back[i].at[0] - at[i][0]) <= 5e-4);  // 3 decimals
        CHECK(std::abs(back[i].at[1] - at[i][1]) <= 5e-4);
        CHECK(back[i].page == rows[i].page);
        CHECK(back[i].line == int(i) + 5);
    }
    // the CSV: integers exactly as before when whole, 3 decimals otherwise
    const std::string csv = (tmp / "p.csv").string();
    write_positions(csv, rows);
    CHECK(tt::slurp(csv) ==
          "file,x,y\na.tif,0,0\ntiles/b c [Grid@1 0].jpg,920.75,-3.125\ntiles/(d); e.png,0,12345.5\n");
    std::vector<Placement> from_csv = read_positions(csv);
    REQUIRE(from_csv.size() == 3);
    CHECK(from_csv[1].at == std::array<double, 2>{920.75, -3.125});
    CHECK(!fs::exists(csv + ".part"));
}

TEST_CASE("tileconfiguration: the variants other writers produce are read") {
    tt::TempDir tmp;
    // no dim line, Windows line ends and BOM, "dim=2" later, no spaces,
    // Java's exponent notation, a series number
    write_text(tmp / "tc",
               "\xEF\xBB\xBF# from a script\r\n\r\ndim=2\r\nx 1.tif;;(1.5E2,-2)\r\n  y.tif ; 3 ; ( 7 , 8.25 )  \r\n");
    CHECK(is_tile_configuration((tmp / "tc").string()));
    std::vector<Placement> t = read_positions((tmp / "tc").string());
    REQUIRE(t.size() == 2);
    CHECK(fs::path(t[0].file).filename() == "x 1.tif");
    CHECK(t[0].at == std::array<double, 2>{150, -2});
    CHECK(t[0].page == 0);
    CHECK(t[1].at == std::array<double, 2>{7, 8.25});
    CHECK(t[1].page == 3);
    CHECK(t[1].line == 5);
    write_text(tmp / "nodim.txt", "a.tif; ; (1.0, 2.0)\n");
    CHECK(read_positions((tmp / "nodim.txt").string()).at(0).at == std::array<double, 2>{1, 2});
    // a CSV is still a CSV
    write_text(tmp / "p.csv", "file,x,y\na.tif,1,2\n");
    CHECK(!is_tile_configuration((tmp / "p.csv").string()));
}

TEST_CASE("tileconfiguration: 3-D and malformed lines are refused naming the file and line") {
    tt::TempDir tmp;
    auto refused = [&](const std::string& text) {
        const fs::path p = tmp / "TileConfiguration.txt";
        write_text(p, text);
        return error_of([&] { read_positions(p.string()); });
    };
    const std::string at = (tmp / "TileConfiguration.txt").string();
    std::string e =
        refused("# Define the number of dimensions we are working on\ndim = 3\n\na.tif; ; (0.0, 0.0, 0.0)\n");
    CHECK(e.find(at + " line 2: dim = 3: only 2-D") != std::string::npos);
    e = refused("dim = 2\na.tif; ; (1.0, 2.0)\nb.tif; ; (1.0, 2.0, 3.0)\n");
    CHECK(e.find(at + " line 3: 'b.tif' has 3-D coordinates") != std::string::npos);
    e = refused("a.tif; ; (NaN, 2.0)\n");
    CHECK(e.find(at + " line 1: 'NaN' is not a coordinate") != std::string::npos);
    e = refused("a.tif; ; (1.0, inf)\n");
    CHECK(e.find(at + " line 1: 'inf' is not a coordinate") != std::string::npos);
    e = refused("a.tif; ; 1.0, 2.0\n");
    CHECK(e.find(at + " line 1: expected the position as '(x, y)'") != std::string::npos);
    e = refused("dim = 2\nhello\n");
    CHECK(e.find(at + " line 2: expected 'file; ; (x, y)'") != std::string::npos);
    e = refused("a.tif; two; (1, 2)\n");
    CHECK(e.find(at + " line 1: the series field 'two' is not a number") != std::string::npos);
    e = refused("# nothing\n");
    CHECK(e.find("lists no tiles") != std::string::npos);
}

TEST_CASE("positions csv: fractional coordinates in any notation - NaN and garbage refused") {
    tt::TempDir tmp;
    const std::string p = (tmp / "p.csv").string();
    write_text(p, "file,x,y\na.tif,1.25,-3\nb.tif,1e3,+0.5\n\nc.tif, 7.0 ,8\n");
    std::vector<Placement> t = read_positions(p);
    REQUIRE(t.size() == 3);
    CHECK(t[0].at == std::array<double, 2>{1.25, -3});
    CHECK(t[1].at == std::array<double, 2>{1000, 0.5});
    CHECK(t[2].at == std::array<double, 2>{7, 8});
    CHECK(t[2].line == 5);
    for (const std::string bad : {"nan", "inf", "12abc", "1.2.3", "0x10", ""}) {
        CAPTURE(bad);
        write_text(p, "file,x,y\na.tif,1,2\nb.tif,3," + bad + "\n");
        const std::string e = error_of([&] { read_positions(p); });
        CHECK(e.find(p + " line 3") != std::string::npos);
    }
    // whole pixels: insert places a fractional position at the nearest,
    // halves up, the same on both sides of 0
    CHECK(placed_at({2.5, -2.5}) == IntPair{3, -2});
    CHECK(placed_at({2.49, -2.51}) == IntPair{2, -3});
}

TEST_CASE("grid: row column snake and column-snake orders place the tiles of a pattern") {
    tt::TempDir tmp;
    for (int i = 1; i <= 6; ++i)
        write_tile(tmp / ("tile_" + std::string(i < 10 ? "00" : "0") + std::to_string(i) + ".png"), 40, 30, i);
    const std::string pattern = (tmp / "tile_{iii}.png").string();
    GridOptions o;
    o.cols = 3;
    o.rows = 2;
    o.overlap = 12.5;  // steps of 35 and 26.25 px
    // the (column, row) of tiles 1..6 in each order
    const std::map<std::string, std::vector<std::array<int, 2>>> cells{
        {"row", {{0, 0}, {1, 0}, {2, 0}, {0, 1}, {1, 1}, {2, 1}}},
        {"snake", {{0, 0}, {1, 0}, {2, 0}, {2, 1}, {1, 1}, {0, 1}}},
        {"column", {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}, {2, 1}}},
        {"column-snake", {{0, 0}, {0, 1}, {1, 1}, {1, 0}, {2, 0}, {2, 1}}}};
    for (const auto& [order, want] : cells) {
        CAPTURE(order);
        o.order = order;
        std::vector<Placement> t = grid_positions(pattern, o, standard_registry());
        REQUIRE(t.size() == 6);
        for (int k = 0; k < 6; ++k) {
            CAPTURE(k);
            CHECK(fs::path(t[std::size_t(k)].file).filename() == "tile_00" + std::to_string(k + 1) + ".png");
            CHECK(t[std::size_t(k)].at ==
                  std::array<double, 2>{want[std::size_t(k)][0] * 35.0, want[std::size_t(k)][1] * 26.25});
        }
    }
    CHECK(parse_grid("3x2") == std::array<int, 2>{3, 2});
    CHECK(error_of([] { parse_grid("3by2"); }).find("expected COLSxROWS") != std::string::npos);
    CHECK(error_of([] { parse_grid("0x2"); }).find("expected COLSxROWS") != std::string::npos);
}

TEST_CASE("grid: pattern letters - rows and columns from 0 or 1 - first index - bad patterns") {
    tt::TempDir tmp;
    GridOptions o;
    o.cols = 2;
    o.rows = 2;
    o.overlap = 50;
    for (int base : {0, 1}) {
        CAPTURE(base);
        const fs::path dir = tmp / std::to_string(base);
        for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 2; ++c)
                write_tile(dir / ("r00" + std::to_string(r + base) + "_c0" + std::to_string(c + base) + ".png"), 20, 10,
                           r * 2 + c);
        const std::string pattern = (dir / "r{rrr}_c{cc}.png").string();
        std::vector<Placement> t = grid_positions(pattern, o, standard_registry());  // the first index found
        REQUIRE(t.size() == 4);
        CHECK(fs::path(t[3].file).filename() ==
              "r00" + std::to_string(1 + base) + "_c0" + std::to_string(1 + base) + ".png");
        CHECK(t[3].at == std::array<double, 2>{10, 5});
        CHECK(fs::path(t[1].file).filename() ==
              "r00" + std::to_string(base) + "_c0" + std::to_string(1 + base) + ".png");
        o.first_index = base;  // given: the same
        CHECK(grid_positions(pattern, o, standard_registry())[3].file == t[3].file);
        o.first_index = -1;
    }
    CHECK(grid_file("t{i}_{iiii}[{c}]{rr}.tif", 7, 3, 12) == "t7_0007[12]03.tif");
    CHECK(grid_file("t_{iii}.tif", 12345, 0, 0) == "t_12345.tif");               // wider than its letters
    CHECK(grid_file("tile_x{xx}_y{yyy}.tif", 0, 3, 12) == "tile_x12_y003.tif");  // Fiji's letters
    CHECK(error_of([&] { grid_positions("t_{q}.png", o, standard_registry()); }).find("{q} is not a counter") !=
          std::string::npos);
    CHECK(error_of([&] { grid_positions("t_{ii.png", o, standard_registry()); }).find("is not closed") !=
          std::string::npos);
    CHECK(error_of([&] {
              grid_positions("t_{rr}.png", o, standard_registry());
          }).find("gives every tile the same name") != std::string::npos);
    o.overlap = 100;
    CHECK(error_of([&] { grid_positions("t_{i}.png", o, standard_registry()); }).find("in [0, 100)") !=
          std::string::npos);
}

TEST_CASE("grid: a missing file names the pattern the index and the path expected") {
    tt::TempDir tmp;
    for (int i : {1, 2, 3}) write_tile(tmp / ("tile_" + std::to_string(i) + ".png"), 20, 10, i);
    GridOptions o;
    o.cols = 2;
    o.rows = 2;
    o.overlap = 10;
    const std::string pattern = (tmp / "tile_{i}.png").string();
    const std::string e = error_of([&] { grid_positions(pattern, o, standard_registry()); });
    CAPTURE(e);
    CHECK(e.find((tmp / "tile_4.png").string()) != std::string::npos);
    CHECK(e.find("file pattern '" + pattern + "'") != std::string::npos);
    CHECK(e.find("index 4, row 2, column 2") != std::string::npos);
    // numbered from 0 by mistake: says both places it looked
    fs::remove(tmp / "tile_1.png");
    const std::string first = error_of([&] { grid_positions(pattern, o, standard_registry()); });
    CHECK(first.find((tmp / "tile_1.png").string()) != std::string::npos);
    CHECK(first.find((tmp / "tile_0.png").string()) != std::string::npos);
}

TEST_CASE("grid: the real electron-microscope set's bracketed names stitch from a pattern") {
    const fs::path dir = tt::shared_dir() / "data/real/sem_2x3";
    GridOptions o;
    o.cols = 2;
    o.rows = 3;
    o.overlap = 20;
    const std::string pattern = (dir / "stitch2d_ex[Grid@{c} {r}].jpg").string();
    std::vector<Placement> t = grid_positions(pattern, o, standard_registry());
    REQUIRE(t.size() == 6);
    for (std::size_t k = 0; k < 6; ++k) {
        const int c = int(k % 2), r = int(k / 2);
        CAPTURE(k);
        CHECK(fs::path(t[k].file).filename() ==
              "stitch2d_ex[Grid@" + std::to_string(c) + " " + std::to_string(r) + "].jpg");
        CHECK(t[k].at == std::array<double, 2>{c * 512 * 0.8, r * 442 * 0.8});
    }
    // and from the command line, no canvas: the tiles' bounding box
    tt::TempDir tmp;
    std::string log;
    REQUIRE(tessera_cmd("stitch " + shell_quoted(pattern) + " --grid 2x3 --overlap 20 -o " +
                            (tmp / "sem.tif").string() + " --progress none 2>&1",
                        &log) == 0);
    CAPTURE(log);
    VImage out = VImage::new_from_file((tmp / "sem.tif").c_str());
    CHECK(out.width() == 410 + 512);  // 409.6 placed at 410
    CHECK(out.height() == 707 + 442);
    // the last tile is on top at its place
    VImage last = VImage::new_from_file(t[5].file.c_str());
    CHECK(tt::max_abs_diff(tt::from_vips(out.extract_area(410, 707, 512, 442)), last) == 0);
    // --grid needs the overlap; a .dzi overlap is whole pixels
    CHECK(tessera_cmd("stitch " + shell_quoted(pattern) + " --grid 2x3 -o " + (tmp / "x.tif").string() + " 2>&1",
                      &log) != 0);
    CHECK(log.find("needs --overlap PCT") != std::string::npos);
    CHECK(tessera_cmd("stitch " + (tmp / "missing.csv").string() + " --overlap 2.5 -o " + (tmp / "x.dzi").string() +
                          " 2>&1",
                      &log) != 0);
    CHECK(log.find("a .dzi's overlap is whole pixels") != std::string::npos);
}

TEST_CASE("grid: make_acquisition's tiles in snake and column order give its nominal positions") {
    for (const char* order : {"snake", "column"}) {
        CAPTURE(order);
        tt::TempDir tmp;
        tt::make_acquisition(tmp.path,
                             std::string("cols=3 rows=3 tile=64x48 overlap=7 bits=8 format=png order=") + order);
        GridOptions o;
        o.cols = 3;
        o.rows = 3;
        o.overlap = 7;
        o.order = order;
        std::vector<Placement> grid = grid_positions((tmp / "tiles/tile_{iiii}.png").string(), o, standard_registry());
        std::vector<Placement> nominal = read_positions((tmp / "nominal.csv").string());
        REQUIRE(grid.size() == nominal.size());
        const IntPair margin = placed_at(nominal[0].at);
        for (std::size_t k = 0; k < grid.size(); ++k) {
            CAPTURE(k);
            CHECK(grid[k].file == nominal[k].file);
            const IntPair g = placed_at(grid[k].at);
            CHECK(IntPair{g[0] + margin[0], g[1] + margin[1]} == placed_at(nominal[k].at));
        }
    }
}

TEST_CASE("canvas: fitted to the tiles - negative positions - the shift") {
    std::vector<Placement> rows(3);
    rows[0].at = {-10.4, 5};
    rows[1].at = {20.6, -3.5};
    rows[2].at = {0, 0};
    // placed at (-10, 5), (21, -3), (0, 0)
    const CanvasFit fit = fit_canvas(rows, {{10, 10}, {5, 5}, {4, 4}});
    CHECK(fit.width == 36);
    CHECK(fit.height == 18);
    CHECK(fit.shift == std::array<double, 2>{10, 3});
    // the stitch of those tiles with no canvas is the stitch of the shifted
    // positions on that canvas
    tt::TempDir tmp;
    const std::vector<std::array<int, 2>> size{{10, 10}, {5, 5}, {4, 4}};
    for (std::size_t i = 0; i < 3; ++i) {
        rows[i].file = (tmp / ("t" + std::to_string(i) + ".png")).string();
        write_tile(rows[i].file, size[i][0], size[i][1], int(i) + 1);
    }
    StitchOptions o;
    o.output = (tmp / "fit.tif").string();
    CanvasFit got;
    Graph g = stitch_graph(o, rows, standard_registry(), &got);
    CHECK(got.width == 36);
    CHECK(got.shift == fit.shift);
    Buffer fitted = tt::render(g, g.find("mosaic"));
    std::vector<Placement> moved = rows;
    shift_positions(moved, fit.shift);
    o.canvas_w = 36;
    o.canvas_h = 18;
    Graph h = stitch_graph(o, moved, standard_registry());
    CHECK(tt::max_abs_diff(fitted, tt::render(h, h.find("mosaic"))) == 0);
    // tile 0 at (0, 8) after the shift, whole (the others do not cover it)
    CHECK(tt::max_abs_diff(tt::from_vips(tt::to_vips(fitted).extract_area(0, 8, 10, 10)),
                           VImage::new_from_file(rows[0].file.c_str())) == 0);
}

TEST_CASE("stitch: make_acquisition's TileConfiguration with no canvas equals nominal.csv on canvas.txt") {
    tt::TempDir tmp;
    tt::make_acquisition(tmp.path, "cols=3 rows=2 tile=96x64 overlap=10 bits=16 order=snake");
    int cw = 0, ch = 0;
    std::ifstream(tmp / "canvas.txt") >> cw >> ch;
    REQUIRE(cw > 0);
    std::string log;
    const fs::path fitted = tmp / "fitted.tif", full = tmp / "full.tif", out_txt = tmp / "out.txt";
    REQUIRE(tessera_cmd("stitch " + (tmp / "TileConfiguration.txt").string() + " -o " + fitted.string() +
                            " --progress none --positions-out " + out_txt.string() + " 2>&1",
                        &log) == 0);
    CAPTURE(log);
    REQUIRE(tessera_cmd("stitch -q " + (tmp / "nominal.csv").string() + " --canvas " + std::to_string(cw) + " " +
                        std::to_string(ch) + " -o " + full.string()) == 0);
    const std::vector<Placement> nominal = read_positions((tmp / "nominal.csv").string());
    const IntPair margin = placed_at(nominal[0].at);  // the first tile is at the top-left of the grid
    CHECK(log.find("positions shifted by " + std::to_string(-margin[0]) + "," + std::to_string(-margin[1])) !=
          std::string::npos);
    VImage a = VImage::new_from_file(fitted.c_str()), b = VImage::new_from_file(full.c_str());
    CHECK(a.format() == VIPS_FORMAT_USHORT);
    std::int64_t right = 0, bottom = 0;
    for (const Placement& p : nominal) {
        right = std::max(right, placed_at(p.at)[0] + 96);
        bottom = std::max(bottom, placed_at(p.at)[1] + 64);
    }
    CHECK(a.width() == right - margin[0]);
    CHECK(a.height() == bottom - margin[1]);
    CHECK(tt::max_abs_diff(tt::from_vips(a), b.extract_area(int(margin[0]), int(margin[1]), a.width(), a.height())) ==
          0);
    // --positions-out has the positions on the output canvas, Fiji's format
    const std::vector<Placement> written = read_positions(out_txt.string());
    REQUIRE(written.size() == nominal.size());
    for (std::size_t k = 0; k < written.size(); ++k) {
        CHECK(written[k].file == nominal[k].file);
        CHECK(written[k].at == std::array<double, 2>{nominal[k].at[0] - margin[0], nominal[k].at[1] - margin[1]});
    }
}

TEST_CASE("report: the registration SVG has one outline per tile and one line per pair") {
    tt::TempDir tmp;
    tt::make_acquisition(tmp.path, "cols=3 rows=2 tile=160x128 overlap=45 bits=8 format=png error=2 drift=0");
    const fs::path svg = tmp / "reg.svg", pairs = tmp / "pairs.csv";
    std::string log;
    REQUIRE(tessera_cmd("mosaic " + (tmp / "TileConfiguration.txt").string() + " -o " + (tmp / "m.tif").string() +
                            " --search 8 --deep-share 1 --progress none --report " + svg.string() + " --pairs-out " +
                            pairs.string() + " 2>&1",
                        &log) == 0);
    CAPTURE(log);
    CHECK(log.find("canvas: ") != std::string::npos);
    int npairs = -1, nused = 0;
    {
        std::ifstream in(pairs);
        for (std::string line; std::getline(in, line);) {
            ++npairs;
            std::vector<std::string> f;
            std::stringstream ss(line);
            for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
            nused += f.size() > 6 && f[6] == "1";
        }
    }
    CHECK(npairs >= 7);  // 3x2 tiles: 7 side by side and one above the other
    CHECK(nused >= 5);
    // parsed as XML by python3: the tiles' outlines and the pairs' lines
    const std::string py =
        "python3 -c \"import sys, xml.etree.ElementTree as E; n='{http://www.w3.org/2000/svg}'; "
        "r=E.parse(sys.argv[1]).getroot(); "
        "g={e.get('id'): e for e in r.iter(n+'g')}; "
        "print(len(g['tiles'].findall(n+'rect')), len(g['pairs'].findall(n+'line')), "
        "sum(1 for e in g['pairs'] if 'used' in e.get('class').split()), len(g['labels'].findall(n+'text')))\" ";
    std::string counts;
    REQUIRE(tt::run_command(py + svg.string(), &counts) == 0);
    CHECK(counts == "6 " + std::to_string(npairs) + " " + std::to_string(nused) + " 6\n");
    CHECK(!fs::exists(svg.string() + ".part"));

    // a report with every kind of pair and tile: each drawn its own way
    std::vector<Placement> tiles = read_positions((tmp / "TileConfiguration.txt").string());
    RegisterReport r;
    for (const Placement& t : tiles) r.positions.push_back(t.at);
    r.placement.assign(tiles.size(), TilePlacement::registered);
    r.placement[4] = TilePlacement::stage_model;
    r.placement[5] = TilePlacement::group;
    PairResult used{0, 1, {}, 0.93, true, true, true, 0.1, ""},
        dropped{1, 2, {}, 0.7, true, true, false, 3.2, "an outlier"},
        untrusted{3, 4, {}, 0.2, false, false, false, 0, "score too low & flat"};
    r.pairs = {used, dropped, untrusted};
    write_registration_svg(svg.string(), tiles, r);
    const std::string classes =
        "python3 -c \"import sys, xml.etree.ElementTree as E; n='{http://www.w3.org/2000/svg}'; "
        "r=E.parse(sys.argv[1]).getroot(); "
        "g={e.get('id'): e for e in r.iter(n+'g')}; "
        "print(' '.join(e.get('class') for e in g['tiles']), '|', ' '.join(e.get('class') for e in g['pairs']))\" ";
    REQUIRE(tt::run_command(classes + svg.string(), &counts) == 0);
    CHECK(
        counts ==
        "tile registered tile registered tile registered tile registered tile stage_model tile group | pair used pair "
        "dropped pair untrusted\n");
    const std::string text = tt::slurp(svg);
    CHECK(text.find("score too low &amp; flat") != std::string::npos);
    CHECK(text.find("(1)") != std::string::npos);  // the legend's counts
}

TEST_CASE("mist: a global positions file is read as MIST writes it - and stitches as the same CSV does") {
    tt::TempDir tmp;
    for (int k = 0; k < 4; ++k)
        write_tile(tmp / ("img_r00" + std::to_string(k / 2 + 1) + "_c00" + std::to_string(k % 2 + 1) + ".png"), 60, 40,
                   k);
    // MIST's own lines: corr in the writer's locale (a decimal comma), the
    // grid as (col, row), a trailing ';'
    write_text(tmp / "img-global-positions-1.txt",
               "file: img_r001_c001.png; corr: -1,0000000000; position: (0, 2); grid: (0, 0);\n"
               "file: img_r001_c002.png; corr: 0,9132; position: (51, 0); grid: (1, 0);\n"
               "file: img_r002_c001.png; corr: 0,8870; position: (1, 35); grid: (0, 1);\n"
               "\n"
               "file: img_r002_c002.png; corr: 0,9551; position: (53, 37); grid: (1, 1);\n");
    const auto rows = read_positions((tmp / "img-global-positions-1.txt").string());
    REQUIRE(rows.size() == 4);
    CHECK(rows[1].file == (tmp / "img_r001_c002.png").string());
    CHECK(rows[1].at == std::array<double, 2>{51, 0});
    CHECK(rows[3].at == std::array<double, 2>{53, 37});
    CHECK(rows[3].line == 5);
    write_text(tmp / "same.csv", "file,x,y\nimg_r001_c001.png,0,2\nimg_r001_c002.png,51,0\nimg_r002_c001.png,1,35\n"
                                 "img_r002_c002.png,53,37\n");
    REQUIRE(tessera_cmd("stitch " + shell_quoted(tmp / "img-global-positions-1.txt") + " -q -o " +
                        shell_quoted(tmp / "mist.v")) == 0);
    REQUIRE(tessera_cmd("stitch " + shell_quoted(tmp / "same.csv") + " -q -o " + shell_quoted(tmp / "csv.v")) == 0);
    VImage a = VImage::new_from_file((tmp / "mist.v").c_str()), b = VImage::new_from_file((tmp / "csv.v").c_str());
    CHECK(a.width() == 113);
    CHECK(a.height() == 77);
    CHECK(a.width() == b.width());
    CHECK(a.height() == b.height());
    CHECK((a - b).abs().max() == 0);

    auto refused = [&](const std::string& text) {
        write_text(tmp / "bad.txt", text);
        return error_of([&] { read_positions((tmp / "bad.txt").string()); });
    };
    const std::string at = (tmp / "bad.txt").string();
    CHECK(refused("file: a.png; corr: 1; grid: (0, 0);\n").find(at + " line 1: no 'position:' field") !=
          std::string::npos);
    CHECK(refused("file: a.png; position: (1, 2, 3);\n").find(at + " line 1: expected two coordinates") !=
          std::string::npos);
    CHECK(refused("file: a.png; position: (x, 2);\n").find(at + " line 1: 'x' is not a coordinate") !=
          std::string::npos);
}
