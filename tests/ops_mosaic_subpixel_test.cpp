// mosaic at fractional positions: values against a bilinear shift computed
// here, exact half-pixel shifts of ramps, whole coords as points bit for
// bit, tile sizes and threads, demand and halo, coverage of blend none,
// JSON round trip, insert refusing fractions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "../ops/resample.hpp"  // ops-internal, reused by ops: tested here directly
#include "support.hpp"
#include "tessera/graphs/pipeline.hpp"

using namespace tessera;
using vips::VImage;

namespace {

std::unique_ptr<Op> build(const Params& p, const std::vector<ImageInfo>& in) { return tt::build_op("mosaic", p, in); }

// A smooth image, value(i, j) in about [40, 210] (times `scale`).
double smooth(int i, int j, double scale) {
    return scale * (125 + 60 * std::sin(i / 7.0) * std::cos(j / 5.0) + 0.4 * i - 0.3 * j);
}

VImage smooth_image(int w, int h, VipsBandFormat format, double scale) {
    std::vector<double> v(std::size_t(w) * h);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) v[std::size_t(j) * w + i] = smooth(i, j, scale);
    // (a copy: new_from_memory would point at v, and copy_memory() of a
    // memory image is that image)
    VImage d(vips_image_new_from_memory_copy(v.data(), v.size() * sizeof(double), w, h, 1, VIPS_FORMAT_DOUBLE));
    return format == VIPS_FORMAT_FLOAT || format == VIPS_FORMAT_DOUBLE ? d.cast(format) : d.rint().cast(format);
}

// The image's sample at (u, v) (its pixel frame, centres at whole numbers),
// bilinear over the samples that exist, normalised by their weight: written
// out here independently of ops/resample.
double bilinear(const std::vector<double>& s, int w, int h, double u, double v) {
    const double fu = std::floor(u), fv = std::floor(v);
    double sum = 0, wsum = 0;
    for (int dj = 0; dj < 2; ++dj)
        for (int di = 0; di < 2; ++di) {
            const int i = int(fu) + di, j = int(fv) + dj;
            const double wt = (di ? u - fu : 1 - (u - fu)) * (dj ? v - fv : 1 - (v - fv));
            if (i < 0 || i >= w || j < 0 || j >= h || wt == 0) continue;
            sum += wt * s[std::size_t(j) * w + i];
            wsum += wt;
        }
    return sum / wsum;
}

// The same with a Catmull-Rom cubic, samples past the edge the edge's.
double catmull_rom(const std::vector<double>& s, int w, int h, double u, double v) {
    auto kernel = [](double d) {  // the Catmull-Rom kernel (a = -0.5) at distance d
        d = std::abs(d);
        return d < 1 ? 1.5 * d * d * d - 2.5 * d * d + 1 : d < 2 ? -0.5 * d * d * d + 2.5 * d * d - 4 * d + 2 : 0;
    };
    double sum = 0;
    for (int j = int(std::floor(v)) - 1; j <= int(std::floor(v)) + 2; ++j)
        for (int i = int(std::floor(u)) - 1; i <= int(std::floor(u)) + 2; ++i)
            sum +=
                kernel(u - i) * kernel(v - j) * s[std::size_t(std::clamp(j, 0, h - 1)) * w + std::clamp(i, 0, w - 1)];
    return sum;
}

std::vector<double> samples(const VImage& im) {
    VImage d = im.cast(VIPS_FORMAT_DOUBLE).copy_memory();
    std::size_t n = 0;
    const double* p = static_cast<const double*>(d.write_to_memory(&n));
    std::vector<double> v(p, p + n / sizeof(double));
    g_free(const_cast<double*>(p));
    return v;
}

double at(const Buffer& b, int x, int y) {
    return dispatch_format(b.view().format, [&](auto z) { return double(b.view().row<decltype(z)>(y)[x]); });
}

}  // namespace

TEST_CASE("mosaic subpixel: a smooth image at x 10.5 y 3.25 is its bilinear shift - u8 u16 f32") {
    for (auto [format, scale, tol] :
         {std::tuple{VIPS_FORMAT_UCHAR, 1.0, 0.5}, std::tuple{VIPS_FORMAT_USHORT, 250.0, 0.5},
          std::tuple{VIPS_FORMAT_FLOAT, 0.01, 1e-5}}) {
        CAPTURE(int(format));
        tt::TempDir dir;
        Graph g(standard_registry());
        const int w = 60, h = 40;
        VImage im = smooth_image(w, h, format, scale);
        NodeId base = tt::load_image(g, dir, (VImage::black(100, 60) + 7).cast(format), "base.v");
        NodeId a = tt::load_image(g, dir, im, "a.v");
        NodeId m = g.add("mosaic", {base, a}, {{"at", std::vector<NumPair>{{10.5, 3.25}}}});
        NodeId mc = g.add("mosaic", {base, a},
                          {{"at", std::vector<NumPair>{{10.5, 3.25}}}, {"interpolate", std::string("cubic")}});
        const std::vector<double> s = samples(im);
        for (int tile : {16, 64}) {
            Buffer out = tt::render(g, m, tile, 2), cubic = tt::render(g, mc, tile, 2);
            double worst = 0, worst_cubic = 0, apart = 0;
            for (int y = 0; y < 60; ++y)
                for (int x = 0; x < 100; ++x) {
                    // covered: the w x h pixels whose centres lie inside
                    // [10.5, 70.5) x [3.25, 43.25): from ceil(v - 0.5)
                    const bool in = x >= 10 && x < 10 + w && y >= 3 && y < 3 + h;
                    const double want = in ? bilinear(s, w, h, x - 10.5, y - 3.25) : 7;
                    worst = std::max(worst, std::abs(at(out, x, y) - want));
                    const double want_cubic = in ? catmull_rom(s, w, h, x - 10.5, y - 3.25) : 7;
                    worst_cubic = std::max(worst_cubic, std::abs(at(cubic, x, y) - want_cubic));
                    apart = std::max(apart, std::abs(want - want_cubic));
                }
            CHECK(worst <= tol);
            // (float sums of 16-bit samples with negative weights: a tie
            // may round either way)
            CHECK(worst_cubic <= (format == VIPS_FORMAT_FLOAT ? tol : tol + 0.05));
            CHECK(apart > tol);  // the two kernels differ even on this smooth image
        }
    }
}

TEST_CASE("mosaic subpixel: a half-pixel shift of a linear ramp is exact - u16 and f32") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const int w = 50, h = 30;
    // u16: 1000 + 10 i + 4 j; shifted by 0.5 it is 10 (X - x) + 4 (Y - y) + 1000: whole
    VImage xy = VImage::xyz(w, h);
    VImage ramp16 = (xy[0] * 10 + xy[1] * 4 + 1000).cast(VIPS_FORMAT_USHORT);
    VImage rampf = (xy[0] * 0.25 - xy[1] * 0.5 + 3).cast(VIPS_FORMAT_FLOAT);
    for (std::string blend : {"none", "feather"}) {
        CAPTURE(blend);
        NodeId b16 = tt::load_image(g, dir, VImage::black(120, 80).cast(VIPS_FORMAT_USHORT), "b16" + blend + ".v");
        NodeId r16 = tt::load_image(g, dir, ramp16, "r16" + blend + ".v");
        NodeId bf = tt::load_image(g, dir, VImage::black(120, 80).cast(VIPS_FORMAT_FLOAT), "bf" + blend + ".v");
        NodeId rf = tt::load_image(g, dir, rampf, "rf" + blend + ".v");
        Params p{{"at", std::vector<NumPair>{{20.5, 10.5}}}, {"blend", blend}};
        Buffer o16 = tt::render(g, g.add("mosaic", {b16, r16}, p), 37, 2);
        Buffer of = tt::render(g, g.add("mosaic", {bf, rf}, p), 37, 2);
        int checked = 0;
        for (int y = 11; y < 10 + h; ++y)  // the interior: both samples exist
            for (int x = 21; x < 20 + w; ++x) {
                const double u = x - 20.5, v = y - 10.5;
                CHECK(at(o16, x, y) == 1000 + 10 * u + 4 * v);
                CHECK(at(of, x, y) == float(0.25 * u - 0.5 * v + 3));
                ++checked;
            }
        CHECK(checked == 49 * 29);
        // cubic reproduces a ramp too, where its four samples exist
        Params pc = p;
        pc.set("interpolate", std::string("cubic"));
        Buffer c16 = tt::render(g, g.add("mosaic", {b16, r16}, pc), 37, 2);
        for (int y = 12; y < 10 + h - 1; ++y)
            for (int x = 22; x < 20 + w - 1; ++x) CHECK(at(c16, x, y) == 1000 + 10 * (x - 20.5) + 4 * (y - 10.5));
        // the first column and row: the one sample that exists
        CHECK(at(o16, 20, 10) == 1000);
        CHECK(at(o16, 30, 10) == 1000 + 10 * 9.5);
    }
}

TEST_CASE("mosaic subpixel: whole coords give the points bits and a fraction changes only its image") {
    tt::TempDir dir;
    Graph g(standard_registry());
    std::vector<NodeId> in{tt::load_image(g, dir, tt::pattern(230, 170, 3, VIPS_FORMAT_UCHAR, 9), "base.v")};
    std::vector<IntPair> pts = {{-10, 5}, {60, 30}, {100, 60}, {150, -20}, {20, 100}};
    std::vector<NumPair> whole, frac;
    for (std::size_t k = 0; k < pts.size(); ++k) {
        in.push_back(tt::load_image(g, dir, tt::pattern(90 + 7 * int(k), 80 - 5 * int(k), 3, VIPS_FORMAT_UCHAR, int(k)),
                                    "t" + std::to_string(k) + ".v"));
        whole.push_back({double(pts[k][0]), double(pts[k][1])});
    }
    frac = whole;
    frac[2] = {100.4, 60.7};  // image 2 only: 104x70, covers [100, 205) x [60, 131)
    for (std::string blend : {"feather", "none"}) {
        CAPTURE(blend);
        Params base{{"blend", blend}, {"blend_width", std::int64_t(12)}};
        Params a = base, b = base, c = base;
        a.set("at", pts);
        b.set("at", whole);
        c.set("at", frac);
        NodeId np = g.add("mosaic", in, a), nw = g.add("mosaic", in, b), nf = g.add("mosaic", in, c);
        CHECK(g.node(nw).params.values().at("at").index() == ParamValue(pts).index());  // stored as points
        Buffer bp = tt::render(g, np, 64, 2), bw = tt::render(g, nw, 64, 2), bf = tt::render(g, nf, 64, 2);
        CHECK(tt::max_abs_diff(bp, bw) == 0);
        // straight through the op too (no graph canonicalisation): the same
        auto op = build({{"at", whole}, {"blend", blend}},
                        {tt::header(230, 170, 3), tt::header(90, 80, 3), tt::header(97, 75, 3), tt::header(104, 70, 3),
                         tt::header(111, 65, 3), tt::header(118, 60, 3)});
        auto op_pts = build({{"at", pts}, {"blend", blend}},
                            {tt::header(230, 170, 3), tt::header(90, 80, 3), tt::header(97, 75, 3),
                             tt::header(104, 70, 3), tt::header(111, 65, 3), tt::header(118, 60, 3)});
        for (Rect r : {Rect{0, 0, 64, 64}, Rect{64, 64, 64, 64}, Rect{128, 0, 64, 64}}) {
            Demand d1, d2;
            op->demand(r, d1);
            op_pts->demand(r, d2);
            REQUIRE(d1.size() == d2.size());
            for (std::size_t k = 0; k < d1.size(); ++k) {
                CHECK(d1[k].input == d2[k].input);
                CHECK(d1[k].rect == d2[k].rect);
                CHECK(d1[k].place == d2[k].place);
            }
        }
        // the fraction changes pixels inside image 2's cover only
        // (hard: its cover moved down a row, so the union of both covers)
        const Rect cover = blend == "feather" ? Rect{100, 60, 105, 71} : Rect{100, 60, 104, 71};
        int changed = 0, outside = 0;
        for (int y = 0; y < 170; ++y)
            for (int x = 0; x < 230; ++x)
                for (int k = 0; k < 3; ++k) {
                    const bool diff =
                        bp.view().row<std::uint8_t>(y)[x * 3 + k] != bf.view().row<std::uint8_t>(y)[x * 3 + k];
                    if (cover.contains(Point{x, y}))
                        changed += diff;
                    else
                        outside += diff;
                }
        CHECK(outside == 0);
        CHECK(changed > 5000);
    }
}

TEST_CASE("mosaic subpixel: tile sizes and threads never change a bit - overlaps feathered and hard") {
    for (auto [bands, format] :
         {std::pair{3, VIPS_FORMAT_UCHAR}, std::pair{1, VIPS_FORMAT_USHORT}, std::pair{2, VIPS_FORMAT_FLOAT},
          std::pair{1, VIPS_FORMAT_SHORT}, std::pair{1, VIPS_FORMAT_UINT}, std::pair{1, VIPS_FORMAT_INT},
          std::pair{1, VIPS_FORMAT_DOUBLE}}) {
        CAPTURE(bands);
        CAPTURE(int(format));
        for (auto [blend, interp] :
             {std::pair{"feather", "bilinear"}, std::pair{"none", "bilinear"}, std::pair{"feather", "cubic"}}) {
            CAPTURE(blend);
            CAPTURE(interp);
            tt::TempDir dir;
            Graph g(standard_registry());
            std::vector<NodeId> in{tt::load_image(g, dir, tt::pattern(200, 150, bands, format, 9), "base.v")};
            std::vector<NumPair> at = {{-10.3, 5.5}, {50.25, 30}, {90, 60.8}, {130.9, -20.1}, {20.5, 90.5}, {60, 40}};
            for (std::size_t k = 0; k < at.size(); ++k)
                in.push_back(tt::load_image(g, dir,
                                            tt::pattern(80 + 5 * int(k), 70 - 3 * int(k), bands, format, int(k)),
                                            "t" + std::to_string(k) + ".v"));
            NodeId m = g.add("mosaic", in,
                             {{"at", at},
                              {"blend", std::string(blend)},
                              {"blend_width", std::int64_t(10)},
                              {"interpolate", std::string(interp)}});
            Buffer one = tt::render(g, m, 200, 1);  // one tile: no seams
            tt::check_pixels(g, m, tt::to_vips(one));
        }
    }
}

TEST_CASE("mosaic subpixel: feathered seams between fractional tiles stay smooth") {
    // constant 100 and 140 tiles overlapping by about 60 columns at
    // fractional x: no step larger than the whole-pixel bound, values in
    // [100, 140], and the tiles' own values away from the seam
    tt::TempDir dir;
    Graph g(standard_registry());
    NodeId base = tt::load_image(g, dir, VImage::black(200, 60).cast(VIPS_FORMAT_UCHAR), "base.v");
    NodeId a = tt::load_image(g, dir, (VImage::black(120, 60) + 100).cast(VIPS_FORMAT_UCHAR), "a.v");
    NodeId b = tt::load_image(g, dir, (VImage::black(139, 60) + 140).cast(VIPS_FORMAT_UCHAR), "b.v");
    NodeId m = g.add("mosaic", {base, a, b},
                     {{"at", std::vector<NumPair>{{0, 0}, {60.6, 0}}}, {"blend_width", std::int64_t(24)}});
    Buffer out = tt::render(g, m, 16, 2);
    const std::uint8_t* row = out.view().row<std::uint8_t>(30);
    int worst = 0;
    for (int x = 1; x < 200; ++x) {
        worst = std::max(worst, std::abs(int(row[x]) - int(row[x - 1])));
        CHECK(row[x] >= 100);
        CHECK(row[x] <= 140);
    }
    CHECK(worst <= int(std::ceil(40 * M_PI / 2 / 24)) + 1);
    CHECK(row[0] == 100);
    CHECK(row[199] == 140);  // b covers [60, 200): its last partial column is off the base
}

TEST_CASE("mosaic subpixel: demand - a fractional image is resampled with a one-pixel halo") {
    // image 1 (40x40) at (10.5, 10.25) covers [10, 51)^2; image 2 (30x30) at (60, 60) whole
    auto op = build({{"at", std::vector<NumPair>{{10.5, 10.25}, {60, 60}}}},
                    {tt::header(100, 100), tt::header(40, 40), tt::header(30, 30)});
    Demand need;
    op->demand({20, 20, 8, 8}, need);  // inside image 1 alone: pulled, no base
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 1);
    CHECK_FALSE(need[0].place.has_value());
    // output columns 20..27 sample 9.5..16.5: samples 9..17; rows 9.75..16.75: 9..17
    CHECK(need[0].rect == Rect{9, 9, 9, 9});
    need.clear();
    op->demand({0, 0, 16, 16}, need);  // the corner: the base and image 1 from its first sample
    REQUIRE(need.size() == 2);
    CHECK(need[0].input == 0);
    CHECK_FALSE(need[0].place.has_value());
    CHECK(need[1].rect == Rect{0, 0, 6, 6});
    need.clear();
    op->demand({44, 44, 8, 8}, need);  // past image 1's last sample: clipped to the image
    REQUIRE(need.size() == 2);
    CHECK(need[1].input == 1);
    CHECK(need[1].rect == Rect{33, 33, 7, 7});
    need.clear();
    op->demand({51, 0, 8, 8}, need);  // right of image 1's cover: the base, placed
    REQUIRE(need.size() == 1);
    CHECK(need[0].place.has_value());
    need.clear();
    op->demand({65, 65, 10, 10}, need);  // inside whole image 2: placed, as insert
    REQUIRE(need.size() == 1);
    CHECK(need[0].input == 2);
    CHECK(need[0].place.has_value());

    // cubic: one more sample each side (clipped to the image)
    auto cubic = build({{"at", std::vector<NumPair>{{10.5, 10.25}}}, {"interpolate", std::string("cubic")}},
                       {tt::header(100, 100), tt::header(40, 40)});
    need.clear();
    cubic->demand({20, 20, 8, 8}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{8, 8, 11, 11});
    need.clear();
    cubic->demand({0, 0, 16, 16}, need);
    REQUIRE(need.size() == 2);
    CHECK(need[1].rect == Rect{0, 0, 7, 7});

    // blend none: the pixels whose centres are inside [x, x + w)
    auto none = build({{"at", std::vector<NumPair>{{10.5, 10.75}}}, {"blend", std::string("none")}},
                      {tt::header(100, 100), tt::header(40, 40)});
    need.clear();
    none->demand({0, 0, 100, 100}, need);
    REQUIRE(need.size() == 2);
    CHECK(need[1].rect == Rect{0, 0, 40, 40});
    need.clear();
    none->demand({49, 50, 2, 2}, need);  // column 49 is its last, row 50 too; 50 and 51 are the base's
    REQUIRE(need.size() == 2);
    // columns sample 38.5 (38 and 39), the row 39.25 (39 and the missing 40)
    CHECK(need[1].rect == Rect{38, 39, 2, 1});
}

TEST_CASE("mosaic subpixel: JSON keeps fractional at and insert refuses it") {
    const std::string nodes = R"({"id": "base", "op": "black", "width": 100, "height": 80},
        {"id": "a", "op": "black", "width": 30, "height": 20, "value": [50]},
        {"id": "b", "op": "black", "width": 30, "height": 20, "value": [90]},)";
    auto pipeline = [&](const std::string& op, const std::string& at) {
        return R"({"version": 1, "nodes": [)" + nodes + R"({"id": "m", "op": ")" + op +
               R"(", "inputs": ["base", "a", "b"], "at": )" + at + "}]}";
    };
    Graph g = parse_pipeline(pipeline("mosaic", "[[10.5, 3.25], [40, 20]]"), standard_registry(), "p.json");
    const ParamValue& v = g.node(g.find("m")).params.values().at("at");
    REQUIRE(std::holds_alternative<std::vector<NumPair>>(v));
    CHECK(std::get<std::vector<NumPair>>(v) == std::vector<NumPair>{{10.5, 3.25}, {40, 20}});
    const std::string text = to_json(g, -1);
    CHECK(text.find("[[10.5,3.25],[40,20]]") != std::string::npos);  // whole numbers as integers
    Graph back = parse_pipeline(text, standard_registry(), "p.json");
    CHECK(back.node(back.find("m")).params == g.node(g.find("m")).params);
    CHECK(to_json(back, -1) == text);
    CHECK(tt::max_abs_diff(tt::render(g, g.find("m")), tt::render(back, back.find("m"))) == 0);
    // 0.1 steps survive the trip as the same doubles
    Graph tenth = parse_pipeline(pipeline("mosaic", "[[10.1, 3.3], [40.7, 19.9]]"), standard_registry(), "p.json");
    Graph tenth2 = parse_pipeline(to_json(tenth), standard_registry(), "p.json");
    CHECK(std::get<std::vector<NumPair>>(tenth2.node(tenth2.find("m")).params.values().at("at")) ==
          std::vector<NumPair>{{10.1, 3.3}, {40.7, 19.9}});

    // all whole (10.0 included): points, as before
    Graph w = parse_pipeline(pipeline("mosaic", "[[10.0, 3], [40, 20]]"), standard_registry(), "p.json");
    CHECK(std::holds_alternative<std::vector<IntPair>>(w.node(w.find("m")).params.values().at("at")));

    // insert places whole pixels: a fraction is refused, naming the node, key and fix
    std::string e = tt::error_of(
        [&] { parse_pipeline(pipeline("insert", "[[10.5, 3], [40, 20]]"), standard_registry(), "p.json"); });
    CHECK(e.find("'m'") != std::string::npos);
    CHECK(e.find("at") != std::string::npos);
    CHECK(e.find("[10.5,3]") != std::string::npos);
    CHECK(e.find("whole pixels") != std::string::npos);
    CHECK(e.find("mosaic") != std::string::npos);
    Graph gi(standard_registry());
    NodeId base = gi.add("black", {}, {{"width", std::int64_t(100)}, {"height", std::int64_t(80)}});
    NodeId a = gi.add("black", {}, {{"width", std::int64_t(30)}, {"height", std::int64_t(20)}});
    e = tt::error_of([&] { gi.add("insert", {base, a}, {{"at", std::vector<NumPair>{{1.5, 2}}}}); });
    CHECK(e.find("whole pixels") != std::string::npos);
    // whole coords are points to insert
    NodeId ok = gi.add("insert", {base, a}, {{"at", std::vector<NumPair>{{1, 2}}}});
    CHECK(std::holds_alternative<std::vector<IntPair>>(gi.node(ok).params.values().at("at")));
    // an unknown interpolator names the key and the choices
    e = tt::error_of([&] {
        gi.add("mosaic", {base, a}, {{"at", std::vector<NumPair>{{1, 2.5}}}, {"interpolate", std::string("lanczos")}});
    });
    CHECK(e.find("interpolate") != std::string::npos);
    CHECK(e.find("bilinear or cubic") != std::string::npos);
    // and mosaic refuses what it cannot place
    e = tt::error_of([&] { gi.add("mosaic", {base, a}, {{"at", std::vector<NumPair>{{1e300, 2.5}}}}); });
    CHECK(e.find("out of range") != std::string::npos);
}

TEST_CASE("resample: whole shifts copy - fractions interpolate - the support is what is read") {
    // a 20x10 u16 image v = 100 i + j, shifted into a 12x6 window
    Buffer src(nullptr, {0, 0, 20, 10}, 1, Format::u16);
    for (int j = 0; j < 10; ++j)
        for (int i = 0; i < 20; ++i) src.tile().row<std::uint16_t>(j)[i] = std::uint16_t(100 * i + j);
    const Rect bounds{0, 0, 20, 10};
    Buffer dst(nullptr, {5, 2, 14, 6}, 1, Format::u16);
    // whole shift (3, -1): pixel (X, Y) is the source at (X - 3, Y + 1), a copy, reading no more
    CHECK(bilinear_support(dst.rect(), 3, -1, bounds) == Rect{2, 3, 14, 6});
    shift_bilinear(src.view(), bounds, 3, -1, dst.tile());
    CHECK(dst.view().row<std::uint16_t>(2)[0] == 100 * 2 + 3);
    CHECK(dst.view().row<std::uint16_t>(7)[13] == 100 * 15 + 8);
    // cubic: two samples each side, whole shifts still copies
    CHECK(cubic_support(dst.rect(), -2.5, 0.5, bounds) == Rect{6, 0, 14, 9});
    CHECK(cubic_support(dst.rect(), 3, -1, bounds) == Rect{2, 3, 14, 6});
    // (-2.5, 0.5): X + 2.5 (i and i + 1 half each), Y - 0.5; columns 7.5 ..
    // 20.5 (the last two past the last sample, 19), rows 1.5 .. 6.5
    CHECK(bilinear_support(dst.rect(), -2.5, 0.5, bounds) == Rect{7, 1, 13, 7});
    Buffer part(nullptr, bilinear_support(dst.rect(), -2.5, 0.5, bounds), 1, Format::u16);
    copy_pixels(src.view().sub(part.rect()), part.tile());  // only the support: reading outside would be garbage
    shift_bilinear(part.view(), bounds, -2.5, 0.5, dst.tile());
    for (int y = 2; y < 8; ++y)
        for (int x = 5; x < 19; ++x) {
            const double u = x + 2.5, v = y - 0.5;
            const double want = u >= 19 ? 100 * 19 + v : 100 * u + v;  // past the last sample: that sample
            CHECK(dst.view().row<std::uint16_t>(y)[x - 5] == std::lround(want));
        }
}
