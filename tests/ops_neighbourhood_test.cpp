// conv, gaussblur, median: pixels against libvips conv / gaussblur / rank
// (integer precision bit for bit against libvips's C path, float within a
// stated tolerance), the size kept with the edge copied as libvips does,
// tiles of 16, 37 and 64 (which split every mask) equal the whole-image
// render, on 8-bit RGB and 16-bit grey; the demand halo; bad parameters
// name node and key; `tessera ops` groups by kind and shows halos.
#include <doctest/doctest.h>

#include "support.hpp"
#include "tessera/graphs/pipeline.hpp"

using namespace tessera;
using vips::VImage;

// libvips's switch for its vector (Orc) paths, from vips/vector.h, which
// needs Orc's headers to compile.
extern "C" {
gboolean vips_vector_isenabled(void);
void vips_vector_set_enabled(gboolean enabled);
}

namespace {

// libvips's u8 integer convolution takes a vector path (8-bit mantissas)
// unless vectors are off; the C path is the exact formula these ops
// follow, so the oracle runs with them off.
struct NoVector {
    const bool was = vips_vector_isenabled();
    NoVector() { vips_vector_set_enabled(FALSE); }
    ~NoVector() { vips_vector_set_enabled(was); }
};

VImage matrix(int w, int h, const std::vector<double>& c, double scale, double offset) {
    VImage m = VImage::new_matrix(w, h, std::vector<double>(c).data(), int(c.size())).copy();
    m.set("scale", scale);
    m.set("offset", offset);
    return m;
}

// A smooth image with edges, as photographs have.
VImage photo(int w, int h, int bands, VipsBandFormat f, double gain) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_DOUBLE).gaussblur(1.2) * gain).cast(f).copy_memory();
}

double max_diff(const Buffer& a, const VImage& b) {
    return (tt::to_vips(a).cast(VIPS_FORMAT_DOUBLE) - b.cast(VIPS_FORMAT_DOUBLE)).abs().max();
}

struct Case {
    int bands;
    VipsBandFormat format;
    double gain;
};
const Case kCases[] = {{3, VIPS_FORMAT_UCHAR, 1.0}, {1, VIPS_FORMAT_USHORT, 257.0}};

}  // namespace

TEST_CASE("conv: integer precision is libvips conv's C path bit for bit / float within 1e-4 / tile seams") {
    NoVector novector;
    tt::TempDir dir;
    // a 3x3 edge mask with an offset (negative sums clip), and an
    // asymmetric 5x3 one whose coefficient 3.4 and scale 30.6 libvips rounds
    const std::vector<double> edge = {-1, -1, -1, -1, 12, -1, -1, -1, -1};
    const std::vector<double> odd = {1, 2, 3.4, 2, 1, 0, 4, 9, 4, 0, -1, 2, 3, 2, -1};
    for (const Case& c : kCases) {
        Graph g(standard_registry());
        const VImage im = photo(131, 97, c.bands, c.format, c.gain);
        const NodeId in = tt::load_image(g, dir, im);
        for (auto [mask, w, scale, offset] : std::vector<std::tuple<std::vector<double>, int, double, double>>{
                 {edge, 3, 4.0, 10.0}, {odd, 5, 30.6, 0.0}}) {
            CAPTURE(c.bands);
            CAPTURE(w);
            const VImage m = matrix(w, int(mask.size()) / w, mask, scale, offset);
            const Params p{{"mask", mask}, {"width", std::int64_t(w)}, {"scale", scale}, {"offset", offset}};
            Params pi = p;
            pi.set("precision", std::string("integer"));
            const NodeId ni = g.add("conv", {in}, pi);
            const VImage want = im.conv(m, VImage::option()->set("precision", VIPS_PRECISION_INTEGER));
            REQUIRE(want.width() == im.width());  // libvips keeps the size (extend copy)
            tt::check_pixels(g, ni, want);
            // float: f32 out, libvips's convf within float rounding
            const NodeId nf = g.add("conv", {in}, p);
            const Buffer whole = tt::render(g, nf, 4096, 1);
            CHECK(whole.view().format == Format::f32);
            const VImage wantf = im.conv(m, VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
            CHECK(wantf.format() == VIPS_FORMAT_FLOAT);
            CHECK(max_diff(whole, wantf) <= 1e-4 * c.gain);
            for (int tile : {37, 64}) CHECK(tt::max_abs_diff(tt::render(g, nf, tile, 2), whole) == 0);
        }
    }
}

// The integer path divides each sum by the scale in float lanes below
// |sum| 2^21 and in double lanes above, and sums 8-bit samples in 16-bit
// lanes while sum(|c|) x 255 < 2^15 (kernels.cpp): ramps through every
// value, with masks on both sides of each threshold (u8: 128 and 129 x 255
// around 2^15; u16: 32 and 33 x 65535 around 2^21), positive and negative
// sums, and masks of 1, 2 and 5 taps (the terms go four at a time), are
// libvips convi's C division on every sum.
TEST_CASE("conv: integer precision divides every sum exactly as libvips (both sides of each lane width)") {
    NoVector novector;
    tt::TempDir dir;
    const VImage xy = VImage::xyz(256, 256);
    const VImage u8 = (xy[0] + 0).cast(VIPS_FORMAT_UCHAR).copy_memory();  // every value, in every row
    const VImage u16 = (xy[1] * 256 + xy[0]).cast(VIPS_FORMAT_USHORT).copy_memory();  // every value once
    struct M {
        VImage im;
        std::vector<double> mask;
        double scale, offset;
    };
    std::vector<M> cases;
    for (double c : {1.0, 128.0, 129.0, -128.0})
        for (double scale : {1.0, 2.0, 3.0, 7.0, 63.0, 100.0, 255.0, -7.0})
            cases.push_back({u8, {c}, scale, c < 0 ? 255.0 : 0.0});
    for (double c : {32.0, 33.0, -32.0, -33.0})
        for (double scale : {1.0, 3.0, 63.0, 1000.0})
            cases.push_back({u16, {c}, scale, c < 0 ? 65535.0 : 0.0});
    cases.push_back({u8, {60, 64}, 5.0, 0.0});
    cases.push_back({u8, {-20, 30, 40, -20, 30}, 9.0, 40.0});
    cases.push_back({u16, {3, 5, 7, 5, 3}, 23.0, 0.0});
    for (const M& c : cases) {
        Graph g(standard_registry());
        const NodeId in = tt::load_image(g, dir, c.im);
        const int w = int(c.mask.size());
        CAPTURE(c.im.format());
        CAPTURE(c.mask[0]);
        CAPTURE(w);
        CAPTURE(c.scale);
        const NodeId n = g.add("conv", {in},
                               {{"mask", c.mask},
                                {"width", std::int64_t(w)},
                                {"scale", c.scale},
                                {"offset", c.offset},
                                {"precision", std::string("integer")}});
        const VImage m = matrix(w, 1, c.mask, c.scale, c.offset);
        const VImage want = c.im.conv(m, VImage::option()->set("precision", VIPS_PRECISION_INTEGER));
        REQUIRE(want.format() == c.im.format());
        CHECK(tt::max_abs_diff(tt::render(g, n, 64, 2), want) == 0);
    }
}

TEST_CASE("gaussblur: libvips gaussblur bit for bit (integer precision) / float within 1e-3 / tile seams") {
    NoVector novector;
    tt::TempDir dir;
    for (const Case& c : kCases) {
        Graph g(standard_registry());
        const VImage im = photo(151, 113, c.bands, c.format, c.gain);
        const NodeId in = tt::load_image(g, dir, im);
        for (double sigma : {0.1, 0.6, 2.0, 4.5}) {
            CAPTURE(c.bands);
            CAPTURE(sigma);
            const NodeId n = g.add("gaussblur", {in}, {{"sigma", sigma}});
            tt::check_pixels(g, n, im.gaussblur(sigma));
            const NodeId na = g.add("gaussblur", {in}, {{"sigma", sigma}, {"min_ampl", 0.05}});
            tt::check_pixels(g, na, im.gaussblur(sigma, VImage::option()->set("min_ampl", 0.05)));
            const NodeId nf = g.add("gaussblur", {in}, {{"sigma", sigma}, {"precision", std::string("float")}});
            const Buffer whole = tt::render(g, nf, 4096, 1);
            const VImage wantf = im.gaussblur(sigma, VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
            CHECK(tt::to_vips(whole).format() == wantf.format());  // f32, or a copy below sigma 0.2
            CHECK(max_diff(whole, wantf) <= 1e-3 * c.gain);
            for (int tile : {37, 64}) CHECK(tt::max_abs_diff(tt::render(g, nf, tile, 2), whole) == 0);
        }
    }
}

TEST_CASE("gaussblur: the u8 result against libvips's vector path is within 2 levels") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage im = photo(151, 113, 3, VIPS_FORMAT_UCHAR, 1.0);
    const NodeId n = g.add("gaussblur", {tt::load_image(g, dir, im)}, {{"sigma", 2.0}});
    const VImage want = im.gaussblur(2.0);  // vectors as libvips's default
    const double worst = max_diff(tt::render(g, n, 64, 2), want);
    MESSAGE("gaussblur sigma 2 u8 vs libvips with vectors: max diff " << worst);
    CHECK(worst <= 2);
}

// libvips 8.14.1's u8 rank takes a histogram path for windows above 3 x 3
// that disagrees with its own 16-bit path on the same values (up to 73
// levels on noise at 5 x 5): the oracle there is libvips's rank of the
// image as u16, cast back (the values are the same; only the path differs).
static VImage rank_oracle(const VImage& im, int size, int index) {
    if (im.format() == VIPS_FORMAT_UCHAR && size > 3)
        return im.cast(VIPS_FORMAT_USHORT).rank(size, size, index).cast(VIPS_FORMAT_UCHAR);
    return im.rank(size, size, index);
}

TEST_CASE("median: libvips median and rank bit for bit / tile seams") {
    tt::TempDir dir;
    for (const Case& c : kCases) {
        Graph g(standard_registry());
        const VImage im = tt::pattern(103, 89, c.bands, c.format);  // noisy: every window differs
        const NodeId in = tt::load_image(g, dir, im);
        for (int size : {3, 5}) {
            CAPTURE(c.bands);
            CAPTURE(size);
            tt::check_pixels(g, g.add("median", {in}, {{"size", std::int64_t(size)}}), rank_oracle(im, size, size * size / 2));
            if (size == 3) tt::check_pixels(g, g.add("median", {in}, {}), im.median(3));
            for (int index : {0, size * size - 1, 2}) {
                CAPTURE(index);
                tt::check_pixels(g, g.add("median", {in}, {{"size", std::int64_t(size)}, {"index", std::int64_t(index)}}),
                                 rank_oracle(im, size, index));
            }
        }
    }
}

// Integer windows up to 7 x 7 go through a selection network, others (and
// floats) through nth_element (median.cpp): each window size on both
// sides, an even one (the network's padding), and a float image.
TEST_CASE("median: the selection network and nth_element agree with libvips rank at every size") {
    tt::TempDir dir;
    struct S {
        int bands;
        VipsBandFormat format;
        int size;
    };
    for (const S& c : {S{3, VIPS_FORMAT_UCHAR, 1}, S{3, VIPS_FORMAT_UCHAR, 4}, S{1, VIPS_FORMAT_UCHAR, 7},
                       S{1, VIPS_FORMAT_USHORT, 7}, S{1, VIPS_FORMAT_SHORT, 6}, S{1, VIPS_FORMAT_UCHAR, 8},
                       S{2, VIPS_FORMAT_FLOAT, 3}}) {
        CAPTURE(c.format);
        CAPTURE(c.size);
        Graph g(standard_registry());
        const VImage im = c.format == VIPS_FORMAT_SHORT
                              ? (tt::pattern(71, 53, 1, VIPS_FORMAT_DOUBLE) * 200 - 25000).cast(VIPS_FORMAT_SHORT)
                              : tt::pattern(71, 53, c.bands, c.format);
        const NodeId in = tt::load_image(g, dir, im);
        const int n = c.size * c.size;
        for (int index : {n / 2, n - 1, n / 3}) {
            CAPTURE(index);
            const NodeId m = g.add("median", {in}, {{"size", std::int64_t(c.size)}, {"index", std::int64_t(index)}});
            CHECK(tt::max_abs_diff(tt::render(g, m, 37, 2), rank_oracle(im, c.size, index)) == 0);
        }
    }
}

TEST_CASE("neighbourhood: demand grows by the mask's reach and stops at the image") {
    // 5 x 3 mask: 2 left and right, 1 up and down
    auto conv = tt::build_op("conv", {{"mask", std::vector<double>(15, 1.0)}, {"width", std::int64_t(5)}},
                             {tt::header(100, 80)});
    Demand need;
    conv->demand({10, 10, 4, 4}, need);
    REQUIRE(need.size() == 1);
    CHECK(need[0].rect == Rect{8, 9, 8, 6});
    need.clear();
    conv->demand({0, 0, 4, 4}, need);
    CHECK(need[0].rect == Rect{0, 0, 6, 5});
    // an even 4 x 4 mask: centre (2, 2), so 2 left/up, 1 right/down
    need.clear();
    tt::build_op("conv", {{"mask", std::vector<double>(16, 1.0)}}, {tt::header(100, 80)})->demand({10, 10, 4, 4}, need);
    CHECK(need[0].rect == Rect{8, 8, 7, 7});
    // sigma 2, min_ampl 0.2: the 7-wide mask libvips's gaussmat makes, radius 3
    need.clear();
    tt::build_op("gaussblur", {{"sigma", 2.0}}, {tt::header(100, 80)})->demand({10, 10, 4, 4}, need);
    CHECK(need[0].rect == Rect{7, 7, 10, 10});
    CHECK(VImage::gaussmat(2.0, 0.2, VImage::option()->set("separable", true)).width() == 7);
    need.clear();
    tt::build_op("median", {{"size", std::int64_t(5)}}, {tt::header(100, 80)})->demand({96, 76, 4, 4}, need);
    CHECK(need[0].rect == Rect{94, 74, 6, 6});
}

TEST_CASE("neighbourhood: bad parameters name the node and key") {
    Graph g(standard_registry());
    const NodeId b = g.add("black", {}, {{"width", std::int64_t(50)}, {"height", std::int64_t(40)}});
    CHECK_THROWS_WITH_AS(g.add("conv", {b}, {{"mask", std::vector<double>(6, 1.0)}, {"width", std::int64_t(4)}}, "k"),
                         doctest::Contains("node 'k' (op conv), key 'width'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("conv", {b}, {{"mask", std::vector<double>(5, 1.0)}}, "k"),
                         doctest::Contains("key 'width'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("conv", {b}, {{"mask", std::vector<double>(9, 1.0)}, {"scale", 0.0}}, "k"),
                         doctest::Contains("key 'scale'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("conv", {b}, {}, "k"), doctest::Contains("key 'mask'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("conv", {b},
                               {{"mask", std::vector<double>(9, 1.0)},
                                {"scale", 0.4},
                                {"precision", std::string("integer")}},
                               "k"),
                         doctest::Contains("key 'scale'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("gaussblur", {b}, {{"sigma", -1.0}}, "k"), doctest::Contains("key 'sigma'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("median", {b}, {{"size", std::int64_t(3)}, {"index", std::int64_t(9)}}, "k"),
                         doctest::Contains("node 'k' (op median), key 'index'"), GraphError);
}

TEST_CASE("ops: tessera ops groups by kind and shows each halo / ops --json carries kind and halo") {
    std::string out;
    REQUIRE(tt::run_command(tt::tessera_binary() + " ops", &out) == 0);
    const auto at = [&](const std::string& s) { return out.find(s); };
    REQUIRE(at("[neighbourhood]\n") != std::string::npos);
    REQUIRE(at("[geometry]\n") != std::string::npos);
    REQUIRE(at("[source]\n") != std::string::npos);
    // the groups in the README's order, each op under its own
    CHECK(at("[source]") < at("[geometry]"));
    CHECK(at("[geometry]") < at("[neighbourhood]"));
    CHECK(at("[geometry]") < at("\nresize (inputs"));
    CHECK(at("\nresize (inputs") < at("[neighbourhood]"));
    CHECK(at("[neighbourhood]") < at("\ngaussblur (inputs"));
    CHECK(at("gaussblur (inputs: 1, halo: mask radius") != std::string::npos);
    CHECK(at("invert (inputs: 1, halo: 0)") != std::string::npos);
    const std::string j = ops_to_json(standard_registry(), -1);
    CHECK(j.find(R"("kind":"neighbourhood")") != std::string::npos);
    CHECK(j.find(R"x("halo":"size / 2 (the window's reach)")x") != std::string::npos);
    // every registered op states both
    for (const OpSpec& s : standard_registry().specs()) {
        CAPTURE(s.name);
        CHECK(s.kind != "other");
        CHECK(s.halo != "not stated");
    }
}
