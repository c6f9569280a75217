// End to end: the `tessera` command and the examples, on real files.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {

using tt::slurp;

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

int run_tessera(const std::string& args, std::string* out = nullptr) {
    return tt::run_command(tt::tessera_binary() + " " + args, out);
}

// A copy of examples/stitch in a temp dir, so outputs land there.
fs::path copy_example(const tt::TempDir& dir) {
    fs::copy(tt::source_dir() / "examples" / "stitch", dir.path / "stitch", fs::copy_options::recursive);
    return dir.path / "stitch";
}

// The oracle: libvips inserting the example's tiles one by one.
vips::VImage vips_stitch(const fs::path& dir) { return tt::vips_insert_loop(dir / "positions.csv", 1000, 700); }

double diff_files(const fs::path& a, const vips::VImage& b) {
    return tt::max_abs_diff(tt::from_vips(vips::VImage::new_from_file(a.c_str())), b);
}

}  // namespace

TEST_CASE("cli: the example pipeline runs and equals libvips's insert loop") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string out;
    REQUIRE(run_tessera("run " + (ex / "stitch.json").string() + " --stats", &out) == 0);
    CHECK(out.find("peak pixel memory") != std::string::npos);
    vips::VImage ref = vips_stitch(ex);
    CHECK(diff_files(ex / "stitched.tif", ref) == 0);
    // the thumbnail is libvips's shrink of the same mosaic
    CHECK(diff_files(ex / "thumbnail.png", ref.shrink(4, 4)) == 0);
    // the preview: resized to 400 px wide (lanczos3, as vips resize), then
    // JPEG Q85: as far from libvips's resize as that resize is from its own
    // Q85 JPEG (the codec's loss), give or take a little
    vips::VImage preview = vips::VImage::new_from_file((ex / "preview.jpg").c_str());
    CHECK(preview.width() == 400);
    CHECK(preview.height() == 280);
    const vips::VImage want = ref.resize(0.4);
    REQUIRE(want.width() == 400);
    auto mean_diff = [](vips::VImage a, vips::VImage b) {
        return (a.cast(VIPS_FORMAT_FLOAT) - b.cast(VIPS_FORMAT_FLOAT)).abs().avg();
    };
    VipsBlob* jpeg = want.jpegsave_buffer(vips::VImage::option()->set("Q", 85));
    double codec_loss = 0;
    {  // the decoded image reads the blob: gone before the blob is
        const vips::VImage want_jpeg = vips::VImage::new_from_buffer(jpeg->area.data, jpeg->area.length, "");
        codec_loss = mean_diff(want_jpeg, want);
    }
    vips_area_unref(&jpeg->area);
    MESSAGE("preview vs vips resize: mean |diff| " << mean_diff(preview, want) << ", codec loss " << codec_loss);
    CHECK(mean_diff(preview, want) < codec_loss + 0.5);
}

TEST_CASE("cli: threads and tile size never change the output") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string p = (ex / "stitch.json").string();
    REQUIRE(run_tessera("run -q " + p + " --threads 1 --tile-size 64") == 0);
    std::string a = slurp(ex / "thumbnail.png");
    vips::VImage ta = vips::VImage::new_from_file((ex / "stitched.tif").c_str()).copy_memory();
    REQUIRE(run_tessera("run -q " + p + " --threads 2 --tile-size 256") == 0);
    CHECK(slurp(ex / "thumbnail.png") == a);  // byte for byte
    CHECK(tt::max_abs_diff(tt::from_vips(vips::VImage::new_from_file((ex / "stitched.tif").c_str())), ta) == 0);
    // an empty or negative count is an error, not "every core" (an unset
    // $SLURM_CPUS_PER_TASK would otherwise take a shared node's cores)
    for (const char* bad : {"''", "-2", "many"}) {
        std::string said;
        CHECK(run_tessera("run -q " + p + " --threads " + bad, &said) != 0);
        CHECK_MESSAGE(said.find("--threads: ") != std::string::npos, said);
    }
}

TEST_CASE("cli: run's --threads --tile-size and --memory-mb take the pipeline's own ranges") {
    // one declaration (execution_params): a value one past its bound is
    // refused by the command line and by a pipeline alike, the bound itself
    // is taken by both
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    const std::string p = (ex / "stitch.json").string();
    for (auto [key, option] :
         {std::pair{"threads", "--threads"}, {"tile", "--tile-size"}, {"memory_mb", "--memory-mb"}}) {
        CAPTURE(key);
        const tessera::ParamSpec* spec = nullptr;
        for (const tessera::ParamSpec& q : tessera::execution_params())
            if (q.name == key) spec = &q;
        REQUIRE(spec);
        REQUIRE(spec->max);
        const auto over = std::int64_t(*spec->max) + 1;
        std::string said;
        CHECK(run_tessera("run -q " + p + " " + option + " " + std::to_string(over), &said) != 0);
        CHECK_MESSAGE(said.find(option) != std::string::npos, said);
        auto pipeline = [&](std::int64_t v) {
            return "{\"version\": 1, \"execution\": {\"" + std::string(key) + "\": " + std::to_string(v) +
                   "}, \"nodes\": [{\"id\": \"a\", \"op\": \"black\", \"width\": 4, \"height\": 4}]}";
        };
        std::string why;
        try {
            tessera::parse_pipeline(pipeline(over), tessera::standard_registry());
        } catch (const tessera::GraphError& e) {
            why = e.what();
        }
        CHECK_MESSAGE(why.find("execution." + std::string(key)) != std::string::npos, why);
        CHECK_NOTHROW(tessera::parse_pipeline(pipeline(std::int64_t(*spec->max)), tessera::standard_registry()));
    }
}

TEST_CASE("cli: the C++ example gives the same image and its JSON runs to the same file") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string out;
    REQUIRE(tt::run_command(std::string(TESSERA_STITCH_API) + " " + (ex / "positions.csv").string() + " 1000 700 " +
                                (tmp / "api.tif").string() + " " + (tmp / "api.json").string(),
                            &out) == 0);
    CHECK(out.find("wrote") != std::string::npos);
    vips::VImage ref = vips_stitch(ex);
    CHECK(diff_files(tmp / "api.tif", ref) == 0);
    // the emitted pipeline writes to the same path: move the first result away
    fs::rename(tmp / "api.tif", tmp / "first.tif");
    REQUIRE(run_tessera("run -q " + (tmp / "api.json").string()) == 0);
    CHECK(slurp(tmp / "api.tif") == slurp(tmp / "first.tif"));
}

TEST_CASE("cli: bad pipelines exit non-zero with one line naming the node and key") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string base = slurp(ex / "stitch.json");
    auto run_variant = [&](const std::string& from, const std::string& to, std::string* err) {
        std::string s = base;
        auto at = s.find(from);
        REQUIRE(at != std::string::npos);
        s.replace(at, from.size(), to);
        write(ex / "bad.json", s);
        return run_tessera("run -q " + (ex / "bad.json").string(), err);
    };
    auto one_line = [](const std::string& s) { return s.find('\n') == s.size() - 1; };
    std::string err;

    CHECK(run_variant("\"bands\": 3", "\"bands\": 3, \"colour\": 1", &err) == 1);
    CHECK(err.find("node 'canvas' (op black), key 'colour'") != std::string::npos);
    CHECK(one_line(err));

    CHECK(run_variant("\"inputs\": [\"mosaic\"],\n      \"path\": \"stitched.tif\"",
                      "\"inputs\": [\"mosaik\"],\n      \"path\": \"stitched.tif\"", &err) == 1);
    CHECK(err.find("node 'save' (op save), key 'inputs'") != std::string::npos);
    CHECK(err.find("unknown input id 'mosaik'") != std::string::npos);
    CHECK(one_line(err));

    CHECK(run_variant("\"inputs\": [\"canvas\"", "\"inputs\": [\"thumb\"", &err) == 1);
    CHECK(err.find("cycle") != std::string::npos);
    CHECK(err.find("mosaic") != std::string::npos);
    CHECK(one_line(err));

    CHECK(run_variant("tiles/r1_c1.jpg", "tiles/missing.jpg", &err) == 1);
    CHECK(err.find("missing.jpg") != std::string::npos);
    CHECK(err.find("node 'r1_c1'") != std::string::npos);
    CHECK(one_line(err));
    CHECK_FALSE(fs::exists(ex / "stitched.tif"));  // nothing was written

    write(ex / "bad.json", "{\"version\": 1, \"nodes\": [");
    CHECK(run_tessera("run " + (ex / "bad.json").string(), &err) == 1);
    CHECK(err.find("malformed JSON") != std::string::npos);
    CHECK(run_tessera("run " + (ex / "nothere.json").string(), &err) == 1);
    CHECK(err.find("nothere.json") != std::string::npos);
}

TEST_CASE("cli: ops / info / dot and help") {
    std::string out;
    REQUIRE(run_tessera("ops", &out) == 0);
    for (const char* op : {"black", "load", "insert", "arrayjoin", "extract_area", "embed", "cast", "shrink", "save"})
        CHECK(out.find(std::string(op) + " (inputs") != std::string::npos);
    CHECK(out.find("hshrink : integer") != std::string::npos);
    REQUIRE(run_tessera("ops --json", &out) == 0);
    CHECK(out.find("\"name\": \"insert\"") != std::string::npos);

    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    REQUIRE(run_tessera("info " + (ex / "tiles" / "r0_c0.jpg").string(), &out) == 0);
    CHECK(out.find("400") != std::string::npos);
    CHECK(out.find("300") != std::string::npos);
    CHECK(run_tessera("info " + (ex / "none.jpg").string(), &out) == 1);
    CHECK(out.find("none.jpg") != std::string::npos);

    REQUIRE(run_tessera("dot " + (ex / "stitch.json").string(), &out) == 0);
    CHECK(out.find("digraph") != std::string::npos);
    CHECK(out.find("mosaic") != std::string::npos);

    for (const char* sub : {"run", "ops", "info", "dot", "stitch", "merge", "view"}) {
        CHECK(run_tessera(std::string(sub) + " --help", &out) == 0);
        CHECK(out.find("Usage") != std::string::npos);
    }
    CHECK(run_tessera("frobnicate", &out) != 0);
}

namespace {
// A pipeline that takes a few seconds: a large canvas saved as a pyramid.
std::string slow_pipeline(const fs::path& dir, const std::string& out) {
    std::string p = (dir / "slow.json").string();
    write(p, R"({"version": 1, "nodes": [
        {"id": "c", "op": "black", "width": 60000, "height": 60000, "bands": 3, "value": [10, 20, 30]},
        {"id": "s", "op": "save", "inputs": ["c"], "path": ")" +
                 out + R"(", "pyramid": true, "compression": "deflate"}]})");
    return p;
}
}  // namespace

TEST_CASE("cli: SIGINT and SIGTERM stop a run within a second - exit 130 and 143 - nothing left behind") {
    tt::TempDir tmp;
    for (auto [sig, code] : {std::pair{"INT", 130}, std::pair{"TERM", 143}}) {
        CAPTURE(sig);
        std::string out = (tmp / "big.tif").string();
        write(out, "the previous file");
        std::string p = slow_pipeline(tmp.path, out);
        // start, wait until it is writing, signal, time how long it takes to stop
        std::string log;
        int rc =
            tt::run_command("bash -c '" + tt::tessera_binary() + " run -q " + p +
                                " & pid=$!; sleep 1; t0=$(date +%s%N); kill -" + sig +
                                " $pid; wait $pid; rc=$?; t1=$(date +%s%N); echo rc=$rc ms=$(( (t1 - t0) / 1000000 ))'",
                            &log);
        REQUIRE(rc == 0);
        CHECK(log.find("rc=" + std::to_string(code)) != std::string::npos);
        auto ms = std::stoi(log.substr(log.find("ms=") + 3));
        CHECK(ms < 1000);
        CHECK(log.find("cancelled") != std::string::npos);
        CHECK(slurp(out) == "the previous file");
        int files = 0;
        for (auto& e : fs::directory_iterator(tmp.path)) files += e.is_regular_file();
        CHECK(files == 2);  // slow.json and the untouched big.tif
    }
}

TEST_CASE("cli: the example pipeline is bit-identical for threads 1 2 and 8 and tiles 64 256 and 1024") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string p = (ex / "stitch.json").string();
    REQUIRE(run_tessera("run -q " + p + " --threads 1 --tile-size 64") == 0);
    std::string png = slurp(ex / "thumbnail.png"), tif = slurp(ex / "stitched.tif");
    for (auto [threads, tile] : {std::pair{2, 256}, std::pair{8, 1024}, std::pair{8, 64}, std::pair{1, 1024}}) {
        CAPTURE(threads);
        CAPTURE(tile);
        REQUIRE(run_tessera("run -q " + p + " --threads " + std::to_string(threads) + " --tile-size " +
                            std::to_string(tile)) == 0);
        CHECK(slurp(ex / "thumbnail.png") == png);
        CHECK(slurp(ex / "stitched.tif") == tif);  // the tiled TIFF's tiles are its own, whatever the pull size
    }
}

TEST_CASE("cli: a memory budget too small for one tile fails before starting and says what to change") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string err;
    CHECK(run_tessera("run -q " + (ex / "stitch.json").string() + " --tile-size 1024 --memory-mb 1", &err) == 1);
    CHECK(err.find("memory_mb 1") != std::string::npos);
    CHECK(err.find("tile size") != std::string::npos);
    CHECK_FALSE(fs::exists(ex / "stitched.tif"));
}

TEST_CASE("cli: stitch -o slide.dzi equals vips dzsave of the libvips insert loop") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string out;
    REQUIRE(run_tessera("stitch -q " + (ex / "positions.csv").string() + " --canvas 1000 700 --suffix png -o " +
                            (tmp / "slide.dzi").string(),
                        &out) == 0);
    fs::create_directories(tmp / "vips");
    vips_stitch(ex).dzsave((tmp / "vips" / "slide").c_str(), vips::VImage::option()->set("suffix", ".png"));
    CHECK(slurp(tmp / "slide.dzi") == slurp(tmp / "vips" / "slide.dzi"));
    int n = 0;
    for (auto& e : fs::recursive_directory_iterator(tmp / "vips" / "slide_files")) {
        if (!e.is_regular_file() || e.path().filename() == "vips-properties.xml") continue;
        fs::path ours = tmp / "slide_files" / fs::relative(e.path(), tmp / "vips" / "slide_files");
        CAPTURE(ours);
        CHECK(slurp(ours) == slurp(e.path()));
        ++n;
    }
    CHECK(n == 12 + 4 + 9);  // 4x3 tiles at level 10, 2x2 at 9, one tile each for 8 to 0
    // options of the other output kind are errors, not silently dropped
    CHECK(run_tessera("stitch -q " + (ex / "positions.csv").string() + " --canvas 1000 700 --overlap 2 -o " +
                          (tmp / "x.tif").string(),
                      &out) == 1);
    CHECK(out.find("name the output NAME.dzi") != std::string::npos);
    CHECK(run_tessera("stitch -q " + (ex / "positions.csv").string() + " --canvas 1000 700 --compression deflate -o " +
                          (tmp / "x.dzi").string(),
                      &out) == 1);
    CHECK(out.find("apply to TIFF outputs") != std::string::npos);
    // the viewer page, and what view says about a file that is not a .dzi
    REQUIRE(run_tessera("view " + (tmp / "slide.dzi").string(), &out) == 0);
    CHECK(slurp(tmp / "slide.html").find("Url: \"slide_files/\"") != std::string::npos);
    CHECK(fs::exists(tmp / "openseadragon" / "images"));
    CHECK(run_tessera("view " + (ex / "positions.csv").string(), &out) == 1);
    CHECK(out.find("is not a Deep Zoom descriptor") != std::string::npos);
    CHECK(run_tessera("view " + (tmp / "none.dzi").string(), &out) == 1);
    CHECK(out.find("none.dzi") != std::string::npos);
}

TEST_CASE("cli: --progress json prints one object per line and nothing is shown off a terminal by default") {
    tt::TempDir tmp;
    fs::path ex = copy_example(tmp);
    std::string out;
    REQUIRE(tt::run_command(tt::tessera_binary() + " run --tile-size 64 --progress json " +
                                (ex / "stitch.json").string() + " 2>/dev/null",
                            &out) == 0);
    std::stringstream ss(out);
    int lines = 0;
    std::string last;
    for (std::string line; std::getline(ss, line);) {
        CHECK(line.front() == '{');
        CHECK(line.back() == '}');
        for (const char* k :
             {"\"tiles_done\"", "\"tiles_total\"", "\"mpx_per_s\"", "\"eta_seconds\"", "\"pixel_memory_bytes\""})
            CHECK(line.find(k) != std::string::npos);
        last = line;
        ++lines;
    }
    CHECK(lines >= 2);  // one per sink at least (the TIFF and the thumbnail)
    // the last object is a finished sink: done == total
    auto field = [&](const std::string& k) {
        return std::stol(last.substr(last.find("\"" + k + "\": ") + k.size() + 4));
    };
    CHECK(field("tiles_done") == field("tiles_total"));
    CHECK(field("tiles_total") > 0);
    // stdout and stderr not a terminal, no --progress: nothing but the result
    REQUIRE(run_tessera("run " + (ex / "stitch.json").string(), &out) == 0);
    CHECK(out.empty());
}

TEST_CASE("cli: dot folds a 2000-input fan-in and --svg draws it with graphviz") {
    tt::TempDir tmp;
    std::string p = R"({"version": 1, "nodes": [
        {"id": "canvas", "op": "black", "width": 4000, "height": 4000, "bands": 1})";
    std::string ins = "\"canvas\"", at;
    for (int i = 0; i < 2000; ++i) {
        p += ",\n {\"id\": \"t" + std::to_string(i) +
             "\", \"op\": \"black\", \"width\": 10, \"height\": 10, \"bands\": 1}";
        ins += ", \"t" + std::to_string(i) + "\"";
        at +=
            std::string(i ? ", " : "") + "[" + std::to_string(i % 400 * 10) + ", " + std::to_string(i / 400 * 10) + "]";
    }
    p += ",\n {\"id\": \"mosaic\", \"op\": \"insert\", \"inputs\": [" + ins + "], \"at\": [" + at + "]}";
    p += ",\n {\"id\": \"out\", \"op\": \"save\", \"inputs\": [\"mosaic\"], \"path\": \"out.dzi\"}]}";
    write(tmp / "big.json", p);
    std::string dot;
    REQUIRE(run_tessera("dot " + (tmp / "big.json").string(), &dot) == 0);
    // the first two inputs (canvas, t0), a summary of the 1998 between, the
    // last (t1999), mosaic, save: a handful of boxes instead of 2003
    std::size_t edges = 0;
    for (std::size_t at = 0; (at = dot.find("->", at)) != std::string::npos; at += 2) ++edges;
    CHECK(edges < 10);
    CHECK(dot.find("1998 more inputs") != std::string::npos);
    CHECK(dot.find("\"t1999\\n") != std::string::npos);
    CHECK(dot.find("\"t1\\n") == std::string::npos);
    std::string out;
    if (tt::run_command("command -v dot", &out) != 0) {
        MESSAGE("graphviz is not installed: --svg not drawn (tools/deps.sh installs it)");
    } else {
        REQUIRE(run_tessera("dot " + (tmp / "big.json").string() + " --svg " + (tmp / "big.svg").string(), &out) == 0);
        std::string svg = slurp(tmp / "big.svg");
        CHECK(svg.find("<svg") != std::string::npos);
        CHECK(svg.find("1998 more inputs") != std::string::npos);
        CHECK(svg.size() < 20000);  // readable: a few boxes, not 2000
    }
    // without graphviz on PATH: a clear error, no file
    CHECK(tt::run_command("PATH=/nonexistent " + tt::tessera_binary() + " dot " + (tmp / "big.json").string() +
                              " --svg " + (tmp / "nodot.svg").string(),
                          &out) == 1);
    CHECK(out.find("graphviz") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "nodot.svg"));
}

namespace {
// `tessera info --loaders ARGS`: each loader's line as its words, by name.
std::map<std::string, std::vector<std::string>> listed_loaders(const std::string& args) {
    std::string out;
    REQUIRE(run_tessera("info --loaders " + args, &out) == 0);
    std::map<std::string, std::vector<std::string>> by_name;
    std::istringstream lines(out);
    std::string line;
    std::getline(lines, line);  // the heading
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
        if (!w.empty()) by_name[w[0]] = w;
    }
    return by_name;
}

bool has_word(const std::vector<std::string>& words, const std::string& w) {
    return std::find(words.begin(), words.end(), w) != words.end();
}

// libvips's own flag on its operation class.
bool vips_flags_untrusted(const std::string& nickname) {
    const GType type = vips_type_find("VipsOperation", nickname.c_str());
    if (!type) return false;
    gpointer klass = g_type_class_ref(type);
    const bool untrusted = VIPS_OPERATION_CLASS(klass)->flags & VIPS_OPERATION_UNTRUSTED;
    g_type_class_unref(klass);
    return untrusted;
}
}  // namespace

TEST_CASE("cli: info --loaders lists libvips's loaders - the untrusted blocked unless allowed") {
    auto blocked = listed_loaders("");
    for (const char* name : {"jpegload", "tiffload", "pngload"}) {
        CAPTURE(name);
        REQUIRE(blocked.count(name));
        CHECK(blocked[name][1] == "allowed");
    }
    CHECK(has_word(blocked["jpegload"], ".jpg"));
    CHECK(has_word(blocked["tiffload"], ".tif"));
    // no buffer or source loaders: tessera reads files
    for (const auto& [name, words] : blocked) CHECK(name.find('_') == std::string::npos);
    // what libvips flags untrusted is blocked, but for the loader of
    // tessera's own .v files
    for (const auto& [name, words] : blocked) {
        CAPTURE(name);
        CHECK(has_word(words, "untrusted") == vips_flags_untrusted(name));
        CHECK(words[1] == (vips_flags_untrusted(name) && name != "vipsload" ? "blocked" : "allowed"));
    }
    if (vips_type_find("VipsOperation", "magickload")) {
        REQUIRE(blocked.count("magickload"));
        CHECK(blocked["magickload"][1] == "blocked");
    } else {
        MESSAGE("libvips here has no magick module: magickload not listed");
        CHECK_FALSE(blocked.count("magickload"));
    }
    // the switch lifts it
    auto allowed = listed_loaders("--allow-untrusted-loaders");
    CHECK(allowed.size() == blocked.size());
    for (const auto& [name, words] : allowed) {
        CAPTURE(name);
        CHECK(words[1] == "allowed");
        CHECK(has_word(words, "untrusted") == vips_flags_untrusted(name));
    }

    // what the list says is what a file meets: a PPM, through ppmload
    tt::TempDir tmp;
    std::ofstream(tmp / "x.ppm", std::ios::binary) << std::string("P6\n2 2\n255\n") + std::string(12, '\x40');
    std::string out;
    const bool ppm_blocked = blocked.count("ppmload") && blocked["ppmload"][1] == "blocked";
    CHECK(run_tessera("info " + (tmp / "x.ppm").string() + " 2>&1", &out) == (ppm_blocked ? 1 : 0));
    if (ppm_blocked) CHECK(out.find("ppmload, an untrusted loader") != std::string::npos);
    CHECK(run_tessera("info --allow-untrusted-loaders " + (tmp / "x.ppm").string() + " 2>&1", &out) == 0);

    // a file or the list, not both, and one of them
    CHECK(run_tessera("info --loaders " + (tmp / "x.ppm").string() + " 2>&1", &out) != 0);
    CHECK(out.find("excludes") != std::string::npos);
    CHECK(run_tessera("info 2>&1", &out) != 0);
    CHECK(out.find("--loaders") != std::string::npos);
}
