// flatfield op, flat-field estimation (ops/illumination.hpp, tools'
// estimate_flatfield), the corrected stitch and the CLI options.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "support.hpp"
#include "tessera/flatfield.hpp"

using namespace tessera;
using vips::VImage;

namespace {

// The pixels of a libvips image as doubles (band-interleaved).
std::vector<double> samples(VImage im) {
    im = im.cast(VIPS_FORMAT_DOUBLE).copy_memory();
    std::size_t n = 0;
    const double* p = static_cast<const double*>(im.write_to_memory(&n));
    std::vector<double> v(p, p + n / sizeof(double));
    g_free(const_cast<double*>(p));
    return v;
}

VImage from_samples(const std::vector<double>& v, int w, int h, int bands, VipsBandFormat f) {
    return VImage::new_from_memory(const_cast<double*>(v.data()), v.size() * sizeof(double), w, h, bands,
                                   VIPS_FORMAT_DOUBLE)
        .cast(f)
        .copy_memory();
}

// A flat-field with a falloff towards the corners, and a few samples with no
// defined correction (0, negative, NaN, infinity) where case 2 applies.
VImage test_flat(int w, int h) {
    std::vector<double> f(std::size_t(w) * h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const double u = (x - w / 2.0) / w, v = (y - h / 2.0) / h;
            f[std::size_t(y) * w + x] = 1.2 - 0.9 * (u * u + v * v) + 0.01 * ((x * 7 + y * 3) % 5);
        }
    f[3] = 0;
    f[std::size_t(w) + 5] = -0.5;
    f[std::size_t(2 * w) + 7] = std::numeric_limits<double>::quiet_NaN();
    f[std::size_t(10 * w) + 40] = std::numeric_limits<double>::infinity();
    return VImage::new_from_memory(f.data(), f.size() * sizeof(double), w, h, 1, VIPS_FORMAT_DOUBLE)
        .cast(VIPS_FORMAT_FLOAT)
        .copy_memory();
}

// The reference, computed here sample by sample as the spec says: (I - D) /
// F in double, rounded half away from zero and clipped (integer formats), 0
// where F is not finite and > 0.
VImage reference(VImage im, VImage flat, VImage* dark, double lo, double hi, bool integer, double gain = 1) {
    const std::vector<double> I = samples(im);
    std::vector<double> F = samples(flat);
    for (double& f : F) f *= gain;
    const std::vector<double> D = dark ? samples(*dark) : std::vector<double>(F.size(), 0.0);
    const int bands = im.bands();
    std::vector<double> out(I.size());
    for (std::size_t p = 0; p < F.size(); ++p)
        for (int b = 0; b < bands; ++b) {
            const std::size_t k = p * std::size_t(bands) + std::size_t(b);
            if (!(std::isfinite(F[p]) && F[p] > 0)) {
                out[k] = 0;
                continue;
            }
            double v = (I[k] - D[p]) / F[p];
            if (integer) v = std::min(hi, std::max(lo, std::round(v)));
            out[k] = v;
        }
    return from_samples(out, im.width(), im.height(), bands, im.format());
}

void check_against_reference(VipsBandFormat fmt, int bands, bool with_dark, double lo, double hi, bool integer,
                             double gain = 1) {
    tt::TempDir dir;
    const int w = 83, h = 61;
    VImage im = tt::pattern(w, h, bands, fmt, 3);
    if (fmt == VIPS_FORMAT_USHORT) im = (im.cast(VIPS_FORMAT_DOUBLE) * 200).cast(VIPS_FORMAT_USHORT);  // up to the top
    VImage flat = test_flat(w, h);
    VImage dark = (tt::pattern(w, h, 1, VIPS_FORMAT_UCHAR, 5).cast(VIPS_FORMAT_FLOAT) * 0.2 + 3.5).copy_memory();
    Graph g(standard_registry());
    NodeId i = tt::load_image(g, dir, im, "im.v");
    NodeId f = tt::load_image(g, dir, flat, "flat.v");
    std::vector<NodeId> in{i, f};
    if (with_dark) in.push_back(tt::load_image(g, dir, dark, "dark.v"));
    NodeId n = g.add("flatfield", in, gain != 1 ? Params{{"gain", gain}} : Params{}, "ff");
    CHECK(g.info(n).format == g.info(i).format);
    CHECK(g.info(n).bands == bands);
    VImage want = reference(im, flat, with_dark ? &dark : nullptr, lo, hi, integer, gain);
    tt::check_pixels(g, n, want);
}

// The first band of a one-band (float) TIFF as doubles.
std::vector<double> read_profile(const std::filesystem::path& p) { return samples(VImage::new_from_file(p.c_str())); }

// Max and RMS of |est / truth - 1|.
std::pair<double, double> relative_error(const std::vector<double>& est, const std::vector<double>& truth) {
    double mx = 0, ss = 0;
    for (std::size_t k = 0; k < truth.size(); ++k) {
        const double e = std::abs(est[k] / truth[k] - 1);
        mx = std::max(mx, e);
        ss += e * e;
    }
    return {mx, std::sqrt(ss / double(truth.size()))};
}

std::vector<double> to_doubles(const Buffer& b) {
    const float* p = reinterpret_cast<const float*>(b.view().data);
    return std::vector<double>(p, p + b.rect().area());
}

// truth.csv's positions rounded, as a positions CSV the stitch reads
// (through the project's own reader and writer).
std::filesystem::path rounded_truth(const std::filesystem::path& dir) {
    std::vector<Placement> rows = read_positions_csv((dir / "truth.csv").string());
    for (Placement& p : rows) p.at = {double(std::lround(p.at[0])), double(std::lround(p.at[1]))};
    write_positions_csv((dir / "rounded.csv").string(), rows);
    return dir / "rounded.csv";
}

std::pair<int, int> canvas_of(const std::filesystem::path& dir) {
    std::ifstream in(dir / "canvas.txt");
    int w = 0, h = 0;
    in >> w >> h;
    return {w, h};
}

// How far a stitch is from the specimen where tiles cover it: the RMS
// residual of the best affine map a S + b (the correction keeps the tiles'
// mean exposure gain, and without a dark-field their offset), relative to
// the specimen's mean, over the canvas minus a margin of 8 px around the
// tiles' union.
double misfit(VImage stitched, VImage specimen, VImage covered) {
    const std::vector<double> s = samples(stitched), t = samples(specimen), c = samples(covered);
    double n = 0, st = 0, ss = 0, stt = 0, sts = 0;
    for (std::size_t k = 0; k < t.size(); ++k)
        if (c[k] > 0) n += 1, st += t[k], ss += s[k], stt += t[k] * t[k], sts += t[k] * s[k];
    const double a = (n * sts - st * ss) / (n * stt - st * st), b = (ss - a * st) / n;
    double r = 0;
    for (std::size_t k = 0; k < t.size(); ++k)
        if (c[k] > 0) r += std::pow(s[k] - (a * t[k] + b), 2);
    return std::sqrt(r / n) / (ss / n);
}

// 255 where some tile of the positions CSV lies, eroded by 8 px (the
// rounding of the positions leaves seams of a pixel at most).
VImage coverage(const std::filesystem::path& csv, int w, int h, int tw, int th) {
    std::ifstream in(csv);
    std::string line;
    std::getline(in, line);
    VImage out = VImage::black(w, h);
    VImage one = (VImage::black(tw, th) + 255).cast(VIPS_FORMAT_UCHAR);
    while (std::getline(in, line)) {
        std::stringstream ss(line);
        std::string f, x, y;
        std::getline(ss, f, ',');
        std::getline(ss, x, ',');
        std::getline(ss, y, ',');
        out = out.insert(one, std::stoi(x), std::stoi(y));
    }
    return out.cast(VIPS_FORMAT_UCHAR).rank(17, 17, 0).copy_memory();
}

}  // namespace

TEST_CASE("flatfield: header checks at build time name the input") {
    const ImageInfo im = tt::header(64, 48, 3, Format::u8), flat = tt::header(64, 48, 1, Format::f32);
    CHECK(tt::build_op("flatfield", {}, {im, flat})->info() == im);
    CHECK(tt::build_op("flatfield", {}, {im, flat, tt::header(64, 48, 1, Format::u16)})->info() == im);
    std::string e = tt::error_of([&] { tt::build_op("flatfield", {}, {im, tt::header(63, 48, 1, Format::f32)}); });
    CHECK(e.find("input 1 (the flat) is 63x48, the image (input 0) 64x48") != std::string::npos);
    e = tt::error_of([&] { tt::build_op("flatfield", {}, {im, flat, tt::header(64, 47, 1, Format::f32)}); });
    CHECK(e.find("input 2 (the dark) is 64x47") != std::string::npos);
    e = tt::error_of([&] { tt::build_op("flatfield", {}, {im, tt::header(64, 48, 3, Format::f32)}); });
    CHECK(e.find("input 1 (the flat) has 3 bands") != std::string::npos);
    // demand: the same rect of every input
    Demand need;
    tt::build_op("flatfield", {}, {im, flat, flat})->demand({5, 6, 7, 8}, need);
    REQUIRE(need.size() == 3);
    for (int k = 0; k < 3; ++k) {
        CHECK(need[std::size_t(k)].input == k);
        CHECK(need[std::size_t(k)].rect == Rect{5, 6, 7, 8});
        CHECK_FALSE(need[std::size_t(k)].place);
    }
}

TEST_CASE("flatfield: 8-bit against an independent reference without and with dark") {
    check_against_reference(VIPS_FORMAT_UCHAR, 3, false, 0, 255, true);
    check_against_reference(VIPS_FORMAT_UCHAR, 3, true, 0, 255, true);
}

TEST_CASE("flatfield: 16-bit against an independent reference without and with dark") {
    check_against_reference(VIPS_FORMAT_USHORT, 1, false, 0, 65535, true);
    check_against_reference(VIPS_FORMAT_USHORT, 1, true, 0, 65535, true);
    check_against_reference(VIPS_FORMAT_USHORT, 1, true, 0, 65535, true, 1.137);
}

TEST_CASE("flatfield: a gain alone divides the image and a bad gain is refused") {
    tt::TempDir dir;
    VImage im = tt::pattern(50, 40, 3, VIPS_FORMAT_UCHAR, 2);
    Graph g(standard_registry());
    NodeId i = tt::load_image(g, dir, im, "im.v");
    NodeId n = g.add("flatfield", {i}, {{"gain", 0.8}}, "ff");
    std::vector<double> I = samples(im);
    for (double& v : I) v = std::min(255.0, std::round(v / 0.8));
    tt::check_pixels(g, n, from_samples(I, 50, 40, 3, VIPS_FORMAT_UCHAR));
    for (double bad : {0.0, -1.0, std::numeric_limits<double>::infinity()}) {
        std::string e = tt::error_of([&] { g.add("flatfield", {i}, {{"gain", bad}}); });
        CAPTURE(e);
        // above 0 (the op's rule), in the spec's range (the graph's check)
        CHECK(e.find("key 'gain': ") != std::string::npos);
        CHECK((e.find("must be a number above 0") != std::string::npos ||
               e.find("is out of range") != std::string::npos));
    }
}

TEST_CASE("flatfield: float images are unrounded") { check_against_reference(VIPS_FORMAT_FLOAT, 2, true, 0, 0, false); }

TEST_CASE("flatfield: estimated from the tiles of a 16-bit acquisition within 2.5 percent RMS of the truth") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=4 rows=3 tile=256x192 overlap=6 bits=16 seed=3");
    const std::vector<Placement> tiles = read_positions_csv((dir / "nominal.csv").string());
    FlatfieldEstimate est = estimate_flatfield(tiles, {}, standard_registry());
    CHECK(est.tiles == 12);
    CHECK(est.degree == 2);
    REQUIRE(est.flatfield.rect() == Rect{0, 0, 256, 192});
    const std::vector<double> f = to_doubles(est.flatfield), truth = read_profile(dir / "flatfield.tif");
    auto [fmax, frms] = relative_error(f, truth);
    MESSAGE("16-bit, 12 tiles: flat-field max ", fmax, " rms ", frms, "; residual ", est.residual, "; ", est.seconds,
            " s");
    CHECK(frms < 0.025);
    CHECK(fmax < 0.08);
    // far better than assuming no vignetting at all (F = 1)
    auto [umax, urms] = relative_error(std::vector<double>(truth.size(), 1.0), truth);
    CHECK(frms < urms / 4);
    double mean = 0;
    for (double v : f) mean += v;
    CHECK(mean / double(f.size()) == doctest::Approx(1).epsilon(1e-5));
    // with the true dark-field taken off first, as the correction will
    FlatfieldOptions o;
    o.darkfield = (dir / "darkfield.tif").string();
    auto [dmax, drms] = relative_error(to_doubles(estimate_flatfield(tiles, o, standard_registry()).flatfield), truth);
    MESSAGE("with the dark-field: max ", dmax, " rms ", drms);
    CHECK(drms < 0.025);
}

TEST_CASE("flatfield: estimated from the tiles of an 8-bit acquisition and of 64 tiles") {
    tt::TempDir dir;
    tt::make_acquisition(dir / "a", "cols=4 rows=3 tile=256x192 overlap=6 bits=8 seed=4");
    FlatfieldEstimate est =
        estimate_flatfield(read_positions_csv((dir / "a" / "nominal.csv").string()), {}, standard_registry());
    auto [fmax, frms] = relative_error(to_doubles(est.flatfield), read_profile(dir / "a" / "flatfield.tif"));
    MESSAGE("8-bit, 12 tiles: flat-field max ", fmax, " rms ", frms, "; residual ", est.residual);
    CHECK(frms < 0.025);
    CHECK(fmax < 0.08);
    // more tiles average more content out; a sample of 40 of 64 spread over them
    tt::make_acquisition(dir / "b", "cols=8 rows=8 tile=256x192 overlap=6 bits=16 seed=5");
    FlatfieldOptions o;
    o.max_tiles = 40;
    est = estimate_flatfield(read_positions_csv((dir / "b" / "nominal.csv").string()), o, standard_registry());
    CHECK(est.tiles == 40);
    CHECK(est.degree == 2);
    std::tie(fmax, frms) = relative_error(to_doubles(est.flatfield), read_profile(dir / "b" / "flatfield.tif"));
    MESSAGE("16-bit, 40 of 64 tiles: flat-field max ", fmax, " rms ", frms, "; residual ", est.residual);
    CHECK(frms < 0.015);  // 1.1 % measured, against 1.9 % from 12
    CHECK(fmax < 0.05);
}

namespace {

// The stitch of `csv` on the acquisition's canvas, as a libvips image.
VImage stitch(const std::filesystem::path& csv, const std::filesystem::path& out, const Illumination& ill) {
    auto [w, h] = canvas_of(csv.parent_path());
    StitchOptions o;
    o.positions = csv.string();
    o.canvas_w = w;
    o.canvas_h = h;
    o.output = out.string();
    o.illumination = ill;
    Graph g = stitch_graph(o, standard_registry());
    g.execution.threads = 2;
    Evaluator(g).run_sinks();
    return VImage::new_from_file(out.c_str());
}

// Illumination errors are smooth; the stitch and the specimen are compared
// box-shrunk by 8, so that the sub-pixel remainder of the rounded positions
// and the noise do not hide them.
double misfit8(VImage stitched, VImage specimen, VImage covered) {
    return misfit(stitched.cast(VIPS_FORMAT_DOUBLE).shrink(8, 8), specimen.shrink(8, 8),
                  (covered.shrink(8, 8) == 255).ifthenelse(255, 0));
}

}  // namespace

TEST_CASE("flatfield: the corrected stitch is closer to the specimen than the uncorrected one") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=4 rows=3 tile=256x192 overlap=6 bits=16 seed=7");
    const auto csv = rounded_truth(dir.path);
    auto [w, h] = canvas_of(dir.path);
    VImage specimen = VImage::new_from_file((dir / "specimen.tif").c_str());
    VImage covered = coverage(csv, w, h, 256, 192);
    const double raw = misfit8(stitch(csv, dir / "raw.tif", {}), specimen, covered);
    const double truth =
        misfit8(stitch(csv, dir / "true.tif", {(dir / "flatfield.tif").string(), (dir / "darkfield.tif").string(), {}}),
                specimen, covered);
    FlatfieldEstimate est = estimate_flatfield(read_positions_csv(csv.string()), {}, standard_registry());
    save_profile(est.flatfield, (dir / "est.tif").string(), standard_registry());
    const double estimated =
        misfit8(stitch(csv, dir / "est_stitch.tif", {(dir / "est.tif").string(), "", {}}), specimen, covered);
    MESSAGE("RMS misfit to the specimen (relative, 1/8 scale): uncorrected ", raw, ", true F and D ", truth,
            ", estimated F ", estimated);
    // Measured 0.081, 0.026, 0.030: what is left with the true profiles is
    // the tiles' exposure gain (+-4 %, not corrected here).
    CHECK(truth < raw / 2.5);
    CHECK(estimated < raw / 2.5);
    CHECK(estimated < truth * 1.3);
    // the saved profile is a one-band float TIFF of the tile size, the estimate's bits
    VImage saved = VImage::new_from_file((dir / "est.tif").c_str());
    CHECK(saved.width() == 256);
    CHECK(saved.height() == 192);
    CHECK(saved.bands() == 1);
    CHECK(saved.format() == VIPS_FORMAT_FLOAT);
    CHECK(tt::max_abs_diff(est.flatfield, saved) == 0);
}

TEST_CASE("flatfield: CLI round trip --estimate-flatfield --flatfield-out then --flatfield and --emit-json") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=4 rows=3 tile=256x192 overlap=6 bits=16 seed=8");
    const std::string csv = rounded_truth(dir.path).string();
    auto [w, h] = canvas_of(dir.path);
    const std::string common = " stitch " + csv + " --canvas " + std::to_string(w) + " " + std::to_string(h) + " -q";
    std::string out;
    const std::string bin = tt::tessera_binary();
    REQUIRE(tt::run_command(bin + common + " -o " + (dir / "a.tif").string() +
                                " --estimate-flatfield --flatfield-out " + (dir / "F.tif").string() + " --stats",
                            &out) == 0);
    CHECK(out.find("flat-field: estimated from 12 of 12 tiles") != std::string::npos);
    VImage f = VImage::new_from_file((dir / "F.tif").c_str());
    CHECK(f.width() == 256);
    CHECK(f.bands() == 1);
    CHECK(f.format() == VIPS_FORMAT_FLOAT);
    auto [fmax, frms] = relative_error(samples(f), read_profile(dir / "flatfield.tif"));
    CHECK(frms < 0.025);
    // the saved profile reproduces the run that estimated it, bit for bit
    REQUIRE(
        tt::run_command(bin + common + " -o " + (dir / "b.tif").string() + " --flatfield " + (dir / "F.tif").string(),
                        &out) == 0);
    VImage a = VImage::new_from_file((dir / "a.tif").c_str()), b = VImage::new_from_file((dir / "b.tif").c_str());
    CHECK(a.format() == VIPS_FORMAT_USHORT);
    CHECK((a - b).abs().max() == 0);
    // without --flatfield-out the estimate is held in memory: the same pixels, no file left
    REQUIRE(tt::run_command(bin + common + " -o " + (dir / "c.tif").string() + " --estimate-flatfield", &out) == 0);
    CHECK((a - VImage::new_from_file((dir / "c.tif").c_str())).abs().max() == 0);
    // and they differ from the uncorrected stitch
    REQUIRE(tt::run_command(bin + common + " -o " + (dir / "raw.tif").string(), &out) == 0);
    CHECK((a - VImage::new_from_file((dir / "raw.tif").c_str())).abs().max() > 1000);
    // --emit-json prints a pipeline that loads the saved estimate and runs to the same pixels
    REQUIRE(tt::run_command(bin + common + " -o " + (dir / "d.tif").string() +
                            " --estimate-flatfield --flatfield-out " + (dir / "F2.tif").string() + " --emit-json > " +
                            (dir / "p.json").string()) == 0);
    const std::string json = tt::slurp(dir / "p.json");
    CHECK(json.find("\"flatfield\"") != std::string::npos);
    CHECK(json.find("F2.tif") != std::string::npos);
    REQUIRE(tt::run_command(bin + " run -q " + (dir / "p.json").string(), &out) == 0);
    CHECK((a - VImage::new_from_file((dir / "d.tif").c_str())).abs().max() == 0);
    // which needs a file to load
    CHECK(tt::run_command(bin + common + " -o " + (dir / "e.tif").string() + " --estimate-flatfield --emit-json",
                          &out) == 1);
    CHECK(out.find("needs --flatfield-out") != std::string::npos);
    // mosaic takes the same options (registration off: 6 % overlap is below today's window)
    const std::string m = " mosaic " + csv + " --canvas " + std::to_string(w) + " " + std::to_string(h) +
                          " -q --no-register --blend none -o ";
    REQUIRE(tt::run_command(bin + m + (dir / "m.tif").string() + " --flatfield " + (dir / "F.tif").string(), &out) ==
            0);
    CHECK((a - VImage::new_from_file((dir / "m.tif").c_str())).abs().max() == 0);
}

TEST_CASE("flatfield: bad profiles give errors naming the file") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=2 rows=2 tile=64x48 overlap=10 bits=8 seed=9");
    const std::string csv = (dir / "nominal.csv").string();
    auto [w, h] = canvas_of(dir.path);
    const std::string run = tt::tessera_binary() + " stitch " + csv + " --canvas " + std::to_string(w) + " " +
                            std::to_string(h) + " -q -o " + (dir / "o.tif").string();
    const std::string small = tt::save(VImage::black(63, 48).cast(VIPS_FORMAT_FLOAT) + 1, dir / "small.tif");
    std::string out;
    CHECK(tt::run_command(run + " --flatfield " + small, &out) == 1);
    CHECK(out.find(small) != std::string::npos);
    CHECK(out.find("is 63x48") != std::string::npos);
    CHECK(out.find("64x48") != std::string::npos);
    const std::string three =
        tt::save((VImage::black(64, 48, VImage::option()->set("bands", 3)) + 1).cast(VIPS_FORMAT_FLOAT),
                 dir / "three.tif");
    CHECK(tt::run_command(run + " --flatfield " + three, &out) == 1);
    CHECK(out.find("with 3 band(s)") != std::string::npos);
    const std::string missing = (dir / "nope.tif").string();
    CHECK(tt::run_command(run + " --flatfield " + missing, &out) == 1);
    CHECK(out.find(missing) != std::string::npos);
    CHECK(tt::run_command(run + " --flatfield " + (dir / "flatfield.tif").string() + " --darkfield " + missing, &out) ==
          1);
    CHECK(out.find(missing) != std::string::npos);
    CHECK(tt::run_command(run + " --estimate-flatfield --darkfield " + small, &out) == 1);
    CHECK(out.find(small) != std::string::npos);
    CHECK(tt::run_command(run + " --estimate-flatfield --flatfield " + small, &out) == 1);
    CHECK(out.find("one or the other") != std::string::npos);
    CHECK(tt::run_command(run + " --darkfield " + (dir / "darkfield.tif").string(), &out) == 1);
    CHECK(out.find("needs a flat-field") != std::string::npos);
    CHECK(std::filesystem::exists(dir / "o.tif") == false);
}

TEST_CASE("flatfield: gains solved from overlap means up to a common factor and an outlier dropped") {
    // a 4 x 3 grid, right and down neighbours overlapping; known gains
    const int cols = 4, rows = 3;
    std::vector<double> truth;
    for (int k = 0; k < cols * rows; ++k) truth.push_back(1 + 0.1 * std::sin(1.7 * k));
    std::vector<illumination::Overlap> ov;
    int seen = 0;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const std::size_t a = std::size_t(r * cols + c);
            const double x = 1000 + 37 * (seen++);  // what the specimen shows there
            if (c + 1 < cols) ov.push_back({a, a + 1, truth[a] * x, truth[a + 1] * x});
            if (r + 1 < rows) ov.push_back({a, a + std::size_t(cols), truth[a] * x * 1.01, truth[a + cols] * x * 1.01});
        }
    ov.push_back({0, 5, 1000, 3000});                                                     // a misplaced tile's overlap
    ov.push_back({2, 3, 0, 100});                                                         // unusable
    illumination::Gains g = illumination::solve_gains(std::size_t(cols * rows) + 1, ov);  // and one tile alone
    REQUIRE(g.gain.size() == 13);
    CHECK(g.dropped == 2);
    CHECK(g.unlinked == 1);
    CHECK(g.gain[12] == 1);
    double lmean = 0;
    for (int k = 0; k < 12; ++k) lmean += std::log(truth[std::size_t(k)]);
    lmean /= 12;
    for (int k = 0; k < 12; ++k)
        CHECK(g.gain[std::size_t(k)] == doctest::Approx(truth[std::size_t(k)] / std::exp(lmean)).epsilon(1e-9));
    CHECK(g.rms_after < 1e-9);
    CHECK(g.rms_before > 0.05);
}

TEST_CASE("flatfield: gain compensation recovers the tiles' exposures and removes the checkerboard") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=4 rows=3 tile=256x192 overlap=10 bits=16 gain=0.12 seed=11");
    const auto csv = rounded_truth(dir.path);
    auto [w, h] = canvas_of(dir.path);
    const std::vector<Placement> tiles = read_positions_csv(csv.string());
    Illumination ill{(dir / "flatfield.tif").string(), (dir / "darkfield.tif").string(), {}};
    GainEstimate est = estimate_gains(tiles, ill, {}, standard_registry());
    CHECK(est.overlaps == 29);  // 9 across, 8 down, 12 diagonal corners
    REQUIRE(est.gains.gain.size() == 12);
    CHECK(est.gains.unlinked == 0);
    // against truth_gain.csv, up to the common factor
    std::ifstream in(dir / "truth_gain.csv");
    std::string line;
    std::getline(in, line);
    std::vector<double> ratio;
    while (std::getline(in, line))
        ratio.push_back(std::log(est.gains.gain[ratio.size()] / std::stod(line.substr(line.find(',') + 1))));
    REQUIRE(ratio.size() == 12);
    double m = 0, s = 0;
    for (double r : ratio) m += r / 12;
    for (double r : ratio) s += (r - m) * (r - m) / 12;
    MESSAGE("gains: RMS error ", std::sqrt(s), " (relative); overlap mismatch ", est.gains.rms_before, " -> ",
            est.gains.rms_after, "; ", est.seconds, " s");
    CHECK(std::sqrt(s) < 0.004);
    VImage specimen = VImage::new_from_file((dir / "specimen.tif").c_str());
    VImage covered = coverage(csv, w, h, 256, 192);
    const double flat = misfit8(stitch(csv, dir / "flat.tif", ill), specimen, covered);
    ill.gains = est.gains.gain;
    const double both = misfit8(stitch(csv, dir / "both.tif", ill), specimen, covered);
    MESSAGE("RMS misfit to the specimen: true F and D ", flat, ", and the gains ", both);
    CHECK(both < flat / 3);
    // the CLI solves the same gains, and its pipeline carries them
    const std::string cmd = tt::tessera_binary() + " stitch " + csv.string() + " --canvas " + std::to_string(w) + " " +
                            std::to_string(h) + " --flatfield " + ill.flatfield + " --darkfield " + ill.darkfield +
                            " --gain-compensation -o " + (dir / "cli.tif").string();
    std::string out;
    REQUIRE(tt::run_command(cmd + " --stats", &out) == 0);
    CHECK(out.find("gains: 29 of 29 overlaps used, 0 tiles without one") != std::string::npos);
    CHECK((VImage::new_from_file((dir / "cli.tif").c_str()) - VImage::new_from_file((dir / "both.tif").c_str()))
              .abs()
              .max() == 0);
    REQUIRE(tt::run_command(cmd + " --emit-json", &out) == 0);
    CHECK(out.find("\"gain\"") != std::string::npos);
}

TEST_CASE("flatfield: working grid and sample spread and strips shrink as the whole tile does") {
    const illumination::Grid g = illumination::working_grid(256, 192, 96);
    CHECK(g.w == 96);
    CHECK(g.h == 72);
    CHECK(illumination::working_grid(50, 40, 96).w == 50);  // never enlarged
    CHECK(illumination::spread_sample(10, 4) == std::vector<std::size_t>{0, 3, 6, 9});
    CHECK(illumination::spread_sample(3, 200) == std::vector<std::size_t>{0, 1, 2});
    CHECK(illumination::spread_sample(7, 1) == std::vector<std::size_t>{3});
    // a 2-band u16 tile of 100x70 on a 30x21 grid, fed in strips of 13 rows,
    // against each cell's mean computed here from its pixel ranges
    VImage im = tt::pattern(100, 70, 2, VIPS_FORMAT_USHORT, 4);
    Buffer b = tt::from_vips(im);
    const illumination::Grid q = illumination::working_grid(100, 70, 30);
    REQUIRE(q.w == 30);
    REQUIRE(q.h == 21);
    illumination::Shrinker s(q);
    for (int y = 0; y < 70; y += 13) s.add(b.view().sub({0, y, 100, std::min(13, 70 - y)}));
    const std::vector<float> got = s.finish();
    const std::vector<double> px = samples(im);
    for (int j = 0; j < q.h; ++j)
        for (int i = 0; i < q.w; ++i) {
            double sum = 0, n = 0;
            for (int y = j * 70 / 21; y < (j + 1) * 70 / 21; ++y)
                for (int x = i * 100 / 30; x < (i + 1) * 100 / 30; ++x)
                    for (int c = 0; c < 2; ++c)
                        sum += px[(std::size_t(y) * 100 + std::size_t(x)) * 2 + std::size_t(c)], n += 1;
            CHECK(got[std::size_t(j) * 30 + std::size_t(i)] == doctest::Approx(sum / n).epsilon(1e-6));
        }
}
