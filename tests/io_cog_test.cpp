// COG output (checked by GDAL's own validator and against gdal_translate -of
// COG), and rasters written to GDAL's /vsimem/ and read back in the same run.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>
#include <iterator>

#include "geo_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

const char* kValidator = "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py";

// A uint16 raster in UTM 32N with a nodata hole and a nodata border, so
// overviews must skip nodata to match GDAL's.
geo::Raster utm_raster(int w, int h) {
    geo::Raster r;
    r.width = w;
    r.height = h;
    r.format = Format::u16;
    r.srs = "EPSG:32632";
    r.nodata = 0;
    r.transform = {600000, 10, 0, 5200000, 0, -10};
    r.value = [](int x, int y, int) {
        if ((x > 100 && x < 333 && y > 50 && y < 171) || y < 3) return 0.0;
        return double(1 + (x * 37 + y * 11 + (x * y) % 97) % 3000);
    };
    return r;
}

using tt::slurp;

// Runs GDAL's COG validator; empty when it is not installed.
std::optional<std::string> validate(const std::string& file) {
    if (!fs::exists(kValidator) || tt::run_command("/usr/bin/python3 -c 'import osgeo' 2>/dev/null") != 0)
        return std::nullopt;
    std::string out;
    tt::run_command("/usr/bin/python3 " + std::string(kValidator) + " " + file + " 2>&1", &out);
    return out;
}

// The lines of `gdalinfo -checksum` that say the pixels of each level.
std::string checksums(const std::string& file) {
    std::string info, out;
    tt::run_command("gdalinfo -checksum " + file, &info);
    std::istringstream lines(info);
    for (std::string l; std::getline(lines, l);)
        if (l.find("hecksum") != std::string::npos || l.find("Overviews:") != std::string::npos) out += l + "\n";
    return out;
}

void run(Graph& g, int tile = 256, int threads = 2) {
    g.execution.tile_w = g.execution.tile_h = tile;
    g.execution.threads = threads;
    Evaluator(g).run_sinks();
}

bool have_gdal_tools() {
    return tt::run_command("command -v gdal_translate >/dev/null && command -v gdalinfo >/dev/null") == 0;
}

}  // namespace

TEST_CASE("cog: valid for GDAL's validator with the input's pixels georeference nodata and GDAL's overviews") {
    tt::TempDir dir;
    // sizes that halve evenly: for odd ones GDAL's last column and row come
    // from windows of 2.007 pixels, not 2x2 blocks, so edges would differ
    std::string in = geo::write_vrt(dir.path, "utm", utm_raster(1024, 768));
    std::string out = (dir / "out.tif").string();
    Graph g(standard_registry());
    NodeId src = g.add("gdal_load", {}, {{"path", in}});
    g.add("save", {src},
          {{"path", out},
           {"format", std::string("cog")},
           {"tile_width", std::int64_t(256)},
           {"tile_height", std::int64_t(256)},
           {"predictor", true}});
    run(g);

    if (auto v = validate(out)) {
        CAPTURE(*v);
        CHECK(v->find("is a valid cloud optimized GeoTIFF") != std::string::npos);
    } else {
        MESSAGE("GDAL's COG validator (python3-gdal) not installed: validation skipped");
    }
    // level 0 and the georeference, read back through GDAL
    Graph h(standard_registry());
    NodeId back = h.add("gdal_load", {}, {{"path", out}});
    NodeId orig = h.add("gdal_load", {}, {{"path", in}});
    CHECK(h.info(back).width == 1024);
    CHECK(h.info(back).format == Format::u16);
    REQUIRE(h.info(back).geo);
    CHECK(h.info(back).geo->transform == h.info(orig).geo->transform);
    CHECK(h.info(back).geo->nodata == std::vector<std::optional<double>>{0.0});
    CHECK(h.info(back).geo->crs_wkt.find("UTM zone 32N") != std::string::npos);
    CHECK(tt::max_abs_diff(tt::render(h, back), tt::render(h, orig)) == 0);

    if (!have_gdal_tools()) {
        MESSAGE("gdal_translate not installed: overview comparison skipped");
        return;
    }
    // the overviews: GDAL's COG driver with AVERAGE resampling (which skips
    // nodata) makes the same levels with the same pixels
    std::string ref = (dir / "ref.tif").string();
    REQUIRE(tt::run_command("gdal_translate -q -of COG -co BLOCKSIZE=256 -co RESAMPLING=AVERAGE " + in + " " + ref) ==
            0);
    std::string mine = checksums(out), theirs = checksums(ref);
    CAPTURE(mine);
    CHECK(mine.find("Overviews: 512x384, 256x192") != std::string::npos);
    CHECK(mine == theirs);
}

TEST_CASE("cog: the file's bytes do not depend on threads or the execution tile size") {
    tt::TempDir dir;
    std::string in = geo::write_vrt(dir.path, "utm", utm_raster(700, 500));
    std::string first;
    for (auto [tile, threads] : {std::pair{64, 1}, std::pair{256, 2}, std::pair{1024, 4}}) {
        std::string out = (dir / ("out" + std::to_string(tile) + ".tif")).string();
        Graph g(standard_registry());
        NodeId src = g.add("gdal_load", {}, {{"path", in}});
        g.add("save", {src},
              {{"path", out},
               {"format", std::string("cog")},
               {"tile_width", std::int64_t(128)},
               {"tile_height", std::int64_t(128)},
               {"compression", std::string("zstd")},
               {"predictor", true}});
        run(g, tile, threads);
        std::string bytes = slurp(out);
        REQUIRE(bytes.size() > 1000);
        if (first.empty())
            first = bytes;
        else
            CHECK(bytes == first);
    }
}

TEST_CASE("cog: JPEG-compressed RGB and a COG without overviews are valid too") {
    tt::TempDir dir;
    NodeId src;
    Graph g(standard_registry());
    src = tt::load_image(g, dir, tt::pattern(900, 600, 3), "rgb.png");
    std::string jpeg = (dir / "rgb.tif").string(), flat = (dir / "flat.tif").string();
    g.add("save", {src},
          {{"path", jpeg},
           {"format", std::string("cog")},
           {"compression", std::string("jpeg")},
           {"quality", std::int64_t(90)}});
    g.add("save", {src},
          {{"path", flat},
           {"format", std::string("cog")},
           {"pyramid", false},
           {"compression", std::string("lzw")},
           {"predictor", true}});
    run(g);
    for (const std::string& f : {jpeg, flat}) {
        if (auto v = validate(f)) {
            CAPTURE(f);
            CAPTURE(*v);
            CHECK(v->find("is a valid cloud optimized GeoTIFF") != std::string::npos);
        }
    }
    // lossless one: pixels back exactly; JPEG: close
    Graph h(standard_registry());
    NodeId a = h.add("gdal_load", {}, {{"path", flat}});
    NodeId b = h.add("gdal_load", {}, {{"path", jpeg}});
    Buffer want = tt::render(g, src);
    CHECK(tt::max_abs_diff(tt::render(h, a), want) == 0);
    // JPEG: about as close as libvips's own JPEG at the same quality
    auto mean_error = [&](const Buffer& got) {
        double sum = 0;
        for (int y = 0; y < 600; ++y)
            for (int x = 0; x < 900; ++x)
                for (int k = 0; k < 3; ++k) sum += std::abs(geo::sample(got, x, y, k) - geo::sample(want, x, y, k));
        return sum / (900.0 * 600 * 3);
    };
    const std::string vips_jpeg = (dir / "vips.jpg").string();
    tt::to_vips(want).jpegsave(vips_jpeg.c_str(), vips::VImage::option()->set("Q", 90));
    Graph v(standard_registry());
    NodeId vj = v.add("load", {}, {{"path", vips_jpeg}});
    const double ours = mean_error(tt::render(h, b)), theirs = mean_error(tt::render(v, vj));
    CAPTURE(ours);
    CAPTURE(theirs);
    CHECK(ours > 0);
    CHECK(ours < theirs * 1.15);

    // a COG is tiled: saying otherwise is an error naming the key
    Graph k(standard_registry());
    NodeId s = tt::load_image(k, dir, tt::pattern(64, 64, 1), "grey.png");
    std::string e = tt::error_of([&] {
        k.add("save", {s}, {{"path", flat}, {"format", std::string("cog")}, {"tile", false}});
    });
    CHECK(e.find("key 'tile'") != std::string::npos);
    e = tt::error_of([&] {
        k.add("save", {s},
              {{"path", flat},
               {"format", std::string("cog")},
               {"compression", std::string("jpeg")},
               {"predictor", true}});
    });
    CHECK(e.find("key 'predictor'") != std::string::npos);
}

TEST_CASE("vsimem: a COG written to memory is read by a later node of the same pipeline") {
    tt::TempDir dir;
    geo::Raster a = utm_raster(300, 200);
    a.value = [](int, int, int) { return 1.0; };
    geo::write_vrt(dir.path, "a", a);
    geo::Raster b = a;
    b.width = b.height = 100;
    b.transform[0] += 50 * 10;  // 50 px right
    b.transform[3] -= 20 * 10;  // 20 px down
    b.value = [](int x, int y, int) { return double(100 + x + y); };
    geo::write_vrt(dir.path, "b", b);
    const std::string mem = "/vsimem/tessera-test-" + std::to_string(::getpid()) + "/b.tif";
    const std::string text = R"({"version": 1, "nodes": [
        {"id": "b", "op": "gdal_load", "path": "b.vrt"},
        {"id": "to_memory", "op": "save", "inputs": ["b"], "path": ")" +
                             mem + R"(", "format": "cog", "tile_width": 64, "tile_height": 64},
        {"id": "from_memory", "op": "gdal_load", "path": ")" +
                             mem + R"("},
        {"id": "a", "op": "gdal_load", "path": "a.vrt"},
        {"id": "m", "op": "merge", "inputs": ["a", "from_memory"], "method": "last"},
        {"id": "out", "op": "save", "inputs": ["m"], "path": "merged.tif", "tile": true}]})";
    Graph g = parse_pipeline(text, standard_registry(), "p.json", dir.path.string());
    // the reader was linked to its writer: it comes after it
    const Node& reader = g.node(g.find("from_memory"));
    REQUIRE(reader.inputs.size() == 1);
    CHECK(g.node(reader.inputs[0]).id == "to_memory");
    run(g, 64);

    Graph h(standard_registry());
    NodeId out = h.add("gdal_load", {}, {{"path", (dir / "merged.tif").string()}});
    Buffer px = tt::render(h, out);
    CHECK(geo::sample(px, 0, 0) == 1);
    CHECK(geo::sample(px, 50, 20) == 100);
    CHECK(geo::sample(px, 149, 119) == 100 + 99 + 99);
    CHECK(geo::sample(px, 150, 120) == 1);
    // the in-memory file is a valid COG too, readable by anyone after the run
    NodeId again = h.add("gdal_load", {}, {{"path", mem}});
    CHECK(h.info(again).width == 100);

    // reading a file and saving over it is not linked (it would be a
    // cycle) and is refused: an output may not replace its own input
    // (issue 16); the file is left as it was
    const std::string in_place = R"({"version": 1, "nodes": [
        {"id": "r", "op": "gdal_load", "path": "merged.tif"},
        {"id": "w", "op": "save", "inputs": ["r"], "path": "merged.tif", "tile": true}]})";
    CHECK(tt::error_of([&] {
              parse_pipeline(in_place, standard_registry(), "p.json", dir.path.string());
          }).find("node 'w' (op save), key 'path'") != std::string::npos);
    Graph v(standard_registry());
    CHECK(tt::max_abs_diff(tt::render(v, v.add("gdal_load", {}, {{"path", (dir / "merged.tif").string()}})), px) == 0);

    // bands of a file the pipeline has yet to write cannot be picked
    const std::string bad = R"({"version": 1, "nodes": [
        {"id": "b", "op": "gdal_load", "path": "b.vrt"},
        {"id": "w", "op": "save", "inputs": ["b"], "path": "/vsimem/x.tif", "format": "cog"},
        {"id": "r", "op": "gdal_load", "path": "/vsimem/x.tif", "bands": [1]}]})";
    std::string e = tt::error_of([&] { parse_pipeline(bad, standard_registry(), "p.json", dir.path.string()); });
    CHECK(e.find("node 'r' (op gdal_load), key 'bands'") != std::string::npos);
}

TEST_CASE("vsimem: C++ runs write a COG to memory and the next graph merges it at once") {
    tt::TempDir dir;
    geo::Raster a = utm_raster(256, 256);
    std::string in = geo::write_vrt(dir.path, "a", a);
    const std::string mem = "/vsimem/tessera-api-" + std::to_string(::getpid()) + ".tif";
    {
        Graph g(standard_registry());
        NodeId src = g.add("gdal_load", {}, {{"path", in}});
        NodeId shifted = g.add("extract_area", {src},
                               {{"left", std::int64_t(128)},
                                {"top", std::int64_t(0)},
                                {"width", std::int64_t(128)},
                                {"height", std::int64_t(256)}});
        g.add("save", {shifted}, {{"path", mem}, {"format", std::string("cog")}});
        run(g);
    }
    // no close, no reopen: the run has finished the file
    Graph g(standard_registry());
    NodeId right = g.add("gdal_load", {}, {{"path", mem}});
    NodeId whole = g.add("gdal_load", {}, {{"path", in}});
    REQUIRE(g.info(right).geo);
    CHECK(g.info(right).geo->transform[0] == 600000 + 128 * 10);
    NodeId m = g.add("merge", {right, whole}, {{"method", std::string("first")}});
    CHECK(g.info(m).width == 256);
    CHECK(tt::max_abs_diff(tt::render(g, m), tt::render(g, whole)) == 0);
}

TEST_CASE("pipeline: GDAL connection strings are not taken for relative paths") {
    tt::TempDir dir;
    const std::string text = R"({"version": 1, "nodes": [
        {"id": "s2", "op": "gdal_load", "path": "NOSUCHDRIVER:MTD.xml:10m:EPSG_32632"}]})";
    std::string e = tt::error_of([&] { parse_pipeline(text, standard_registry(), "p.json", dir.path.string()); });
    CAPTURE(e);
    CHECK(e.find("'NOSUCHDRIVER:MTD.xml:10m:EPSG_32632'") != std::string::npos);
    CHECK(e.find(dir.path.string()) == std::string::npos);
}
