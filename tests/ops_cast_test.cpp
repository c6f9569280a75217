// cast: geometry, demand, every (in, out) format pair against libvips,
// bad formats.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(const Params& p, const ImageInfo& in) { return tt::build_op("cast", p, {in}); }

const std::pair<const char*, VipsBandFormat> kFormats[] = {{"u8", VIPS_FORMAT_UCHAR},  {"u16", VIPS_FORMAT_USHORT},
                                                           {"i16", VIPS_FORMAT_SHORT}, {"u32", VIPS_FORMAT_UINT},
                                                           {"i32", VIPS_FORMAT_INT},   {"f32", VIPS_FORMAT_FLOAT},
                                                           {"f64", VIPS_FORMAT_DOUBLE}};

// Values that exercise every rule: negative and positive fractions (band
// 0), values past the 8 and 16 bit ranges (band 1), past the 32 bit ranges
// (band 2).
VImage wide_values(int w, int h) {
    VImage base = tt::pattern(w, h, 3, VIPS_FORMAT_DOUBLE, 1);
    return ((base - 125.5) * std::vector<double>{0.37, 301.3, 2.9e7}).copy_memory();
}

}  // namespace

TEST_CASE("cast: geometry keeps the header but the format and casts nodata") {
    ImageInfo in;
    in.width = 64;
    in.height = 48;
    in.bands = 2;
    in.format = Format::f32;
    GeoRef geo;
    geo.transform = {10, 1, 0, 20, 0, -1};
    geo.nodata = {-9999.0, std::nullopt};
    in.geo = geo;
    auto op = build({{"format", std::string("u8")}}, in);
    const ImageInfo& out = op->info();
    CHECK(out.width == 64);
    CHECK(out.height == 48);
    CHECK(out.bands == 2);
    CHECK(out.format == Format::u8);
    REQUIRE(out.geo);
    CHECK(out.geo->transform == geo.transform);
    REQUIRE(out.geo->nodata.size() == 2);
    CHECK(out.geo->nodata[0] == 0.0);  // -9999 clips to 0, as the pixels do
    CHECK_FALSE(out.geo->nodata[1]);
    // libvips spellings are accepted too
    CHECK(build({{"format", std::string("ushort")}}, in)->info().format == Format::u16);
}

TEST_CASE("cast: demand is the same rect / placed when nothing changes") {
    ImageInfo in;
    in.width = 64;
    in.height = 48;
    Demand need;
    build({{"format", std::string("f32")}}, in)->demand({16, 8, 16, 16}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{16, 8, 16, 16});
    CHECK_FALSE(need[0].place);

    need.clear();
    build({{"format", std::string("u8")}}, in)->demand({16, 8, 16, 16}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{16, 8, 16, 16});
    REQUIRE(need[0].place);
    CHECK(*need[0].place == Point{16, 8});
}

TEST_CASE("cast: every format pair matches libvips (clip / truncate toward zero)") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage wide = wide_values(41, 29);
    for (auto [in_name, in_fmt] : kFormats) {
        // libvips wraps u32 values above INT_MAX when narrowing (see the
        // next test): halve band 2 to keep u32 below 2^31 here
        VImage src = (in_fmt == VIPS_FORMAT_UINT ? wide * std::vector<double>{1, 1, 0.5} : wide).cast(in_fmt);
        src = src.copy_memory();
        NodeId s = tt::load_image(g, dir, src, std::string(in_name) + ".v");
        for (auto [out_name, out_fmt] : kFormats) {
            std::string pair = std::string(in_name) + " -> " + out_name;
            CAPTURE(pair);
            NodeId n = g.add("cast", {s}, {{"format", std::string(out_name)}});
            CHECK(g.info(n).format == *parse_format(out_name));
            CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), src.cast(out_fmt)) == 0);
        }
    }
}

TEST_CASE("cast: u32 above INT_MAX saturates when narrowed (libvips wraps it)") {
    tt::TempDir dir;
    Graph g(standard_registry());
    std::vector<unsigned> px{5, 300, 70000, 2147483647u, 2147483648u, 3000000000u, 4294967295u};
    VImage im = VImage::new_from_memory(px.data(), px.size() * 4, int(px.size()), 1, 1, VIPS_FORMAT_UINT).copy_memory();
    NodeId s = tt::load_image(g, dir, im);
    auto values = [&](const char* fmt) {
        Buffer b = tt::render(g, g.add("cast", {s}, {{"format", std::string(fmt)}}), 16, 1);
        std::vector<double> v;
        dispatch_format(b.view().format, [&](auto t) {
            using T = decltype(t);
            for (int x = 0; x < int(px.size()); ++x) v.push_back(double(b.view().row<T>(0)[x]));
        });
        return v;
    };
    CHECK(values("u8") == std::vector<double>{5, 255, 255, 255, 255, 255, 255});
    CHECK(values("u16") == std::vector<double>{5, 300, 65535, 65535, 65535, 65535, 65535});
    CHECK(values("i16") == std::vector<double>{5, 300, 32767, 32767, 32767, 32767, 32767});
    CHECK(values("i32") == std::vector<double>{5, 300, 70000, 2147483647, 2147483647, 2147483647, 2147483647});
    CHECK(values("f64") == std::vector<double>{5, 300, 70000, 2147483647, 2147483648.0, 3e9, 4294967295.0});
}

TEST_CASE("cast: pixels across tile seams match libvips") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage wide = wide_values(70, 45);
    NodeId f64 = tt::load_image(g, dir, wide, "f64.v");
    tt::check_pixels(g, g.add("cast", {f64}, {{"format", std::string("i16")}}), wide.cast(VIPS_FORMAT_SHORT));
    VImage i32 = wide.cast(VIPS_FORMAT_INT).copy_memory();
    NodeId s = tt::load_image(g, dir, i32, "i32.v");
    tt::check_pixels(g, g.add("cast", {s}, {{"format", std::string("u16")}}), i32.cast(VIPS_FORMAT_USHORT));
}

TEST_CASE("cast: an unknown format names the key and the choices") {
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, {{"width", std::int64_t(8)}, {"height", std::int64_t(8)}});
    CHECK_THROWS_WITH_AS(g.add("cast", {b}, {{"format", std::string("u7")}}),
                         doctest::Contains("key 'format': unknown format 'u7'; use u8"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("cast", {b}, {}), doctest::Contains("key 'format'"), GraphError);
}
