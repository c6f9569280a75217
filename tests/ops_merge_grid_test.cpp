// merge's rules on headers alone (tessera/ops/merge.hpp): the inputs it
// takes, rasterio.merge's output grid (res, bounds, tap, rounding half to
// even), the output nodata, and gdal_merge.py's window rounding. The op's
// pixels are ops_merge_test.cpp's.
#include <doctest/doctest.h>

#include <cmath>

#include "support.hpp"
#include "tessera/ops/merge.hpp"

using namespace tessera;

namespace {

// A north-up header of w x h pixels of `res` with its top-left at (x, y).
ImageInfo geo_header(int w, int h, double x, double y, double res, double res_y = 0,
                     std::optional<double> nodata = std::nullopt, Format f = Format::u8) {
    ImageInfo i = tt::header(w, h, 1, f);
    GeoRef g;
    g.transform = {x, res, 0, y, 0, -(res_y > 0 ? res_y : res)};
    g.crs_wkt = "LOCAL_CS[\"test\"]";
    if (nodata) g.nodata = {nodata};
    i.geo = g;
    return i;
}

// The key a ParamError names and its message, or ("", "(no error)").
std::pair<std::string, std::string> param_error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const ParamError& e) {
        return {e.key(), e.what()};
    }
    return {"", "(no error)"};
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("merge grid: by default input 0's resolution over the union of the inputs") {
    // 4x3 of 10 at (100, 200) and 6x6 of 5 at (130, 190): union 100..160 x 160..200
    const std::vector<ImageInfo> in{geo_header(4, 3, 100, 200, 10), geo_header(6, 6, 130, 190, 5)};
    const MergeGrid g = plan_merge_grid({}, in);
    CHECK(g.rx == 10);
    CHECK(g.ry == 10);
    CHECK(g.w == 100);
    CHECK(g.e == 160);
    CHECK(g.s == 160);
    CHECK(g.n == 200);
    CHECK(g.width == 6);
    CHECK(g.height == 4);
}

TEST_CASE("merge grid: res and bounds given - sizes rounded half to even as Python's round") {
    const std::vector<ImageInfo> in{geo_header(4, 3, 100, 200, 10)};
    // 25 / 10 = 2.5 -> 2 and 35 / 10 = 3.5 -> 4
    MergeGrid g =
        plan_merge_grid({{"res", std::vector<double>{10}}, {"bounds", std::vector<double>{0, 0, 25, 35}}}, in);
    CHECK(g.width == 2);
    CHECK(g.height == 4);
    CHECK(g.w == 0);
    CHECK(g.n == 35);
    // two resolutions: x then y
    g = plan_merge_grid({{"res", std::vector<double>{5, 20}}}, in);
    CHECK(g.rx == 5);
    CHECK(g.ry == 20);
    CHECK(g.width == 8);
    CHECK(g.height == 2);  // 30 / 20 = 1.5 -> 2
}

TEST_CASE("merge grid: tap widens the bounds to multiples of the resolution") {
    const std::vector<ImageInfo> in{geo_header(4, 3, 100, 200, 10)};
    const MergeGrid g = plan_merge_grid(
        {{"res", std::vector<double>{10}}, {"bounds", std::vector<double>{3, 7, 27, 33}}, {"tap", true}}, in);
    CHECK(g.w == 0);
    CHECK(g.s == 0);
    CHECK(g.e == 30);
    CHECK(g.n == 40);
    CHECK(g.width == 3);
    CHECK(g.height == 4);
}

TEST_CASE("merge grid: malformed or empty grids are errors naming res or bounds") {
    const std::vector<ImageInfo> in{geo_header(4, 3, 100, 200, 10)};
    auto [key, what] = param_error_of([&] { plan_merge_grid({{"res", std::vector<double>{1, 2, 3}}}, in); });
    CHECK(key == "res");
    CHECK(has(what, "got 3"));
    std::tie(key, what) = param_error_of([&] { plan_merge_grid({{"res", std::vector<double>{-1}}}, in); });
    CHECK(key == "res");
    CHECK(has(what, "positive"));
    std::tie(key, what) = param_error_of([&] { plan_merge_grid({{"bounds", std::vector<double>{0, 0, 1}}}, in); });
    CHECK(key == "bounds");
    CHECK(has(what, "four numbers"));
    std::tie(key, what) = param_error_of([&] { plan_merge_grid({{"bounds", std::vector<double>{5, 0, 1, 9}}}, in); });
    CHECK(key == "bounds");
    CHECK(has(what, "west must be below east"));
    // 1 unit of extent at a resolution of 10: round(0.1) = 0 pixels
    std::tie(key, what) = param_error_of([&] { plan_merge_grid({{"bounds", std::vector<double>{0, 0, 1, 1}}}, in); });
    CHECK(key == "bounds");
    CHECK(has(what, "0 x 0 pixels"));
    std::tie(key, what) = param_error_of([&] { plan_merge_grid({{"res", std::vector<double>{1e-6}}}, in); });
    CHECK(key == "res");
    CHECK(has(what, "check bounds and res"));
}

TEST_CASE("merge inputs: ungeoreferenced rotated flipped and mismatched inputs are refused naming the input") {
    const ImageInfo a = geo_header(4, 3, 100, 200, 10);
    ImageInfo rotated = a, flipped = a, bands = a, crs = a, none = a;
    rotated.geo->transform[2] = 0.5;
    flipped.geo->transform[5] = 10;
    bands.bands = 3;
    crs.geo->crs_wkt = "LOCAL_CS[\"other\"]";
    none.geo.reset();
    CHECK_NOTHROW(check_merge_inputs(std::vector<ImageInfo>{a, a}));
    for (const auto& [bad, words] : std::vector<std::pair<ImageInfo, std::string>>{{none, "no georeference"},
                                                                                   {rotated, "is rotated"},
                                                                                   {flipped, "is flipped"},
                                                                                   {bands, "has 3 bands"},
                                                                                   {crs, "'other'"}}) {
        CAPTURE(words);
        const auto [key, what] = param_error_of([&] { check_merge_inputs(std::vector<ImageInfo>{a, bad}); });
        CHECK(key == "inputs");
        CHECK(has(what, "input 1 "));
        CHECK(has(what, words));
    }
}

TEST_CASE("merge nodata: given or input 0's - and refused where the output format cannot hold it") {
    const std::vector<ImageInfo> in{geo_header(4, 3, 100, 200, 10, 0, 300.0, Format::u16)};
    CHECK(merge_nodata({}, in, Format::u16) == 300.0);
    CHECK(merge_nodata({{"nodata", 7.0}}, in, Format::u16) == 7.0);
    CHECK_FALSE(merge_nodata({}, std::vector<ImageInfo>{geo_header(4, 3, 100, 200, 10)}, Format::u8));
    // input 0's 300 in a uint8 output: the dtype asked for is the fault
    auto [key, what] = param_error_of([&] { merge_nodata({}, in, Format::u8); });
    CHECK(key == "dtype");
    CHECK(has(what, "input 0's nodata 300"));
    std::tie(key, what) = param_error_of([&] { merge_nodata({{"nodata", 1.5}}, in, Format::u16); });
    CHECK(key == "nodata");
    CHECK(has(what, "cannot be held by u16"));
    std::tie(key, what) = param_error_of([&] { merge_nodata({{"nodata", 1e39}}, in, Format::f32); });
    CHECK(key == "nodata");
    CHECK(has(what, "beyond the range of f32"));
    // a NaN nodata (an input's; a parameter must be finite) fits any float
    const std::vector<ImageInfo> nan_in{geo_header(4, 3, 100, 200, 10, 0, double(NAN), Format::f32)};
    CHECK(std::isnan(*merge_nodata({}, nan_in, Format::f32)));
}

TEST_CASE("merge window: gdal_merge.py's rounding - offset floor(x + 0.1) and size floor(x + 0.5)") {
    MergeGrid grid;
    grid.rx = grid.ry = 1;
    grid.w = 0, grid.s = 0, grid.e = 100, grid.n = 100;
    grid.width = grid.height = 100;
    // 5 x 4 at (10.95, 79.15): offset 10.95 -> 11, 20.85 -> 20
    auto m = merge_window(geo_header(5, 4, 10.95, 79.15, 1), grid);
    REQUIRE(m);
    CHECK(m->unclipped == Rect{11, 20, 5, 4});
    CHECK(m->window == Rect{11, 20, 5, 4});
    CHECK(m->fx == 0);
    CHECK(m->fy == 0);
    CHECK(m->fw == doctest::Approx(5));
    CHECK(m->fh == doctest::Approx(4));
    // hanging over the north-west corner: only its part inside, from its pixel (3, 2)
    m = merge_window(geo_header(10, 10, -3, 102, 1), grid);
    REQUIRE(m);
    CHECK(m->window == Rect{0, 0, 7, 8});
    CHECK(m->fx == 3);
    CHECK(m->fy == 2);
    CHECK(m->fw == 7);
    CHECK(m->fh == 8);
    // another resolution: 4 input pixels of 2.5 over 10 output pixels
    m = merge_window(geo_header(4, 4, 20, 50, 2.5), grid);
    REQUIRE(m);
    CHECK(m->window == Rect{20, 50, 10, 10});
    CHECK(m->fw == 4);
    // sharing only an edge, or nothing: no window
    CHECK_FALSE(merge_window(geo_header(5, 5, 100, 50, 1), grid));
    CHECK_FALSE(merge_window(geo_header(5, 5, 200, 50, 1), grid));
}
