// extract_band, bandjoin, invert and flatten: pixel-exact against vips
// extract_band, bandjoin, invert and flatten on 8-bit RGB(A) and 16-bit
// images (every format for invert), across tile seams; bad bands and
// mismatched inputs are refused naming node and key or input.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

TEST_CASE("extract_band and bandjoin equal vips / u8 RGB and u16 grey") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage rgb = tt::pattern(143, 101, 3);
    VImage grey = (tt::pattern(143, 101, 1, VIPS_FORMAT_UCHAR, 2) * 257).cast(VIPS_FORMAT_USHORT).copy_memory();
    NodeId a = tt::load_image(g, dir, rgb, "rgb.v");
    NodeId b = tt::load_image(g, dir, grey, "g16.v");
    for (int band = 0; band < 3; ++band)
        tt::check_pixels(g, g.add("extract_band", {a}, {{"band", std::int64_t(band)}}), rgb.extract_band(band));
    tt::check_pixels(g, g.add("extract_band", {a}, {{"band", std::int64_t(1)}, {"n", std::int64_t(2)}}),
                     rgb.extract_band(1, VImage::option()->set("n", 2)));
    tt::check_pixels(g, g.add("extract_band", {b}, {{"band", std::int64_t(0)}}), grey);
    // RGB + its own green: four bands
    NodeId green = g.add("extract_band", {a}, {{"band", std::int64_t(1)}});
    NodeId four = g.add("bandjoin", {a, green});
    CHECK(g.info(four).bands == 4);
    tt::check_pixels(g, four, VImage::bandjoin({rgb, rgb.extract_band(1)}));
    NodeId grey2 = g.add("bandjoin", {b, b, b});
    tt::check_pixels(g, grey2, VImage::bandjoin({grey, grey, grey}));
}

TEST_CASE("invert equals vips invert for every format") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage base = (tt::pattern(71, 43, 2, VIPS_FORMAT_DOUBLE, 1) - 120) * 263.7;
    for (VipsBandFormat f : {VIPS_FORMAT_UCHAR, VIPS_FORMAT_USHORT, VIPS_FORMAT_SHORT, VIPS_FORMAT_UINT,
                             VIPS_FORMAT_INT, VIPS_FORMAT_FLOAT, VIPS_FORMAT_DOUBLE}) {
        CAPTURE(f);
        VImage im = (f == VIPS_FORMAT_UCHAR ? tt::pattern(71, 43, 3, f, 1) : base.cast(f)).copy_memory();
        NodeId n = g.add("invert", {tt::load_image(g, dir, im, "f" + std::to_string(int(f)) + ".v")});
        VImage want = im.invert();
        CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), want) == 0);
    }
    VImage rgb = tt::pattern(143, 101, 3);
    tt::check_pixels(g, g.add("invert", {tt::load_image(g, dir, rgb, "rgb.v")}), rgb.invert());
}

TEST_CASE("extract_band and bandjoin: bad bands and mismatched inputs are refused") {
    Graph g(standard_registry());
    NodeId b =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}, {"bands", std::int64_t(3)}});
    NodeId c = g.add("black", {}, {{"width", std::int64_t(11)}, {"height", std::int64_t(7)}});
    NodeId d =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}, {"format", std::string("u16")}});
    CHECK_THROWS_WITH_AS(g.add("extract_band", {b}, {{"band", std::int64_t(3)}}, "pick"),
                         doctest::Contains("node 'pick' (op extract_band), key 'band': band 3 of a 3-band image"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("extract_band", {b}, {{"band", std::int64_t(1)}, {"n", std::int64_t(3)}}, "pick"),
                         doctest::Contains("key 'n'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("bandjoin", {b, c}, {}, "join"), doctest::Contains("input 1 is 11x7"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("bandjoin", {b, d}, {}, "join"), doctest::Contains("input 1 is u16"), GraphError);
}

TEST_CASE("flatten equals vips flatten / u8 RGBA and u16 RGBA / black and a colour") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage rgba = tt::pattern(143, 101, 4).copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    VImage rgba16 = (tt::pattern(97, 61, 4, VIPS_FORMAT_UCHAR, 3) * 257)
                        .cast(VIPS_FORMAT_USHORT)
                        .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16))
                        .copy_memory();
    for (auto [im, name] : {std::pair{rgba, "rgba.v"}, std::pair{rgba16, "rgba16.v"}}) {
        CAPTURE(name);
        NodeId in = tt::load_image(g, dir, im, name);
        tt::check_pixels(g, g.add("flatten", {in}), im.flatten());
        const std::vector<double> bg = {10, 200, 77};
        tt::check_pixels(g, g.add("flatten", {in}, {{"background", bg}}),
                         im.flatten(VImage::option()->set("background", bg)));
    }
    Graph h(standard_registry());
    NodeId one = h.add("black", {}, {{"width", std::int64_t(4)}, {"height", std::int64_t(4)}});
    CHECK_THROWS_WITH_AS(h.add("flatten", {one}, {}, "over"), doctest::Contains("node 'over' (op flatten)"),
                         GraphError);
}
