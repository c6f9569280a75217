// affine: sizes and pixels against vips affine for each interpolator (a
// rotation, a scale with offsets, a shear), background and copy edges, on
// 8-bit RGB and 16-bit grey; tiles that split every footprint give the
// whole-image render's bits; bad matrices name node and key.
#include <algorithm>
#include <cmath>
#include <doctest/doctest.h>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

const char* const kInterp[] = {"nearest", "bilinear", "bicubic"};

std::pair<double, double> compare(const Buffer& a, const VImage& b) {
    VImage d = (tt::to_vips(a).cast(VIPS_FORMAT_DOUBLE) - b.cast(VIPS_FORMAT_DOUBLE)).abs();
    return {d.max(), (d > 0).avg() / 255};
}

struct Case {
    std::vector<double> m;
    double odx, ody, idx, idy;
    bool copy;
};

// |a - b| where the pixel's input position is not a whole number on either
// axis (libvips steps its position along a row by adding the matrix's
// derivative, so at a whole position it can land just below and take the
// previous sample; this op computes each pixel's position on its own).
VImage off_boundary(const VImage& d, const Case& k, int w, int h) {
    const double a = k.m[0], b = k.m[1], c = k.m[2], e = k.m[3], det = a * e - b * c;
    double l = 1e300, t = 1e300;
    for (double x : {0.0, double(w)})
        for (double y : {0.0, double(h)}) l = std::min(l, a * x + b * y), t = std::min(t, c * x + e * y);
    l = l > 0 ? std::floor(l + 0.5) : std::ceil(l - 0.5);
    t = t > 0 ? std::floor(t + 0.5) : std::ceil(t - 0.5);
    VImage xy = VImage::xyz(d.width(), d.height()).cast(VIPS_FORMAT_DOUBLE);
    VImage ox = xy[0] + (l - k.odx), oy = xy[1] + (t - k.ody);
    VImage u = ox * (e / det) + oy * (-b / det) - k.idx, v = ox * (-c / det) + oy * (a / det) - k.idy;
    auto near_whole = [](const VImage& z) { return (z - (z + 0.5).floor()).abs() < 1e-6; };
    return (near_whole(u) | near_whole(v)).ifthenelse(0, d);
}

}  // namespace

// Tolerances against vips affine 8.14, which the interpolators follow
// (libvips's weights: bicubic from its 1/64 tables, 12-bit for u8 and
// float for u16; bilinear from float weights):
//  - nearest: bit for bit where the position is not a whole number;
//  - bicubic: u8 bit for bit; u16 within 1 level but for at most 0.1 % of
//    the samples (where libvips's 16-bit overshoot wraps around);
//  - bilinear: u8 within 1 level (about 4 % of samples), u16 within 24
//    (0.04 % of the range: libvips's 16-bit bilinear rounds otherwise),
//    where the position is not a whole number (at one, libvips's window
//    can start a sample earlier, which matters at an edge).
TEST_CASE("affine: each interpolator near vips affine / u8 RGB and u16 grey / tile seams") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const double c = std::cos(0.3), s = std::sin(0.3);
    const std::vector<Case> cases = {{{c, -s, s, c}, 0, 0, 0, 0, false},
                                     {{1.7, 0, 0, 0.6}, 3.25, -2.5, 0.5, 0.5, false},
                                     {{1, 0.35, 0, 1}, 0, 0, 0, 0, true},
                                     {{-0.8, 0.1, 0.2, 1.3}, 0.3, 0.7, 0, 0, true}};
    for (auto [im, name] :
         {std::pair{tt::pattern(143, 101, 3).gaussblur(1).copy_memory(), "rgb.v"},
          std::pair{(tt::pattern(97, 61, 1).gaussblur(3) * 257).cast(VIPS_FORMAT_USHORT).copy_memory(), "g16.v"}}) {
        NodeId in = tt::load_image(g, dir, im, name);
        for (const Case& k : cases)
            for (int i = 0; i < 3; ++i) {
                CAPTURE(name);
                CAPTURE(k.m[0]);
                CAPTURE(k.m[1]);
                CAPTURE(kInterp[i]);
                NodeId n = g.add("affine", {in},
                                 {{"matrix", k.m},
                                  {"interpolate", std::string(kInterp[i])},
                                  {"odx", k.odx},
                                  {"ody", k.ody},
                                  {"idx", k.idx},
                                  {"idy", k.idy},
                                  {"extend", std::string(k.copy ? "copy" : "background")}});
                VImage want = im.affine(k.m, VImage::option()
                                                 ->set("interpolate", vips::VInterpolate::new_from_name(kInterp[i]))
                                                 ->set("odx", k.odx)
                                                 ->set("ody", k.ody)
                                                 ->set("idx", k.idx)
                                                 ->set("idy", k.idy)
                                                 ->set("extend", k.copy ? VIPS_EXTEND_COPY : VIPS_EXTEND_BACKGROUND));
                REQUIRE(g.info(n).width == want.width());
                REQUIRE(g.info(n).height == want.height());
                const Buffer whole = tt::render(g, n, 4096, 1);
                auto [worst, share] = compare(whole, want);
                INFO(name << " " << kInterp[i] << " m0=" << k.m[0] << ": max " << worst << ", share " << share);
                const bool u16 = im.format() == VIPS_FORMAT_USHORT;
                VImage d = (tt::to_vips(whole).cast(VIPS_FORMAT_DOUBLE) - want.cast(VIPS_FORMAT_DOUBLE)).abs();
                if (i == 0)
                    CHECK(off_boundary(d, k, im.width(), im.height()).max() == 0);
                else if (i == 1)
                    CHECK(off_boundary(d, k, im.width(), im.height()).max() <= (u16 ? 24 : 1));
                else if (!u16)
                    CHECK(worst == 0);
                else
                    CHECK((d > 1).avg() / 255 <= 0.001);
                for (int tile : {16, 64}) CHECK(tt::max_abs_diff(tt::render(g, n, tile, 2), whole) == 0);
            }
    }
}

TEST_CASE("affine: oarea and background as vips affine") {
    tt::TempDir dir;
    Graph g(standard_registry());
    VImage im = tt::pattern(60, 40, 3);
    NodeId in = tt::load_image(g, dir, im);
    NodeId n = g.add("affine", {in},
                     {{"matrix", std::vector<double>{0.9, 0.2, -0.2, 0.9}},
                      {"oarea", std::vector<std::int64_t>{-10, -5, 90, 70}},
                      {"background", std::vector<double>{255, 0, 128}}});
    VImage want = im.affine({0.9, 0.2, -0.2, 0.9}, VImage::option()
                                                       ->set("oarea", std::vector<int>{-10, -5, 90, 70})
                                                       ->set("background", std::vector<double>{255, 0, 128}));
    const Buffer out = tt::render(g, n, 37, 2);
    CHECK(compare(out, want).first <= 1);
}

TEST_CASE("affine: bad matrices name the node and the key") {
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, {{"width", std::int64_t(10)}, {"height", std::int64_t(7)}});
    CHECK_THROWS_WITH_AS(g.add("affine", {b}, {{"matrix", std::vector<double>{1, 2, 2, 4}}}, "warp"),
                         doctest::Contains("node 'warp' (op affine), key 'matrix': is singular"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("affine", {b}, {{"matrix", std::vector<double>{1, 0, 0}}}, "warp"),
                         doctest::Contains("key 'matrix': needs 4 numbers"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("affine", {b}, {}, "warp"), doctest::Contains("key 'matrix'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("affine", {b},
                               {{"matrix", std::vector<double>{1, 0, 0, 1}}, {"interpolate", std::string("lanczos")}},
                               "warp"),
                         doctest::Contains("key 'interpolate'"), GraphError);
}
