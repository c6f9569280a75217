// black: geometry, demand, pixels against libvips, bad parameters.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

Params canvas(int w, int h, int bands = 1, const std::string& format = "u8") {
    return {{"width", std::int64_t(w)},
            {"height", std::int64_t(h)},
            {"bands", std::int64_t(bands)},
            {"format", format}};
}

}  // namespace

TEST_CASE("black: geometry") {
    Graph g(standard_registry());
    NodeId n = g.add("black", {}, canvas(123, 45, 3));
    const ImageInfo& i = g.info(n);
    CHECK(i.width == 123);
    CHECK(i.height == 45);
    CHECK(i.bands == 3);
    CHECK(i.format == Format::u8);
    CHECK(i.interpretation == Interpretation::srgb);
    CHECK_FALSE(i.geo);
    NodeId f = g.add("black", {}, canvas(5, 6, 1, "f32"));
    CHECK(g.info(f).format == Format::f32);
    CHECK(g.info(f).interpretation == Interpretation::multiband);
}

TEST_CASE("black: a source demands nothing") {
    Graph g(standard_registry());
    NodeId n = g.add("black", {}, canvas(100, 100));
    Demand need;
    g.node(n).op->demand({10, 10, 50, 50}, need);
    CHECK(need.empty());
}

TEST_CASE("black: pixels across tile seams match libvips") {
    Graph g(standard_registry());
    NodeId zero = g.add("black", {}, canvas(101, 67, 3));
    tt::check_pixels(g, zero, VImage::black(101, 67, VImage::option()->set("bands", 3)));

    // one value per band, one past the u8 range (clipped, as libvips casts)
    Params p = canvas(77, 51, 3);
    p.set("value", std::vector<double>{7, 200, 300});
    NodeId rgb = g.add("black", {}, p);
    VImage want = (VImage::black(77, 51, VImage::option()->set("bands", 3)) + std::vector<double>{7, 200, 300})
                      .cast(VIPS_FORMAT_UCHAR);
    tt::check_pixels(g, rgb, want);

    Params q = canvas(40, 30, 2, "i16");
    q.set("value", std::vector<double>{-5000});
    NodeId i16 = g.add("black", {}, q);
    tt::check_pixels(g, i16, (VImage::black(40, 30, VImage::option()->set("bands", 2)) - 5000).cast(VIPS_FORMAT_SHORT));

    Params r = canvas(40, 30, 1, "f64");
    r.set("value", std::vector<double>{0.25});
    NodeId f64 = g.add("black", {}, r);
    tt::check_pixels(g, f64, (VImage::black(40, 30) + 0.25).cast(VIPS_FORMAT_DOUBLE));
}

TEST_CASE("black: bad parameters name their key") {
    Graph g(standard_registry());
    CHECK_THROWS_WITH_AS(g.add("black", {}, canvas(0, 10)), doctest::Contains("key 'width'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("black", {}, canvas(10, 10, 1, "u7")), doctest::Contains("key 'format'"), GraphError);
    Params p = canvas(10, 10, 3);
    p.set("value", std::vector<double>{1, 2});
    CHECK_THROWS_WITH_AS(g.add("black", {}, p), doctest::Contains("key 'value': give one value, or one per band (3)"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("black", {}, {{"width", std::int64_t(10)}}), doctest::Contains("key 'height'"),
                         GraphError);
}
