// gdal_load: headers with the georeference, pixels as GDAL reads them across
// tile seams, band selection, errors; the GeoTIFF tags of save.
#include <doctest/doctest.h>

#include "geo_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

bool have(const char* tool) { return tt::run_command(std::string("command -v ") + tool + " >/dev/null") == 0; }

geo::Raster pattern_raster(int w, int h, int bands, Format f) {
    geo::Raster r;
    r.width = w;
    r.height = h;
    r.bands = bands;
    r.format = f;
    r.srs = "EPSG:32632";
    r.nodata = 7;
    r.transform = {600000, 10, 0, 5000000, 0, -10};
    r.value = [](int x, int y, int b) { return double((x * 37 + y * 101 + b * 1009) % 65000); };
    return r;
}

}  // namespace

TEST_CASE("gdal_load: the header carries size bands format geotransform CRS and nodata") {
    tt::TempDir dir;
    std::string path = geo::write_vrt(dir.path, "p", pattern_raster(70, 53, 3, Format::u16));
    Graph g(standard_registry());
    NodeId n = g.add("gdal_load", {}, {{"path", path}});
    const ImageInfo& info = g.info(n);
    CHECK(info.width == 70);
    CHECK(info.height == 53);
    CHECK(info.bands == 3);
    CHECK(info.format == Format::u16);
    CHECK(info.interpretation == Interpretation::multiband);
    REQUIRE(info.geo);
    CHECK(info.geo->transform == std::array<double, 6>{600000, 10, 0, 5000000, 0, -10});
    CHECK(info.geo->crs_wkt.find("UTM zone 32N") != std::string::npos);
    CHECK(info.geo->nodata == std::vector<std::optional<double>>(3, 7.0));
    // extract_area moves the origin
    NodeId e = g.add("extract_area", {n},
                     {{"left", std::int64_t(5)},
                      {"top", std::int64_t(2)},
                      {"width", std::int64_t(10)},
                      {"height", std::int64_t(10)}});
    CHECK(g.info(e).geo->transform == std::array<double, 6>{600050, 10, 0, 4999980, 0, -10});
    // a raster without geotransform has no georeference
    std::string png = tt::save(tt::pattern(9, 9, 1), dir / "plain.png");
    NodeId p = g.add("gdal_load", {}, {{"path", png}});
    CHECK(!g.info(p).geo);
    CHECK(g.info(p).interpretation == Interpretation::bw);
}

TEST_CASE("gdal_load: pixels equal GDAL's reads across tile seams") {
    tt::TempDir dir;
    for (Format f : {Format::u8, Format::u16, Format::f32}) {
        CAPTURE(format_name(f));
        geo::Raster r = pattern_raster(70, 53, f == Format::u16 ? 3 : 1, f);
        if (f == Format::u8) r.value = [](int x, int y, int) { return double((x * 7 + y * 13) % 256); };
        std::string vrt = geo::write_vrt(dir.path, "p" + std::string(format_name(f)), r);
        std::vector<std::string> paths{vrt};
        // a tiled, compressed GeoTIFF of it (blocks of 16: seams everywhere)
        if (have("gdal_translate")) {
            std::string tif = (dir / ("p" + std::string(format_name(f)) + ".tif")).string();
            REQUIRE(tt::run_command("gdal_translate -q -co TILED=YES -co BLOCKXSIZE=16 -co BLOCKYSIZE=16 -co "
                                    "COMPRESS=DEFLATE " +
                                    vrt + " " + tif) == 0);
            paths.push_back(tif);
        }
        for (const std::string& path : paths) {
            CAPTURE(path);
            Graph g(standard_registry());
            NodeId n = g.add("gdal_load", {}, {{"path", path}});
            Buffer want(nullptr, {0, 0, r.width, r.height}, r.bands, f);
            for (int y = 0; y < r.height; ++y)
                for (int x = 0; x < r.width; ++x)
                    for (int b = 0; b < r.bands; ++b)
                        dispatch_format(f, [&](auto t) {
                            using T = decltype(t);
                            want.tile().row<T>(y)[std::size_t(x) * r.bands + b] = T(r.value(x, y, b));
                        });
            for (int tile : {16, 37})
                for (int threads : {1, 2}) {
                    CAPTURE(tile);
                    CAPTURE(threads);
                    CHECK(tt::max_abs_diff(tt::render(g, n, tile, threads), want) == 0);
                }
            // and libvips, reading the same file, agrees
            if (path.ends_with(".tif"))
                CHECK(tt::max_abs_diff(tt::render(g, n, 64, 2), vips::VImage::new_from_file(path.c_str())) == 0);
        }
    }
}

TEST_CASE("gdal_load: bands selects and orders bands") {
    tt::TempDir dir;
    geo::Raster r = pattern_raster(20, 10, 3, Format::u16);
    std::string path = geo::write_vrt(dir.path, "p", r);
    Graph g(standard_registry());
    NodeId n = g.add("gdal_load", {}, {{"path", path}, {"bands", std::vector<std::int64_t>{3, 1}}});
    CHECK(g.info(n).bands == 2);
    Buffer b = tt::render(g, n, 16, 2);
    for (int y = 0; y < 10; ++y)
        for (int x = 0; x < 20; ++x) {
            CHECK(geo::sample(b, x, y, 0) == r.value(x, y, 2));
            CHECK(geo::sample(b, x, y, 1) == r.value(x, y, 0));
        }
}

TEST_CASE("gdal_load: errors name the file or the key") {
    tt::TempDir dir;
    Graph g(standard_registry());
    std::string missing = (dir / "nothing.tif").string();
    std::string e = tt::error_of([&] { g.add("gdal_load", {}, {{"path", missing}}, "src"); });
    CHECK(e.find("node 'src'") != std::string::npos);
    CHECK(e.find("nothing.tif") != std::string::npos);
    CHECK(e.find("GDAL cannot open it") != std::string::npos);

    std::string path = geo::write_vrt(dir.path, "p", pattern_raster(8, 8, 2, Format::u8));
    e = tt::error_of([&] {
        g.add("gdal_load", {}, {{"path", path}, {"bands", std::vector<std::int64_t>{1, 3}}}, "b");
    });
    CHECK(e.find("key 'bands'") != std::string::npos);
    CHECK(e.find("band 3 does not exist") != std::string::npos);

    // a file that goes bad after the graph was built fails at read, naming it
    NodeId n = g.add("gdal_load", {}, {{"path", path}}, "later");
    fs::remove(dir / "p.raw");
    e = tt::error_of([&] { tt::render(g, n, 16, 1); });
    CHECK(e.find("p.vrt") != std::string::npos);
}

TEST_CASE("save: a georeferenced image becomes a GeoTIFF - tiled pyramid and untiled") {
    if (!have("gdalinfo")) {
        MESSAGE("gdalinfo not installed: check skipped");
        return;
    }
    tt::TempDir dir;
    std::string path = geo::write_vrt(dir.path, "p", pattern_raster(300, 200, 1, Format::u16));
    for (bool tiled : {true, false}) {
        CAPTURE(tiled);
        std::string out = (dir / (tiled ? "tiled.tif" : "strips.tif")).string();
        Graph g(standard_registry());
        NodeId n = g.add("gdal_load", {}, {{"path", path}});
        Params p{{"path", out}};
        if (tiled) {
            p.set("tile", true);
            p.set("pyramid", true);
            p.set("compression", std::string("deflate"));
            p.set("tile_width", std::int64_t(64));
            p.set("tile_height", std::int64_t(64));
        }
        g.add("save", {n}, p);
        Evaluator(g).run_sinks();
        std::string info;
        REQUIRE(tt::run_command("gdalinfo " + out, &info) == 0);
        CAPTURE(info);
        CHECK(info.find("Origin = (600000.000000000000000,5000000.000000000000000)") != std::string::npos);
        CHECK(info.find("Pixel Size = (10.000000000000000,-10.000000000000000)") != std::string::npos);
        CHECK(info.find("UTM zone 32N") != std::string::npos);
        CHECK(info.find("NoData Value=7") != std::string::npos);
        if (tiled) CHECK(info.find("Overviews: 150x100, 75x50") != std::string::npos);
        // nothing left beside the output
        int files = 0;
        for (auto& entry : fs::directory_iterator(dir.path)) files += entry.path().filename().string().starts_with(".");
        CHECK(files == 0);
        // the pixels are unchanged
        Graph back(standard_registry());
        NodeId b = back.add("gdal_load", {}, {{"path", out}});
        CHECK(tt::max_abs_diff(tt::render(back, b), tt::render(g, n)) == 0);
    }
}
