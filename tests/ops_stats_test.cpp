// Whole-image statistics: the evaluator's pre-pass (StatisticsSink) and the
// ops built on it (stats, scale, hist_equal, normalise), against libvips
// (stats, scale, hist_equal), numpy and GDAL (gdal_translate -scale); the
// results bit for bit the same at any tile size and thread count; a
// pre-pass over a large lazy image holds no more than its tiles in flight.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <fstream>
#include <sstream>

#include "support.hpp"
#include "tessera/core/statistics_sink.hpp"
#include "tessera/jobs.hpp"

using namespace tessera;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

Statistics statistics_of(Graph& g, NodeId n, int tile, int threads, bool histogram = false) {
    const Execution saved = g.execution;
    g.execution.tile_w = g.execution.tile_h = tile;
    g.execution.threads = threads;
    Evaluator ev(g);
    StatisticsSink sink(histogram);
    ev.run(n, sink);
    g.execution = saved;
    return sink.result();
}

bool same_bits(const Moments& a, const Moments& b) {
    return std::memcmp(&a.min, &b.min, sizeof(double)) == 0 && std::memcmp(&a.max, &b.max, sizeof(double)) == 0 &&
           std::memcmp(&a.sum, &b.sum, sizeof(double)) == 0 && std::memcmp(&a.sum2, &b.sum2, sizeof(double)) == 0 &&
           a.count == b.count && a.xmin == b.xmin && a.ymin == b.ymin && a.xmax == b.xmax && a.ymax == b.ymax;
}

void check_close(double got, double want, double rel) {
    CAPTURE(got);
    CAPTURE(want);
    CHECK(std::abs(got - want) <= rel * std::max(1.0, std::abs(want)));
}

// vips stats' row (0: all bands, b + 1: band b) against our moments; sums
// to `rel` of the largest they could be (n x max |v|), not of themselves,
// which may be near 0 where positive and negative values cancel.
void check_vips_row(const Moments& m, VImage st, int row, double rel) {
    CAPTURE(row);
    const double big = std::max(std::abs(m.min), std::abs(m.max)), n = double(m.count);
    CHECK(m.min == st.getpoint(0, row)[0]);
    CHECK(m.max == st.getpoint(1, row)[0]);
    CHECK(std::abs(m.sum - st.getpoint(2, row)[0]) <= rel * n * big);
    CHECK(std::abs(m.sum2 - st.getpoint(3, row)[0]) <= rel * n * big * big);
    CHECK(std::abs(m.mean() - st.getpoint(4, row)[0]) <= rel * big);
    CHECK(std::abs(m.sigma() - st.getpoint(5, row)[0]) <= rel * big);
}

// vips stats' xmin, ymin, xmax, ymax (columns 6-9): the same where the
// extremes are unique (where not, libvips keeps whichever thread's came
// first).
void check_vips_positions(const Moments& m, VImage st, int row) {
    CAPTURE(row);
    CHECK(m.xmin == st.getpoint(6, row)[0]);
    CHECK(m.ymin == st.getpoint(7, row)[0]);
    CHECK(m.xmax == st.getpoint(8, row)[0]);
    CHECK(m.ymax == st.getpoint(9, row)[0]);
}

// The number after "key": at or after `from` in a JSON text.
double json_number(const std::string& text, std::size_t& from, const std::string& key) {
    const std::size_t at = text.find("\"" + key + "\": ", from);
    REQUIRE(at != std::string::npos);
    from = at + key.size() + 4;
    return std::strtod(text.c_str() + from, nullptr);
}

// A python (Debian's, with numpy, tifffile and GDAL) script's stdout.
std::string python(const tt::TempDir& dir, const std::string& script, const std::string& args) {
    const fs::path py = dir / "script.py";
    std::ofstream(py) << script;
    std::string out;
    REQUIRE_MESSAGE(tt::run_command("/usr/bin/python3 " + py.string() + " " + args, &out) == 0, out);
    return out;
}

std::vector<double> numbers_of(const std::string& text) {
    std::istringstream is(text);
    std::vector<double> v;
    for (double d; is >> d;) v.push_back(d);
    return v;
}

// 16-bit counts over most of the range, and floats whose sums are
// order-sensitive (large and small values mixed).
VImage u16_image(int w, int h, int bands) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_UCHAR, 1) * 211 + 300).cast(VIPS_FORMAT_USHORT).copy_memory();
}
VImage f32_image(int w, int h) {
    return ((tt::pattern(w, h, 1, VIPS_FORMAT_FLOAT, 1) - 125) * 12345.678 +
            tt::pattern(w, h, 1, VIPS_FORMAT_FLOAT, 2) / 7.0)
        .cast(VIPS_FORMAT_FLOAT)
        .copy_memory();
}

// Takes tiles and keeps nothing.
struct DiscardSink final : Sink {
    std::size_t pixels = 0;
    void start(const ImageInfo&, const SinkContext&) override {}
    void consume(const ConstTile& t, std::shared_ptr<void>) override { pixels += std::size_t(t.rect.area()); }
    void finish() override {}
    void abort() noexcept override {}
};

long peak_kb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace

TEST_CASE("statistics pre-pass: equals vips stats and is bit for bit the same at any tile size and thread count") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage u16 = u16_image(613, 411, 3), f32 = f32_image(587, 433);
    const NodeId a = tt::load_image(g, dir, u16, "u16.v"), b = tt::load_image(g, dir, f32, "f32.v");
    const NodeId c = b;
    for (const auto& [node, im, rel] : {std::tuple{a, u16, 0.0}, std::tuple{c, f32, 1e-12}}) {
        const Statistics ref = statistics_of(g, node, 64, 1, im.format() == VIPS_FORMAT_USHORT);
        const VImage st = im.stats();
        REQUIRE(ref.bands.size() == std::size_t(im.bands()));
        check_vips_row(ref.all, st, 0, rel);
        for (int k = 0; k < im.bands(); ++k) check_vips_row(ref.bands[std::size_t(k)], st, k + 1, rel);
        CHECK(ref.all.count == std::uint64_t(im.width()) * im.height() * im.bands());
        for (int tile : {17, 100, 256, 300})
            for (int threads : {1, 3}) {
                CAPTURE(tile);
                CAPTURE(threads);
                const Statistics s = statistics_of(g, node, tile, threads, im.format() == VIPS_FORMAT_USHORT);
                CHECK(same_bits(s.all, ref.all));
                for (std::size_t k = 0; k < s.bands.size(); ++k) CHECK(same_bits(s.bands[k], ref.bands[k]));
                CHECK(s.histograms == ref.histograms);
            }
    }
    // the u16 histogram counts every value exactly
    const Statistics h = statistics_of(g, a, 64, 2, true);
    REQUIRE(h.histograms.size() == 3);
    const VImage vh = u16[1].hist_find();
    for (int v : {300, 511, 2410, 53050}) CHECK(double(h.histograms[1][std::size_t(v)]) == vh.getpoint(v, 0)[0]);
}

TEST_CASE("statistics pre-pass: min and max positions equal vips stats' where unique and are the first otherwise") {
    tt::TempDir dir;
    Graph g(standard_registry());
    // unique extremes in each band, in different blocks of the 256 grid;
    // bands 0 and 1 have extremes that are not the overall ones
    VImage im = u16_image(613, 411, 3);
    im.draw_rect({7, 300, 300}, 301, 40, 1, 1);  // band 0's min (the overall min is band 2's)
    im.draw_rect({60000, 200, 200}, 5, 390, 1, 1);
    im.draw_rect({250, 10, 250}, 600, 3, 1, 1);
    im.draw_rect({400, 61000, 400}, 260, 260, 1, 1);
    im.draw_rect({500, 500, 2}, 17, 200, 1, 1);
    im.draw_rect({600, 600, 62000}, 512, 0, 1, 1);
    const NodeId a = tt::load_image(g, dir, im, "u.v");
    const VImage st = im.stats();
    for (int tile : {64, 100, 613})
        for (int threads : {1, 2}) {
            CAPTURE(tile);
            const Statistics s = statistics_of(g, a, tile, threads, false);
            for (int b = 0; b < 3; ++b) check_vips_positions(s.bands[std::size_t(b)], st, b + 1);
            check_vips_positions(s.all, st, 0);
        }
    // a value at several places: its first pixel in raster order, though a
    // later block (x 300, y 5 against x 10, y 100) is combined after it
    VImage flat = VImage::black(613, 411).cast(VIPS_FORMAT_USHORT) + 1000;
    flat = flat.cast(VIPS_FORMAT_USHORT).copy_memory();
    flat.draw_rect({5}, 10, 100, 1, 1);
    flat.draw_rect({5}, 300, 5, 1, 1);
    flat.draw_rect({5}, 600, 5, 1, 1);
    flat.draw_rect({9000}, 612, 410, 1, 1);
    flat.draw_rect({9000}, 0, 410, 1, 1);
    const NodeId f = tt::load_image(g, dir, flat, "f.v");
    for (int tile : {64, 256, 613}) {
        CAPTURE(tile);
        const Statistics s = statistics_of(g, f, tile, 2, false);
        CHECK(s.all.xmin == 300);
        CHECK(s.all.ymin == 5);
        CHECK(s.all.xmax == 0);
        CHECK(s.all.ymax == 410);
    }
}

TEST_CASE("stats: the JSON equals numpy and is the same file at any tile size and thread count") {
    tt::TempDir dir;
    const VImage im = u16_image(517, 389, 3);
    const std::string tif = tt::save(im, dir / "in.tif");
    auto run = [&](int tile, int threads, const std::string& name) {
        Graph g(standard_registry());
        g.execution.tile_w = g.execution.tile_h = tile;
        g.execution.threads = threads;
        const NodeId in = g.add("load", {}, {{"path", tif}});
        g.add("stats", {in}, {{"path", (dir / name).string()}});
        Evaluator(g).run_sinks();
        return tt::slurp(dir / name);
    };
    const std::string json = run(64, 2, "a.json");
    CHECK(run(31, 1, "b.json") == json);
    CHECK(run(512, 4, "c.json") == json);
    CHECK(!fs::exists(dir / "a.json.tmp-stats"));
    const std::vector<double> np = numbers_of(python(dir, R"(
import sys, numpy as np, tifffile
a = tifffile.imread(sys.argv[1]).astype(np.float64)
h, w = a.shape[:2]
for s in [a] + [a[..., b : b + 1] for b in range(a.shape[-1])]:
    first = lambda v: divmod(int(np.argmax((s == v).any(axis=-1).reshape(-1))), w)
    (ymin, xmin), (ymax, xmax) = first(s.min()), first(s.max())
    s = s.reshape(-1)
    print(s.min(), s.max(), repr(s.sum()), repr((s * s).sum()), repr(s.mean()), repr(s.std(ddof=1)), xmin, ymin, xmax, ymax)
)",
                                                     tif));
    REQUIRE(np.size() == 4 * 10);
    std::size_t at = json.find("\"all\"");
    for (int row = 0; row < 4; ++row) {
        CAPTURE(row);
        const char* keys[] = {"min", "max", "sum", "sum2", "mean", "sigma", "xmin", "ymin", "xmax", "ymax"};
        for (int k = 0; k < 10; ++k) {
            CAPTURE(keys[k]);
            // integer sums are exact in double here (< 2^53); mean and sigma
            // to rounding (numpy sums pairwise)
            check_close(json_number(json, at, keys[k]), np[std::size_t(row * 10 + k)], k < 4 || k > 5 ? 0.0 : 1e-12);
        }
    }
    CHECK(json.find("\"width\": 517") != std::string::npos);
    CHECK(json.find("\"count\": 201113") != std::string::npos);
}

TEST_CASE("scale: pixels equal vips scale for u8 u16 f32 and log - and a flat image is black") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage u8 = tt::pattern(203, 151, 3), u16 = u16_image(211, 149, 1), f32 = f32_image(197, 143);
    const NodeId a = tt::load_image(g, dir, u8, "u8.v"), b = tt::load_image(g, dir, u16, "u16.v"),
                 c = tt::load_image(g, dir, f32, "f32.v");
    const NodeId sa = g.add("scale", {a}), sb = g.add("scale", {b}), sc = g.add("scale", {c});
    CHECK(g.info(sb).format == Format::u8);
    INFO("check at line 192");
    tt::check_pixels(g, sa, u8.scale());
    INFO("check at line 193");
    tt::check_pixels(g, sb, u16.scale());
    INFO("check at line 194");
    tt::check_pixels(g, sc, f32.scale());
    // log scale: libvips's float steps, bit for bit
    INFO("check at line 196");
    tt::check_pixels(g, g.add("scale", {b}, {{"log", true}}), u16.scale(VImage::option()->set("log", true)));
    const VImage pos = (f32 - f32.min() + 0.5).cast(VIPS_FORMAT_FLOAT).copy_memory();
    INFO("check at line 198");
    tt::check_pixels(g, g.add("scale", {tt::load_image(g, dir, pos, "pos.v")}, {{"log", true}, {"exp", 0.7}}),
                     pos.scale(VImage::option()->set("log", true)->set("exp", 0.7)));
    const NodeId flat =
        g.add("black", {}, {{"width", std::int64_t(90)}, {"height", std::int64_t(70)}, {"format", std::string("u16")}});
    INFO("check at line 202");
    tt::check_pixels(g, g.add("scale", {flat}), VImage::black(90, 70).cast(VIPS_FORMAT_USHORT).scale());
    // the plan: one pre-pass per run, over scale's input, of every block
    RunStats s;
    tt::render(g, sb, 64, 2, &s);
    REQUIRE(s.prepasses.size() == 1);
    CHECK(s.prepasses[0].input == g.node(b).id);
    CHECK(s.prepasses[0].tiles == 1);  // 211 x 149: one 256 x 256 block
    CHECK(s.tiles == 4 * 3);
}

TEST_CASE("scale: GDAL-style ranges equal gdal_translate -scale and -exponent") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage im = u16_image(181, 127, 3);
    const std::string tif = tt::save(im, dir / "in.tif");
    const NodeId in = g.add("load", {}, {{"path", tif}});
    struct Case {
        double smin, smax, dmin, dmax, exponent;  // exponent 0: none
        std::string format;
    };
    const std::vector<Case> cases{Case{1200, 40000, 0, 255, 0, "u8"}, Case{5000, 30000, 10, 200, 0.5, "u8"},
                                  Case{300, 53000, 0, 65535, 2.2, "u16"}, Case{300, 53000, -100, 100, 0, "f32"}};
    for (const Case& k : cases) {
        CAPTURE(k.exponent);
        CAPTURE(k.format);
        Params p{
            {"src_min", k.smin}, {"src_max", k.smax}, {"dst_min", k.dmin}, {"dst_max", k.dmax}, {"format", k.format}};
        if (k.exponent > 0) p.set("exponent", k.exponent);
        const NodeId n = g.add("scale", {in}, p);
        CHECK(g.node(n).op->statistics().empty());  // every value given: no pre-pass
        // a name of its own: libvips caches an opened file by its name
        const std::string out = (dir / ("gdal" + std::to_string(&k - &cases[0]) + ".tif")).string();
        python(dir, R"(
import sys
from osgeo import gdal
a = [float(x) for x in sys.argv[3:8]]
gdal.Translate(sys.argv[2], sys.argv[1], scaleParams=[a[:4]], exponents=[a[4]] if a[4] > 0 else None,
               outputType={'u8': gdal.GDT_Byte, 'u16': gdal.GDT_UInt16, 'f32': gdal.GDT_Float32}[sys.argv[8]])
)",
               tif + " " + out + " " + std::to_string(k.smin) + " " + std::to_string(k.smax) + " " +
                   std::to_string(k.dmin) + " " + std::to_string(k.dmax) + " " + std::to_string(k.exponent) + " " +
                   k.format);
        const VImage want = VImage::new_from_file(out.c_str()).copy_memory();
        const Buffer got = tt::render(g, n, 37, 2);
        // float32 as GDAL's working type: the same samples, bit for bit
        CHECK(tt::max_abs_diff(got, want) == 0);
    }
    // auto: each band's own min and max (vips stats rows 1..3)
    const VImage st = im.stats();
    std::vector<double> lo, hi;
    for (int b = 0; b < 3; ++b) {
        lo.push_back(st.getpoint(0, b + 1)[0]);
        hi.push_back(st.getpoint(1, b + 1)[0]);
    }
    const Buffer autos = tt::render(g, g.add("scale", {in}, {{"dst_max", 255.0}}), 64, 2);
    for (int b = 0; b < 3; ++b) {
        const NodeId one = g.add("extract_band", {in}, {{"band", std::int64_t(b)}});
        const NodeId explicit_ =
            g.add("scale", {one}, {{"src_min", lo[std::size_t(b)]}, {"src_max", hi[std::size_t(b)]}});
        CHECK(tt::max_abs_diff(tt::render(g, explicit_, 64, 2), tt::to_vips(autos)[b]) == 0);
    }
    // percentiles: numpy's inverted-CDF percentiles of each band
    const std::vector<double> pc = numbers_of(python(dir, R"(
import sys, numpy as np, tifffile
a = tifffile.imread(sys.argv[1])
for b in range(3):
    print(np.percentile(a[..., b], 2, method='inverted_cdf'), np.percentile(a[..., b], 98, method='inverted_cdf'))
)",
                                                     tif));
    REQUIRE(pc.size() == 6);
    const NodeId ps = g.add("scale", {in}, {{"percentiles", std::vector<double>{2, 98}}});
    CHECK(g.node(ps).op->statistics().at(0).histogram);
    const Buffer pcs = tt::render(g, ps, 37, 2);
    for (int b = 0; b < 3; ++b) {
        const NodeId one = g.add("extract_band", {in}, {{"band", std::int64_t(b)}});
        const NodeId explicit_ =
            g.add("scale", {one}, {{"src_min", pc[std::size_t(2 * b)]}, {"src_max", pc[std::size_t(2 * b + 1)]}});
        CHECK(tt::max_abs_diff(tt::render(g, explicit_, 64, 2), tt::to_vips(pcs)[b]) == 0);
    }
}

TEST_CASE("percentiles of float samples: a binned histogram within one bin of the order statistic") {
    // f32 with a wide range, 2 bands of different ranges; the percentile is checked against the exact order statistic
    // (numpy's inverted CDF: the smallest sample with at least p % at or below it)
    tt::TempDir dir;
    Graph g(standard_registry());
    const int w = 301, h = 207;
    const VImage a = f32_image(w, h), b = (f32_image(w, h) * -0.001 + 7).cast(VIPS_FORMAT_FLOAT);
    const VImage im = a.bandjoin(b).copy_memory();
    const NodeId in = tt::load_image(g, dir, im, "f2.v");
    std::vector<std::vector<double>> samples(2);
    const auto* px = static_cast<const float*>(im.data());
    for (int i = 0; i < w * h; ++i)
        for (int k = 0; k < 2; ++k) samples[std::size_t(k)].push_back(double(px[2 * i + k]));
    for (auto& v : samples) std::sort(v.begin(), v.end());

    const Statistics m = statistics_of(g, in, 64, 2);
    const Execution saved = g.execution;
    for (int tile : {32, 200}) {
        g.execution.tile_w = g.execution.tile_h = tile;
        StatisticsSink sink(true, std::pair{m.all.min, m.all.max});
        Evaluator(g).run(in, sink);
        const Statistics& s = sink.result();
        REQUIRE(s.binned);
        CHECK(s.histograms.size() == 2);
        const double width = (m.all.max - m.all.min) / 65536;
        CHECK(s.hist_width == width);
        for (int k = 0; k < 2; ++k) {
            const auto& v = samples[std::size_t(k)];
            CHECK(s.percentile(0, k) == v.front());
            CHECK(s.percentile(100, k) == v.back());
            for (double pc : {0.5, 2.0, 25.0, 50.0, 98.0, 99.9}) {
                CAPTURE(k);
                CAPTURE(pc);
                const std::size_t r = std::size_t(std::ceil(pc / 100 * double(v.size()))) - 1;
                CHECK(std::abs(s.percentile(pc, k) - v[r]) <= width);
            }
        }
    }
    g.execution = saved;

    // through scale: the pre-passes run by themselves (moments, then the
    // histogram), the output is that of scale with those percentiles
    // given, and does not depend on the tile size
    const NodeId ps = g.add("scale", {in}, {{"percentiles", std::vector<double>{2, 98}}});
    const Buffer out = tt::render(g, ps, 37, 2);
    CHECK(tt::max_abs_diff(out, tt::render(g, ps, 128, 1)) == 0);
    for (int k = 0; k < 2; ++k) {
        const auto& v = samples[std::size_t(k)];
        const double lo = v[std::size_t(std::ceil(0.02 * double(v.size()))) - 1];
        const double hi = v[std::size_t(std::ceil(0.98 * double(v.size()))) - 1];
        const NodeId one = g.add("extract_band", {in}, {{"band", std::int64_t(k)}});
        const NodeId exact = g.add("scale", {one}, {{"src_min", lo}, {"src_max", hi}});
        // (the percentiles are within 1/65536 of the range of the exact
        // ones: a u8 output moves by a level at most where it rounds)
        CHECK(tt::max_abs_diff(tt::render(g, exact, 64, 2), tt::to_vips(out)[k]) <= 1);
    }
    // infinities have no finite bins: the error says so
    const NodeId inf =
        tt::load_image(g, dir, (f32_image(40, 30) + std::numeric_limits<double>::infinity()).cast(VIPS_FORMAT_FLOAT),
                       "inf.v");
    const NodeId bad = g.add("scale", {inf}, {{"percentiles", std::vector<double>{2, 98}}}, "s");
    CHECK_THROWS_WITH_AS(tt::render(g, bad, 64, 1), doctest::Contains("needs finite ones"), GraphError);
}

TEST_CASE("scale and hist_equal: bad keys and formats name the node and the key") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const NodeId f = tt::load_image(g, dir, f32_image(40, 30), "f.v");
    CHECK_THROWS_WITH_AS(g.add("scale", {f}, {{"percentiles", std::vector<double>{50, 10}}}, "s"),
                         doctest::Contains("key 'percentiles'"), GraphError);
    CHECK_THROWS_WITH_AS(g.add("scale", {f}, {{"log", true}, {"dst_max", 1.0}}, "s"), doctest::Contains("key 'log'"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("hist_equal", {f}, {}, "h"), doctest::Contains("node 'h' (op hist_equal)"), GraphError);
    const NodeId u = tt::load_image(g, dir, tt::pattern(40, 30, 3), "u.v");
    CHECK_THROWS_WITH_AS(g.add("hist_equal", {u}, {{"band", std::int64_t(3)}}, "h"), doctest::Contains("key 'band'"),
                         GraphError);
    CHECK_THROWS_WITH_AS(g.add("stats", {u}, {{"path", (dir / "no" / "s.json").string()}}, "st"),
                         doctest::Contains("does not exist"), GraphError);
}

TEST_CASE("hist_equal: pixels equal vips hist_equal on u8 and u16 - every band or one") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage u8 = tt::pattern(223, 157, 3, VIPS_FORMAT_UCHAR, 4);
    const VImage grey = u8[0];
    const VImage u16 = u16_image(191, 133, 3);
    const VImage dim = ((tt::pattern(150, 110, 1) / 4) + 20).cast(VIPS_FORMAT_USHORT).copy_memory();  // max < 256
    const NodeId a = tt::load_image(g, dir, u8, "u8.v"), b = tt::load_image(g, dir, grey, "g.v"),
                 c = tt::load_image(g, dir, u16, "u16.v"), d = tt::load_image(g, dir, dim, "dim.v");
    INFO("u8 3 bands");
    INFO("check at line 315");
    tt::check_pixels(g, g.add("hist_equal", {a}), u8.hist_equal());
    INFO("check at line 316");
    tt::check_pixels(g, g.add("hist_equal", {b}), grey.hist_equal());
    INFO("check at line 317");
    tt::check_pixels(g, g.add("hist_equal", {a}, {{"band", std::int64_t(1)}}),
                     u8.hist_equal(VImage::option()->set("band", 1)));
    INFO("check at line 319");
    tt::check_pixels(g, g.add("hist_equal", {c}), u16.hist_equal());
    INFO("check at line 320");
    tt::check_pixels(g, g.add("hist_equal", {c}, {{"band", std::int64_t(2)}}),
                     u16.hist_equal(VImage::option()->set("band", 2)));
    INFO("check at line 322");
    tt::check_pixels(g, g.add("hist_equal", {d}), dim.hist_equal());
}

TEST_CASE("normalise: the image's min and max onto a range as OpenCV normalize NORM_MINMAX") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage u16 = u16_image(171, 121, 3);
    const std::string tif = tt::save(u16, dir / "in.tif");
    const NodeId in = g.add("load", {}, {{"path", tif}});
    const NodeId n = g.add("normalise", {in});
    CHECK(g.info(n).format == Format::f32);
    // OpenCV: scale = (b - a) / (max - min), shift = a - min * scale, then
    // x * scale + shift in double, stored as the output type
    const double mn = u16.min(), mx = u16.max();
    const double ratio = 1.0 / (mx - mn), shift = 0 - mn * ratio;
    INFO("check at line 337");
    tt::check_pixels(g, n, u16.cast(VIPS_FORMAT_DOUBLE).linear(ratio, shift).cast(VIPS_FORMAT_FLOAT));
    // to u8 [10, 250]: rounded halves to even (numpy's rint is cvRound's rule)
    const std::string want = python(dir, R"(
import sys, numpy as np, tifffile
a = tifffile.imread(sys.argv[1]).astype(np.float64)
s = 240.0 / (a.max() - a.min())
o = np.clip(np.rint(a * s + (10 - a.min() * s)), 0, 255).astype(np.uint8)
tifffile.imwrite(sys.argv[2], o, photometric='rgb')
)",
                                    tif + " " + (dir / "np.tif").string());
    const NodeId b = g.add("normalise", {in}, {{"min", 10.0}, {"max", 250.0}, {"format", std::string("u8")}});
    INFO("check at line 348");
    tt::check_pixels(g, b, VImage::new_from_file((dir / "np.tif").c_str()).copy_memory());
}

TEST_CASE("pre-pass: a 16-bit mosaic feeds scale to 8 bits and dot draws the pre-pass") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=3 rows=2 tile=160x120 overlap=20 bits=16 error=1 drift=0 seed=7");
    MosaicOptions o;
    o.positions = (dir / "nominal.csv").string();
    o.output = (dir / "m.tif").string();
    JobContext ctx;
    ctx.threads = 2;
    ctx.for_pipeline = true;
    PlannedJob job = plan_mosaic(o, read_positions(o.positions), standard_registry(), ctx);
    Graph& g = job.graph;
    const NodeId mosaic = g.node(g.sinks().at(0)).inputs.at(0);
    REQUIRE(g.info(mosaic).format == Format::u16);
    const NodeId s = g.add("scale", {mosaic}, {}, "stretch");
    const Buffer mb = tt::render(g, mosaic, 64, 2);  // to_vips borrows its pixels
    const VImage m = tt::to_vips(mb);
    const VImage want = m.scale();
    CHECK(want.min() == 0);
    CHECK(want.max() == 255);
    tt::check_pixels(g, s, want);
    const std::string dot = g.to_dot();
    CHECK(dot.find("n" + std::to_string(mosaic) + " -> n" + std::to_string(s) +
                   " [style=dashed, color=blue, label=\"pre-pass: min/max/mean\"]") != std::string::npos);
}

TEST_CASE("pre-pass: over a large lazy image it holds its tiles in flight and not the image") {
    // 10000 x 10000 u16 (200 MB) made of a black canvas and an insert: the
    // pre-pass and the scale after it pull it tile by tile
    tt::TempDir dir;
    Graph g(standard_registry());
    const int size = 10000;
    const NodeId bg =
        g.add("black", {},
              {{"width", std::int64_t(size)}, {"height", std::int64_t(size)}, {"format", std::string("u16")}});
    const NodeId small = tt::load_image(g, dir, u16_image(300, 200, 1), "small.v");
    const NodeId ins = g.add("insert", {bg, small}, {{"at", std::vector<IntPair>{{4000, 6000}}}});
    const NodeId s = g.add("scale", {ins});
    g.execution.tile_w = g.execution.tile_h = 512;
    g.execution.threads = 2;
    std::ofstream("/proc/self/clear_refs") << "5";
    const long before = peak_kb();
    DiscardSink sink;
    const RunStats st = Evaluator(g).run(s, sink);
    const long grown = peak_kb() - before;
    CHECK(sink.pixels == std::size_t(size) * size);
    REQUIRE(st.prepasses.size() == 1);
    CHECK(st.prepasses[0].tiles == 40 * 40);
    MESSAGE("pre-pass and scale of 200 MB: peak pixel memory " << st.peak_pixel_bytes / 1048576.0 << " MB, RSS grew "
                                                               << grown / 1024.0 << " MB");
    CHECK(st.peak_pixel_bytes < std::size_t(32) << 20);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // (a sanitizer's quarantine keeps freed tiles resident: no bound there;
    // the pixel account above is checked everywhere)
    if (before > 0) CHECK(grown < 64 * 1024);
#endif
}

TEST_CASE("example: contrast - a 16-bit mosaic stretched to an 8-bit JPEG pyramid") {
    // examples/contrast: mosaic -> scale (percentiles 0.5 and 99.5, the
    // histogram pre-pass) -> pyramid TIFF with JPEG tiles
    tt::TempDir dir;
    fs::copy(tt::source_dir() / "examples" / "contrast", dir / "contrast", fs::copy_options::recursive);
    const fs::path json = dir / "contrast" / "contrast.json";
    std::string log;
    REQUIRE_MESSAGE(tt::run_command(tt::tessera_binary() + " run " + json.string() +
                                        " --threads 2 --progress none --stats",
                                    &log) == 0,
                    log);
    CHECK(log.find("statistics pre-pass: 'mosaic' for 'stretch' (histogram)") != std::string::npos);
    const VImage out = VImage::new_from_file((dir / "contrast" / "contrast.tif").c_str());
    CHECK(out.format() == VIPS_FORMAT_UCHAR);
    CHECK(out.width() == 533);
    CHECK(out.height() == 274);
    CHECK(out.get_int("n-pages") >= 2);  // a pyramid
    // the pixels are the stretch of the mosaic, to JPEG's loss
    Graph g = load_pipeline(json.string(), standard_registry());
    const Buffer m16 = tt::render(g, g.find("mosaic"), 64, 2);
    const VImage m = tt::to_vips(m16);
    CHECK(m.max() - m.min() < 65535 * 0.75);  // the counts use part of the range
    const Buffer stretched = tt::render(g, g.find("stretch"), 64, 2);
    const VImage want = tt::to_vips(stretched);
    CHECK(want.min() == 0);
    CHECK(want.max() == 255);
    CHECK((out.cast(VIPS_FORMAT_INT) - want).abs().avg() < 2.0);
}

TEST_CASE("pre-pass: once per input per run - and render binds at its first call") {
    tt::TempDir dir;
    Graph g(standard_registry());
    // a bright patch at the bottom right: the whole image's max is not the
    // top left's
    const VImage im =
        u16_image(300, 260, 1).insert((VImage::black(40, 20) + 60000).cast(VIPS_FORMAT_USHORT), 250, 230).copy_memory();
    const NodeId in = tt::load_image(g, dir, im, "in.v");
    // two consumers of the same input's min and max, and a stats sink of it
    const NodeId a = g.add("scale", {in}), b = g.add("normalise", {in});
    g.add("save", {a}, {{"path", (dir / "a.png").string()}});
    g.add("save", {b}, {{"path", (dir / "b.tif").string()}});
    g.add("stats", {in}, {{"path", (dir / "s.json").string()}});
    const RunStats s = Evaluator(g).run_sinks();
    REQUIRE(s.prepasses.size() == 1);  // normalise reuses scale's
    CHECK(s.prepasses[0].node == g.node(a).id);
    CHECK(s.prepasses[0].tiles == 2 * 2);
    CHECK(tt::max_abs_diff(tt::from_vips(VImage::new_from_file((dir / "a.png").c_str())), im.scale()) == 0);
    // render: the statistics of the whole image, not of the rect asked for
    Evaluator ev(g);
    const Buffer part = ev.render(a, {0, 0, 50, 20});
    CHECK(tt::max_abs_diff(part, im.scale().extract_area(0, 0, 50, 20)) == 0);
    CHECK(tt::max_abs_diff(part, im.extract_area(0, 0, 50, 20).scale()) > 0);  // which the rect alone would not give
    const Buffer again = ev.render(a, {0, 0, 300, 260});
    CHECK(tt::max_abs_diff(again, im.scale()) == 0);
}
