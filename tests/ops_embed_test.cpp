// embed: geometry, demand, pixels of every extend rule against libvips,
// bad parameters.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(const Params& p, const ImageInfo& in) { return tt::build_op("embed", p, {in}); }

Params place(int x, int y, int width, int height, const std::string& extend = "") {
    Params p{{"x", std::int64_t(x)},
             {"y", std::int64_t(y)},
             {"width", std::int64_t(width)},
             {"height", std::int64_t(height)}};
    if (!extend.empty()) p.set("extend", extend);
    return p;
}

VipsExtend vips_extend(const std::string& e) {
    if (e == "white") return VIPS_EXTEND_WHITE;
    if (e == "copy") return VIPS_EXTEND_COPY;
    if (e == "repeat") return VIPS_EXTEND_REPEAT;
    if (e == "mirror") return VIPS_EXTEND_MIRROR;
    if (e == "background") return VIPS_EXTEND_BACKGROUND;
    return VIPS_EXTEND_BLACK;
}

}  // namespace

TEST_CASE("embed: geometry and georeference") {
    ImageInfo in = tt::header(50, 40, 3);
    GeoRef geo;
    geo.transform = {1000, 2, 0, 5000, 0, -2};
    in.geo = geo;
    auto op = build(place(10, -5, 80, 60), in);
    const ImageInfo& out = op->info();
    CHECK(out.width == 80);
    CHECK(out.height == 60);
    CHECK(out.bands == 3);
    CHECK(out.format == Format::u8);
    REQUIRE(out.geo);
    // output pixel (0, 0) is input pixel (-10, 5)
    CHECK(out.geo->transform[0] == doctest::Approx(980));
    CHECK(out.geo->transform[3] == doctest::Approx(4990));
}

TEST_CASE("embed: demand places the inner part and pulls only what the border maps to") {
    // input 50x40 at (20, 10) on 100x80: the sub image is [20, 10] 50x40
    SUBCASE("constant border: the inner part placed, nothing pulled") {
        auto op = build(place(20, 10, 100, 80, "white"), tt::header(50, 40));
        Demand need;
        op->demand({30, 20, 16, 16}, need);  // inside the sub image
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{10, 10, 16, 16});
        CHECK(*need[0].place == Point{30, 20});

        need.clear();
        op->demand({0, 0, 16, 16}, need);  // wholly outside
        CHECK(need.empty());

        need.clear();
        op->demand({64, 44, 16, 16}, need);  // both: only [64, 44] 6x6 is image
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{44, 34, 6, 6});
        CHECK(*need[0].place == Point{64, 44});
    }
    SUBCASE("copy: a border piece pulls the edge it repeats") {
        auto op = build(place(20, 10, 100, 80, "copy"), tt::header(50, 40));
        Demand need;
        op->demand({0, 20, 10, 16}, need);  // left of the image: its column 0, rows 10..25
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{0, 10, 1, 16});
        CHECK_FALSE(need[0].place);

        need.clear();
        op->demand({0, 0, 8, 8}, need);  // top-left corner: one pixel
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{0, 0, 1, 1});

        need.clear();
        op->demand({60, 40, 20, 20}, need);  // straddles the bottom-right corner
        // right piece, bottom piece, bottom-right corner, then the inner part
        REQUIRE(need.size() == 4);
        CHECK(need[0].rect == Rect{49, 30, 1, 10});
        CHECK(need[1].rect == Rect{40, 39, 10, 1});
        CHECK(need[2].rect == Rect{49, 39, 1, 1});
        CHECK(need[3].rect == Rect{40, 30, 10, 10});
        CHECK(*need[3].place == Point{60, 40});
    }
    SUBCASE("repeat: a span across a seam pulls the two ends") {
        auto op = build(place(20, 10, 100, 80, "repeat"), tt::header(50, 40));
        Demand need;
        op->demand({70, 20, 10, 5}, need);  // right of the image, columns 50..59 = 0..9
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{0, 10, 10, 5});

        need.clear();
        op->demand({10, 20, 5, 5}, need);  // columns -10..-6 = 40..44
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{40, 10, 5, 5});

        auto wide = build(place(3, 0, 100, 40, "repeat"), tt::header(10, 40));
        need.clear();
        wide->demand({20, 0, 8, 4}, need);  // input columns 17..24 wrap to 7, 8, 9, 0 .. 4
        REQUIRE(need.size() == 2);
        CHECK(need[0].rect == Rect{7, 0, 3, 4});
        CHECK(need[1].rect == Rect{0, 0, 5, 4});
    }
    SUBCASE("mirror: the reflected span") {
        auto op = build(place(20, 10, 100, 80, "mirror"), tt::header(50, 40));
        Demand need;
        op->demand({12, 20, 4, 5}, need);  // columns -8..-5 mirror to 7..4
        REQUIRE(need.size() == 1);
        CHECK(need[0].rect == Rect{4, 10, 4, 5});
    }
}

TEST_CASE("embed: every extend rule matches libvips across tile seams") {
    tt::TempDir dir;
    VImage pat = tt::pattern(50, 40, 3);
    Graph g(standard_registry());
    NodeId in = tt::load_image(g, dir, pat);
    for (std::string e : {"black", "white", "copy", "repeat", "mirror"}) {
        CAPTURE(e);
        // the input inside, past the top edge, and far off to one side
        // (repeat and mirror wrap several times there)
        for (auto [x, y] : std::vector<std::pair<int, int>>{{13, 9}, {13, -7}, {-31, 25}}) {
            CAPTURE(x);
            CAPTURE(y);
            NodeId n = g.add("embed", {in}, place(x, y, 141, 97, e));
            VImage want = pat.embed(x, y, 141, 97, VImage::option()->set("extend", vips_extend(e)));
            tt::check_pixels(g, n, want);
        }
    }
    // repeat and mirror with the input wholly off the canvas
    for (std::string e : {"repeat", "mirror"}) {
        CAPTURE(e);
        NodeId n = g.add("embed", {in}, place(180, -150, 70, 60, e));
        tt::check_pixels(g, n, pat.embed(180, -150, 70, 60, VImage::option()->set("extend", vips_extend(e))));
    }
}

TEST_CASE("embed: background values are converted as libvips converts them") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage pat = tt::pattern(30, 20, 3);
    NodeId u8 = tt::load_image(g, dir, pat, "u8.v");
    // per band, with one value past the u8 range and one fraction; no extend:
    // giving a background selects it, as in libvips
    std::vector<double> bg{10.0, 300.0, 1.6};
    Params p = place(7, 5, 50, 33);
    p.set("background", bg);
    NodeId n = g.add("embed", {u8}, p);
    tt::check_pixels(g, n, pat.embed(7, 5, 50, 33, VImage::option()->set("background", bg)));

    // i16 and f32: negative fractions truncate toward zero; white is -1 in
    // i16 (all bits set) and 255 in float
    for (VipsBandFormat f : {VIPS_FORMAT_SHORT, VIPS_FORMAT_FLOAT, VIPS_FORMAT_UINT}) {
        CAPTURE(f);
        VImage im = (tt::pattern(30, 20, 2, VIPS_FORMAT_FLOAT) * 3.3 - 200).cast(f).copy_memory();
        NodeId s = tt::load_image(g, dir, im, "f" + std::to_string(int(f)) + ".v");
        Params q = place(-4, 6, 40, 35, "background");
        q.set("background", std::vector<double>{-1.5, 70000.7});
        NodeId b = g.add("embed", {s}, q);
        tt::check_pixels(g, b,
                         im.embed(-4, 6, 40, 35,
                                  VImage::option()
                                      ->set("extend", VIPS_EXTEND_BACKGROUND)
                                      ->set("background", std::vector<double>{-1.5, 70000.7})));
        NodeId w = g.add("embed", {s}, place(3, 2, 40, 35, "white"));
        tt::check_pixels(g, w, im.embed(3, 2, 40, 35, VImage::option()->set("extend", VIPS_EXTEND_WHITE)));
    }
}

TEST_CASE("embed: bad parameters name their key") {
    Graph g(standard_registry());
    NodeId b =
        g.add("black", {}, {{"width", std::int64_t(50)}, {"height", std::int64_t(40)}, {"bands", std::int64_t(3)}});
    CHECK_THROWS_WITH_AS(g.add("embed", {b}, place(0, 0, 60, 50, "wrap")), doctest::Contains("key 'extend'"),
                         GraphError);
    Params p = place(0, 0, 60, 50);
    p.set("background", std::vector<double>{1, 2});
    CHECK_THROWS_WITH_AS(g.add("embed", {b}, p), doctest::Contains("key 'background'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("embed", {b}, place(0, 0, 0, 50)), doctest::Contains("key 'width'"), GraphError);
    // copy needs an edge to copy from
    CHECK_THROWS_WITH_AS(g.add("embed", {b}, place(100, 0, 60, 50, "copy")),
                         doctest::Contains("key 'x': the 50x40 input at (100, 0) lies wholly outside"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("embed", {b}, place(0, -40, 60, 50, "copy")), doctest::Contains("key 'y'"), GraphError);
    // the constant rules give the plain canvas (libvips refuses these too)
    NodeId off = g.add("embed", {b}, place(0, -40, 60, 50, "white"));
    CHECK(tt::max_abs_diff(tt::render(g, off, 16, 1),
                           (VImage::black(60, 50, VImage::option()->set("bands", 3)) + 255).cast(VIPS_FORMAT_UCHAR)) ==
          0);
}
