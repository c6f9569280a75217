// reproject: GDAL's warper a tile at a time, checked against gdalwarp on the
// same file (exact transformation, -et 0), for every resampling, with the
// output grid gdalwarp picks or one given by res and bounds.
#include <doctest/doctest.h>

#include "geo_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

bool have_gdalwarp() {
    return tt::run_command("command -v gdalwarp >/dev/null && command -v gdal_translate >/dev/null") == 0;
}

// A uint16 UTM raster with sharp value steps (they show any sub-pixel
// shift) and a nodata corner, as a GeoTIFF.
std::string utm_tiff(const tt::TempDir& dir) {
    geo::Raster r;
    r.width = 700;
    r.height = 500;
    r.format = Format::u16;
    r.srs = "EPSG:32632";
    r.nodata = 0;
    r.transform = {500000, 10, 0, 5000000, 0, -10};
    r.value = [](int x, int y, int) { return x < 60 && y < 40 ? 0.0 : double((x * 7 + y * 3) % 4000 + 1); };
    const std::string vrt = geo::write_vrt(dir.path, "utm", r), tif = (dir / "utm.tif").string();
    REQUIRE(tt::run_command("gdal_translate -q " + vrt + " " + tif) == 0);
    return tif;
}

}  // namespace

TEST_CASE("reproject: equals gdalwarp -et 0 for nearest bilinear and cubic - whatever the tile size") {
    if (!have_gdalwarp()) {
        MESSAGE("gdalwarp not installed: reproject comparison skipped");
        return;
    }
    tt::TempDir dir;
    const std::string in = utm_tiff(dir);
    struct Case {
        const char* resampling;
        const char* gdal;
        Params extra;
        std::string gdal_extra;
    };
    const std::vector<Case> cases{
        {"nearest", "near", {}, ""},
        {"bilinear", "bilinear", {}, ""},
        {"cubic", "cubic", {}, ""},
        {"bilinear", "bilinear", {{"res", std::vector<double>{0.0003}}}, "-tr 0.0003 0.0003"},
        {"nearest",
         "near",
         {{"bounds", std::vector<double>{9.0, 45.1, 9.05, 45.13}}, {"res", std::vector<double>{0.0001, 0.00012}}},
         "-te 9.0 45.1 9.05 45.13 -tr 0.0001 0.00012"},
    };
    for (const Case& c : cases) {
        INFO(c.resampling, " ", c.gdal_extra);
        const std::string ref = (dir / "ref.tif").string();
        REQUIRE(tt::run_command("gdalwarp -q -overwrite -et 0 -t_srs EPSG:4326 -r " + std::string(c.gdal) + " " +
                                c.gdal_extra + " " + in + " " + ref) == 0);
        Graph g(standard_registry());
        NodeId src = g.add("gdal_load", {}, {{"path", in}});
        Params p = c.extra;
        p.set("crs", std::string("EPSG:4326"));
        p.set("resampling", std::string(c.resampling));
        NodeId r = g.add("reproject", {src}, p);
        NodeId want = g.add("gdal_load", {}, {{"path", ref}});
        const ImageInfo &a = g.info(r), &b = g.info(want);
        CHECK(a.width == b.width);
        CHECK(a.height == b.height);
        for (int k = 0; k < 6; ++k) CHECK(a.geo->transform[k] == doctest::Approx(b.geo->transform[k]).epsilon(1e-12));
        CHECK(a.geo->nodata == b.geo->nodata);
        if (a.width != b.width || a.height != b.height) continue;
        Buffer expected = tt::render(g, want);
        CHECK(tt::max_abs_diff(tt::render(g, r, 64, 2), expected) == 0);
        CHECK(tt::max_abs_diff(tt::render(g, r, 256, 1), expected) == 0);
    }
}

TEST_CASE("reproject: errors name the key") {
    tt::TempDir dir;
    geo::Raster r;
    r.srs = "EPSG:32632";
    r.transform = {500000, 10, 0, 5000000, 0, -10};
    const std::string in = geo::write_vrt(dir.path, "a", r);
    Graph g(standard_registry());
    NodeId src = g.add("gdal_load", {}, {{"path", in}});
    std::string e = tt::error_of([&] { g.add("reproject", {src}, {{"crs", std::string("EPSG:999999")}}, "rp"); });
    CHECK(e.find("node 'rp' (op reproject), key 'crs'") != std::string::npos);
    e = tt::error_of([&] {
        g.add("reproject", {src}, {{"crs", std::string("EPSG:4326")}, {"resampling", std::string("lanczos")}});
    });
    CHECK(e.find("key 'resampling'") != std::string::npos);
    e = tt::error_of([&] {
        g.add("reproject", {src}, {{"crs", std::string("EPSG:4326")}, {"res", std::vector<double>{-1}}});
    });
    CHECK(e.find("key 'res'") != std::string::npos);
    NodeId plain = tt::load_image(g, dir, tt::pattern(8, 8, 1), "plain.png");
    e = tt::error_of([&] { g.add("reproject", {plain}, {{"crs", std::string("EPSG:4326")}}); });
    CHECK(e.find("has no CRS") != std::string::npos);
}
