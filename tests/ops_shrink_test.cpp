// shrink: output size rounding, demand, pixels for every format against
// libvips shrink, bad factors.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(int hs, int vs, const ImageInfo& in) {
    return tt::build_op("shrink", {{"hshrink", std::int64_t(hs)}, {"vshrink", std::int64_t(vs)}}, {in});
}

}  // namespace

TEST_CASE("shrink: output size rounds to nearest / as libvips") {
    // 10 / 4 = 2.5 rounds up to 3; 7 / 4 = 1.75 to 2; 10 / 3 = 3.33 down to 3
    for (auto [hs, vs] : std::vector<std::pair<int, int>>{{2, 2}, {3, 3}, {4, 4}, {5, 5}, {1, 7}, {20, 14}}) {
        CAPTURE(hs);
        CAPTURE(vs);
        VImage want = VImage::black(10, 7).shrink(hs, vs);
        auto op = build(hs, vs, tt::header(10, 7));
        CHECK(op->info().width == want.width());
        CHECK(op->info().height == want.height());
    }
    ImageInfo in = tt::header(100, 60);
    GeoRef geo;
    geo.transform = {300, 10, 0, 900, 0, -10};
    in.geo = geo;
    auto op = build(4, 3, in);
    const ImageInfo& out = op->info();
    REQUIRE(out.geo);
    CHECK(out.geo->transform[0] == 300);
    CHECK(out.geo->transform[1] == 40);
    CHECK(out.geo->transform[5] == -30);
}

TEST_CASE("shrink: demand is the scaled box / clipped to the input") {
    auto op = build(4, 3, tt::header(10, 7));  // 3x2 output
    Demand need;
    op->demand({1, 1, 2, 1}, need);  // columns 4..11 (10, 11 past the edge), rows 3..5
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{4, 3, 6, 3});
    CHECK_FALSE(need[0].place);

    need.clear();
    op->demand({0, 0, 3, 2}, need);  // the whole output: rows 0..5 (row 6 is dropped)
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{0, 0, 10, 6});

    need.clear();
    build(1, 1, tt::header(10, 7))->demand({2, 3, 4, 4}, need);  // no shrink: a placed copy
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{2, 3, 4, 4});
    CHECK(*need[0].place == Point{2, 3});
}

TEST_CASE("shrink: u8 pixels across tile seams match libvips") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage pat = tt::pattern(143, 101, 3);
    NodeId in = tt::load_image(g, dir, pat);
    for (auto [hs, vs] : std::vector<std::pair<int, int>>{{2, 2}, {3, 5}, {4, 1}, {1, 3}, {7, 6}, {1, 1}}) {
        CAPTURE(hs);
        CAPTURE(vs);
        NodeId n = g.add("shrink", {in}, {{"hshrink", std::int64_t(hs)}, {"vshrink", std::int64_t(vs)}});
        tt::check_pixels(g, n, pat.shrink(hs, vs));
    }
}

TEST_CASE("shrink: every format rounds like libvips (two passes / half up)") {
    tt::TempDir dir;
    Graph g(standard_registry());
    // signed values and fractions, so rounding toward zero and the float
    // path both show
    VImage base = (tt::pattern(53, 41, 2, VIPS_FORMAT_DOUBLE, 2) - 120) * 263.7;
    for (VipsBandFormat f : {VIPS_FORMAT_UCHAR, VIPS_FORMAT_USHORT, VIPS_FORMAT_SHORT, VIPS_FORMAT_UINT,
                             VIPS_FORMAT_INT, VIPS_FORMAT_FLOAT, VIPS_FORMAT_DOUBLE}) {
        CAPTURE(f);
        VImage im = (f == VIPS_FORMAT_UCHAR ? tt::pattern(53, 41, 2, f, 2) : base.cast(f)).copy_memory();
        NodeId in = tt::load_image(g, dir, im, "f" + std::to_string(int(f)) + ".v");
        for (auto [hs, vs] : std::vector<std::pair<int, int>>{{2, 2}, {3, 4}, {5, 3}}) {
            CAPTURE(hs);
            CAPTURE(vs);
            NodeId n = g.add("shrink", {in}, {{"hshrink", std::int64_t(hs)}, {"vshrink", std::int64_t(vs)}});
            CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), im.shrink(hs, vs)) == 0);
        }
    }
}

// 8/16-bit boxes sum in int32 while the box's sum fits (u16: up to 32767
// samples), in int64 past that: a box of 30000 and one of 40000 u16
// samples, every one 65535 or 65534 (the mean 65534.5 rounds up), either
// way; an overflowing int32 sum would give nothing near it. libvips's int
// sum is right for the first and overflows for the second.
TEST_CASE("shrink: u16 boxes of 30000 and 40000 samples either side of the int32 sums' bound") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage alternating = (VImage::xyz(40000, 1)[0] % 2 + 65534).cast(VIPS_FORMAT_USHORT);
    const VImage want = (VImage::black(1, 1) + 65535).cast(VIPS_FORMAT_USHORT);
    for (bool vertical : {false, true}) {
        VImage im = (vertical ? alternating.rot(VIPS_ANGLE_D90) : alternating).copy_memory();
        NodeId in = tt::load_image(g, dir, im, vertical ? "v.v" : "h.v");
        for (int box : {30000, 40000}) {
            CAPTURE(vertical);
            CAPTURE(box);
            NodeId n =
                g.add("shrink", {in},
                      {{"hshrink", std::int64_t(vertical ? 1 : box)}, {"vshrink", std::int64_t(vertical ? box : 1)}});
            CHECK(tt::max_abs_diff(tt::render(g, n, 256, 2), want) == 0);
            if (box == 30000)
                CHECK(tt::max_abs_diff(tt::render(g, n, 256, 2), im.shrink(vertical ? 1 : box, vertical ? box : 1)) ==
                      0);
        }
    }
}

TEST_CASE("shrink: bad factors name their key") {
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}});
    CHECK_THROWS_WITH_AS(g.add("shrink", {b}, {{"hshrink", std::int64_t(0)}, {"vshrink", std::int64_t(1)}}),
                         doctest::Contains("key 'hshrink'"), GraphError);
    // 7 / 15 rounds to 0 rows
    CHECK_THROWS_WITH_AS(g.add("shrink", {b}, {{"hshrink", std::int64_t(1)}, {"vshrink", std::int64_t(15)}}),
                         doctest::Contains("key 'vshrink': shrinking the 7-pixel height by 15 leaves nothing"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("shrink", {b}, {{"hshrink", 2.5}, {"vshrink", std::int64_t(1)}}),
                         doctest::Contains("key 'hshrink'"), GraphError);
}
