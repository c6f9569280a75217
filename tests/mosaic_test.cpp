// The mosaic job end to end: a small scan (textured slide cut into
// overlapping, jittered tiles) registered from its nominal grid positions,
// blended, and written by `tessera mosaic`; the errors a user meets.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "support.hpp"
#include "tessera/mosaic.hpp"

namespace fs = std::filesystem;
using namespace tessera;
using vips::VImage;

namespace {

int tessera_cmd(const std::string& args, std::string* out = nullptr) {
    return tt::run_command(tt::tessera_binary() + " " + args, out);
}

// cols x rows tiles of 400 x 300 on a grid stepping 300 x 210 (overlaps of
// 100 and 90 px), each moved by up to +-8 px from its grid position.
// The jitter sums to zero along each axis: registration fixes positions up
// to a common shift and places them with a mean correction of zero, so
// then it can recover the truth exactly. nominal.csv has the grid,
// truth.csv the real positions.
struct Scan {
    fs::path nominal, truth;
    int canvas_w = 0, canvas_h = 0;
    std::vector<IntPair> true_at;
};
Scan make_scan(const fs::path& dir, const std::string& ext, int cols = 4, int rows = 3, Rect blank = {}) {
    fs::create_directories(dir / "tiles");
    const int tw = 400, th = 300, sx = 300, sy = 210, margin = 20;
    Scan s{dir / "nominal.csv",
           dir / "truth.csv",
           2 * margin + sx * (cols - 1) + tw,
           2 * margin + sy * (rows - 1) + th,
           {}};
    // texture at several scales, and a slow shade so no two places look alike
    VImage cells = VImage::worley(s.canvas_w, s.canvas_h, VImage::option()->set("cell_size", 40)->set("seed", 2));
    VImage fine = VImage::perlin(s.canvas_w, s.canvas_h, VImage::option()->set("cell_size", 12)->set("seed", 5));
    VImage xy = VImage::xyz(s.canvas_w, s.canvas_h);
    VImage shade = xy[0] * (40.0 / s.canvas_w) + xy[1] * (30.0 / s.canvas_h);
    VImage r = cells * 1.5 + fine * 50 + 120 - shade, g = cells + fine * 40 + 100 + shade, b = fine * 60 + 150;
    VImage slide = r.bandjoin(g).bandjoin(b).cast(VIPS_FORMAT_UCHAR).copy_memory();
    if (!blank.empty())  // a patch of bare glass
        slide = slide.insert(
            (VImage::black(blank.w, blank.h, VImage::option()->set("bands", 3)) + 200).cast(VIPS_FORMAT_UCHAR), blank.x,
            blank.y);
    const int n = cols * rows;
    std::vector<int> jx(static_cast<std::size_t>(n)), jy(static_cast<std::size_t>(n));
    for (int k = 0; k < n; ++k) {
        jx[std::size_t(k)] = (k * 7 + 3) % 17 - 8;
        jy[std::size_t(k)] = (k * 11 + 5) % 17 - 8;
    }
    for (int sum = 0, k = 0; k < 2; ++k) {  // remove what is left of the sums from the last image
        auto& j = k ? jy : jx;
        sum = 0;
        for (int k2 = 0; k2 < n - 1; ++k2) sum += j[std::size_t(k2)];
        j[std::size_t(n - 1)] = -sum;
        REQUIRE(std::abs(j[std::size_t(n - 1)]) <= 12);
    }
    std::ofstream nom(s.nominal), tru(s.truth);
    nom << "file,x,y\n";
    tru << "file,x,y\n";
    for (int j = 0; j < rows; ++j)
        for (int i = 0; i < cols; ++i) {
            int k = j * cols + i;
            int x = margin + i * sx, y = margin + j * sy;
            int tx = x + jx[std::size_t(k)], ty = y + jy[std::size_t(k)];
            std::string name = "tiles/t" + std::to_string(j) + "_" + std::to_string(i) + ext;
            VImage tile = slide.extract_area(tx, ty, tw, th);
            if (ext == ".jpg")
                tile.jpegsave((dir / name).c_str(), VImage::option()->set("Q", 92));
            else
                tile.write_to_file((dir / name).c_str());
            nom << name << "," << x << "," << y << "\n";
            tru << name << "," << tx << "," << ty << "\n";
            s.true_at.push_back({tx, ty});
        }
    return s;
}

std::vector<IntPair> positions_of(const fs::path& csv) {
    std::vector<IntPair> out;
    for (const Placement& p : read_positions_csv(csv.string())) out.push_back(placed_at(p.at));
    return out;
}

// Solved positions within a tenth of a pixel of whole-pixel truths (the
// tiles are lossless crops at whole-pixel offsets).
bool near(const std::vector<std::array<double, 2>>& got, const std::vector<IntPair>& want) {
    if (got.size() != want.size()) return false;
    for (std::size_t i = 0; i < got.size(); ++i)
        for (int k = 0; k < 2; ++k)
            if (std::abs(got[i][std::size_t(k)] - double(want[i][std::size_t(k)])) > 0.1) return false;
    return true;
}

std::string size_of(const Scan& s) { return std::to_string(s.canvas_w) + " " + std::to_string(s.canvas_h); }

double mean_abs_diff(VImage a, VImage b) { return (a.cast(VIPS_FORMAT_FLOAT) - b.cast(VIPS_FORMAT_FLOAT)).abs().avg(); }

}  // namespace

TEST_CASE("mosaic command: registered from nominal positions - equal to insert of the true ones with blend none") {
    tt::TempDir tmp;
    Scan s = make_scan(tmp.path, ".jpg");
    fs::path out = tmp / "out.tif", solved = tmp / "solved.csv";
    std::string log;
    REQUIRE(tessera_cmd(s.nominal.string() + " --canvas " + size_of(s) + " -o " + out.string() +
                            " --search 20 --blend none --positions-out " + solved.string() + " 2>&1",
                        &log) != 0);  // the subcommand is missing: a usage error
    REQUIRE(tessera_cmd("mosaic " + s.nominal.string() + " --canvas " + size_of(s) + " -o " + out.string() +
                            " --search 20 --blend none --positions-out " + solved.string() + " --pairs-out " +
                            (tmp / "pairs.csv").string() + " 2>&1",
                        &log) == 0);
    CAPTURE(log);
    CHECK(log.find("registration: ") != std::string::npos);
    {
        // every registered pair with its confidence
        std::ifstream pairs(tmp / "pairs.csv");
        std::string line;
        std::getline(pairs, line);
        CHECK(line == "a,b,dx,dy,score,found,trusted,used,residual,why");
        int n = 0;
        while (std::getline(pairs, line)) {
            ++n;
            CAPTURE(line);
            CHECK(line.rfind("tiles/t", 0) == 0);
            CHECK(line.find(",1,1,1,0.0") != std::string::npos);  // found, trusted, used, residual < 0.1
        }
        CHECK(n >= 4 * 3 - 1);  // at least a spanning set of the 12 tiles
    }
    std::vector<IntPair> got = positions_of(solved);
    REQUIRE(got.size() == s.true_at.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
        CAPTURE(k);
        CHECK(std::abs(got[k][0] - s.true_at[k][0]) <= 1);
        CHECK(std::abs(got[k][1] - s.true_at[k][1]) <= 1);
    }
    CHECK(got == s.true_at);  // (exact here: the jitter sums to zero)
    VImage want = tt::vips_insert_loop(s.truth, s.canvas_w, s.canvas_h);
    VImage ours = VImage::new_from_file(out.c_str());
    CHECK(mean_abs_diff(ours, want) < 1.0);
    // the positions CSV is written relative to its own folder: stitch reads it back
    fs::path again = tmp / "again.tif";
    REQUIRE(tessera_cmd("stitch " + solved.string() + " --canvas " + size_of(s) + " -o " + again.string() + " -q") ==
            0);
    CHECK(tt::max_abs_diff(tt::from_vips(VImage::new_from_file(again.c_str())), ours) == 0);
}

TEST_CASE("mosaic: register_positions on lossless tiles is exact - reads only windows") {
    tt::TempDir tmp;
    Scan s = make_scan(tmp.path, ".png", 5, 3);
    RegisterOptions o;
    o.stage_error = 20;
    o.plan.max_area = 140 * 60;  // so that side-by-side pairs read only the top third of a tile
    o.null_pairs = 16;
    o.threads = 2;
    RegisterReport rep = register_positions(read_positions_csv(s.nominal.string()), o, standard_registry());
    CHECK(near(rep.positions, s.true_at));
    CHECK(rep.registered > 0);
    CHECK(rep.matched == rep.registered);
    CHECK(rep.trusted == rep.registered);
    CHECK(rep.rejected == 0);
    CHECK(rep.by_pairs == s.true_at.size());
    // windows in the overlaps: fewer pixels than the overlaps hold
    std::uint64_t overlaps = 0;
    for (std::size_t a = 0; a < s.true_at.size(); ++a)
        for (std::size_t b = a + 1; b < s.true_at.size(); ++b) {
            auto rect = [](const IntPair& p) { return Rect{int(p[0]), int(p[1]), 400, 300}; };
            overlaps += 2 * std::uint64_t(rect(s.true_at[a]).intersect(rect(s.true_at[b])).area());
        }
    CHECK(rep.pixels_read < overlaps);  // (the strips and the permutation test's)
    // PNG tiles are not decoded top to bottom: reading one low costs no
    // more, so no pair is left out for it (deep_share counts JPEGs alone)
    CHECK(rep.registered == rep.candidates);
    o.plan.deep_share = 1;
    RegisterReport all = register_positions(read_positions_csv(s.nominal.string()), o, standard_registry());
    CHECK(all.registered == all.candidates);
    CHECK(all.registered == rep.registered);
    CHECK(near(all.positions, s.true_at));
    // and the thread count changes nothing
    o.threads = 1;
    CHECK(register_positions(read_positions_csv(s.nominal.string()), o, standard_registry()).positions ==
          all.positions);
}

TEST_CASE("mosaic: a pair whose window falls on bare glass tries other places along its overlap") {
    // glass over the top of the overlap of the first two tiles, where their
    // strips go (canvas x 300..440, y 0..140 with stage error 20)
    tt::TempDir tmp;
    Scan s = make_scan(tmp.path, ".png", 4, 3, {270, 0, 200, 200});
    RegisterOptions o;
    o.stage_error = 20;
    o.plan.max_area = 140 * 100;  // the top of the overlap: under the glass
    o.retries = 0;
    RegisterReport first = register_positions(read_positions_csv(s.nominal.string()), o, standard_registry());
    CHECK(first.matched == first.registered - 1);
    bool flat = false;
    for (const PairResult& p : first.pairs) flat = flat || p.why.find("flat") != std::string::npos;
    CHECK(flat);
    o.retries = 2;
    RegisterReport rep = register_positions(read_positions_csv(s.nominal.string()), o, standard_registry());
    CHECK(rep.retried == 1);
    CHECK(rep.matched == rep.registered);
    CHECK(near(rep.positions, s.true_at));
}

TEST_CASE("mosaic command: feather blends the overlaps of registered tiles without a visible seam") {
    tt::TempDir tmp;
    Scan s = make_scan(tmp.path, ".jpg", 3, 2);
    fs::path out = tmp / "out.tif";
    REQUIRE(tessera_cmd("mosaic " + s.nominal.string() + " --canvas " + size_of(s) + " -o " + out.string() +
                        " --search 20 --blend-width 32 -q") == 0);
    VImage want = tt::vips_insert_loop(s.truth, s.canvas_w, s.canvas_h);
    VImage ours = VImage::new_from_file(out.c_str());
    // the same content, blended: only JPEG noise differs in the overlaps
    CHECK(mean_abs_diff(ours, want) < 1.0);
    CHECK((ours.cast(VIPS_FORMAT_FLOAT) - want.cast(VIPS_FORMAT_FLOAT)).abs().max() < 24);
}

TEST_CASE("mosaic command: --no-register keeps the given positions and --emit-json shows the mosaic node") {
    tt::TempDir tmp;
    Scan s = make_scan(tmp.path, ".jpg", 2, 2);
    fs::path solved = tmp / "kept.csv";
    std::string json;
    REQUIRE(tessera_cmd("mosaic " + s.nominal.string() + " --canvas " + size_of(s) + " -o " + (tmp / "o.tif").string() +
                            " --no-register --emit-json --positions-out " + solved.string(),
                        &json) == 0);
    CHECK(positions_of(solved) == positions_of(s.nominal));
    CHECK(json.find("\"op\": \"mosaic\"") != std::string::npos);
    CHECK(json.find("\"blend\": \"feather\"") != std::string::npos);
    // without registration and blending it is the stitch, bit for bit
    fs::path a = tmp / "mosaic.tif", b = tmp / "stitch.tif";
    REQUIRE(tessera_cmd("mosaic " + s.nominal.string() + " --canvas " + size_of(s) + " -o " + a.string() +
                        " --no-register --blend none -q") == 0);
    REQUIRE(tessera_cmd("stitch " + s.nominal.string() + " --canvas " + size_of(s) + " -o " + b.string() + " -q") == 0);
    CHECK(tt::max_abs_diff(tt::from_vips(VImage::new_from_file(a.c_str())), VImage::new_from_file(b.c_str())) == 0);
}

TEST_CASE("mosaic command: bad inputs fail with one line naming the file and what to do") {
    tt::TempDir tmp;
    Scan s = make_scan(tmp.path, ".jpg", 2, 2);
    std::string args = " --canvas " + size_of(s) + " -o " + (tmp / "o.tif").string() + " --search 20 -q 2>&1";
    std::string out;

    // no overlap anywhere: the tiles spread far apart
    {
        std::ofstream f(tmp / "apart.csv");
        f << "file,x,y\ntiles/t0_0.jpg,0,0\ntiles/t0_1.jpg,600,0\n";
    }
    CHECK(tessera_cmd("mosaic " + (tmp / "apart.csv").string() + " --canvas 1200 400 -o " + (tmp / "o.tif").string() +
                          " -q 2>&1",
                      &out) == 1);
    CHECK(out.find("apart.csv") != std::string::npos);
    CHECK(out.find("no two tiles overlap") != std::string::npos);
    CHECK(out.find("--no-register") != std::string::npos);

    // a tile of other bands: refused when the graph is built, before any registration
    tt::save(VImage::black(400, 300).cast(VIPS_FORMAT_UCHAR), tmp / "grey.png");
    {
        std::ofstream f(tmp / "mixed.csv");
        f << "file,x,y\ntiles/t0_0.jpg,0,0\ngrey.png,300,0\n";
    }
    CHECK(tessera_cmd("mosaic " + (tmp / "mixed.csv").string() + " --canvas 800 400 -o " + (tmp / "o.tif").string() +
                          " --search 20 2>&1",
                      &out) == 1);
    CHECK(out.find("cast or convert") != std::string::npos);
    CHECK(out.find("registration:") == std::string::npos);  // (it reports itself when it runs)

    // an unreadable tile: a truncated JPEG is named when its windows are read
    {
        std::ifstream in(tmp / "tiles/t0_1.jpg", std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string bytes = ss.str();
        std::ofstream(tmp / "tiles/t0_1.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 8);
    }
    CHECK(tessera_cmd("mosaic " + s.nominal.string() + args, &out) == 1);
    CHECK(out.find("t0_1.jpg") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);

    // a missing tile and a bad CSV line name the file and the line
    {
        std::ofstream f(tmp / "missing.csv");
        f << "file,x,y\ntiles/t0_0.jpg,0,0\ntiles/nope.jpg,300,0\n";
    }
    CHECK(tessera_cmd("mosaic " + (tmp / "missing.csv").string() + args, &out) == 1);
    CHECK(out.find("nope.jpg") != std::string::npos);
    {
        std::ofstream f(tmp / "bad.csv");
        f << "file,x,y\ntiles/t0_0.jpg,0,0\ntiles/t1_0.jpg,zero,210\n";
    }
    CHECK(tessera_cmd("mosaic " + (tmp / "bad.csv").string() + args, &out) == 1);
    CHECK(out.find("bad.csv line 3") != std::string::npos);
}
