// The stitch job end to end: streaming JPEG decode, the pyramid TIFF writer,
// and `tessera stitch`, checked against libvips and the tools people use.
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "support.hpp"
#include "tessera/stitch.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

int tessera_cmd(const std::string& args, std::string* out = nullptr) {
    return tt::run_command(tt::tessera_binary() + " " + args, out);
}

bool have(const char* tool) { return tt::run_command(std::string("command -v ") + tool + " >/dev/null") == 0; }

using tt::slurp;

// A small scanned mosaic: cols x rows JPEG tiles cut from one picture at
// jittered, overlapping positions, plus positions.csv.
struct Mosaic {
    int canvas_w, canvas_h;
    fs::path csv;
};
Mosaic make_mosaic(const fs::path& dir, int cols, int rows, int tw, int th, int quality = 90) {
    fs::create_directories(dir / "tiles");
    int step_x = tw * 3 / 4, step_y = th * 3 / 4;
    Mosaic m{step_x * (cols - 1) + tw + 8, step_y * (rows - 1) + th + 8, dir / "positions.csv"};
    vips::VImage slide = tt::pattern(m.canvas_w, m.canvas_h, 3, VIPS_FORMAT_UCHAR, 3)
                             .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    std::ofstream csv(m.csv);
    csv << "file,x,y\n";
    std::mt19937 rng(7);
    for (int j = 0; j < rows; ++j)
        for (int i = 0; i < cols; ++i) {
            int x = i * step_x + int(rng() % 9), y = j * step_y + int(rng() % 9);
            std::string name = "tiles/t" + std::to_string(j) + "_" + std::to_string(i) + ".jpg";
            slide.extract_area(x, y, tw, th).jpegsave((dir / name).c_str(), vips::VImage::option()->set("Q", quality));
            csv << name << "," << x << "," << y << "\n";
        }
    return m;
}

vips::VImage vips_insert_loop(const Mosaic& m) { return tt::vips_insert_loop(m.csv, m.canvas_w, m.canvas_h); }

vips::VImage page(const fs::path& p, int n) {
    return vips::VImage::new_from_file(p.c_str(), vips::VImage::option()->set("page", n)).copy_memory();
}

}  // namespace

TEST_CASE("jpeg streaming: any rects in row-major order equal libvips's decode") {
    tt::TempDir tmp;
    for (const char* subsample : {"auto", "off"})
        for (int bands : {1, 3}) {
            CAPTURE(subsample);
            CAPTURE(bands);
            vips::VImage src = tt::pattern(517, 301, bands, VIPS_FORMAT_UCHAR, bands);
            std::string path = (tmp / ("s" + std::to_string(bands) + subsample + ".jpg")).string();
            src.jpegsave(path.c_str(), vips::VImage::option()->set("Q", 80)->set("subsample_mode",
                                                                                 std::string(subsample) == "off"
                                                                                     ? VIPS_FOREIGN_SUBSAMPLE_OFF
                                                                                     : VIPS_FOREIGN_SUBSAMPLE_AUTO));
            vips::VImage ref = vips::VImage::new_from_file(path.c_str()).copy_memory();
            Graph g(standard_registry());
            NodeId n = g.add("load", {}, {{"path", path}});
            // whole image through tiles of several sizes: rows in bands, skips
            for (int tile : {16, 64, 100})
                for (int threads : {1, 2}) CHECK(tt::max_abs_diff(tt::render(g, n, tile, threads), ref) == 0);
            // an embed that only shows the lower part: the decoder skips rows
            NodeId e = g.add("extract_area", {n},
                             {{"left", std::int64_t(3)},
                              {"top", std::int64_t(190)},
                              {"width", std::int64_t(500)},
                              {"height", std::int64_t(100)}});
            CHECK(tt::max_abs_diff(tt::render(g, e, 32, 2), ref.extract_area(3, 190, 500, 100)) == 0);
            // going back up restarts the decode, and is still right
            Evaluator ev(g);
            Buffer low = ev.render(n, {10, 250, 50, 40});
            Buffer high = ev.render(n, {10, 20, 50, 40});
            // (to_vips drops the buffers' origin, so they compare with 0-based crops)
            CHECK(tt::max_abs_diff(tt::from_vips(tt::to_vips(low)), ref.extract_area(10, 250, 50, 40)) == 0);
            CHECK(tt::max_abs_diff(tt::from_vips(tt::to_vips(high)), ref.extract_area(10, 20, 50, 40)) == 0);
        }
}

TEST_CASE("jpeg streaming: a scan whose right neighbour sits lower is decoded narrower below that neighbour's top") {
    // Scan a at (0, 0), scan b on top of it at (600, 40): a shows whole
    // width only in its top 40 rows, then its left 600 columns. The first
    // tile row decodes a whole; from the second the evaluator cuts a's
    // segment and its decoder restarts cropped to about 600 + margin
    // columns. Same pixels as libvips drawing both scans whole.
    tt::TempDir tmp;
    const vips::VImage a = tt::pattern(900, 500, 3, VIPS_FORMAT_UCHAR, 5),
                       b = tt::pattern(900, 500, 3, VIPS_FORMAT_UCHAR, 6);
    const std::string pa = (tmp / "a.jpg").string(), pb = (tmp / "b.jpg").string();
    a.jpegsave(pa.c_str(), vips::VImage::option()->set("Q", 85));
    b.jpegsave(pb.c_str(), vips::VImage::option()->set("Q", 85));
    const vips::VImage base = vips::VImage::black(1500, 540, vips::VImage::option()->set("bands", 3));
    const vips::VImage want = base.insert(vips::VImage::new_from_file(pa.c_str()), 0, 0)
                                  .insert(vips::VImage::new_from_file(pb.c_str()), 600, 40);
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        // (a whole run to a file, so that the run's plan of segments is in force)
        const std::string out = (tmp / ("out" + std::to_string(threads) + ".tif")).string();
        Graph g(standard_registry());
        g.execution.threads = threads;
        NodeId canvas =
            g.add("black", {},
                  {{"width", std::int64_t(1500)}, {"height", std::int64_t(540)}, {"bands", std::int64_t(3)}});
        NodeId na = g.add("load", {}, {{"path", pa}}), nb = g.add("load", {}, {{"path", pb}});
        NodeId ins = g.add("insert", {canvas, na, nb}, {{"at", std::vector<IntPair>{{0, 0}, {600, 40}}}});
        g.add("save", {ins},
              {{"path", out}, {"tile", true}, {"tile_width", std::int64_t(64)}, {"tile_height", std::int64_t(64)}});
        const std::uint64_t before = jpeg_pixels_decoded();
        Evaluator(g).run_sinks();
        const std::uint64_t decoded = jpeg_pixels_decoded() - before;
        CHECK(tt::max_abs_diff(tt::from_vips(vips::VImage::new_from_file(out.c_str())), want) == 0);
        // b whole (450 000), a: its first 64 rows whole, the next 436 at
        // most 600 + 2 x 32 margin + an iMCU: 57 600 + 436 x 680 < 805 000;
        // a decoded whole width all the way down would make 900 000
        CHECK(decoded < 805000);
        CHECK(decoded >= 450000 + 900 * 64 + 600 * 436);
    }
}

TEST_CASE("jpeg streaming: a truncated JPEG fails naming the file") {
    tt::TempDir tmp;
    std::string path = (tmp / "cut.jpg").string();
    tt::pattern(400, 300).jpegsave(path.c_str());
    std::string bytes = slurp(path);
    std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", path}}, "cut");
    try {
        tt::render(g, n, 64, 2);
        FAIL("a truncated file decoded without error");
    } catch (const std::exception& e) {
        CHECK(std::string(e.what()).find("cut.jpg") != std::string::npos);
        CHECK(std::string(e.what()).find("node 'cut'") != std::string::npos);
    }
}

TEST_CASE("pyramid tiff: levels and pixels as libvips writes them - readable by the usual tools") {
    tt::TempDir tmp;
    vips::VImage src = tt::pattern(1001, 701, 3, VIPS_FORMAT_UCHAR, 1)
                           .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    std::string in = tt::save(src, tmp / "in.png");
    std::string ours = (tmp / "ours.tif").string(), theirs = (tmp / "vips.tif").string();
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", in}});
    g.add("save", {n},
          {{"path", ours},
           {"tile", true},
           {"pyramid", true},
           {"tile_width", std::int64_t(128)},
           {"tile_height", std::int64_t(128)}});
    RunStats stats = Evaluator(g).run_sinks();
    CHECK(stats.tiles == 8 * 6);
    src.tiffsave(theirs.c_str(), vips::VImage::option()
                                     ->set("tile", true)
                                     ->set("pyramid", true)
                                     ->set("tile_width", 128)
                                     ->set("tile_height", 128));
    int levels = vips::VImage::new_from_file(theirs.c_str()).get_int("n-pages");
    CHECK(levels == 4);  // 1001x701, 500x350, 250x175, 125x87
    CHECK(vips::VImage::new_from_file(ours.c_str()).get_int("n-pages") == levels);
    for (int k = 0; k < levels; ++k) {
        CAPTURE(k);
        CHECK(tt::max_abs_diff(tt::from_vips(page(ours, k)), page(theirs, k)) == 0);
    }
    // narrow bands (2 tiles: levels above 1 are kept whole) and 4-tile bands
    // schedule differently and give the same file
    for (int band : {256, 512}) {
        CAPTURE(band);
        std::string banded = (tmp / ("band" + std::to_string(band) + ".tif")).string();
        Graph b(standard_registry());
        NodeId bn = b.add("load", {}, {{"path", in}});
        b.add("save", {bn},
              {{"path", banded},
               {"tile", true},
               {"pyramid", true},
               {"tile_width", std::int64_t(128)},
               {"tile_height", std::int64_t(128)},
               {"band_width", std::int64_t(band)}});
        Evaluator(b).run_sinks();
        for (int k = 0; k < levels; ++k) CHECK(tt::max_abs_diff(tt::from_vips(page(banded, k)), page(theirs, k)) == 0);
    }
    std::string out;
    if (have("tiffinfo")) {
        CHECK(tt::run_command("tiffinfo " + ours, &out) == 0);
        CHECK(out.find("reduced-resolution image") != std::string::npos);
    }
    if (have("gdalinfo")) {
        CHECK(tt::run_command("gdalinfo " + ours, &out) == 0);
        CHECK(out.find("Overviews: 500x350, 250x175, 125x87") != std::string::npos);
    }
    if (have("openslide-show-properties")) {
        CHECK(tt::run_command("openslide-show-properties " + ours, &out) == 0);
        CHECK(out.find("openslide.level-count: '4'") != std::string::npos);
    } else {
        MESSAGE("openslide-show-properties not installed: OpenSlide check skipped");
    }
}

TEST_CASE("pyramid tiff: every compression reads back - JPEG close to the source") {
    tt::TempDir tmp;
    // a photo-like picture (JPEG loses a lot on synthetic high-frequency patterns)
    vips::VImage src = vips::VImage::new_from_file((tt::source_dir() / "examples/stitch/tiles/r1_c1.jpg").c_str())
                           .extract_area(0, 0, 300, 200)
                           .copy_memory();
    std::string in = tt::save(src, tmp / "in.png");
    for (const char* c : {"none", "deflate", "lzw", "zstd", "jpeg", "jpeg85"}) {
        CAPTURE(c);
        int quality = std::string(c) == "jpeg85" ? 85 : 90;
        if (quality == 85) c = "jpeg";
        std::string out = (tmp / (std::string(c) + std::to_string(quality) + ".tif")).string();
        Graph g(standard_registry());
        NodeId n = g.add("load", {}, {{"path", in}});
        g.add("save", {n},
              {{"path", out},
               {"tile", true},
               {"pyramid", true},
               {"compression", std::string(c)},
               {"quality", std::int64_t(quality)},
               {"tile_width", std::int64_t(64)},
               {"tile_height", std::int64_t(64)}});
        Evaluator(g).run_sinks();
        vips::VImage back = vips::VImage::new_from_file(out.c_str());
        CHECK(back.get_int("n-pages") == 4);  // 300x200 down to 37x25
        if (std::string(c) == "jpeg") {
            // libvips's own JPEG TIFF of this picture: 0.37 at Q90 (no chroma
            // subsampling), 0.9 at Q85 (subsampled)
            CHECK((back - src).abs().avg() < (quality == 90 ? 0.6 : 1.2));
            // small levels hold more detail per pixel, so JPEG loses more there
            CHECK((page(out, 2) - src.shrink(4, 4)).abs().avg() < (quality == 90 ? 2.0 : 3.5));
        } else {
            CHECK(tt::max_abs_diff(tt::from_vips(back.copy_memory()), src) == 0);
        }
    }
}

TEST_CASE("stitch: level 0 equals libvips's insert loop - --emit-json runs to the same file") {
    tt::TempDir tmp;
    Mosaic m = make_mosaic(tmp / "scan", 4, 3, 200, 150);
    std::string out = (tmp / "out.tif").string();
    std::string args = m.csv.string() + " --canvas " + std::to_string(m.canvas_w) + " " + std::to_string(m.canvas_h) +
                       " -o " + out + " --tile-size 64 --pyramid -q";
    std::string log;
    REQUIRE(tessera_cmd("stitch " + args + " --stats", &log) == 0);
    CHECK(log.find("peak pixel memory") != std::string::npos);
    CHECK(tt::max_abs_diff(tt::from_vips(page(out, 0)), vips_insert_loop(m)) == 0);

    std::string json;
    REQUIRE(tessera_cmd("stitch " + args + " --emit-json", &json) == 0);
    std::ofstream(tmp / "p.json") << json;
    std::string first = slurp(out);
    fs::remove(out);
    REQUIRE(tessera_cmd("run -q " + (tmp / "p.json").string()) == 0);
    CHECK(slurp(out) == first);
    // threads never change the bytes
    REQUIRE(tessera_cmd("stitch " + args + " --threads 1") == 0);
    CHECK(slurp(out) == first);
}

TEST_CASE("stitch: one file placed many times equals libvips's insert loop - in bands and on any thread count") {
    // Each placement is a load of its own: its reads (rows, columns, the
    // columns announced for the band) must not disturb another placement
    // of the same file. Bands narrower than the canvas make every file be
    // read again from the top, with other columns, band after band.
    tt::TempDir tmp;
    fs::create_directories(tmp / "tiles");
    for (int k = 0; k < 3; ++k)
        tt::pattern(200, 150, 3, VIPS_FORMAT_UCHAR, 20 + k)
            .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
            .jpegsave((tmp / "tiles" / ("f" + std::to_string(k) + ".jpg")).c_str());
    const int w = 150 * 9 + 200 + 8, h = 112 * 5 + 150 + 8;
    std::string loads, inputs = "\"canvas\"", at;
    {
        std::ofstream csv(tmp / "positions.csv");
        csv << "file,x,y\n";
        std::mt19937 rng(5);
        for (int j = 0, n = 0; j < 6; ++j)
            for (int i = 0; i < 10; ++i, ++n) {
                const std::string file = "tiles/f" + std::to_string((i + 2 * j) % 3) + ".jpg";
                const int x = i * 150 + int(rng() % 9), y = j * 112 + int(rng() % 9);
                csv << file << "," << x << "," << y << "\n";
                loads += R"({"id": "p)" + std::to_string(n) + R"(", "op": "load", "path": ")" + file + "\"},\n";
                inputs += ", \"p" + std::to_string(n) + "\"";
                at += std::string(n ? ", " : "") + "[" + std::to_string(x) + ", " + std::to_string(y) + "]";
            }
    }
    std::ofstream(tmp / "p.json") << R"({"version": 1, "nodes": [
      {"id": "canvas", "op": "black", "width": )"
                                  << w << R"(, "height": )" << h << R"(, "bands": 3},
      )" << loads << R"({"id": "mosaic", "op": "insert", "inputs": [)"
                                  << inputs << R"(], "at": [)" << at << R"(]},
      {"id": "out", "op": "save", "inputs": ["mosaic"], "path": "out.tif", "tile_width": 64, "tile_height": 64,
       "pyramid": true, "band_width": 512, "compression": "deflate"}]})";
    const std::string out = (tmp / "out.tif").string();
    REQUIRE(tessera_cmd("run -q --threads 1 " + (tmp / "p.json").string()) == 0);
    const vips::VImage want = tt::vips_insert_loop(tmp / "positions.csv", w, h);
    CHECK(tt::max_abs_diff(tt::from_vips(page(out, 0)), want) == 0);
    const std::string first = slurp(out);
    REQUIRE(tessera_cmd("run -q --threads 2 " + (tmp / "p.json").string()) == 0);
    CHECK(tt::max_abs_diff(tt::from_vips(page(out, 0)), want) == 0);
    CHECK(slurp(out) == first);
}

TEST_CASE("stitch: hundreds of inputs under ulimit -n 64 - no temporary file left on failure") {
    tt::TempDir tmp;
    Mosaic m = make_mosaic(tmp / "scan", 20, 15, 64, 48, 75);  // 300 tiles
    std::string out = (tmp / "out.tif").string();
    std::string cmd = "ulimit -n 64 && " + tt::tessera_binary() + " stitch " + m.csv.string() + " --canvas " +
                      std::to_string(m.canvas_w) + " " + std::to_string(m.canvas_h) + " -o " + out +
                      " --tile-size 32 --compression deflate -q";
    std::string log;
    CHECK(tt::run_command("bash -c '" + cmd + "'", &log) == 0);
    CHECK(log.empty());
    CHECK(tt::max_abs_diff(tt::from_vips(page(out, 0)), vips_insert_loop(m)) == 0);

    // a tile that breaks halfway: the run fails, the old output stays, no temporaries
    std::string good = slurp(out);
    fs::path victim = m.csv.parent_path() / "tiles" / "t14_19.jpg";
    std::string bytes = slurp(victim);
    std::ofstream(victim, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    CHECK(tt::run_command("bash -c '" + cmd + "'", &log) == 1);
    CHECK(log.find("t14_19.jpg") != std::string::npos);
    CHECK(slurp(out) == good);
    int files = 0;
    for (auto& e : fs::directory_iterator(tmp.path)) files += e.is_regular_file();
    CHECK(files == 1);
}

TEST_CASE("stitch: bad positions files are errors naming the file and line") {
    tt::TempDir tmp;
    std::ofstream(tmp / "a.csv") << "name,x,y\n";
    std::string log;
    CHECK(tessera_cmd("stitch " + (tmp / "a.csv").string() + " --canvas 10 10 -o " + (tmp / "o.tif").string(), &log) ==
          1);
    CHECK(log.find("a.csv") != std::string::npos);
    CHECK(log.find("file,x,y") != std::string::npos);
    std::ofstream(tmp / "b.csv") << "file,x,y\nt.jpg,12,zz\n";
    CHECK(tessera_cmd("stitch " + (tmp / "b.csv").string() + " --canvas 10 10 -o " + (tmp / "o.tif").string(), &log) ==
          1);
    CHECK(log.find("line 2") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "o.tif"));
    // a tile wholly off the canvas names its file and line
    tt::pattern(20, 20).pngsave((tmp / "t.png").c_str());
    std::ofstream(tmp / "c.csv") << "file,x,y\nt.png,0,0\nt.png,500,3\n";
    CHECK(tessera_cmd("stitch " + (tmp / "c.csv").string() + " --canvas 100 100 -o " + (tmp / "o.tif").string(),
                      &log) == 1);
    CHECK(log.find("c.csv line 3: '") != std::string::npos);
    CHECK(log.find("t.png' (20x20) at 500,3 lies wholly outside the 100x100 canvas") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "o.tif"));
}
