// io: the save op and its sink. Round trips (exact for lossless formats,
// equal to libvips's own encoder for lossy ones), the interpretation kept,
// write-to-temporary-then-rename, and parameter errors.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <vector>

#include "geo_fixture.hpp"
#include "support.hpp"
#include "tessera/core/temporaries.hpp"

using namespace tessera;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

// Names in a folder, sorted.
std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

struct LimitsGuard {
    explicit LimitsGuard(IoLimits l) { set_io_limits(l); }
    ~LimitsGuard() { set_io_limits(IoLimits{}); }
};

// Loads `src`, saves it to `out` with extra params; runs with small odd tiles
// so the sink assembles many of them.
void load_and_save(const std::string& src, const std::string& out, Params extra = {}, int tile = 37) {
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", src}});
    extra.set("path", out);
    g.add("save", {n}, extra);
    g.execution.tile_w = g.execution.tile_h = tile;
    g.execution.threads = 2;
    Evaluator(g).run_sinks();
}

VImage pattern16(int w, int h, int bands) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_UINT) * 257 + 3)
        .cast(VIPS_FORMAT_USHORT)
        .copy(VImage::option()->set("interpretation",
                                    bands >= 3 ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_GREY16));
}

}  // namespace

TEST_CASE("save: png / tiff and v round trips are exact") {
    tt::TempDir dir;
    struct Case {
        std::string src, out;
        VImage image;
        Params params;
    };
    std::vector<Case> cases = {
        {"a.png", "a-out.png", tt::pattern(101, 75, 3), {}},
        {"b.png", "b-out.png", tt::pattern(101, 75, 1, VIPS_FORMAT_UCHAR, 1), {}},
        {"c.png", "c-out.png", tt::pattern(101, 75, 4, VIPS_FORMAT_UCHAR, 2), {}},
        {"d.png", "d-out.png", pattern16(101, 75, 3), {}},
        {"e.png", "e-out.tif", tt::pattern(101, 75, 3), {}},
        {"f.tif", "f-out.tiff", pattern16(90, 64, 1), {{"compression", std::string("deflate")}}},
        {"g.tif",
         "g-out.tif",
         tt::pattern(130, 70, 3),
         {{"compression", std::string("lzw")},
          {"tile", true},
          {"tile_width", std::int64_t(32)},
          {"tile_height", std::int64_t(48)}}},
        {"h.v", "h-out.v", tt::pattern(70, 50, 5, VIPS_FORMAT_FLOAT, 3), {}},
        {"i.png", "i-out.dat", tt::pattern(70, 50, 3), {{"format", std::string("tiff")}}},
    };
    for (auto& c : cases) {
        CAPTURE(c.out);
        std::string src = tt::save(c.image, dir / c.src);
        std::string out = (dir / c.out).string();
        load_and_save(src, out, c.params);
        VImage back = VImage::new_from_file(out.c_str());
        Graph g(standard_registry());
        CHECK(tt::max_abs_diff(tt::render(g, g.add("load", {}, {{"path", src}}), 64, 1), back) == 0);
    }
}

TEST_CASE("save: a pyramid tiff has its half-size levels") {
    tt::TempDir dir;
    std::string src = tt::save(tt::pattern(130, 70, 3), dir / "src.png");
    std::string out = (dir / "pyr.tif").string();
    load_and_save(src, out,
                  {{"pyramid", true},
                   {"tile_width", std::int64_t(32)},
                   {"tile_height", std::int64_t(32)},
                   {"compression", std::string("deflate")}});
    VImage top = VImage::new_from_file(out.c_str());
    CHECK(top.get_int("n-pages") >= 3);
    CHECK(tt::max_abs_diff(tt::from_vips(VImage::new_from_file(src.c_str())), top) == 0);
    VImage half = VImage::new_from_file(out.c_str(), VImage::option()->set("page", 1));
    CHECK(half.width() == 65);
    CHECK(half.height() == 35);
}

TEST_CASE("save: the interpretation is kept / so files look right") {
    tt::TempDir dir;
    std::string rgb =
        tt::save(tt::pattern(40, 30, 3).copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB)),
                 dir / "rgb.png");
    std::string wide = tt::save(pattern16(40, 30, 3), dir / "wide.png");
    load_and_save(rgb, (dir / "rgb-out.tif").string());
    load_and_save(wide, (dir / "wide-out.png").string());
    VImage a = VImage::new_from_file((dir / "rgb-out.tif").string().c_str());
    CHECK(a.interpretation() == VIPS_INTERPRETATION_sRGB);
    VImage b = VImage::new_from_file((dir / "wide-out.png").string().c_str());
    CHECK(b.format() == VIPS_FORMAT_USHORT);  // still 16 bits
    CHECK(b.interpretation() == VIPS_INTERPRETATION_RGB16);
}

TEST_CASE("save: jpeg and webp are close to the input and equal to libvips's own encoder") {
    tt::TempDir dir;
    // A smooth image, as photographs are, so that lossy coding stays close.
    VImage xy = VImage::xyz(120, 90);
    VImage smooth = VImage::bandjoin({xy[0] * 2, xy[1] * 2, (xy[0] + xy[1])}).cast(VIPS_FORMAT_UCHAR);
    smooth = smooth.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    std::string src = tt::save(smooth, dir / "src.png");
    for (const char* ext : {"jpg", "webp"}) {
        CAPTURE(ext);
        std::string out = (dir / (std::string("out.") + ext)).string();
        load_and_save(src, out, {{"quality", std::int64_t(90)}});
        VImage back = VImage::new_from_file(out.c_str());
        // Close to the input ...
        CHECK((back - smooth).abs().avg() < 3.0);
        // ... and exactly what libvips writes for the same pixels and quality.
        std::string ref = (dir / (std::string("ref.") + ext)).string();
        smooth.write_to_file((ref + "[Q=90]").c_str());
        Graph g(standard_registry());
        CHECK(tt::max_abs_diff(tt::render(g, g.add("load", {}, {{"path", out}}), 64, 1),
                               VImage::new_from_file(ref.c_str())) == 0);
    }
}

TEST_CASE("save: outputs over the memory limit are assembled on disc") {
    tt::TempDir dir;
    LimitsGuard limits(IoLimits{64, 0});  // everything goes through a raw file
    std::string src = tt::save(tt::pattern(133, 71, 3, VIPS_FORMAT_UCHAR, 6), dir / "src.png");
    std::string out = (dir / "out.tif").string();
    load_and_save(src, out, {}, 32);
    Graph g(standard_registry());
    CHECK(tt::max_abs_diff(tt::render(g, g.add("load", {}, {{"path", src}}), 64, 1),
                           VImage::new_from_file(out.c_str())) == 0);
    CHECK(listing(dir.path) == std::vector<std::string>{"out.tif", "src.png"});
}

TEST_CASE("save: the target is replaced only when complete - abort leaves it and no temporary file") {
    tt::TempDir dir;
    std::string src = tt::save(tt::pattern(64, 48, 3), dir / "src.png");
    std::string target = tt::save(tt::pattern(10, 10, 1), dir / "out.png");
    const std::string before = read_bytes(target);

    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", src}});
    NodeId s = g.add("save", {n}, {{"path", target}});
    for (bool on_disc : {false, true}) {
        CAPTURE(on_disc);
        LimitsGuard limits(IoLimits{64, on_disc ? 0u : 512u});
        // A sink driven by hand: some tiles, then abort.
        std::unique_ptr<Sink> sink = g.node(s).op->make_sink();
        REQUIRE(sink);
        sink->start(g.info(s), SinkContext{32, 32});
        Buffer tile(nullptr, {0, 0, 32, 32}, 3, Format::u8);
        sink->consume(tile.view(), sink->prepare(tile.view()));
        Buffer tile2(nullptr, {32, 0, 32, 32}, 3, Format::u8);
        sink->consume(tile2.view(), sink->prepare(tile2.view()));
        sink->abort();
        CHECK(read_bytes(target) == before);
        CHECK(listing(dir.path) == std::vector<std::string>{"out.png", "src.png"});
    }

    // A sink destroyed without finish() cleans up too.
    {
        std::unique_ptr<Sink> sink = g.node(s).op->make_sink();
        sink->start(g.info(s), SinkContext{32, 32});
        Buffer tile(nullptr, {0, 0, 32, 32}, 3, Format::u8);
        sink->consume(tile.view(), sink->prepare(tile.view()));
    }
    CHECK(listing(dir.path) == std::vector<std::string>{"out.png", "src.png"});

    // A run whose input fails aborts the sink: the old target stays.
    std::string broken = tt::save(tt::pattern(300, 200, 3), dir / "broken.jpg");
    fs::resize_file(broken, fs::file_size(broken) / 2);
    {
        Graph bad(standard_registry());
        NodeId b = bad.add("load", {}, {{"path", broken}});
        bad.add("save", {b}, {{"path", target}});
        std::string msg = tt::error_of([&] { Evaluator(bad).run_sinks(); });
        CHECK(msg.find(broken) != std::string::npos);
    }
    CHECK(read_bytes(target) == before);
    CHECK(listing(dir.path) == std::vector<std::string>{"broken.jpg", "out.png", "src.png"});

    // A run that completes replaces it by a rename (a new inode), never by
    // writing over it in place.
    struct stat old_st {
    }, new_st{};
    REQUIRE(::stat(target.c_str(), &old_st) == 0);
    g.execution.tile_w = g.execution.tile_h = 32;
    Evaluator(g).run_sinks();
    REQUIRE(::stat(target.c_str(), &new_st) == 0);
    CHECK(new_st.st_ino != old_st.st_ino);
    CHECK(read_bytes(target) != before);
    CHECK(VImage::new_from_file(target.c_str()).width() == 64);
    CHECK(listing(dir.path) == std::vector<std::string>{"broken.jpg", "out.png", "src.png"});
}

TEST_CASE("save: what a killed run left beside the target goes with the next run to it - and nothing else") {
    // a process id nobody has: a child that has ended and been reaped
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    char host[256] = {};
    REQUIRE(::gethostname(host, sizeof host - 1) == 0);
    const std::string dead = std::to_string(child), alive = std::to_string(::getppid());

    tt::TempDir dir;
    const std::string src = tt::save(tt::pattern(300, 200, 3), dir / "src.png");
    for (const std::string target : {"out.png", "out.tif", "out.dzi"}) {
        CAPTURE(target);
        const fs::path d = dir / target.substr(4);
        fs::create_directories(d);
        const std::string mine = "." + target + ".tessera-" + std::string(host) + "-";
        // left by a killed run: a file, and a Deep Zoom folder with a tile in it
        std::ofstream(d / (mine + dead + "-0.tmp")) << "partial";
        fs::create_directories(d / (mine + dead + "-1.tmp") / "out_files" / "0");
        std::ofstream(d / (mine + dead + "-1.tmp") / "out_files" / "0" / "0_0.jpeg") << "partial";
        // not to be touched: a live process's, another host's (its ids mean
        // nothing here), another target's, and a look-alike without an id
        const std::vector<std::string> kept = {mine + alive + "-0.tmp",
                                               "." + target + ".tessera-" + std::string(host) + "x-" + dead + "-0.tmp",
                                               ".other.png.tessera-" + std::string(host) + "-" + dead + "-0.tmp",
                                               mine + "notapid-0.tmp"};
        for (const std::string& k : kept) std::ofstream(d / k) << "keep";

        Graph g(standard_registry());
        NodeId n = g.add("load", {}, {{"path", src}});
        Params p{{"path", (d / target).string()}};
        if (target == "out.tif") {
            p.set("tile", true);
            p.set("pyramid", true);
        }
        g.add("save", {n}, p);
        g.execution.tile_w = g.execution.tile_h = 64;
        Evaluator(g).run_sinks();

        std::vector<std::string> want = kept;
        want.push_back(target);
        if (target == "out.dzi") want.push_back("out_files");
        std::sort(want.begin(), want.end());
        CHECK(listing(d) == want);
    }
}

TEST_CASE("save: a failure in finish leaves the old target and no temporary file") {
    tt::TempDir dir;
    std::string src = tt::save(tt::pattern(40, 30, 3), dir / "src.png");
    std::string target = (dir / "out.png").string();
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", src}});
    g.add("save", {n}, {{"path", target}});
    // After the graph was built, something takes the target's name that a
    // file cannot be renamed onto: a folder that is not empty.
    fs::create_directories(dir / "out.png" / "keep");
    std::string msg = tt::error_of([&] { Evaluator(g).run_sinks(); });
    CHECK(msg.find(target) != std::string::npos);
    CHECK(fs::exists(dir / "out.png" / "keep"));
    CHECK(listing(dir.path) == std::vector<std::string>{"out.png", "src.png"});
}

TEST_CASE("save: a failed commit leaves no temporary - every whole-image format - in memory and on disc") {
    tt::TempDir dir;
    std::string src = tt::save(tt::pattern(40, 30, 3), dir / "src.png");
    for (const std::string name : {"out.png", "out.jpg", "out.v", "out.tif"})
        for (bool on_disc : {false, true}) {
            CAPTURE(name);
            CAPTURE(on_disc);
            LimitsGuard limits(IoLimits{64, on_disc ? 0u : 512u});
            const std::string target = (dir / name).string();
            Graph g(standard_registry());
            NodeId n = g.add("load", {}, {{"path", src}});
            g.add("save", {n}, {{"path", target}});
            g.execution.tile_w = g.execution.tile_h = 16;
            // the target's name taken, after the graph was built, by what a
            // file cannot be renamed onto: the encode succeeds, the commit fails
            fs::create_directories(dir / name / "keep");
            std::string msg = tt::error_of([&] { Evaluator(g).run_sinks(); });
            CHECK(msg.find(target) != std::string::npos);
            CHECK(listing(dir.path) == std::vector<std::string>{name, "src.png"});
            fs::remove_all(dir / name);
        }
}

TEST_CASE("save: the raw file of an output assembled on disc goes on a signal") {
    tt::TempDir dir;
    LimitsGuard limits(IoLimits{64, 0});
    std::string src = tt::save(tt::pattern(64, 32, 3), dir / "src.png");
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", src}});
    NodeId s = g.add("save", {n}, {{"path", (dir / "out.png").string()}});
    std::unique_ptr<Sink> sink = g.node(s).op->make_sink();
    sink->start(g.info(s), SinkContext{32, 32});
    Buffer tile(nullptr, {0, 0, 32, 32}, 3, Format::u8);
    sink->consume(tile.view(), sink->prepare(tile.view()));
    const std::vector<std::string> during = listing(dir.path);
    REQUIRE(during.size() == 2);  // src.png and the raw file
    CHECK(during[0].rfind(".out.png.tessera-", 0) == 0);
    CHECK(during[0].size() > 4);
    CHECK(during[0].substr(during[0].size() - 4) == ".raw");
    remove_temporaries_now();  // what the signal handler calls
    CHECK(listing(dir.path) == std::vector<std::string>{"src.png"});
    sink->abort();
    CHECK(listing(dir.path) == std::vector<std::string>{"src.png"});
}

TEST_CASE("save: a whole-image TIFF to /vsimem is copied in georeferenced - no local temporary left") {
    tt::TempDir dir;
    geo::Raster r;
    r.width = 90;
    r.height = 60;
    r.format = Format::u16;
    r.srs = "EPSG:32632";
    r.transform = {600000, 10, 0, 5200000, 0, -10};
    r.value = [](int x, int y, int) { return double(1 + x * 7 + y * 13); };
    const std::string in = geo::write_vrt(dir.path, "a", r);
    for (bool on_disc : {false, true}) {
        CAPTURE(on_disc);
        LimitsGuard limits(IoLimits{64, on_disc ? 0u : 512u});
        const std::string name = "tessera-save-" + std::to_string(::getpid()) + (on_disc ? "-disc" : "-mem") + ".tif";
        const std::string mem = "/vsimem/" + name;
        Graph g(standard_registry());
        g.add("save", {g.add("gdal_load", {}, {{"path", in}})}, {{"path", mem}});
        g.execution.tile_w = g.execution.tile_h = 16;
        Evaluator(g).run_sinks();

        Graph h(standard_registry());
        NodeId back = h.add("gdal_load", {}, {{"path", mem}});
        REQUIRE(h.info(back).geo);
        CHECK(h.info(back).geo->transform[0] == 600000);
        CHECK(h.info(back).geo->transform[3] == 5200000);
        CHECK(tt::max_abs_diff(tt::render(h, back), tt::render(h, h.add("gdal_load", {}, {{"path", in}}))) == 0);
        // the local file it was encoded in (and the raw one) are gone
        for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
            CHECK(e.path().filename().string().find(name) == std::string::npos);
    }
}

TEST_CASE("save: bad parameters fail when the graph is built / naming the key") {
    tt::TempDir dir;
    std::string src = tt::save(tt::pattern(20, 20, 3), dir / "src.png");
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", src}});
    auto build = [&](Params p) { return tt::error_of([&] { g.add("save", {n}, p); }); };
    auto path = [&](const char* name) { return (dir / name).string(); };

    std::string msg = build({{"path", path("out.xyz")}});
    CHECK(msg.find("'path'") != std::string::npos);
    CHECK(msg.find(".xyz") != std::string::npos);
    CHECK(msg.find(".png") != std::string::npos);
    CHECK(msg.find(".tif") != std::string::npos);
    CHECK(build({{"path", path("out")}}).find("'path'") != std::string::npos);
    CHECK(build({{"path", path("out.png")}, {"format", std::string("gif")}}).find("'format'") != std::string::npos);
    CHECK(build({{"path", path("out.jpg")}, {"quality", std::int64_t(0)}}).find("'quality'") != std::string::npos);
    CHECK(build({{"path", path("out.png")}, {"quality", std::int64_t(90)}}).find("'quality'") != std::string::npos);
    CHECK(build({{"path", path("out.png")}, {"compression", std::string("lzw")}}).find("'compression'") !=
          std::string::npos);
    CHECK(build({{"path", path("out.tif")}, {"compression", std::string("zip")}}).find("'compression'") !=
          std::string::npos);
    CHECK(build({{"path", path("out.tif")}, {"tile", true}, {"tile_width", std::int64_t(100)}}).find("'tile_width'") !=
          std::string::npos);
    {
        // Too wide for WebP (16383 at most): said when building, not after the run.
        NodeId wide = g.add("black", {}, {{"width", std::int64_t(16400)}, {"height", std::int64_t(2)}});
        std::string m = tt::error_of([&] { g.add("save", {wide}, {{"path", path("wide.webp")}}); });
        CHECK(m.find("'format'") != std::string::npos);
        CHECK(m.find("16383") != std::string::npos);
    }
    msg = build({{"path", (dir / "no" / "such" / "out.png").string()}});
    CHECK(msg.find("does not exist") != std::string::npos);
    // Good ones build.
    CHECK(build({{"path", path("ok.jpeg")}, {"quality", std::int64_t(90)}}) == "(no error)");
    CHECK(build({{"path", path("ok.TIF")},
                 {"compression", std::string("jpeg")},
                 {"quality", std::int64_t(80)},
                 {"tile", true},
                 {"pyramid", true}}) == "(no error)");
}
