// linear: pixel-exact against vips linear for every input format, single
// and per-band constants, uchar output, band-up of a one-band image; bad
// vectors name node and key.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

TEST_CASE("linear: every format and constant shape equals vips linear") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage base = (tt::pattern(71, 43, 3, VIPS_FORMAT_DOUBLE, 3) - 100) * 263.7;
    const std::vector<std::pair<std::vector<double>, std::vector<double>>> consts = {{{0.1}, {0.3}},
                                                                                     {{-1.7}, {1000.25}},
                                                                                     {{0.1, 2.5, -0.03}, {0.3}},
                                                                                     {{1.0 / 3}, {0.5, -7.25, 11}}};
    for (VipsBandFormat f : {VIPS_FORMAT_UCHAR, VIPS_FORMAT_USHORT, VIPS_FORMAT_SHORT, VIPS_FORMAT_UINT,
                             VIPS_FORMAT_INT, VIPS_FORMAT_FLOAT, VIPS_FORMAT_DOUBLE}) {
        VImage im = (f == VIPS_FORMAT_UCHAR ? tt::pattern(71, 43, 3, f, 3) : base.cast(f)).copy_memory();
        NodeId in = tt::load_image(g, dir, im, "f" + std::to_string(int(f)) + ".v");
        for (const auto& [a, b] : consts)
            for (bool uchar : {false, true}) {
                CAPTURE(f);
                CAPTURE(a.size());
                CAPTURE(a[0]);
                CAPTURE(uchar);
                NodeId n = g.add("linear", {in}, {{"a", a}, {"b", b}, {"uchar", uchar}});
                VImage want = im.linear(a, b, VImage::option()->set("uchar", uchar));
                CHECK(g.info(n).format == (uchar ? Format::u8 : f == VIPS_FORMAT_DOUBLE ? Format::f64 : Format::f32));
                CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), want) == 0);
            }
    }
}

TEST_CASE("linear: u8 RGB and u16 grey across tile seams / a grey image banded up") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage rgb = tt::pattern(143, 101, 3);
    NodeId a = tt::load_image(g, dir, rgb, "rgb.v");
    tt::check_pixels(
        g,
        g.add("linear", {a},
              {{"a", std::vector<double>{1.5, 0.5, 2}}, {"b", std::vector<double>{-20.0}}, {"uchar", true}}),
        rgb.linear({1.5, 0.5, 2}, {-20}, VImage::option()->set("uchar", true)));
    VImage grey = (tt::pattern(97, 61, 1) * 257).cast(VIPS_FORMAT_USHORT).copy_memory();
    NodeId b = tt::load_image(g, dir, grey, "g16.v");
    // 16-bit counts to 8-bit for a JPEG: x / 257
    tt::check_pixels(g, g.add("linear", {b}, {{"a", std::vector<double>{1.0 / 257}}, {"uchar", true}}),
                     grey.linear({1.0 / 257}, {0}, VImage::option()->set("uchar", true)));
    // one band, three constants: three bands
    NodeId up = g.add("linear", {b}, {{"a", std::vector<double>{1, 2, 3}}, {"b", std::vector<double>{0.0}}});
    CHECK(g.info(up).bands == 3);
    tt::check_pixels(g, up, grey.linear({1, 2, 3}, {0}));
}

TEST_CASE("linear: vectors of the wrong length name the node and the key") {
    Graph g(standard_registry());
    NodeId b =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}, {"bands", std::int64_t(3)}});
    CHECK_THROWS_WITH_AS(g.add("linear", {b}, {{"a", std::vector<double>{1, 2}}}, "scale"),
                         doctest::Contains("node 'scale' (op linear), key 'a': has 2 numbers for an image of 3 bands"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("linear", {b}, {{"b", std::vector<double>{}}}, "scale"), doctest::Contains("key 'b'"),
                         GraphError);
}
