// calc: NDVI of two Sentinel-2-shaped u16 bands equals gdal_calc.py (numpy,
// the same double arithmetic and nodata rule: max |diff| 0 in float32);
// per-band and indexed forms on 8-bit RGB and 16-bit equal libvips
// arithmetic; tile size changes no bit; errors name node, key and the
// position in the expression; the NDVI example pipeline runs to a COG.
#include <doctest/doctest.h>

#include <cmath>

#include "geo_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;
using vips::VImage;

namespace {

// A Sentinel-2-shaped band scaled down: u16 reflectance-like values on a
// UTM 10 m grid, nodata 0 in a wedge at the south-west (the swath edge).
geo::Raster s2_band(int band, int w = 300, int h = 220) {
    geo::Raster r;
    r.width = w;
    r.height = h;
    r.format = Format::u16;
    r.srs = "EPSG:32632";
    r.nodata = 0;
    r.transform = {300000.0, 10.0, 0, 5000040, 0, -10.0};
    r.value = [band, h](int x, int y, int) {
        if (x + (h - y) < 60) return 0.0;
        // red low and smooth, nir higher with texture: NDVI spans about -0.3..0.9
        return band == 4 ? double(300 + (x * 7 + y * 3) % 1900) : double(200 + (x * 13 + y * 29) % 5800);
    };
    return r;
}

bool have_gdal_calc() {
    return tt::run_command(
               "command -v gdal_calc.py >/dev/null 2>&1 && /usr/bin/python3 -c 'import osgeo' 2>/dev/null") == 0;
}

}  // namespace

TEST_CASE("calc: NDVI of two u16 bands equals gdal_calc.py with its nodata rule") {
    tt::TempDir dir;
    const std::string b04 = geo::write_vrt(dir.path, "B04", s2_band(4));
    const std::string b08 = geo::write_vrt(dir.path, "B08", s2_band(8));
    Graph g(standard_registry());
    NodeId red = g.add("gdal_load", {}, {{"path", b04}});
    NodeId nir = g.add("gdal_load", {}, {{"path", b08}});
    NodeId ndvi = g.add("calc", {red, nir},
                        {{"names", std::string("B04 B08")},
                         {"expression", std::string("(B08 - B04) / (B08 + B04)")},
                         {"nodata", -2.0}});
    CHECK(g.info(ndvi).format == Format::f32);
    CHECK(g.info(ndvi).bands == 1);
    REQUIRE(g.info(ndvi).geo);
    CHECK(g.info(ndvi).geo->nodata == std::vector<std::optional<double>>{-2.0});
    CHECK(g.info(ndvi).geo->transform == g.info(red).geo->transform);
    Buffer tiled = tt::render(g, ndvi, 64, 2);
    CHECK(tt::max_abs_diff(tiled, tt::render(g, ndvi, 4096, 1)) == 0);
    // the wedge is nodata; a valid pixel is the formula
    VImage got = tt::to_vips(tiled);
    CHECK(got.getpoint(0, 219)[0] == -2.0);
    const double r = 300 + (100 * 7 + 50 * 3) % 1900, n = 200 + (100 * 13 + 50 * 29) % 5800;
    CHECK(got.getpoint(100, 50)[0] == double(float((n - r) / (n + r))));
    if (!have_gdal_calc()) {
        MESSAGE("gdal_calc.py with python3-gdal not installed: the GDAL comparison is skipped");
        return;
    }
    // gdal_calc.py sets nodata pixels as 0 * result + nodata, which is NaN
    // where the result is (0 / 0 in the wedge): the divisor is kept above 0
    // there, as no valid pixel has B04 + B08 below 500.
    const fs::path ref = dir / "ref.tif";
    std::string out;
    REQUIRE_MESSAGE(tt::run_command("/usr/bin/python3 $(command -v gdal_calc.py) --quiet -A " + b04 + " -B " + b08 +
                                        " --calc='(1.0*B - A) / maximum(1.0*B + A, 1)' --NoDataValue=-2 --type=Float32 "
                                        "--outfile=" +
                                        ref.string(),
                                    &out) == 0,
                    out);
    // numpy divides in double and GDAL stores float32, as calc does: exact
    CHECK(tt::max_abs_diff(tiled, VImage::new_from_file(ref.c_str())) == 0);
}

TEST_CASE("calc: per-band and indexed forms on u8 RGB and u16 equal libvips arithmetic") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage rgb = tt::pattern(143, 101, 3);
    VImage grey = (tt::pattern(143, 101, 1, VIPS_FORMAT_UCHAR, 2) * 257).cast(VIPS_FORMAT_USHORT).copy_memory();
    NodeId a = tt::load_image(g, dir, rgb, "rgb.v");
    NodeId b = tt::load_image(g, dir, grey, "g16.v");
    VImage drgb = rgb.cast(VIPS_FORMAT_DOUBLE), dgrey = grey.cast(VIPS_FORMAT_DOUBLE);
    // bare names: once per band; the one-band input repeats
    NodeId per = g.add("calc", {a, b}, {{"expression", std::string("A * 2 - B / 7")}});
    CHECK(g.info(per).bands == 3);
    tt::check_pixels(g, per, (drgb * 2 - dgrey / 7).cast(VIPS_FORMAT_FLOAT));
    // indexed bands: one band; u16 output rounded to nearest and clipped
    NodeId idx = g.add("calc", {a, b},
                       {{"names", std::string("rgb, g")},
                        {"expression", std::string("rgb[1] * 100 + rgb[3] / 3 - g")},
                        {"format", std::string("u16")}});
    CHECK(g.info(idx).bands == 1);
    CHECK(g.info(idx).format == Format::u16);
    VImage want = (drgb[0] * 100 + drgb[2] / 3 - dgrey).rint();
    want = (want < 0).ifthenelse(0, want);
    tt::check_pixels(g, idx, want.cast(VIPS_FORMAT_USHORT));
    // u8 output of a per-band expression with muparser functions and ?:
    NodeId fn =
        g.add("calc", {a},
              {{"expression", std::string("A > 100 ? sqrt(A) * 10 : A / 3")}, {"format", std::string("uchar")}});
    VImage f = (drgb > 100).ifthenelse(drgb.pow(0.5) * 10, drgb / 3).rint();
    tt::check_pixels(g, fn, ((f > 255).ifthenelse(255, f)).cast(VIPS_FORMAT_UCHAR));
    // an input the expression never names is never pulled, and sets no bands
    NodeId one = g.add("calc", {a, b}, {{"expression", std::string("B + 1")}});
    CHECK(g.info(one).bands == 1);
    tt::check_pixels(g, one, (dgrey + 1).cast(VIPS_FORMAT_FLOAT));
}

TEST_CASE("calc: errors name the node and key and the position in the expression") {
    Graph g(standard_registry());
    NodeId b =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}, {"bands", std::int64_t(3)}});
    NodeId c =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}, {"bands", std::int64_t(2)}});
    NodeId d = g.add("black", {}, {{"width", std::int64_t(11)}, {"height", std::int64_t(7)}});
    const Params names{{"names", std::string("B04 B08")}};
    auto with = [&](std::string e) {
        Params p = names;
        p.set("expression", std::move(e));
        return p;
    };
    CHECK_THROWS_WITH_AS(g.add("calc", {b, b}, with("(B08 - C) / 2"), "ndvi"),
                         doctest::Contains("node 'ndvi' (op calc), key 'expression': Unexpected token \"C\" found at "
                                           "position 7"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("calc", {b, b}, with("B08 +* B04"), "ndvi"),
                         doctest::Contains("(position 5, counted from 0, in \"B08 +* B04\")"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("calc", {b, b}, with("B08[4]"), "ndvi"), doctest::Contains("\"B08[4]\""), GraphError);
    CHECK_THROWS_WITH_AS(g.add("calc", {b}, with("B04"), "ndvi"),
                         doctest::Contains("node 'ndvi' (op calc), key 'names': names 2 inputs and calc has 1"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("calc", {b, c}, {{"expression", std::string("A + B")}}, "sum"),
                         doctest::Contains("key 'expression': names 'B' bare (per band) with 2 bands"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("calc", {b, d}, {{"expression", std::string("A[1] + B")}}, "sum"),
                         doctest::Contains("input 1 ('B') is 11x7"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("calc", {b}, {{"expression", std::string("A, A[1]")}}, "two"),
                         doctest::Contains("key 'expression': has 2 comma-separated expressions"), GraphError);
}

TEST_CASE("calc: the NDVI example pipeline runs to a COG on a Sentinel-2-shaped fixture") {
    if (tt::run_command("command -v gdal_translate >/dev/null 2>&1") != 0) {
        MESSAGE("gdal_translate not installed: the example's fixture cannot be written as GeoTIFF");
        return;
    }
    tt::TempDir dir;
    const fs::path ex = dir / "ndvi";
    fs::copy(tt::source_dir() / "examples" / "ndvi", ex, fs::copy_options::recursive);
    for (int band : {4, 8}) {
        const std::string name = band == 4 ? "B04" : "B08";
        const std::string vrt = geo::write_vrt(dir.path, name, s2_band(band, 700, 500));
        REQUIRE(tt::run_command("gdal_translate -q " + vrt + " " + (ex / (name + ".tif")).string()) == 0);
    }
    std::string out;
    REQUIRE_MESSAGE(tt::run_command(tt::tessera_binary() + " run -q " + (ex / "ndvi.json").string(), &out) == 0, out);
    VImage got = VImage::new_from_file((ex / "ndvi.tif").c_str());
    REQUIRE(got.width() == 700);
    REQUIRE(got.height() == 500);
    REQUIRE(got.format() == VIPS_FORMAT_UCHAR);
    // every pixel: 100 ndvi + 100 in float, clipped, truncated (linear uchar); nodata 0
    const geo::Raster r4 = s2_band(4, 700, 500), r8 = s2_band(8, 700, 500);
    Buffer px = tt::from_vips(got);
    int wrong = 0;
    for (int y = 0; y < 500; ++y)
        for (int x = 0; x < 700; ++x) {
            const double a = r4.value(x, y, 0), b = r8.value(x, y, 0);
            const float v = a == 0 ? -2.0f : float((b - a) / (b + a));
            const float t = 100.0f * v + 100.0f;
            const int want = int(t < 0 ? 0.0f : t > 255 ? 255.0f : t);
            if (px.view().row<std::uint8_t>(y)[x] != want) ++wrong;
        }
    CHECK(wrong == 0);
    // the COG keeps the bands' georeference and passes GDAL's validator
    std::string info;
    REQUIRE(tt::run_command("gdalinfo " + (ex / "ndvi.tif").string(), &info) == 0);
    CHECK(info.find("32632") != std::string::npos);
    const char* validator = "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py";
    if (fs::exists(validator)) {
        std::string v;
        tt::run_command("/usr/bin/python3 " + std::string(validator) + " " + (ex / "ndvi.tif").string() + " 2>&1", &v);
        CAPTURE(v);
        CHECK(v.find("is a valid cloud optimized GeoTIFF") != std::string::npos);
    }
}
