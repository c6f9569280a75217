// insert: geometry, sparse demand, pixels against libvips insert, bad
// parameters.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(const Params& p, const std::vector<ImageInfo>& in) { return tt::build_op("insert", p, in); }

}  // namespace

TEST_CASE("insert: geometry is the base's") {
    ImageInfo base = tt::header(200, 150, 3);
    GeoRef geo;
    geo.transform = {1, 2, 0, 3, 0, -2};
    base.geo = geo;
    auto op = build({{"at", std::vector<IntPair>{{10, 20}, {-5, 140}}}},
                    {base, tt::header(50, 40, 3), tt::header(30, 30, 3)});
    CHECK(op->info() == base);
}

TEST_CASE("insert: demand skips what the topmost covering image hides") {
    // base 100x100; image 1 (40x40) at (10, 10); image 2 (20x20) at (20, 20)
    auto op = build({{"at", std::vector<IntPair>{{10, 10}, {20, 20}}}},
                    {tt::header(100, 100), tt::header(40, 40), tt::header(20, 20)});
    Demand need;
    op->demand({22, 22, 8, 8}, need);  // inside image 2: it alone
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 2);
    CHECK(need[0].rect == Rect{2, 2, 8, 8});
    CHECK(*need[0].place == Point{22, 22});

    need.clear();
    op->demand({12, 12, 6, 6}, need);  // inside image 1 only
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 1);
    CHECK(need[0].rect == Rect{2, 2, 6, 6});

    need.clear();
    op->demand({0, 0, 16, 16}, need);  // base, then image 1 over it
    REQUIRE(need.size() == 2);
    CHECK(need[0].input == 0);
    CHECK(need[0].rect == Rect{0, 0, 16, 16});
    CHECK(need[1].input == 1);
    CHECK(need[1].rect == Rect{0, 0, 6, 6});
    CHECK(*need[1].place == Point{10, 10});

    need.clear();
    op->demand({60, 60, 16, 16}, need);  // base only
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 0);

    // image 1 (10x10 at (30, 30)) lies under image 2 (30x30 at (25, 25)):
    // a rect over both never asks for image 1
    auto hidden = build({{"at", std::vector<IntPair>{{30, 30}, {25, 25}}}},
                        {tt::header(100, 100), tt::header(10, 10), tt::header(30, 30)});
    need.clear();
    hidden->demand({20, 20, 20, 20}, need);
    REQUIRE(need.size() == 2);
    CHECK(need[0].input == 0);
    CHECK(need[1].input == 2);
    CHECK(need[1].rect == Rect{0, 0, 15, 15});
}

TEST_CASE("insert: an image is asked only for its box that later images leave visible") {
    // a 2x2 grid of 100x80 scans at a step of 90x70, later ones on top (as
    // a scanner's positions file is): scan 0 shows only its top-left 90x70,
    // scan 1 (top right) its top 70 rows, scan 2 (bottom left) its left 90
    // columns, scan 3 all of it
    auto op = build({{"at", std::vector<IntPair>{{0, 0}, {90, 0}, {0, 70}, {90, 70}}}},
                    {tt::header(190, 150), tt::header(100, 80), tt::header(100, 80), tt::header(100, 80),
                     tt::header(100, 80)});
    // a tile over all four: each scan's part stops where its visible box does
    Demand need;
    op->demand({64, 64, 64, 64}, need);
    REQUIRE(need.size() == 4);
    CHECK(need[0].input == 1);
    CHECK(need[0].rect == Rect{64, 64, 26, 6});  // up to column 90 and row 70, not 100 and 80
    CHECK(need[1].input == 2);
    CHECK(need[1].rect == Rect{0, 64, 38, 6});  // rows 64..70 only
    CHECK(need[2].input == 3);
    CHECK(need[2].rect == Rect{64, 0, 26, 58});  // columns 64..90 only
    CHECK(need[3].input == 4);
    CHECK(need[3].rect == Rect{0, 0, 38, 58});
    // a tile over scan 0's hidden corner alone (under scans 1, 2 and 3) asks nothing of it
    need.clear();
    op->demand({92, 72, 6, 6}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 4);
}

TEST_CASE("insert: pixels across tile seams match libvips") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage base = tt::pattern(150, 110, 3, VIPS_FORMAT_UCHAR, 0);
    VImage a = tt::pattern(40, 30, 3, VIPS_FORMAT_UCHAR, 1);
    VImage b = tt::pattern(70, 60, 3, VIPS_FORMAT_UCHAR, 2);
    VImage c = tt::pattern(35, 45, 3, VIPS_FORMAT_UCHAR, 3);
    NodeId nb = tt::load_image(g, dir, base, "base.v");
    NodeId na = tt::load_image(g, dir, a, "a.v");
    NodeId nbb = tt::load_image(g, dir, b, "b.v");
    NodeId nc = tt::load_image(g, dir, c, "c.v");
    // overlapping, one past the right/bottom edges, one past the top-left
    NodeId n = g.add("insert", {nb, na, nbb, nc}, {{"at", std::vector<IntPair>{{10, 5}, {100, 70}, {-12, -9}}}});
    tt::check_pixels(g, n, base.insert(a, 10, 5).insert(b, 100, 70).insert(c, -12, -9));

    // the same image twice, the second on top of the first
    NodeId twice = g.add("insert", {nb, na, na}, {{"at", std::vector<IntPair>{{20, 20}, {35, 30}}}});
    tt::check_pixels(g, twice, base.insert(a, 20, 20).insert(a, 35, 30));

    // a jittered 2x2 grid, each scan asked only for its visible box: the
    // same picture as libvips drawing every scan whole
    std::vector<NodeId> in{nb};
    std::vector<VImage> scans;
    for (int k = 0; k < 4; ++k) {
        scans.push_back(tt::pattern(80, 60, 3, VIPS_FORMAT_UCHAR, 4 + k));
        in.push_back(tt::load_image(g, dir, scans.back(), "s" + std::to_string(k) + ".v"));
    }
    const std::vector<IntPair> at{{3, 2}, {71, 0}, {0, 55}, {69, 57}};
    NodeId grid = g.add("insert", in, {{"at", at}});
    VImage want = base;
    for (int k = 0; k < 4; ++k)
        want = want.insert(scans[std::size_t(k)], int(at[std::size_t(k)][0]), int(at[std::size_t(k)][1]));
    tt::check_pixels(g, grid, want);
}

TEST_CASE("insert: bad parameters name their key") {
    Graph g(standard_registry());
    NodeId base =
        g.add("black", {}, {{"width", std::int64_t(50)}, {"height", std::int64_t(50)}, {"bands", std::int64_t(3)}});
    NodeId grey = g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(10)}});
    CHECK_THROWS_WITH_AS(g.add("insert", {base, base}, {{"at", std::vector<IntPair>{{1, 2}, {3, 4}}}}),
                         doctest::Contains("key 'at': has 2 positions for 1 inserted images"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("insert", {base, grey}, {{"at", std::vector<IntPair>{{1, 2}}}}),
                         doctest::Contains("key 'inputs': image 1 has 1 bands of u8 but the base has 3 bands"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("insert", {base, base}, {{"at", std::vector<IntPair>{{1, 20000000}}}}),
                         doctest::Contains("key 'at'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("insert", {base, base}, {}), doctest::Contains("key 'at'"), GraphError);
    // wholly outside the base (swapped or scaled coordinates): an error;
    // partly outside is clipped as libvips does
    CHECK_THROWS_WITH_AS(g.add("insert", {base, base, base}, {{"at", std::vector<IntPair>{{0, 0}, {-50, 10}}}}),
                         doctest::Contains(
                             "key 'at': position 1 [-50, 10] puts image 2 (50x50) wholly outside the 50x50 base"),
                         GraphError);
    CHECK_NOTHROW(g.add("insert", {base, base}, {{"at", std::vector<IntPair>{{-49, 49}}}}));
}
