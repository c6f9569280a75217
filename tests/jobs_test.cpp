// The stitch and mosaic jobs called from C++ (tessera/jobs.hpp): the same
// job as the command line, with its flat-field estimate, registration and
// gains, down to the output's bytes.
#include <doctest/doctest.h>

#include <filesystem>

#include "support.hpp"
#include "tessera/jobs.hpp"

using namespace tessera;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

double max_diff(const fs::path& a, const fs::path& b) {
    return (VImage::new_from_file(a.c_str()).cast(VIPS_FORMAT_DOUBLE) - VImage::new_from_file(b.c_str())).abs().max();
}

// A job on 2 threads; `for_pipeline`: its graph is to be printed.
JobContext two_threads(bool for_pipeline = false) {
    JobContext c;
    c.threads = 2;
    c.for_pipeline = for_pipeline;
    return c;
}

}  // namespace

TEST_CASE("jobs: tessera::mosaic with an estimated flat-field and gains writes the bytes the CLI writes") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=3 rows=3 tile=192x128 overlap=25 bits=16 gain=0.1 error=2 drift=0 seed=21");
    const std::string csv = (dir / "nominal.csv").string();
    MosaicOptions o;
    o.positions = csv;
    o.output = (dir / "api.tif").string();
    o.estimate_flatfield = true;
    o.flatfield_out = (dir / "F.tif").string();
    o.gain_compensation = true;
    JobContext c;
    c.threads = 2;
    std::size_t estimated = 0, fitted = 0;
    RegisterReport report;
    c.flatfield_estimated = [&](const FlatfieldEstimate& e, std::size_t tiles) { estimated = e.tiles + 100 * tiles; };
    c.registered = [&](const RegisterReport& r, const std::vector<Placement>&) { report = r; };
    std::vector<double> gain;
    c.gains_estimated = [&](const GainEstimate& e) { gain = e.gains.gain; };
    c.canvas_fitted = [&](const CanvasFit& f) { fitted += f.width > 0 && f.height > 0; };
    const RunStats s = mosaic(o, standard_registry(), c);
    CHECK(s.tiles > 0);
    // every step ran and was told: 9 of 9 tiles sampled, pairs registered
    CHECK(estimated == 9 + 100 * 9);
    CHECK(report.trusted >= 6);
    CHECK(report.positions.size() == 9);
    CHECK(gain.size() == 9);
    CHECK(fitted == 1);

    std::string out;
    REQUIRE(tt::run_command(tt::tessera_binary() + " mosaic " + csv +
                                " -q --threads 2 --estimate-flatfield --flatfield-out " + (dir / "F2.tif").string() +
                                " --gain-compensation -o " + (dir / "cli.tif").string(),
                            &out) == 0);
    CHECK(tt::slurp(dir / "api.tif") == tt::slurp(dir / "cli.tif"));
    CHECK(tt::slurp(dir / "F.tif") == tt::slurp(dir / "F2.tif"));
    // the graph corrects every tile by the estimate and its own gain
    PlannedJob job = plan_mosaic(o, read_positions(csv), standard_registry(), two_threads(true));
    CHECK(job.graph.node(job.graph.find("flatfield")).params.string("path") == o.flatfield_out);
    REQUIRE(gain.size() == 9);
    for (std::size_t i = 0; i < 9; ++i)
        CHECK(job.graph.node(job.graph.find("flat" + std::to_string(i))).params.number("gain") == gain[i]);
    // and the illumination was applied: the plain mosaic differs
    MosaicOptions plain = o;
    plain.estimate_flatfield = plain.gain_compensation = false;
    plain.flatfield_out.clear();
    plain.output = (dir / "plain.tif").string();
    mosaic(plain, standard_registry(), two_threads());
    CHECK(max_diff(dir / "api.tif", dir / "plain.tif") > 1000);
}

TEST_CASE("jobs: the flat-field estimate held in memory gives the saved estimate's stitch and leaves no file") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=3 rows=2 tile=128x96 overlap=10 bits=16 seed=22");
    const std::vector<Placement> tiles = read_positions((dir / "nominal.csv").string());
    StitchOptions o;
    o.positions = (dir / "nominal.csv").string();
    o.output = (dir / "mem.tif").string();
    o.estimate_flatfield = true;
    const auto before = std::distance(fs::directory_iterator(dir.path), fs::directory_iterator());
    PlannedJob job = plan_stitch(o, tiles, standard_registry(), two_threads());
    CHECK(job.tiles.size() == 6);
    run_job(job.graph, two_threads());
    // the output alone is new
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == before + 1);
    // each call holds its estimate under a name of its own
    StitchOptions a = o, b = o;
    prepare_flatfield(a, tiles, standard_registry());
    prepare_flatfield(b, tiles, standard_registry());
    CHECK(a.illumination.flatfield.rfind("/vsimem/", 0) == 0);
    CHECK(a.illumination.flatfield != b.illumination.flatfield);
    // the same estimate through a file: the same pixels
    StitchOptions saved = o;
    saved.flatfield_out = (dir / "F.tif").string();
    saved.output = (dir / "file.tif").string();
    stitch(saved, standard_registry(), two_threads());
    CHECK(max_diff(dir / "mem.tif", dir / "file.tif") == 0);
    StitchOptions given = o;
    given.estimate_flatfield = false;
    given.illumination.flatfield = (dir / "F.tif").string();
    given.output = (dir / "given.tif").string();
    stitch(given, standard_registry(), two_threads());
    CHECK(max_diff(dir / "mem.tif", dir / "given.tif") == 0);
}

TEST_CASE("jobs: illumination requests that cannot be met fail before any pixel is read") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=2 rows=2 tile=64x48 overlap=10 bits=8 seed=23");
    MosaicOptions o;
    o.positions = (dir / "nominal.csv").string();
    o.output = (dir / "o.tif").string();
    o.register_tiles = false;
    const std::vector<Placement> tiles = read_positions(o.positions);
    auto error = [&](const MosaicOptions& m, bool for_pipeline) {
        return tt::error_of([&] { plan_mosaic(m, tiles, standard_registry(), two_threads(for_pipeline)); });
    };
    MosaicOptions p = o;
    p.estimate_flatfield = true;
    CHECK(error(p, true).find("needs --flatfield-out") != std::string::npos);
    p.illumination.flatfield = (dir / "flatfield.tif").string();
    CHECK(error(p, false).find("one or the other") != std::string::npos);
    MosaicOptions q = o;
    q.flatfield_out = (dir / "F.tif").string();
    CHECK(error(q, false).find("writes what --estimate-flatfield estimates") != std::string::npos);
    // an output the job cannot write is found by the check, before the estimate
    MosaicOptions r = o;
    r.estimate_flatfield = true;
    r.output = (dir / "o.bmp").string();
    std::size_t estimates = 0;
    JobContext c;
    c.flatfield_estimated = [&](const FlatfieldEstimate&, std::size_t) { ++estimates; };
    const std::string why = tt::error_of([&] { plan_mosaic(r, tiles, standard_registry(), c); });
    CHECK(why.find("o.bmp") != std::string::npos);
    CHECK(estimates == 0);
    CHECK(!fs::exists(dir / "F.tif"));
}

TEST_CASE("jobs: registration options outside their specs are refused by the library and the CLI alike") {
    tt::TempDir dir;
    tt::make_acquisition(dir.path, "cols=2 rows=2 tile=64x48 overlap=25 bits=8 seed=24");
    const std::string csv = (dir / "nominal.csv").string();
    const std::vector<Placement> tiles = read_positions(csv);
    struct Case {
        const char* option;
        std::string value;
        std::function<void(RegisterOptions&)> set;
        std::string why;
    };
    const Case cases[] = {
        {"--stage-error", "5000", [](RegisterOptions& o) { o.stage_error = 5000; },
         "stage_error: 5000 is out of range; use a value in [1, 4096]"},
        {"--register-band", "70000", [](RegisterOptions& o) { o.band = 70000; },
         "band: 70000 is out of range; use a value in [0, 65536]"},
        {"--min-score", "2", [](RegisterOptions& o) { o.min_score = 2; },
         "min_score: 2 is out of range; use a value in [-1, 1]"},
        {"--deep-share", "1.5", [](RegisterOptions& o) { o.plan.deep_share = 1.5; },
         "deep_share: 1.5 is out of range; use a value in [0, 1]"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.option);
        RegisterOptions o;
        o.source = csv;
        c.set(o);
        const std::string lib = tt::error_of([&] { register_positions(tiles, o, standard_registry()); });
        CHECK(lib.find(csv + ": registration option " + c.why) != std::string::npos);
        std::string out;
        CHECK(tt::run_command(tt::tessera_binary() + " mosaic " + csv + " -o " + (dir / "o.tif").string() + " " +
                                  c.option + " " + c.value,
                              &out) == 105);  // CLI11's code for a value its check refuses
        CHECK(out.find(c.option + std::string(": ") + c.why.substr(c.why.find(": ") + 2)) != std::string::npos);
    }
    // the values that mean "not given" are the library's defaults, not errors
    RegisterOptions o;
    CHECK(o.stage_error == 0);
    CHECK(o.band == -1);
    CHECK(register_positions(tiles, o, standard_registry()).positions.size() == 4);
}
