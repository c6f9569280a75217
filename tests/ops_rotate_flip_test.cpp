// rotate and flip: pixel-exact against vips rot and flip on 8-bit RGB and
// 16-bit grey, across tile seams; sizes, demand, georeference, bad angles.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

TEST_CASE("rotate: every right angle equals vips rot / u8 RGB and u16 grey") {
    tt::TempDir dir;
    Graph g(standard_registry());
    for (auto [im, name] :
         {std::pair{tt::pattern(143, 101, 3), "rgb.v"},
          std::pair{(tt::pattern(97, 61, 1) * 257).cast(VIPS_FORMAT_USHORT).copy_memory(), "g16.v"}}) {
        NodeId in = tt::load_image(g, dir, im, name);
        const VipsAngle angles[] = {VIPS_ANGLE_D0, VIPS_ANGLE_D90, VIPS_ANGLE_D180, VIPS_ANGLE_D270};
        for (int i = 0; i < 4; ++i) {
            CAPTURE(name);
            CAPTURE(i * 90);
            NodeId n = g.add("rotate", {in}, {{"angle", std::int64_t(i * 90)}});
            tt::check_pixels(g, n, im.rot(angles[i]));
        }
    }
}

TEST_CASE("flip: both directions equal vips flip / u8 RGB and u16 grey") {
    tt::TempDir dir;
    Graph g(standard_registry());
    for (auto [im, name] :
         {std::pair{tt::pattern(143, 101, 3), "rgb.v"},
          std::pair{(tt::pattern(97, 61, 1) * 257).cast(VIPS_FORMAT_USHORT).copy_memory(), "g16.v"}}) {
        NodeId in = tt::load_image(g, dir, im, name);
        CAPTURE(name);
        tt::check_pixels(g, g.add("flip", {in}, {{"direction", std::string("horizontal")}}),
                         im.flip(VIPS_DIRECTION_HORIZONTAL));
        tt::check_pixels(g, g.add("flip", {in}, {{"direction", std::string("vertical")}}),
                         im.flip(VIPS_DIRECTION_VERTICAL));
    }
}

TEST_CASE("rotate: demand is the rotated rect / georeference follows") {
    ImageInfo in = tt::header(100, 60);
    GeoRef geo;
    geo.transform = {300, 10, 0, 900, 0, -10};
    in.geo = geo;
    auto op = tt::build_op("rotate", {{"angle", std::int64_t(90)}}, {in});
    CHECK(op->info().width == 60);
    CHECK(op->info().height == 100);
    Demand need;
    // output (X, Y) is input (Y, 59 - X): columns 10..13 are rows 46..49
    op->demand({10, 20, 4, 8}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{20, 46, 8, 4});
    // output pixel (0, 0)'s top-left corner is the input's bottom-left corner
    REQUIRE(op->info().geo);
    const auto& t = op->info().geo->transform;
    CHECK(t[0] == 300);
    CHECK(t[3] == 900 - 600);
    CHECK(t[1] == 0);
    CHECK(t[2] == 10);
    CHECK(t[4] == 10);
    CHECK(t[5] == 0);
    auto f = tt::build_op("flip", {{"direction", std::string("horizontal")}}, {in});
    CHECK(f->info().geo->transform[0] == 1300);
    CHECK(f->info().geo->transform[1] == -10);
}

TEST_CASE("rotate and flip: bad values name the node and the key") {
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}});
    CHECK_THROWS_WITH_AS(g.add("rotate", {b}, {{"angle", std::int64_t(45)}}, "turn"),
                         doctest::Contains("node 'turn' (op rotate), key 'angle': 45 is not a right angle"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("rotate", {b}, {{"angle", std::int64_t(360)}}, "turn"), doctest::Contains("key 'angle'"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("flip", {b}, {{"direction", std::string("diagonal")}}, "mirror"),
                         doctest::Contains("node 'mirror' (op flip), key 'direction'"), GraphError);
}
