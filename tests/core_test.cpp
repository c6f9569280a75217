// core: rects, params, the spatial index, accounted buffers, pixel helpers.
#include <doctest/doctest.h>

#include "tessera/core/buffer.hpp"
#include "tessera/core/params.hpp"
#include "tessera/core/spatial_index.hpp"

using namespace tessera;

TEST_CASE("rect: half-open intersect / contains / translate / unite") {
    Rect a{0, 0, 10, 10}, b{5, 5, 10, 10};
    CHECK(a.intersect(b) == Rect{5, 5, 5, 5});
    CHECK(a.intersect(Rect{10, 0, 5, 5}).empty());  // touching edges do not overlap
    CHECK_FALSE(a.overlaps(Rect{0, 10, 3, 3}));
    CHECK(a.contains(Rect{0, 0, 10, 10}));
    CHECK_FALSE(a.contains(Rect{1, 1, 10, 1}));
    CHECK(a.contains(Point{9, 9}));
    CHECK_FALSE(a.contains(Point{10, 9}));
    CHECK(a.translate(-3, 4) == Rect{-3, 4, 10, 10});
    CHECK(a.unite(b) == Rect{0, 0, 15, 15});
    CHECK(Rect{}.unite(b) == b);
    CHECK(Rect{0, 0, 100000, 100000}.area() == 10'000'000'000LL);
}

TEST_CASE("params: typed getters name the key on errors") {
    Params p{{"w", std::int64_t(5)}, {"name", std::string("x")}, {"v", std::vector<double>{1, 2}}};
    CHECK(p.integer("w") == 5);
    CHECK(p.number("w") == 5.0);
    CHECK(p.integer("missing", 7) == 7);
    CHECK_THROWS_WITH_AS(p.integer("name"), "expected integer, got string", ParamError);
    try {
        p.integer_in("w", 10, 20);
        FAIL("no throw");
    } catch (const ParamError& e) {
        CHECK(e.key() == "w");
        CHECK(std::string(e.what()).find("[10, 20]") != std::string::npos);
    }
    CHECK_THROWS_AS(p.integer("nope"), ParamError);
    CHECK(p.numbers("v", {}) == std::vector<double>{1, 2});
}

TEST_CASE("spatial index: a query returns exactly the overlapping rects / in order") {
    std::vector<Rect> rects;
    for (int j = 0; j < 20; ++j)
        for (int i = 0; i < 30; ++i) rects.push_back({i * 90, j * 70, 100, 80});  // overlapping grid
    SpatialIndex idx({0, 0, 3000, 1500}, rects);
    std::vector<int> got;
    for (Rect q : {Rect{0, 0, 1, 1}, Rect{85, 65, 10, 10}, Rect{500, 300, 256, 256}, Rect{2990, 1490, 50, 50},
                   Rect{-10, -10, 5, 5}}) {
        idx.query(q, got);
        std::vector<int> want;
        for (int i = 0; i < int(rects.size()); ++i)
            if (rects[i].overlaps(q) && q.intersect({0, 0, 3000, 1500}).overlaps(rects[i])) want.push_back(i);
        CHECK(got == want);
    }
}

TEST_CASE("buffers charge and release their account - the peak is kept") {
    MemoryAccount acc;
    {
        Buffer a(&acc, {0, 0, 100, 10}, 3, Format::u16);
        CHECK(acc.current() == 100 * 10 * 3 * 2);
        Buffer b(&acc, {0, 0, 10, 10}, 1, Format::f64);
        CHECK(acc.current() == 6000 + 800);
        Buffer c = std::move(b);
        CHECK(acc.current() == 6800);
    }
    CHECK(acc.current() == 0);
    CHECK(acc.peak() == 6800);
}

TEST_CASE("fill and copy pixels clip to the view and the format") {
    Buffer a(nullptr, {10, 10, 4, 3}, 2, Format::u8);
    double v[] = {300, -5};
    fill_pixels(a.tile(), v, 2);
    CHECK(a.view().row<std::uint8_t>(10)[0] == 255);
    CHECK(a.view().row<std::uint8_t>(12)[7] == 0);
    Buffer b(nullptr, {12, 11, 4, 4}, 2, Format::u8);
    double z = 9;
    fill_pixels(b.tile(), &z, 1);
    copy_pixels(b.view(), a.tile());  // only the overlap [12,11 2x2] changes
    CHECK(a.view().at(12, 11)[0] == std::byte{9});
    CHECK(a.view().at(11, 11)[0] == std::byte{255});
    CHECK(a.view().at(13, 12)[1] == std::byte{9});
}
