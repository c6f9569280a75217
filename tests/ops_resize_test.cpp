// resize: sizes as libvips resize, pixels within a stated tolerance of vips
// resize for every kernel (reduce with and without the box shrink, enlarge),
// on 8-bit RGB and 16-bit grey; tiles that split every kernel give the
// whole-image render's bits; bad parameters name node and key.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

const char* const kKernels[] = {"nearest", "linear", "cubic", "lanczos3"};
const VipsKernel kVipsKernels[] = {VIPS_KERNEL_NEAREST, VIPS_KERNEL_LINEAR, VIPS_KERNEL_CUBIC, VIPS_KERNEL_LANCZOS3};

VImage vips_resize(const VImage& im, double scale, int k, double vscale = 0) {
    auto o = VImage::option()->set("kernel", kVipsKernels[k]);
    if (vscale > 0) o->set("vscale", vscale);
    return im.resize(scale, o).copy_memory();
}

// Largest |a - b| and the share of samples that differ at all.
std::pair<double, double> compare(const Buffer& a, const VImage& b) {
    VImage d = (tt::to_vips(a).cast(VIPS_FORMAT_DOUBLE) - b.cast(VIPS_FORMAT_DOUBLE)).abs();
    return {d.max(), (d > 0).avg() / 255};
}

// Largest |a - b| over the pixels whose position X / scale (and Y / vscale)
// is not a whole number: there libvips's nearest, which steps its position
// along a row by adding 1 / scale, can land just below the sample boundary
// and take the previous sample (at 2.5: columns 5, 50, ...), where this op
// computes each pixel's position on its own.
double off_boundary_diff(const Buffer& a, const VImage& b, double hs, double vs) {
    VImage d = (tt::to_vips(a).cast(VIPS_FORMAT_DOUBLE) - b.cast(VIPS_FORMAT_DOUBLE)).abs();
    VImage xy = VImage::xyz(d.width(), d.height()).cast(VIPS_FORMAT_DOUBLE);
    VImage u = xy[0] / hs, v = xy[1] / vs;
    VImage whole = ((u - u.floor()) < 1e-9) | ((v - v.floor()) < 1e-9);
    return whole.ifthenelse(0, d).max();
}

// A smooth image with detail, as photographs have: the pattern blurred.
VImage photo(int w, int h, int bands, VipsBandFormat f, double gain) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_DOUBLE).gaussblur(1.5) * gain).cast(f).copy_memory();
}

}  // namespace

TEST_CASE("resize: output sizes are libvips resize's") {
    for (int k = 0; k < 4; ++k)
        for (double s : {0.01, 0.1, 0.2, 0.3, 0.333, 0.5, 0.77, 1.0, 1.6, 2.0, 2.5, 3.7})
            for (auto [w, h] : std::vector<std::pair<int, int>>{{143, 101}, {1000, 37}, {7, 5}}) {
                CAPTURE(k);
                CAPTURE(s);
                CAPTURE(w);
                CAPTURE(h);
                VImage want = VImage::black(w, h).resize(s, VImage::option()->set("kernel", kVipsKernels[k]));
                auto op =
                    tt::build_op("resize", {{"scale", s}, {"kernel", std::string(kKernels[k])}}, {tt::header(w, h)});
                CHECK(op->info().width == want.width());
                CHECK(op->info().height == want.height());
            }
    // a target width keeps the aspect ratio
    auto op = tt::build_op("resize", {{"width", std::int64_t(2000)}}, {tt::header(24000, 20000)});
    CHECK(op->info().width == 2000);
    CHECK(op->info().height == 1667);
    op = tt::build_op("resize", {{"width", std::int64_t(50)}, {"height", std::int64_t(10)}}, {tt::header(143, 101)});
    CHECK(op->info().width == 50);
    CHECK(op->info().height == 10);
}

TEST_CASE("resize: demand reads the kernel's halo / box factor times the taps") {
    // 1000 px to 10 %: box 5, then a reduce by 2 with lanczos3: 13 taps over
    // the shrunk axis, 6 each side of the sample nearest the position;
    // output 50..59 sample shrunk positions 100.5 .. 118.5 (nearest 101 ..
    // 119), so they read shrunk 95..125, input 475..629
    auto op = tt::build_op("resize", {{"scale", 0.1}}, {tt::header(1000, 1000)});
    Demand need;
    op->demand({50, 50, 10, 10}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{475, 475, 155, 155});
    need.clear();
    op->demand({0, 0, 10, 10}, need);  // clipped at the edge (the copy extension)
    CHECK(need[0].rect == Rect{0, 0, 130, 130});
    need.clear();
    // nearest reads one pixel per output pixel
    tt::build_op("resize", {{"scale", 0.5}, {"kernel", std::string("nearest")}}, {tt::header(100, 100)})
        ->demand({10, 10, 4, 4}, need);
    CHECK(need[0].rect.w <= 8);
}

// Tolerances against vips resize 8.14 (levels of the format):
//  - the reduce follows libvips's arithmetic (mask positions rounded to
//    1/64, 12-bit weights each truncated, sum + 2048 >> 12): u16 and f32
//    are bit for bit; u8 is within 3 levels (libvips's u8 reduce runs a
//    vector path whose fixed-point rounding differs; about half the
//    samples differ by 1 at 10 %);
//  - enlarging: bicubic (cubic, lanczos3) is bit for bit, bilinear within
//    1 level for u8 (7 % of samples) and 8 for u16 (libvips's 16-bit
//    bilinear rounds differently; 0.01 % of the range);
//  - nearest: bit for bit, but for an enlargement by a fraction, where a
//    pixel's position is a whole number (see off_boundary_diff).
int tolerance(int kernel, double s, bool u16) {
    if (kernel == 0) return 0;
    if (s < 1) return u16 ? 0 : 3;
    return kernel == 1 ? (u16 ? 8 : 1) : 0;
}

TEST_CASE("resize: u8 RGB near vips resize for every kernel / tile seams") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage im = photo(203, 151, 3, VIPS_FORMAT_UCHAR, 1.0);
    NodeId in = tt::load_image(g, dir, im);
    for (int k = 0; k < 4; ++k)
        for (double s : {0.1, 0.3, 0.5, 0.77, 1.6, 2.5}) {
            CAPTURE(kKernels[k]);
            CAPTURE(s);
            NodeId n = g.add("resize", {in}, {{"scale", s}, {"kernel", std::string(kKernels[k])}});
            const Buffer whole = tt::render(g, n, 4096, 1);
            auto [worst, share] = compare(whole, vips_resize(im, s, k));
            INFO(kKernels[k] << " " << s << ": max " << worst << ", share " << share);
            if (k == 0 && s > 1)
                CHECK(off_boundary_diff(whole, vips_resize(im, s, k), s, s) == 0);
            else
                CHECK(worst <= tolerance(k, s, false));
            // tiles of 64 and 37 split every kernel's footprint: the same bits
            for (int tile : {37, 64}) CHECK(tt::max_abs_diff(tt::render(g, n, tile, 2), whole) == 0);
        }
}

TEST_CASE("resize: u16 grey near vips resize for every kernel / tile seams") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage im = photo(203, 151, 1, VIPS_FORMAT_USHORT, 257.0);
    NodeId in = tt::load_image(g, dir, im);
    for (int k = 0; k < 4; ++k)
        for (double s : {0.1, 0.3, 0.77, 2.0, 2.5}) {
            CAPTURE(kKernels[k]);
            CAPTURE(s);
            NodeId n = g.add("resize", {in}, {{"scale", s}, {"kernel", std::string(kKernels[k])}});
            const Buffer whole = tt::render(g, n, 4096, 1);
            auto [worst, share] = compare(whole, vips_resize(im, s, k));
            INFO(kKernels[k] << " " << s << ": max " << worst << ", share " << share);
            if (k == 0 && s > 1)
                CHECK(off_boundary_diff(whole, vips_resize(im, s, k), s, s) == 0);
            else
                CHECK(worst <= tolerance(k, s, true));
            CHECK(tt::max_abs_diff(tt::render(g, n, 64, 2), whole) == 0);
        }
}

// f32: libvips's float reduce weights in double from the same tables, so
// the same bits.
TEST_CASE("resize: vscale and a float image bit for bit") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage im = photo(120, 90, 2, VIPS_FORMAT_FLOAT, 1.0);
    NodeId in = tt::load_image(g, dir, im);
    for (auto [hs, vs] : std::vector<std::pair<double, double>>{
             {0.4, 0.25}, {0.77, 1.0}, {1.0, 0.3}, {0.77, 0.3}, {0.3, 0.3}, {0.5, 0.5}})
        for (int k = 1; k < 4; ++k) {
            CAPTURE(hs);
            CAPTURE(vs);
            NodeId n = g.add("resize", {in}, {{"scale", hs}, {"vscale", vs}, {"kernel", std::string(kKernels[k])}});
            const Buffer whole = tt::render(g, n, 4096, 1);
            auto [worst, share] = compare(whole, vips_resize(im, hs, k, vs));
            CHECK(worst == 0);
            CHECK(tt::max_abs_diff(tt::render(g, n, 16, 2), whole) == 0);
        }
}

// One axis enlarged and the other reduced or kept: libvips reduces first,
// then enlarges with an affine whose input offset is 0.5 on both axes (the
// kept or reduced axis moves by half a pixel, through the interpolator);
// the same here, bit for bit on u16.
TEST_CASE("resize: one axis enlarged and the other reduced or kept as libvips") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage im = photo(143, 101, 1, VIPS_FORMAT_USHORT, 257.0);
    NodeId in = tt::load_image(g, dir, im);
    for (auto [hs, vs] : std::vector<std::pair<double, double>>{{2, 0.5}, {0.5, 2}, {1.5, 1}})
        for (int k = 1; k < 4; ++k) {
            CAPTURE(hs);
            CAPTURE(vs);
            CAPTURE(kKernels[k]);
            NodeId n = g.add("resize", {in}, {{"scale", hs}, {"vscale", vs}, {"kernel", std::string(kKernels[k])}});
            const Buffer whole = tt::render(g, n, 4096, 1);
            // (bilinear: libvips's 16-bit rounding, as in the u16 test)
            CHECK(compare(whole, vips_resize(im, hs, k, vs)).first <= (k == 1 ? 8 : 0));
            CHECK(tt::max_abs_diff(tt::render(g, n, 37, 2), whole) == 0);
        }
}

TEST_CASE("resize: bad parameters name the node and the key") {
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, {{"width", std::int64_t(100)}, {"height", std::int64_t(80)}});
    CHECK_THROWS_WITH_AS(g.add("resize", {b}, {}, "thumb"), doctest::Contains("node 'thumb' (op resize), key 'scale'"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("resize", {b}, {{"scale", 0.5}, {"width", std::int64_t(10)}}, "thumb"),
                         doctest::Contains("key 'width': give either scale"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("resize", {b}, {{"scale", 0.0}}, "thumb"), doctest::Contains("key 'scale'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("resize", {b}, {{"scale", 0.5}, {"kernel", std::string("bicubic")}}, "thumb"),
                         doctest::Contains("key 'kernel'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("resize", {b}, {{"vscale", 0.5}}, "thumb"), doctest::Contains("key 'vscale'"),
                         GraphError);
}
