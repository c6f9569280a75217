// compare, ifthenelse, bandmean, gamma, premultiply, unpremultiply and
// composite against libvips on 8-bit RGB(A) and 16-bit images across tile
// seams: pixel-exact where libvips's arithmetic is (all but composite),
// composite within a stated tolerance; each with a build-time error naming
// node and key (or input).
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

VImage u16(VImage im, VipsInterpretation i = VIPS_INTERPRETATION_MULTIBAND) {
    return (im * 257 + 13).cast(VIPS_FORMAT_USHORT).copy(VImage::option()->set("interpretation", i)).copy_memory();
}

VImage srgb(VImage im) {
    return im.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB)).copy_memory();
}

}  // namespace

TEST_CASE("compare equals vips relational / images and constants / u8 RGB and u16") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage a = tt::pattern(143, 101, 3), b = tt::pattern(143, 101, 3, VIPS_FORMAT_UCHAR, 1);
    VImage grey = u16(tt::pattern(143, 101, 1, VIPS_FORMAT_UCHAR, 2));
    NodeId na = tt::load_image(g, dir, a, "a.v"), nb = tt::load_image(g, dir, b, "b.v");
    NodeId ng = tt::load_image(g, dir, grey, "g.v");
    const std::vector<std::pair<std::string, VipsOperationRelational>> ops = {
        {"equal", VIPS_OPERATION_RELATIONAL_EQUAL}, {"notequal", VIPS_OPERATION_RELATIONAL_NOTEQ},
        {"less", VIPS_OPERATION_RELATIONAL_LESS},   {"lesseq", VIPS_OPERATION_RELATIONAL_LESSEQ},
        {"more", VIPS_OPERATION_RELATIONAL_MORE},   {"moreeq", VIPS_OPERATION_RELATIONAL_MOREEQ}};
    for (const auto& [name, rel] : ops) {
        CAPTURE(name);
        NodeId n = g.add("compare", {na, nb}, {{"op", name}});
        CHECK(g.info(n).format == Format::u8);
        CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), a.relational(b, rel)) == 0);
        const std::vector<double> c = {100, 120.5, 7};
        CHECK(tt::max_abs_diff(tt::render(g, g.add("compare", {na}, {{"op", name}, {"c", c}}), 37, 2),
                               a.relational_const(rel, c)) == 0);
        // u16 against u8 RGB: the grey band repeats
        CHECK(tt::max_abs_diff(tt::render(g, g.add("compare", {ng, na}, {{"op", name}}), 37, 2),
                               grey.relational(a, rel)) == 0);
    }
    // one band against three constants: three bands
    NodeId up = g.add("compare", {ng}, {{"op", std::string("less")}, {"c", std::vector<double>{9000, 30000, 60000}}});
    CHECK(g.info(up).bands == 3);
    tt::check_pixels(g, up, grey.relational_const(VIPS_OPERATION_RELATIONAL_LESS, {9000, 30000, 60000}));
    CHECK_THROWS_WITH_AS(g.add("compare", {na}, {{"op", std::string("less")}}, "mask"),
                         doctest::Contains("node 'mask' (op compare), key 'c': is missing"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("compare", {na}, {{"op", std::string("less")}, {"c", std::vector<double>{1, 2}}},
                               "mask"),
                         doctest::Contains("key 'c': has 2 numbers for an image of 3 bands"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("compare", {na, nb}, {{"op", std::string("bigger")}}, "mask"),
                         doctest::Contains("key 'op'"), GraphError);
}

TEST_CASE("ifthenelse equals vips ifthenelse / switch and blend / u8 RGB and u16") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage a = tt::pattern(143, 101, 3), b = tt::pattern(143, 101, 3, VIPS_FORMAT_UCHAR, 1);
    VImage cond1 = tt::pattern(143, 101, 1, VIPS_FORMAT_UCHAR, 4);  // u8 0..250: a mix factor
    // u16 0, 200, 400: cast to u8 0, 200, 255 (libvips's rule, not != 0)
    VImage cond16 = ((tt::pattern(143, 101, 3, VIPS_FORMAT_UCHAR, 5) % 3) * 200).cast(VIPS_FORMAT_USHORT).copy_memory();
    VImage g16 = u16(tt::pattern(143, 101, 1, VIPS_FORMAT_UCHAR, 2));
    NodeId na = tt::load_image(g, dir, a, "a.v"), nb = tt::load_image(g, dir, b, "b.v");
    NodeId nc = tt::load_image(g, dir, cond1, "c.v"), nc16 = tt::load_image(g, dir, cond16, "c16.v");
    NodeId ng = tt::load_image(g, dir, g16, "g16.v");
    for (bool blend : {false, true}) {
        CAPTURE(blend);
        auto opt = [&] { return VImage::option()->set("blend", blend); };
        tt::check_pixels(g, g.add("ifthenelse", {nc, na, nb}, {{"blend", blend}}), cond1.ifthenelse(a, b, opt()));
        // a u16 condition (cast to u8 first), u16 then, u8 else: u16 out
        NodeId m = g.add("ifthenelse", {nc16, ng, nb}, {{"blend", blend}});
        CHECK(g.info(m).format == Format::u16);
        CHECK(g.info(m).bands == 3);
        tt::check_pixels(g, m, cond16.ifthenelse(g16, b, opt()));
    }
    CHECK_THROWS_WITH_AS(g.add("ifthenelse", {nc, na, nb}, {{"mix", true}}, "pick"), doctest::Contains("node 'pick'"),
                         GraphError);
    NodeId two =
        g.add("black", {}, {{"width", std::int64_t(143)}, {"height", std::int64_t(101)}, {"bands", std::int64_t(2)}});
    CHECK_THROWS_WITH_AS(g.add("ifthenelse", {nc, na, two}, {}, "pick"),
                         doctest::Contains("node 'pick' (op ifthenelse): else has 2 bands and another input 3"),
                         GraphError);
}

TEST_CASE("bandmean and gamma equal vips / u8 RGB and u16 / every format for bandmean") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage rgb = srgb(tt::pattern(143, 101, 3));
    VImage rgb16 = u16(tt::pattern(143, 101, 3, VIPS_FORMAT_UCHAR, 3), VIPS_INTERPRETATION_RGB16);
    NodeId a = tt::load_image(g, dir, rgb, "rgb.v"), b = tt::load_image(g, dir, rgb16, "rgb16.v");
    SUBCASE("bandmean") {
        tt::check_pixels(g, g.add("bandmean", {a}), rgb.bandmean());
        tt::check_pixels(g, g.add("bandmean", {b}), rgb16.bandmean());
        VImage base = (tt::pattern(71, 43, 4, VIPS_FORMAT_DOUBLE, 3) - 100) * 263.7;
        for (VipsBandFormat f :
             {VIPS_FORMAT_SHORT, VIPS_FORMAT_UINT, VIPS_FORMAT_INT, VIPS_FORMAT_FLOAT, VIPS_FORMAT_DOUBLE}) {
            CAPTURE(f);
            VImage im = base.cast(f).copy_memory();
            NodeId n = g.add("bandmean", {tt::load_image(g, dir, im, "f" + std::to_string(int(f)) + ".v")});
            CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), im.bandmean()) == 0);
        }
    }
    SUBCASE("gamma") {
        for (double e : {2.4, 0.5, 1.8}) {
            CAPTURE(e);
            tt::check_pixels(g, g.add("gamma", {a}, {{"exponent", e}}),
                             rgb.gamma(VImage::option()->set("exponent", e)));
            tt::check_pixels(g, g.add("gamma", {b}, {{"exponent", e}}),
                             rgb16.gamma(VImage::option()->set("exponent", e)));
        }
        VImage fl = rgb.cast(VIPS_FORMAT_FLOAT).copy_memory();
        tt::check_pixels(g, g.add("gamma", {tt::load_image(g, dir, fl, "f.v")}), fl.gamma());
        VImage i16 = (rgb.cast(VIPS_FORMAT_SHORT) * 100).cast(VIPS_FORMAT_SHORT).copy_memory();
        tt::check_pixels(g, g.add("gamma", {tt::load_image(g, dir, i16, "i16.v")}), i16.gamma());
    }
    CHECK_THROWS_WITH_AS(g.add("gamma", {a}, {{"exponent", 0.0}}, "gam"),
                         doctest::Contains("node 'gam' (op gamma), key 'exponent'"), GraphError);
}

TEST_CASE("premultiply and unpremultiply equal vips / u8 RGBA and u16 RGBA and 1 band") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage rgba = srgb(tt::pattern(143, 101, 4));
    VImage rgba16 = u16(tt::pattern(143, 101, 4, VIPS_FORMAT_UCHAR, 3), VIPS_INTERPRETATION_RGB16);
    for (auto [im, name] : {std::pair{rgba, "rgba.v"}, std::pair{rgba16, "rgba16.v"}}) {
        CAPTURE(name);
        NodeId in = tt::load_image(g, dir, im, name);
        NodeId pre = g.add("premultiply", {in});
        CHECK(g.info(pre).format == Format::f32);
        VImage want = im.premultiply();
        tt::check_pixels(g, pre, want);
        tt::check_pixels(g, g.add("unpremultiply", {pre}), want.unpremultiply());
        tt::check_pixels(g, g.add("premultiply", {in}, {{"max_alpha", 200.0}}),
                         im.premultiply(VImage::option()->set("max_alpha", 200.0)));
    }
    // 1 band: no alpha, so libvips copies the image, format and all
    for (auto [im, name] :
         {std::pair{tt::pattern(61, 47, 1), "grey.v"},
          std::pair{u16(tt::pattern(61, 47, 1, VIPS_FORMAT_UCHAR, 2), VIPS_INTERPRETATION_GREY16), "grey16.v"}}) {
        CAPTURE(name);
        NodeId in = tt::load_image(g, dir, im, name);
        for (const char* op : {"premultiply", "unpremultiply"}) {
            CAPTURE(op);
            NodeId p = g.add(op, {in});
            CHECK(g.info(p).format == g.info(in).format);
            CHECK(g.info(p).bands == 1);
        }
        tt::check_pixels(g, g.add("premultiply", {in}), im.premultiply());
        tt::check_pixels(g, g.add("unpremultiply", {in}), im.unpremultiply());
    }
    NodeId two =
        g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}, {"bands", std::int64_t(2)}});
    CHECK_THROWS_WITH_AS(g.add("unpremultiply", {two}, {{"max_alpha", -1.0}}, "un"),
                         doctest::Contains("node 'un' (op unpremultiply), key 'max_alpha'"), GraphError);
}

TEST_CASE("composite equals vips composite within 1 / over multiply screen add / u8 RGBA and u16 RGBA") {
    tt::TempDir dir;
    Graph g(standard_registry());
    // alpha in [0, 250]: transparent, half and opaque pixels all occur
    VImage base = srgb(tt::pattern(143, 101, 4));
    VImage top = srgb(tt::pattern(143, 101, 4, VIPS_FORMAT_UCHAR, 2));
    VImage rgb = srgb(tt::pattern(143, 101, 3, VIPS_FORMAT_UCHAR, 5));
    NodeId nb = tt::load_image(g, dir, base, "base.v"), nt = tt::load_image(g, dir, top, "top.v");
    NodeId nr = tt::load_image(g, dir, rgb, "rgb.v");
    const std::vector<std::pair<std::string, VipsBlendMode>> modes = {{"over", VIPS_BLEND_MODE_OVER},
                                                                      {"multiply", VIPS_BLEND_MODE_MULTIPLY},
                                                                      {"screen", VIPS_BLEND_MODE_SCREEN},
                                                                      {"add", VIPS_BLEND_MODE_ADD}};
    for (const auto& [name, mode] : modes) {
        CAPTURE(name);
        NodeId n = g.add("composite", {nb, nt}, {{"mode", name}});
        CHECK(g.info(n).bands == 4);
        CHECK(g.info(n).format == Format::u8);
        Buffer got = tt::render(g, n, 64, 2);
        CHECK(tt::max_abs_diff(got, tt::render(g, n, 4096, 1)) == 0);
        VImage want = VImage::composite({base, top}, {mode});
        CHECK(tt::max_abs_diff(got, want) <= 1);
        // three layers, the bottom opaque RGB (given an alpha)
        NodeId three = g.add("composite", {nr, nb, nt}, {{"mode", "over " + name}});
        CHECK(tt::max_abs_diff(tt::render(g, three, 64, 2),
                               VImage::composite({rgb, base, top}, {VIPS_BLEND_MODE_OVER, mode})) <= 1);
    }
    VImage b16 = u16(tt::pattern(97, 61, 4, VIPS_FORMAT_UCHAR, 3), VIPS_INTERPRETATION_RGB16);
    VImage t16 = u16(tt::pattern(97, 61, 4, VIPS_FORMAT_UCHAR, 6), VIPS_INTERPRETATION_RGB16);
    NodeId n16 = g.add("composite", {tt::load_image(g, dir, b16, "b16.v"), tt::load_image(g, dir, t16, "t16.v")});
    CHECK(g.info(n16).format == Format::u16);
    Buffer got16 = tt::render(g, n16, 64, 2);
    CHECK(tt::max_abs_diff(got16, tt::render(g, n16, 4096, 1)) == 0);
    CHECK(tt::max_abs_diff(got16, VImage::composite({b16, t16}, {VIPS_BLEND_MODE_OVER})) <= 1);
    CHECK_THROWS_WITH_AS(g.add("composite", {nb, nt, nr}, {{"mode", std::string("over, burn")}}, "comp"),
                         doctest::Contains("node 'comp' (op composite), key 'mode': 'burn' is no blend mode"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("composite", {nb, nt, nr}, {{"mode", std::string("over over over")}}, "comp"),
                         doctest::Contains("key 'mode': has 3 modes for 3 layers"), GraphError);
}

// libvips composite's x and y: each layer above the first placed on input
// 0, which sets the size; outside a layer, it is transparent. Layers off
// every edge and wholly outside, with alpha and without.
TEST_CASE("composite with x and y offsets equals vips composite with x and y within 1") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage base = srgb(tt::pattern(143, 101, 4));
    VImage top = srgb(tt::pattern(61, 47, 4, VIPS_FORMAT_UCHAR, 2));
    VImage rgb = srgb(tt::pattern(33, 29, 3, VIPS_FORMAT_UCHAR, 5));
    NodeId nb = tt::load_image(g, dir, base, "base.v"), nt = tt::load_image(g, dir, top, "top.v");
    NodeId nr = tt::load_image(g, dir, rgb, "rgb.v");
    const std::vector<std::array<int, 4>> places = {{-20, 70, 120, -9}, {100, 30, 0, 0}, {200, 5, 7, 300}};
    for (const auto& [x1, y1, x2, y2] : places) {
        CAPTURE(x1);
        CAPTURE(y2);
        for (const auto& [name, mode] :
             std::vector<std::pair<std::string, VipsBlendMode>>{{"over", VIPS_BLEND_MODE_OVER},
                                                                {"multiply", VIPS_BLEND_MODE_MULTIPLY}}) {
            CAPTURE(name);
            NodeId n = g.add("composite", {nb, nt, nr},
                             {{"mode", name},
                              {"x", std::vector<std::int64_t>{x1, x2}},
                              {"y", std::vector<std::int64_t>{y1, y2}}});
            CHECK(g.info(n).width == 143);
            CHECK(g.info(n).height == 101);
            const Buffer got = tt::render(g, n, 37, 2);
            CHECK(tt::max_abs_diff(got, tt::render(g, n, 4096, 1)) == 0);
            const VImage want = VImage::composite(
                {base, top, rgb}, {mode, mode},
                VImage::option()->set("x", std::vector<int>{x1, x2})->set("y", std::vector<int>{y1, y2}));
            REQUIRE(want.width() == 143);
            // (libvips copies input 0 as it is in a region of its own where
            // no other layer reaches, so a transparent pixel keeps its
            // colour there; tessera blends every pixel, whatever the tiles:
            // compared where input 0's alpha is not 0)
            const VImage diff = (tt::to_vips(got).cast(VIPS_FORMAT_DOUBLE) - want.cast(VIPS_FORMAT_DOUBLE)).abs();
            CHECK((base[3] > 0).ifthenelse(diff, 0.0).max() <= 1);
        }
    }
    CHECK_THROWS_WITH_AS(g.add("composite", {nb, nt, nr}, {{"x", std::vector<std::int64_t>{1, 2}}}, "comp"),
                         doctest::Contains("node 'comp' (op composite), key 'y': x and y go together"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("composite", {nb, nt, nr},
                               {{"x", std::vector<std::int64_t>{1}}, {"y", std::vector<std::int64_t>{1}}}, "comp"),
                         doctest::Contains("key 'x': has 1 positions for 2 layers"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("composite", {nb, nt}, {}, "comp"), doctest::Contains("positions in x and y"), Error);
}
