// mosaic: geometry, demand (insert's where nothing overlaps), blend none is
// insert bit for bit, feathered seams, pixels across tile seams, bad
// parameters.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(const Params& p, const std::vector<ImageInfo>& in) { return tt::build_op("mosaic", p, in); }

// base + overlapping images (some off the canvas edge) in one graph; returns
// the insert node and the mosaic node built over the same inputs.
struct Scene {
    Graph g{standard_registry()};
    NodeId insert = 0, mosaic = 0;
};
void build_scene(Scene& s, const tt::TempDir& dir, const std::string& blend, int bands = 3,
                 VipsBandFormat format = VIPS_FORMAT_UCHAR) {
    std::vector<NodeId> in{tt::load_image(s.g, dir, tt::pattern(230, 170, bands, format, 9), "base.v")};
    std::vector<IntPair> at = {{-10, 5}, {60, 30}, {100, 60}, {150, -20}, {20, 100}};
    for (std::size_t k = 0; k < at.size(); ++k)
        in.push_back(tt::load_image(s.g, dir, tt::pattern(90 + 7 * int(k), 80 - 5 * int(k), bands, format, int(k)),
                                    "t" + std::to_string(k) + ".v"));
    s.insert = s.g.add("insert", in, {{"at", at}});
    s.mosaic = s.g.add("mosaic", in, {{"at", at}, {"blend", blend}, {"blend_width", std::int64_t(12)}});
}

}  // namespace

TEST_CASE("mosaic: geometry is the base's") {
    ImageInfo base = tt::header(200, 150, 3);
    auto op =
        build({{"at", std::vector<IntPair>{{10, 20}, {30, 25}}}}, {base, tt::header(50, 40, 3), tt::header(30, 30, 3)});
    CHECK(op->info() == base);
}

TEST_CASE("mosaic: demand is insert's where images do not overlap - pulls only overlapping images") {
    // image 1 (40x40) at (10, 10); image 2 (40x40) at (40, 40): they overlap in [40, 50)^2
    auto op = build({{"at", std::vector<IntPair>{{10, 10}, {40, 40}}}},
                    {tt::header(100, 100), tt::header(40, 40), tt::header(40, 40)});
    Demand need;
    op->demand({12, 12, 8, 8}, need);  // inside image 1 only: placed, as insert
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 1);
    CHECK(need[0].place.has_value());

    need.clear();
    op->demand({60, 0, 30, 30}, need);  // base only
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 0);
    CHECK(need[0].place.has_value());

    need.clear();
    op->demand({30, 30, 30, 30}, need);  // both images overlap here, and some base shows
    REQUIRE(need.size() == 3);
    CHECK(need[0].input == 0);
    CHECK_FALSE(need[0].place.has_value());
    CHECK(need[1].input == 1);
    CHECK(need[1].rect == Rect{20, 20, 20, 20});
    CHECK_FALSE(need[1].place.has_value());
    CHECK(need[2].input == 2);
    CHECK(need[2].rect == Rect{0, 0, 20, 20});

    // far from everything: a tile meeting image 2 and nothing else is placed
    need.clear();
    op->demand({55, 55, 20, 20}, need);
    for (const Need& n : need) CHECK(n.place.has_value());

    // under the opaque core of a later image (the image less blend_width on
    // each side) earlier ones are hidden and not asked for
    auto narrow = build({{"at", std::vector<IntPair>{{0, 0}, {10, 10}}}, {"blend_width", std::int64_t(4)}},
                        {tt::header(100, 100), tt::header(40, 40), tt::header(30, 30)});
    need.clear();
    narrow->demand({16, 16, 8, 8}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 2);
    CHECK(need[0].place.has_value());
    need.clear();
    narrow->demand({8, 8, 8, 8}, need);  // across image 2's edge: both, blended
    REQUIRE(need.size() == 2);
    CHECK_FALSE(need[0].place.has_value());
    CHECK_FALSE(need[1].place.has_value());

    // blend none: always insert's (placed) demand
    auto none = build({{"at", std::vector<IntPair>{{10, 10}, {40, 40}}}, {"blend", std::string("none")}},
                      {tt::header(100, 100), tt::header(40, 40), tt::header(40, 40)});
    need.clear();
    none->demand({30, 30, 30, 30}, need);
    for (const Need& n : need) CHECK(n.place.has_value());
}

TEST_CASE("mosaic: blend none equals insert bit for bit - every tile size and thread count") {
    tt::TempDir dir;
    Scene s;
    build_scene(s, dir, "none");
    Buffer want = tt::render(s.g, s.insert, 64, 1);
    tt::check_pixels(s.g, s.mosaic, tt::to_vips(want));
}

TEST_CASE("mosaic: feather is the same across tile seams - where one image covers a pixel or the top one is opaque it "
          "is that image's") {
    tt::TempDir dir;
    for (auto [bands, format] : {std::pair{3, VIPS_FORMAT_UCHAR}, std::pair{1, VIPS_FORMAT_USHORT},
                                 std::pair{2, VIPS_FORMAT_FLOAT}, std::pair{1, VIPS_FORMAT_DOUBLE}}) {
        CAPTURE(bands);
        CAPTURE(int(format));
        tt::TempDir sub;
        Scene s;
        build_scene(s, sub, "feather", bands, format);
        Buffer ins = tt::render(s.g, s.insert, 230, 1);
        Buffer feathered = tt::render(s.g, s.mosaic, 230, 1);  // one tile: no seams
        tt::check_pixels(s.g, s.mosaic, tt::to_vips(feathered));
        // pixels covered by at most one image: exactly insert's
        std::vector<Rect> rects = {
            {-10, 5, 90, 80}, {60, 30, 97, 75}, {100, 60, 104, 70}, {150, -20, 111, 65}, {20, 100, 118, 60}};
        // and where several do but the top one's core (12 pixels in from
        // its edges: blend_width) covers it, the top one's value: insert's
        int same = 0, blended = 0, on_top = 0;
        dispatch_format(ins.view().format, [&](auto z) {
            using T = decltype(z);
            for (int y = 0; y < 170; ++y)
                for (int x = 0; x < 230; ++x) {
                    int n = 0;
                    const Rect* top = nullptr;
                    for (const Rect& r : rects)
                        if (r.contains(Point{x, y})) ++n, top = &r;
                    const T* a = ins.view().row<T>(y) + std::size_t(x) * bands;
                    const T* b = feathered.view().row<T>(y) + std::size_t(x) * bands;
                    bool eq = std::equal(a, a + bands, b);
                    if (n <= 1) {
                        same += eq;
                        CHECK(eq);
                    } else if (Rect{top->x + 12, top->y + 12, top->w - 24, top->h - 24}.contains(Point{x, y})) {
                        on_top += eq;
                        CHECK(eq);
                    } else {
                        blended += !eq;
                    }
                }
        });
        CHECK(same > 10000);
        CHECK(on_top > 1000);
        CHECK(blended > 1000);  // the overlaps really are blended
    }
}

TEST_CASE("mosaic: feather asks an image only for what the later cores leave - its rows the same across a tile row") {
    // image 1 (40x40) at (0, 0); image 2 (60x30) at (-10, 20), later, blend
    // 4: its core [-6, 46) x [24, 46) hides image 1's rows 24.. at every
    // column, and columns 0..40 of image 1 nowhere else
    auto op = build({{"at", std::vector<IntPair>{{0, 0}, {-10, 20}}}, {"blend_width", std::int64_t(4)}},
                    {tt::header(100, 100), tt::header(40, 40), tt::header(60, 30)});
    Demand need;
    op->demand({0, 16, 16, 16}, need);  // rows 16..32: both, blended
    REQUIRE(need.size() == 2);
    CHECK(need[0].input == 1);
    CHECK(need[0].rect == Rect{0, 16, 16, 8});  // rows 24..32 are under the core
    CHECK_FALSE(need[0].place.has_value());
    CHECK(need[1].input == 2);
    CHECK(need[1].rect == Rect{10, 0, 16, 12});
    // image 2 (30x30) at (10, 10) over image 1 (40x40) at (0, 0), blend 4:
    // its core [14, 36)^2; a tile across image 2's left edge asks image 1
    // only for the columns left of the core, with all the tile's rows (the
    // rows below 36 show image 1 again: its box is its whole rect)
    auto inside = build({{"at", std::vector<IntPair>{{0, 0}, {10, 10}}}, {"blend_width", std::int64_t(4)}},
                        {tt::header(100, 100), tt::header(40, 40), tt::header(30, 30)});
    need.clear();
    inside->demand({8, 16, 16, 8}, need);
    REQUIRE(need.size() == 2);
    CHECK(need[0].input == 1);
    CHECK(need[0].rect == Rect{8, 16, 6, 8});
    CHECK(need[1].input == 2);
    CHECK(need[1].rect == Rect{0, 6, 14, 8});
    // the same columns for every tile of a row that meets the same cores
    need.clear();
    inside->demand({8, 24, 16, 8}, need);
    REQUIRE(need.size() == 2);
    CHECK(need[0].rect == Rect{8, 24, 6, 8});
}

TEST_CASE(
    "mosaic: feather is the spec's over-compositing of raised-cosine opacities - u8 and f32 at several tile sizes") {
    // An independent reference of the header's formula, in double: from the
    // last image covering a pixel down, each takes its opacity (the product
    // of its column and row ramps) times what the later ones left, and the
    // pixel is the weighted mean; the base where no image covers. Any
    // column or row a blend needs and did not pull would be far off.
    const int bw = 12;
    auto ramp = [&](int e) { return e >= bw ? 1.0 : 0.5 - 0.5 * std::cos(M_PI * (e + 0.5) / bw); };
    for (auto [bands, format] : {std::pair{3, VIPS_FORMAT_UCHAR}, std::pair{1, VIPS_FORMAT_FLOAT}}) {
        CAPTURE(bands);
        tt::TempDir dir;
        Graph g(standard_registry());
        std::vector<VImage> ims{tt::pattern(230, 170, bands, format, 9)};
        const std::vector<IntPair> at = {{-10, 5}, {60, 30}, {100, 60}, {150, -20}, {20, 100}, {70, 40}};
        for (std::size_t k = 0; k < at.size(); ++k)
            ims.push_back(tt::pattern(90 + 7 * int(k), 80 - 5 * int(k), bands, format, int(k)));
        std::vector<NodeId> in;
        std::vector<Buffer> px;
        for (std::size_t k = 0; k < ims.size(); ++k) {
            in.push_back(tt::load_image(g, dir, ims[k], "i" + std::to_string(k) + ".v"));
            px.push_back(tt::from_vips(ims[k]));
        }
        NodeId m = g.add("mosaic", in, {{"at", at}, {"blend_width", std::int64_t(bw)}});
        Buffer want(nullptr, Rect{0, 0, 230, 170}, bands, format == VIPS_FORMAT_UCHAR ? Format::u8 : Format::f32);
        int blended = 0;
        dispatch_format(want.view().format, [&](auto z) {
            using T = decltype(z);
            for (int y = 0; y < 170; ++y)
                for (int x = 0; x < 230; ++x) {
                    std::vector<double> acc(std::size_t(bands), 0.0);
                    double wsum = 0, left = 1;
                    int n = 0;
                    for (std::size_t k = at.size(); k-- > 0;) {
                        const Rect r{int(at[k][0]), int(at[k][1]), ims[k + 1].width(), ims[k + 1].height()};
                        if (!r.contains(Point{x, y})) continue;
                        ++n;
                        const double a =
                            ramp(std::min(x - r.x, r.right() - 1 - x)) * ramp(std::min(y - r.y, r.bottom() - 1 - y));
                        const T* v = px[k + 1].view().template row<T>(y - r.y) + std::size_t(x - r.x) * bands;
                        for (int b = 0; b < bands; ++b) acc[std::size_t(b)] += a * left * double(v[b]);
                        wsum += a * left;
                        left *= 1 - a;
                    }
                    T* o = want.tile().template row<T>(y) + std::size_t(x) * bands;
                    const T* base = px[0].view().template row<T>(y) + std::size_t(x) * bands;
                    for (int b = 0; b < bands; ++b) {
                        const double v = n ? acc[std::size_t(b)] / wsum : double(base[b]);
                        o[b] = std::is_floating_point_v<T> ? T(v) : T(std::lround(v));
                    }
                    blended += n > 1 && left > 0;
                }
        });
        CHECK(blended > 1000);  // the overlaps' edges really are blends
        for (int tile : {16, 37, 230}) {
            CAPTURE(tile);
            // u8: the op accumulates in float, the reference in double (a
            // level at most where a mean lands on a half); f32: a few ulps
            CHECK(tt::max_abs_diff(tt::render(g, m, tile, 2), want) <= (bands == 3 ? 1.0 : 1e-3));
        }
    }
}

TEST_CASE("mosaic: feather leaves no seam between tiles of different brightness") {
    // two constant tiles, 100 and 140, overlapping by 60 columns; the blend
    // width is 24: across the overlap the value changes by at most
    // 40 * pi / 2 / 24 (+1 for rounding) from one column to the next, and
    // never leaves [100, 140]
    tt::TempDir dir;
    Graph g(standard_registry());
    NodeId base = tt::load_image(g, dir, VImage::black(200, 60).cast(VIPS_FORMAT_UCHAR), "base.v");
    NodeId a = tt::load_image(g, dir, (VImage::black(120, 60) + 100).cast(VIPS_FORMAT_UCHAR), "a.v");
    NodeId b = tt::load_image(g, dir, (VImage::black(140, 60) + 140).cast(VIPS_FORMAT_UCHAR), "b.v");
    std::vector<IntPair> at = {{0, 0}, {60, 0}};
    NodeId m = g.add("mosaic", {base, a, b}, {{"at", at}, {"blend_width", std::int64_t(24)}});
    NodeId ins = g.add("insert", {base, a, b}, {{"at", at}});
    for (int tile : {16, 64}) {
        Buffer out = tt::render(g, m, tile, 2);
        const std::uint8_t* row = out.view().row<std::uint8_t>(30);
        int worst = 0;
        for (int x = 1; x < 200; ++x) {
            worst = std::max(worst, std::abs(int(row[x]) - int(row[x - 1])));
            CHECK(row[x] >= 100);
            CHECK(row[x] <= 140);
        }
        CHECK(worst <= int(std::ceil(40 * M_PI / 2 / 24)) + 1);
        CHECK(row[0] == 100);
        CHECK(row[199] == 140);
        // insert's seam is the whole step at once
        Buffer hard = tt::render(g, ins, tile, 2);
        CHECK(int(hard.view().row<std::uint8_t>(30)[60]) - int(hard.view().row<std::uint8_t>(30)[59]) == 40);
    }
}

TEST_CASE("mosaic: bad parameters name the key and the fix") {
    std::vector<ImageInfo> in = {tt::header(100, 100, 3), tt::header(40, 40, 3)};
    auto key_of = [](const std::function<void()>& f) -> std::string {
        try {
            f();
        } catch (const ParamError& e) {
            return e.key() + ": " + e.what();
        }
        return "(no error)";
    };
    std::string e = key_of([&] { build({{"at", std::vector<IntPair>{{0, 0}}}, {"blend", std::string("soft")}}, in); });
    CHECK(e.rfind("blend: ", 0) == 0);
    CHECK(e.find("use feather") != std::string::npos);
    e = key_of([&] { build({{"at", std::vector<IntPair>{{0, 0}}}, {"blend_width", std::int64_t(0)}}, in); });
    CHECK(e.rfind("blend_width: ", 0) == 0);
    CHECK(tt::error_of([&] {
              build({{"at", std::vector<IntPair>{{0, 0}, {1, 1}}}}, in);
          }).find("one [x, y] per image") != std::string::npos);
    CHECK(tt::error_of([&] {
              build({{"at", std::vector<IntPair>{{0, 0}}}}, {tt::header(100, 100, 3), tt::header(40, 40, 1)});
          }).find("cast or convert") != std::string::npos);
}
