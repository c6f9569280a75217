// colourspace and sharpen against vips colourspace / vips sharpen: every
// step of libvips's chain (sRGB, B_W, GREY16 <-> scRGB <-> XYZ <-> LAB <->
// LABS) bit for bit but GREY16 -> sRGB (within 1 level: libvips takes a
// 16-to-8-bit shortcut there, tessera the chain through scRGB), formats
// and bands as libvips's; sharpen bit for bit;
// sharpen on 8-bit RGB and 16-bit grey, tiles of 37 and 64 (which split its
// blur) equal to the whole-image render; a header without a colour space
// is refused with what to do.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

VImage photo(int w, int h, int bands, VipsBandFormat f, double gain, VipsInterpretation in) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_DOUBLE).gaussblur(1.2) * gain)
        .cast(f)
        .copy(VImage::option()->set("interpretation", in))
        .copy_memory();
}

double max_diff(const Buffer& a, const VImage& b) {
    return (tt::to_vips(a).cast(VIPS_FORMAT_DOUBLE) - b.cast(VIPS_FORMAT_DOUBLE)).abs().max();
}

struct Target {
    const char* name;
    VipsInterpretation vips;
    Format format;
    int bands;
};

}  // namespace

TEST_CASE("colourspace: from sRGB and GREY16 to every space as vips colourspace bit for bit") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage rgb = photo(67, 53, 3, VIPS_FORMAT_UCHAR, 1.0, VIPS_INTERPRETATION_sRGB);
    const VImage grey = photo(67, 53, 1, VIPS_FORMAT_USHORT, 257.0, VIPS_INTERPRETATION_GREY16);
    const NodeId nrgb = tt::load_image(g, dir, rgb, "rgb.v"), ngrey = tt::load_image(g, dir, grey, "grey.v");
    // (target, libvips's, format, bands, largest |diff| from sRGB, from GREY16)
    struct Row {
        Target t;
        double from_rgb, from_grey;
    };
    const Row rows[] = {
        {{"scrgb", VIPS_INTERPRETATION_scRGB, Format::f32, 3}, 0, 0},
        {{"xyz", VIPS_INTERPRETATION_XYZ, Format::f32, 3}, 0, 0},
        {{"lab", VIPS_INTERPRETATION_LAB, Format::f32, 3}, 0, 0},
        {{"labs", VIPS_INTERPRETATION_LABS, Format::i16, 3}, 0, 0},
        {{"b-w", VIPS_INTERPRETATION_B_W, Format::u8, 1}, 0, 0},
        {{"srgb", VIPS_INTERPRETATION_sRGB, Format::u8, 3}, 0, 1},
        {{"grey16", VIPS_INTERPRETATION_GREY16, Format::u16, 1}, 1, 0},
    };
    for (const Row& row : rows) {
        CAPTURE(row.t.name);
        for (bool from_rgb : {true, false}) {
            CAPTURE(from_rgb);
            const VImage& im = from_rgb ? rgb : grey;
            const NodeId n = g.add("colourspace", {from_rgb ? nrgb : ngrey}, {{"space", std::string(row.t.name)}});
            const Buffer got = tt::render(g, n, 4096, 1);
            const VImage want = im.colourspace(row.t.vips);
            CHECK(got.view().format == row.t.format);
            CHECK(got.view().bands == want.bands());
            CHECK(got.view().bands == row.t.bands);
            const double d = max_diff(got, want);
            MESSAGE(std::string(row.t.name) << std::string(from_rgb ? " from srgb: " : " from grey16: ") << d);
            CHECK(d <= (from_rgb ? row.from_rgb : row.from_grey));
        }
    }
}

TEST_CASE("colourspace: from LAB and XYZ and scRGB and LABS (source given) as vips colourspace bit for bit") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage rgb = photo(67, 53, 3, VIPS_FORMAT_UCHAR, 1.0, VIPS_INTERPRETATION_sRGB);
    for (auto [src, vsrc] : std::vector<std::pair<std::string, VipsInterpretation>>{
             {"lab", VIPS_INTERPRETATION_LAB},
             {"xyz", VIPS_INTERPRETATION_XYZ},
             {"scrgb", VIPS_INTERPRETATION_scRGB},
             {"labs", VIPS_INTERPRETATION_LABS}}) {
        const VImage im = rgb.colourspace(vsrc).copy_memory();
        const NodeId in = tt::load_image(g, dir, im, src + ".v");
        for (auto [to, vto, tol] : std::vector<std::tuple<std::string, VipsInterpretation, double>>{
                 {"srgb", VIPS_INTERPRETATION_sRGB, 0},
                 {"b-w", VIPS_INTERPRETATION_B_W, 0},
                 {"lab", VIPS_INTERPRETATION_LAB, 0},
                 {"xyz", VIPS_INTERPRETATION_XYZ, 0},
                 {"scrgb", VIPS_INTERPRETATION_scRGB, 0}}) {
            if (to == src) continue;
            CAPTURE(src);
            CAPTURE(to);
            const NodeId n = g.add("colourspace", {in}, {{"space", to}, {"source", src}});
            const double d = max_diff(tt::render(g, n, 64, 2), im.colourspace(vto, VImage::option()->set(
                                                                                       "source_space", vsrc)));
            MESSAGE(src << " -> " << to << ": " << d);
            CHECK(d <= tol);
        }
    }
    // a header without a colour space: say which it is in
    Graph h(standard_registry());
    const NodeId b = h.add("black", {}, {{"width", std::int64_t(8)}, {"height", std::int64_t(8)}, {"bands", std::int64_t(3)}, {"format", std::string("f32")}},
                           "canvas");
    CHECK_THROWS_WITH_AS(h.add("colourspace", {b}, {{"space", std::string("lab")}}, "cs"),
                         doctest::Contains("node 'cs' (op colourspace), key 'source'"), GraphError);
}

TEST_CASE("sharpen: vips sharpen bit for bit on 8-bit sRGB and 16-bit grey / tile seams") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage rgb = photo(131, 97, 3, VIPS_FORMAT_UCHAR, 1.0, VIPS_INTERPRETATION_sRGB);
    const VImage grey = photo(131, 97, 1, VIPS_FORMAT_USHORT, 257.0, VIPS_INTERPRETATION_GREY16);
    for (bool is_rgb : {true, false}) {
        const VImage& im = is_rgb ? rgb : grey;
        const NodeId in = tt::load_image(g, dir, im, is_rgb ? "rgb.v" : "grey.v");
        for (auto [sigma, m2] : std::vector<std::pair<double, double>>{{0.5, 3.0}, {1.5, 5.0}}) {
            CAPTURE(is_rgb);
            CAPTURE(sigma);
            const NodeId n = g.add("sharpen", {in}, {{"sigma", sigma}, {"m2", m2}});
            const Buffer whole = tt::render(g, n, 4096, 1);
            const VImage want = im.sharpen(VImage::option()->set("sigma", sigma)->set("m2", m2));
            CHECK(whole.view().format == (is_rgb ? Format::u8 : Format::u16));
            const double d = max_diff(whole, want);
            MESSAGE("sharpen " << std::string(is_rgb ? "srgb" : "grey16") << " sigma " << sigma << ": " << d);
            CHECK(d == 0);
            // it did sharpen: the result differs from the input
            CHECK(max_diff(whole, im) > 0);
            for (int tile : {37, 64}) CHECK(tt::max_abs_diff(tt::render(g, n, tile, 2), whole) == 0);
        }
    }
}
