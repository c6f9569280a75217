// extract_area: geometry, demand, pixels against libvips, bad areas.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

// A load node reading `im`, saved losslessly in the libvips format.
// The op built straight from its spec, on a made-up input header.
std::unique_ptr<Op> build(const Params& p, const ImageInfo& in) { return tt::build_op("extract_area", p, {in}); }

// The node at tile sizes that put seams in different places (37 is odd),
// one and two threads, each compared exactly with libvips.
Params area(int left, int top, int width, int height) {
    return {{"left", std::int64_t(left)},
            {"top", std::int64_t(top)},
            {"width", std::int64_t(width)},
            {"height", std::int64_t(height)}};
}

}  // namespace

TEST_CASE("extract_area: geometry and georeference") {
    ImageInfo in;
    in.width = 100;
    in.height = 80;
    in.bands = 3;
    in.format = Format::u16;
    in.interpretation = Interpretation::rgb16;
    GeoRef geo;
    geo.transform = {500000, 10, 0, 4600000, 0, -10};
    geo.crs_wkt = "EPSG:32633";
    in.geo = geo;
    auto op = build(area(20, 30, 50, 40), in);
    const ImageInfo& out = op->info();
    CHECK(out.width == 50);
    CHECK(out.height == 40);
    CHECK(out.bands == 3);
    CHECK(out.format == Format::u16);
    CHECK(out.interpretation == Interpretation::rgb16);
    REQUIRE(out.geo);
    // pixel (0, 0) of the output is pixel (20, 30) of the input
    CHECK(out.geo->transform[0] == doctest::Approx(500200));
    CHECK(out.geo->transform[3] == doctest::Approx(4599700));
    CHECK(out.geo->transform[1] == 10);
    CHECK(out.geo->crs_wkt == "EPSG:32633");
}

TEST_CASE("extract_area: demand is the rect moved into the input / placed") {
    ImageInfo in;
    in.width = 100;
    in.height = 80;
    auto op = build(area(20, 30, 50, 40), in);
    Demand need;
    op->demand({5, 6, 16, 16}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 0);
    CHECK(need[0].rect == Rect{25, 36, 16, 16});
    REQUIRE(need[0].place);
    CHECK(*need[0].place == Point{5, 6});
}

TEST_CASE("extract_area: pixels across tile seams match libvips") {
    tt::TempDir dir;
    VImage pat = tt::pattern(100, 90, 3);
    Graph g(standard_registry());
    NodeId in = tt::load_image(g, dir, pat);
    NodeId n = g.add("extract_area", {in}, area(13, 7, 61, 50));
    tt::check_pixels(g, n, pat.extract_area(13, 7, 61, 50));

    // the whole image, and a single pixel at the far corner
    NodeId whole = g.add("extract_area", {in}, area(0, 0, 100, 90));
    CHECK(tt::max_abs_diff(tt::render(g, whole, 37, 2), pat) == 0);
    NodeId corner = g.add("extract_area", {in}, area(99, 89, 1, 1));
    CHECK(tt::max_abs_diff(tt::render(g, corner, 16, 1), pat.extract_area(99, 89, 1, 1)) == 0);
}

TEST_CASE("extract_area: pixels of a float image match libvips") {
    tt::TempDir dir;
    VImage pat = tt::pattern(70, 50, 2, VIPS_FORMAT_FLOAT, 3) * 0.37 - 11;
    Graph g(standard_registry());
    NodeId in = tt::load_image(g, dir, pat.copy_memory());
    NodeId n = g.add("extract_area", {in}, area(1, 2, 67, 45));
    tt::check_pixels(g, n, pat.extract_area(1, 2, 67, 45));
}

TEST_CASE("extract_area: an area outside the input names the key") {
    ImageInfo in;
    in.width = 100;
    in.height = 80;
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, {{"width", std::int64_t(100)}, {"height", std::int64_t(80)}});
    CHECK_THROWS_WITH_AS(g.add("extract_area", {b}, area(50, 0, 60, 10)), doctest::Contains("key 'width'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("extract_area", {b}, area(100, 0, 1, 1)), doctest::Contains("key 'left'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("extract_area", {b}, area(0, 70, 10, 11)), doctest::Contains("key 'height'"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("extract_area", {b}, area(0, -1, 10, 10)), doctest::Contains("key 'top'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("extract_area", {b}, area(0, 0, 0, 10)), doctest::Contains("key 'width'"), GraphError);
    // the message says what to do
    CHECK_THROWS_WITH_AS(build(area(50, 0, 60, 10), in), doctest::Contains("does not fit inside the 100x80 input"),
                         ParamError);
}
