// arrayjoin: grid geometry, sparse demand, pixels against libvips for
// several layouts, mismatched inputs.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(const Params& p, const std::vector<ImageInfo>& in) {
    return tt::build_op("arrayjoin", p, in);
}

VipsAlign vips_align(const std::string& a) {
    return a == "centre" ? VIPS_ALIGN_CENTRE : a == "high" ? VIPS_ALIGN_HIGH : VIPS_ALIGN_LOW;
}

}  // namespace

TEST_CASE("arrayjoin: grid geometry as libvips lays it out") {
    // 5x4, 3x2, 7x3 across 2 with shim 2 and hspacing 6: cells are 8 wide
    // (6 + shim) in column 0, 6 in the last column; 14x10 in all
    std::vector<ImageInfo> in{tt::header(5, 4), tt::header(3, 2), tt::header(7, 3)};
    auto op = build({{"across", std::int64_t(2)}, {"shim", std::int64_t(2)}, {"hspacing", std::int64_t(6)}}, in);
    CHECK(op->info().width == 14);
    CHECK(op->info().height == 10);
    // defaults: all in one row, spacing = the largest image
    auto row = build({}, in);
    CHECK(row->info().width == 21);
    CHECK(row->info().height == 4);
    // across larger than N leaves empty columns, as libvips does
    auto sparse = build({{"across", std::int64_t(5)}}, in);
    CHECK(sparse->info().width == 35);
    // the georeference follows image 0, here centred one pixel in
    ImageInfo g0 = tt::header(5, 4);
    GeoRef geo;
    geo.transform = {100, 1, 0, 200, 0, -1};
    g0.geo = geo;
    auto centred = build({{"halign", std::string("centre")}}, {g0, tt::header(7, 3)});
    REQUIRE(centred->info().geo);
    CHECK(centred->info().geo->transform[0] == doctest::Approx(99));
}

TEST_CASE("arrayjoin: demand touches only the images the rect overlaps") {
    // 3x3 grid of 10x10 images, shim 2: image i sits at (col * 12, row * 12)
    std::vector<ImageInfo> in(9, tt::header(10, 10));
    auto op = build({{"across", std::int64_t(3)}, {"shim", std::int64_t(2)}}, in);
    Demand need;
    op->demand({13, 14, 5, 5}, need);  // inside image 4
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 4);
    CHECK(need[0].rect == Rect{1, 2, 5, 5});
    CHECK(*need[0].place == Point{13, 14});

    need.clear();
    op->demand({8, 8, 6, 6}, need);  // the corner where images 0, 1, 3, 4 meet
    REQUIRE(need.size() == 4);
    CHECK(need[0].input == 0);
    CHECK(need[0].rect == Rect{8, 8, 2, 2});
    CHECK(need[3].input == 4);
    CHECK(need[3].rect == Rect{0, 0, 2, 2});
    CHECK(*need[3].place == Point{12, 12});

    need.clear();
    op->demand({10, 0, 2, 34}, need);  // a vertical shim: background only
    CHECK(need.empty());
}

TEST_CASE("arrayjoin: layouts match libvips across tile seams") {
    tt::TempDir dir;
    Graph g(standard_registry());
    std::vector<VImage> ims;
    std::vector<NodeId> ids;
    const int sizes[][2] = {{30, 20}, {17, 25}, {40, 11}, {23, 23}, {9, 30}};
    for (int i = 0; i < 5; ++i) {
        ims.push_back(tt::pattern(sizes[i][0], sizes[i][1], 3, VIPS_FORMAT_UCHAR, i));
        ids.push_back(tt::load_image(g, dir, ims.back(), "im" + std::to_string(i) + ".v"));
    }
    struct Layout {
        int across, shim, hspacing, vspacing;  // 0: default
        const char* halign;
        const char* valign;
    };
    // hspacing / vspacing below the image sizes clip images (and centre then
    // shifts them left of their cell); across 4 leaves a ragged last row
    // that the last image's cell stretches across
    for (Layout l : {Layout{0, 0, 0, 0, "low", "low"}, Layout{2, 3, 0, 0, "centre", "high"},
                     Layout{4, 1, 20, 15, "centre", "centre"}, Layout{3, 0, 25, 0, "high", "low"},
                     Layout{1, 5, 0, 0, "high", "centre"}}) {
        CAPTURE(l.across);
        CAPTURE(l.shim);
        CAPTURE(l.hspacing);
        CAPTURE(l.halign);
        Params p{{"shim", std::int64_t(l.shim)},
                 {"halign", std::string(l.halign)},
                 {"valign", std::string(l.valign)},
                 {"background", std::vector<double>{10, 300, 1.6}}};
        auto opt = VImage::option()
                       ->set("shim", l.shim)
                       ->set("halign", vips_align(l.halign))
                       ->set("valign", vips_align(l.valign))
                       ->set("background", std::vector<double>{10, 300, 1.6});
        if (l.across) {
            p.set("across", std::int64_t(l.across));
            opt->set("across", l.across);
        }
        if (l.hspacing) {
            p.set("hspacing", std::int64_t(l.hspacing));
            opt->set("hspacing", l.hspacing);
        }
        if (l.vspacing) {
            p.set("vspacing", std::int64_t(l.vspacing));
            opt->set("vspacing", l.vspacing);
        }
        NodeId n = g.add("arrayjoin", ids, p);
        tt::check_pixels(g, n, VImage::arrayjoin(ims, opt));
    }
}

TEST_CASE("arrayjoin: a float grid matches libvips") {
    tt::TempDir dir;
    Graph g(standard_registry());
    std::vector<VImage> ims;
    std::vector<NodeId> ids;
    for (int i = 0; i < 4; ++i) {
        ims.push_back((tt::pattern(15 + 4 * i, 22 - 3 * i, 1, VIPS_FORMAT_FLOAT, i) * 0.5 - 3).copy_memory());
        ids.push_back(tt::load_image(g, dir, ims.back(), "f" + std::to_string(i) + ".v"));
    }
    NodeId n =
        g.add("arrayjoin", ids,
              {{"across", std::int64_t(3)}, {"shim", std::int64_t(4)}, {"background", std::vector<double>{-2.5}}});
    tt::check_pixels(
        g, n,
        VImage::arrayjoin(
            ims, VImage::option()->set("across", 3)->set("shim", 4)->set("background", std::vector<double>{-2.5})));
}

TEST_CASE("arrayjoin: mismatched inputs and bad parameters name the problem") {
    Graph g(standard_registry());
    NodeId a =
        g.add("black", {}, {{"width", std::int64_t(8)}, {"height", std::int64_t(8)}, {"bands", std::int64_t(3)}});
    NodeId b = g.add("black", {}, {{"width", std::int64_t(8)}, {"height", std::int64_t(8)}});
    NodeId c = g.add("black", {},
                     {{"width", std::int64_t(8)},
                      {"height", std::int64_t(8)},
                      {"bands", std::int64_t(3)},
                      {"format", std::string("u16")}});
    CHECK_THROWS_WITH_AS(g.add("arrayjoin", {a, a, b}, {}),
                         doctest::Contains("key 'inputs': image 2 has 1 bands of u8 but image 0 has 3 bands of u8"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("arrayjoin", {a, c}, {}), doctest::Contains("image 1 has 3 bands of u16"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("arrayjoin", {a, a}, {{"halign", std::string("middle")}}),
                         doctest::Contains("key 'halign'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("arrayjoin", {a, a}, {{"background", std::vector<double>{1, 2}}}),
                         doctest::Contains("key 'background'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("arrayjoin", {a, a}, {{"across", std::int64_t(0)}}), doctest::Contains("key 'across'"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("arrayjoin", {}, {}), doctest::Contains("key 'inputs'"), GraphError);
}
