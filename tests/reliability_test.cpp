// Issue 16: nothing lost, nothing hangs. An output that is one of the run's
// inputs is refused before anything is written; only regular files are
// opened as inputs; signals stop the header reading; untrusted loaders are
// blocked; a failed run lets go of its sources.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <fcntl.h>
#include <thread>
#include <fstream>
#include <sstream>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

// Two small PNG tiles side by side and their positions CSV in `dir`.
void two_tiles(const tt::TempDir& dir) {
    std::ofstream csv(dir / "positions.csv");
    csv << "file,x,y\n";
    for (int i = 0; i < 2; ++i) {
        tt::save(tt::pattern(40, 30, 3, VIPS_FORMAT_UCHAR, i + 1), dir / ("t" + std::to_string(i) + ".png"));
        csv << "t" << i << ".png," << i * 40 << ",0\n";
    }
}

std::string stitch_cmd(const tt::TempDir& dir, const std::string& out) {
    return tt::tessera_binary() + " stitch " + (dir / "positions.csv").string() + " -q -o " + out + " 2>&1";
}

}  // namespace

TEST_CASE("rel: an output that is one of its inputs is refused - same path and symlink and hard link") {
    tt::TempDir tmp;
    two_tiles(tmp);
    const std::string input = (tmp / "t1.png").string();
    const std::string before = tt::slurp(input);
    fs::create_symlink(input, tmp / "link.tif");
    fs::create_hard_link(input, tmp / "hard.tif");
    for (const std::string& out : {input, (tmp / "link.tif").string(), (tmp / "hard.tif").string()}) {
        CAPTURE(out);
        std::string log;
        CHECK(tt::run_command(stitch_cmd(tmp, out), &log) == 1);
        CAPTURE(log);
        // both named: the output and the input it would replace
        CHECK(log.find("the output '" + out + "'") != std::string::npos);
        CHECK(log.find("t1.png") != std::string::npos);
        CHECK(log.find("would destroy that input") != std::string::npos);
        CHECK(tt::slurp(input) == before);
    }
    CHECK(fs::is_symlink(tmp / "link.tif"));
    // nothing else was left beside them
    for (const auto& e : fs::directory_iterator(tmp.path)) CHECK(e.path().filename().string()[0] != '.');

    // the C++ API refuses alike, when the save is added; and a load added
    // after a save of the same file too
    Graph g(standard_registry());
    NodeId a = g.add("load", {}, {{"path", input}});
    CHECK(tt::error_of([&] {
              g.add("save", {a}, {{"path", (tmp / "hard.tif").string()}});
          }).find("is the same file as the input") != std::string::npos);
    Graph h(standard_registry());
    NodeId b = h.add("load", {}, {{"path", (tmp / "t0.png").string()}});
    h.add("save", {b}, {{"path", (tmp / "link.tif").string()}});
    CHECK(tt::error_of([&] {
              h.add("load", {}, {{"path", input}});
          }).find("would destroy that input") != std::string::npos);
    // a pipeline file too (tessera run)
    std::ofstream(tmp / "p.json") << R"({"version": 1, "nodes": [{"id": "in", "op": "load", "path": "t0.png"},
        {"id": "out", "op": "save", "inputs": ["in"], "path": "t0.png"}]})";
    std::string log;
    CHECK(tt::run_command(tt::tessera_binary() + " run -q " + (tmp / "p.json").string() + " 2>&1", &log) == 1);
    CHECK(log.find("node 'out' (op save), key 'path'") != std::string::npos);
    // an output elsewhere is fine
    CHECK(tt::run_command(stitch_cmd(tmp, (tmp / "ok.tif").string()), &log) == 0);
}

TEST_CASE("rel: a side file that is an input or another output is refused before anything is written") {
    tt::TempDir tmp;
    two_tiles(tmp);
    const std::string tile = (tmp / "t0.png").string(), positions = (tmp / "positions.csv").string();
    const std::string tile_bytes = tt::slurp(tile), positions_bytes = tt::slurp(positions);
    fs::create_symlink(tile, tmp / "link.csv");
    const std::string out = (tmp / "out.tif").string();
    struct Case {
        std::string args, want;
    };
    for (const Case& c : std::vector<Case>{
             {"stitch " + positions + " -o " + out + " --positions-out " + tile,
              "--positions-out '" + tile + "' is the same file as a tile"},
             {"stitch " + positions + " -o " + out + " --positions-out " + positions,
              "is the same file as the positions file"},
             {"mosaic " + positions + " -o " + out + " --pairs-out " + (tmp / "link.csv").string(), "--pairs-out '"},
             {"mosaic " + positions + " -o " + out + " --report " + tile,
              "--report '" + tile + "' is the same file as a tile"},
         }) {
        CAPTURE(c.args);
        std::string log;
        CHECK(tt::run_command(tt::tessera_binary() + " " + c.args + " -q 2>&1", &log) == 1);
        CAPTURE(log);
        CHECK(log.find(c.want) != std::string::npos);
        CHECK(log.find("would destroy that input") != std::string::npos);
        CHECK(tt::slurp(tile) == tile_bytes);
        CHECK(tt::slurp(positions) == positions_bytes);
        CHECK(!fs::exists(out));  // refused before the run
    }
    // two outputs in one file: refused when the file exists already
    std::ofstream(tmp / "old.csv") << "x\n";
    std::string log;
    CHECK(tt::run_command(tt::tessera_binary() + " mosaic " + positions + " -o " + out + " --positions-out " +
                              (tmp / "old.csv").string() + " --pairs-out " + (tmp / "old.csv").string() + " -q 2>&1",
                          &log) == 1);
    CHECK(log.find("each output needs a file of its own") != std::string::npos);
}

TEST_CASE("rel: a Deep Zoom output whose folder holds an input is refused") {
    tt::TempDir tmp;
    two_tiles(tmp);
    // the tiles live in slide_files/ (dz layout) and in g/ (google layout)
    for (const char* folder : {"slide_files", "g"}) {
        fs::create_directories(tmp / folder / "0");
        for (int i = 0; i < 2; ++i)
            fs::copy_file(tmp / ("t" + std::to_string(i) + ".png"),
                          tmp / folder / "0" / ("t" + std::to_string(i) + ".png"));
        std::ofstream(tmp / folder / "0" / "positions.csv") << "file,x,y\nt0.png,0,0\nt1.png,40,0\n";
    }
    const std::string before = tt::slurp(tmp / "slide_files" / "0" / "t0.png");
    std::string log;
    const std::string cmd = tt::tessera_binary() + " stitch ";
    CHECK(tt::run_command(cmd + (tmp / "slide_files/0/positions.csv").string() + " -q -o " +
                              (tmp / "slide.dzi").string() + " 2>&1",
                          &log) == 1);
    CAPTURE(log);
    CHECK(log.find("slide_files' is a folder that the save replaces") != std::string::npos);
    CHECK(log.find("t0.png") != std::string::npos);
    CHECK(tt::slurp(tmp / "slide_files" / "0" / "t0.png") == before);
    CHECK_FALSE(fs::exists(tmp / "slide.dzi"));
    // reached through a symlinked folder too, and google's NAME/ folder
    fs::create_directory_symlink(tmp / "g", tmp / "via");
    CHECK(tt::run_command(cmd + (tmp / "via/0/positions.csv").string() + " -q --layout google -o " +
                              (tmp / "g.dzi").string() + " 2>&1",
                          &log) == 1);
    CHECK(log.find("g' is a folder that the save replaces") != std::string::npos);
    CHECK(fs::exists(tmp / "g" / "0" / "t1.png"));
    // a dz layout next to the google folder does not touch it
    CHECK(tt::run_command(cmd + (tmp / "g/0/positions.csv").string() + " -q -o " + (tmp / "g.dzi").string() + " 2>&1",
                          &log) == 0);
}

TEST_CASE("rel: stitch and mosaic write the format their output's extension names - merge refuses what is no TIFF") {
    tt::TempDir tmp;
    two_tiles(tmp);
    const vips::VImage want = tt::vips_insert_loop(tmp / "positions.csv", 80, 30);
    std::string log;
    for (const auto& [name, loader] : std::vector<std::pair<std::string, std::string>>{{"out.jpg", "jpegload"},
                                                                                       {"out.JPEG", "jpegload"},
                                                                                       {"out.png", "pngload"},
                                                                                       {"out.webp", "webpload"},
                                                                                       {"out.v", "vipsload"},
                                                                                       {"out.tif", "tiffload"}}) {
        CAPTURE(name);
        for (const std::string cmd : {"stitch", "mosaic"}) {
            const fs::path out = tmp / (cmd + "-" + name);
            REQUIRE(tt::run_command(tt::tessera_binary() + " " + cmd + " " + (tmp / "positions.csv").string() +
                                        (cmd == "mosaic" ? " --no-register --blend none" : "") + " -q -o " +
                                        out.string() + " 2>&1",
                                    &log) == 0);
            vips::VImage got = vips::VImage::new_from_file(out.c_str());
            CHECK(std::string(vips_nickname_find(g_type_from_name(vips_foreign_find_load(out.c_str())))) == loader);
            CHECK(got.width() == 80);
            CHECK(got.height() == 30);
            // lossless formats hold the stitch exactly
            if (loader != "jpegload" && loader != "webpload") CHECK(got.subtract(want).abs().max() == 0);
        }
    }
    // a name no format claims is refused, listing the ones that are
    CHECK(tt::run_command(stitch_cmd(tmp, (tmp / "out.xyz").string()), &log) == 1);
    CHECK(log.find("'.xyz', which names no format") != std::string::npos);
    CAPTURE(log);
    CHECK(
        log.find(".tif/.tiff (tiled TIFF, pyramid), .ome.tif/.ome.tiff (OME-TIFF pyramid), .dzi/.zip/.szi (Deep Zoom), "
                 ".zarr/.ome.zarr (OME-Zarr), .png, .jpg/.jpeg, .webp or .v") != std::string::npos);
    CHECK(tt::run_command(stitch_cmd(tmp, (tmp / "noext").string()), &log) == 1);
    CHECK(log.find("has no extension") != std::string::npos);
    // TIFF options on another format are errors, not ignored
    CHECK(tt::run_command(stitch_cmd(tmp, (tmp / "p.png").string() + " --pyramid"), &log) == 1);
    CHECK(log.find("apply to TIFF outputs") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "out.xyz"));
    CHECK_FALSE(fs::exists(tmp / "p.png"));
    // merge writes a GeoTIFF: any other name is refused before an input is read
    CHECK(tt::run_command(tt::tessera_binary() + " merge nothing.tif -o " + (tmp / "m.jpg").string() + " 2>&1", &log) ==
          1);
    CHECK(log.find("m.jpg': has the extension '.jpg', but merge writes a GeoTIFF") != std::string::npos);
}

TEST_CASE("rel: a FIFO and /dev/zero and a socket are refused as inputs at once - naming the file") {
    tt::TempDir tmp;
    two_tiles(tmp);
    const std::string fifo = (tmp / "fifo.jpg").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::string sock = (tmp / "sock.png").string();
    const int sfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(sfd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(sock.size() < sizeof addr.sun_path);
    std::strcpy(addr.sun_path, sock.c_str());
    REQUIRE(::bind(sfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{sfd};

    // every command is bounded: a hang would be killed (exit 124/137) and fail
    const std::string bin = "timeout -k 2 20 " + tt::tessera_binary();
    for (const auto& [special, kind] : std::vector<std::pair<std::string, std::string>>{
             {fifo, "a FIFO (named pipe)"}, {"/dev/zero", "a character device"}, {sock, "a socket"}}) {
        CAPTURE(special);
        std::string log;
        const auto t0 = std::chrono::steady_clock::now();
        // a tile of stitch and mosaic
        std::ofstream(tmp / "bad.csv") << "file,x,y\nt0.png,0,0\n" << special << ",40,0\n";
        for (const std::string cmd : {" stitch ", " mosaic "}) {
            CHECK(
                tt::run_command(bin + cmd + (tmp / "bad.csv").string() + " -q -o " + (tmp / "o.tif").string() + " 2>&1",
                                &log) == 1);
            CHECK(log.find("'" + special + "': is " + kind + ", not a regular file") != std::string::npos);
        }
        // the positions file and the pipeline file themselves
        CHECK(tt::run_command(bin + " stitch " + special + " -q -o " + (tmp / "o.tif").string() + " 2>&1", &log) == 1);
        CHECK(log.find("'" + special + "': is " + kind + ", not a regular file; a positions file") !=
              std::string::npos);
        CHECK(tt::run_command(bin + " run -q " + special + " 2>&1", &log) == 1);
        CHECK(log.find("'" + special + "': is " + kind + ", not a regular file; a pipeline file") != std::string::npos);
        // merge's inputs (gdal_load) and info (load)
        CHECK(tt::run_command(bin + " merge " + special + " -o " + (tmp / "m.tif").string() + " 2>&1", &log) == 1);
        CHECK(log.find("'" + special + "': is " + kind) != std::string::npos);
        CHECK(tt::run_command(bin + " info " + special + " 2>&1", &log) == 1);
        CHECK(log.find("'" + special + "': is " + kind) != std::string::npos);
        // the C++ API: load and gdal_load, when the graph is built
        Graph g(standard_registry());
        for (const char* op : {"load", "gdal_load"})
            CHECK(tt::error_of([&] {
                      g.add(op, {}, {{"path", special}});
                  }).find("is " + kind + ", not a regular file") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
        CHECK_FALSE(fs::exists(tmp / "o.tif"));
    }
}

namespace {

// How a `tessera` job given SIGTERM `delay` after its start ended.
struct Stopped {
    bool running_at_signal = false;  // false: it had ended before the signal
    double waited = 0;               // seconds from SIGTERM to its exit
    int status = 0;                  // waitpid's
    std::string err;                 // its stderr
};

// CPU-seconds process `pid` has used so far (user + system), from
// /proc/PID/stat; -1 once it has gone.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    const std::size_t close = s.rfind(')');  // after the command name, which may hold spaces
    if (close == std::string::npos) return -1;
    std::istringstream rest(s.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
    }
    return (utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

// Whether process `pid` has `file` open (its /proc/PID/fd links).
bool has_open(pid_t pid, const std::filesystem::path& file) {
    std::error_code ec;
    const fs::path want = fs::weakly_canonical(file, ec);
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
        if (fs::read_symlink(e.path(), ec) == want) return true;
    return false;
}

// Runs `tessera job...` and sends SIGTERM once it has used `cpu` CPU-seconds:
// by work done, not by the clock, so a loaded machine (where starting the
// process alone can take most of a second) does not move the signal into
// another stage. With `opened`, as soon as it has that file open instead,
// whatever its CPU (a sanitizer's start-up alone can use more than a given
// figure, before main has installed the handler).
Stopped sigterm_after(const std::vector<std::string>& job, double cpu, const std::filesystem::path& err_file,
                      const std::optional<std::filesystem::path>& opened = std::nullopt) {
    Stopped s;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::vector<char*> argv;
        const std::string bin = tt::tessera_binary();
        argv.push_back(const_cast<char*>(bin.c_str()));
        for (const std::string& a : job) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(err, 2);
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    const auto started = std::chrono::steady_clock::now();
    while (::waitpid(child, &s.status, WNOHANG) == 0 &&
           (opened ? !has_open(child, *opened) : cpu_seconds(child) < cpu) &&
           std::chrono::steady_clock::now() - started < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(opened ? 1 : 5));
    s.running_at_signal = ::waitpid(child, &s.status, WNOHANG) == 0;
    if (s.running_at_signal) {
        const auto t0 = std::chrono::steady_clock::now();
        ::kill(child, SIGTERM);
        pid_t done = 0;
        while ((done = ::waitpid(child, &s.status, WNOHANG)) == 0 &&
               std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        s.waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (done == 0) {
            ::kill(child, SIGKILL);
            ::waitpid(child, &s.status, 0);
        }
    }
    std::ifstream in(err_file);
    s.err.assign(std::istreambuf_iterator<char>(in), {});
    return s;
}

}  // namespace

TEST_CASE("rel: SIGTERM stops stitch and mosaic within 1 s while they read thousands of headers") {
    tt::TempDir tmp;
    // one tiny tile named 20000 times: every row is a load whose header is
    // read as the graph is built, which takes several seconds in all
    tt::save(tt::pattern(8, 8, 3), tmp / "t.png");
    {
        std::ofstream csv(tmp / "many.csv");
        csv << "file,x,y\n";
        for (int i = 0; i < 20000; ++i) csv << "t.png," << (i % 100) * 8 << "," << (i / 100) * 8 << "\n";
    }
    const std::string out = (tmp / "out.tif").string();
    const std::vector<std::vector<std::string>> jobs{{"stitch", (tmp / "many.csv").string(), "-q", "-o", out},
                                                     {"mosaic", (tmp / "many.csv").string(), "--no-register", "-q",
                                                      "-o", out}};
    for (const auto& job : jobs) {
        CAPTURE(job[0]);
        // well inside the header reading (the whole job takes seconds of CPU)
        const Stopped s = sigterm_after(job, 0.5, tmp.path / "err.txt");
        REQUIRE(s.running_at_signal);
        MESSAGE(job[0] << " stopped " << s.waited << " s after SIGTERM");
        CHECK(s.waited < 1.0);
        REQUIRE(WIFEXITED(s.status));
        CHECK(WEXITSTATUS(s.status) == 143);
        CHECK_FALSE(fs::exists(out));
        for (const auto& e : fs::directory_iterator(tmp.path)) CHECK(e.path().filename().string()[0] != '.');
    }
}

TEST_CASE("rel: SIGTERM stops a mosaic within 1 s while it registers") {
    tt::TempDir tmp;
    // 48 tiles of 1024x768 16-bit cut from one image with 64 px overlaps,
    // registered with a wide search: their headers take milliseconds, the
    // registration about 1.4 CPU-s on a 2026 2-core machine (each pair's
    // correlation is where it stops). (At --search 60 it took 0.2 s there,
    // and the signal at 0.4 CPU-s came after it had finished.)
    const vips::VImage whole = tt::pattern(8 * 960 + 64, 6 * 704 + 64, 1, VIPS_FORMAT_USHORT, 5);
    {
        std::ofstream csv(tmp / "tiles.csv");
        csv << "file,x,y\n";
        for (int r = 0; r < 6; ++r)
            for (int c = 0; c < 8; ++c) {
                const std::string name = "t" + std::to_string(r) + "_" + std::to_string(c) + ".tif";
                tt::save(whole.extract_area(c * 960, r * 704, 1024, 768), tmp / name);
                csv << name << "," << c * 960 << "," << r * 704 << "\n";
            }
    }
    const std::string out = (tmp / "out.tif").string();
    const Stopped s = sigterm_after({"mosaic", (tmp / "tiles.csv").string(), "--search", "400", "-o", out}, 0.3,
                                    tmp.path / "err.txt");
    REQUIRE(s.running_at_signal);
    // the registration had not finished: its summary line is missing
    CHECK(s.err.find("registration:") == std::string::npos);
    MESSAGE("mosaic stopped " << s.waited << " s after SIGTERM in its registration");
    CHECK(s.waited < 1.0);
    REQUIRE(WIFEXITED(s.status));
    CHECK(WEXITSTATUS(s.status) == 143);
    CHECK_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(tmp.path)) CHECK(e.path().filename().string()[0] != '.');
}

namespace {
// A pipeline of `n` tiny black canvases and one save (of the first): about
// 70 bytes of JSON a node, 14 MB for 200 000.
std::string many_nodes(int n, const std::string& out) {
    std::string s = R"({"version": 1, "nodes": [)";
    s.reserve(std::size_t(n) * 72 + 200);
    for (int i = 0; i < n; ++i)
        s += R"({"id": "b)" + std::to_string(i) + R"(", "op": "black", "width": 8, "height": 8, "bands": 1},)";
    return s + R"({"id": "out", "op": "save", "inputs": ["b0"], "path": ")" + out + R"("}]})";
}
}  // namespace

TEST_CASE("rel: SIGTERM stops tessera run within 1 s while it parses a pipeline of 200 000 nodes") {
    tt::TempDir tmp;
    const std::string out = (tmp / "out.tif").string();
    std::ofstream(tmp / "big.json") << many_nodes(200000, out);
    // The signal goes as soon as the process has the file open: it is
    // then reading and parsing it (some 0.2 s of a Release build's CPU; the
    // JSON parser checks the signal's flag every 64 KiB). (A CPU figure
    // failed under ASan: its start-up alone used more, and the signal came
    // before main had installed the handler.)
    const Stopped s =
        sigterm_after({"run", (tmp / "big.json").string(), "-q"}, 0, tmp.path / "err.txt", tmp / "big.json");
    REQUIRE(s.running_at_signal);
    MESSAGE("run stopped " << s.waited << " s after SIGTERM while parsing");
    CHECK(s.waited < 1.0);
    REQUIRE(WIFEXITED(s.status));
    CHECK(WEXITSTATUS(s.status) == 143);
    CHECK(s.err.find("cancelled; no output was written") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(tmp.path)) CHECK(e.path().filename().string()[0] != '.');
}

TEST_CASE("rel: a pipeline is not parsed on once the build is cancelled - the JSON parser checks every 64 KiB") {
    const std::string text = many_nodes(100000, "/nonexistent/out.tif");
    struct Reset {
        ~Reset() { set_build_cancel(nullptr); }
    } reset;
    std::atomic<bool> cancel{true};
    set_build_cancel(&cancel);
    // before: the parser read all 7 MB into a document and the nodes out of
    // it (about a third of the whole build), and only the first node built
    // said cancelled; now it stops within the first 64 KiB
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(parse_pipeline(text, standard_registry()), Cancelled);
    const double cancelled = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    set_build_cancel(nullptr);
    const auto t1 = std::chrono::steady_clock::now();
    const std::string whole = tt::error_of([&] { parse_pipeline(text, standard_registry()); });
    const double parsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    CHECK(whole.find("/nonexistent") != std::string::npos);  // built to the save, which refuses its folder
    MESSAGE("cancelled parse " << cancelled << " s, whole " << parsed << " s");
    CHECK(cancelled < parsed / 20);
}

TEST_CASE("rel: a file only ImageMagick reads is refused by default - naming the file and the switch") {
    tt::TempDir tmp;
    // a 2x2 24-bit BMP, which libvips 8.14 reads only through magickload
    std::string bmp = "BM";
    auto u32 = [&](std::uint32_t v) {
        for (int k = 0; k < 4; ++k) bmp += char((v >> (8 * k)) & 0xff);
    };
    auto u16 = [&](std::uint16_t v) {
        bmp += char(v & 0xff);
        bmp += char(v >> 8);
    };
    u32(54 + 16);
    u32(0);
    u32(54);  // file size, reserved, pixel offset
    u32(40);
    u32(2);
    u32(2);
    u16(1);
    u16(24);
    u32(0);  // BITMAPINFOHEADER: 2x2, 24 bits, no compression
    u32(16);
    u32(2835);
    u32(2835);
    u32(0);
    u32(0);
    for (int row = 0; row < 2; ++row) bmp += std::string("\x10\x20\x30\x40\x50\x60\0\0", 8);  // BGR x2 + padding
    const fs::path file = tmp / "only-magick.bmp";
    std::ofstream(file, std::ios::binary) << bmp;

    std::string log;
    CHECK(tt::run_command(tt::tessera_binary() + " info " + file.string() + " 2>&1", &log) == 1);
    CAPTURE(log);
    CHECK(log.find("only-magick.bmp': is read only by libvips's magickload, an untrusted loader") != std::string::npos);
    CHECK(log.find("--allow-untrusted-loaders") != std::string::npos);
    // the same through a stitch's tile
    std::ofstream(tmp / "p.csv") << "file,x,y\nonly-magick.bmp,0,0\n";
    CHECK(tt::run_command(tt::tessera_binary() + " stitch " + (tmp / "p.csv").string() + " -q -o " +
                              (tmp / "o.tif").string() + " 2>&1",
                          &log) == 1);
    CHECK(log.find("--allow-untrusted-loaders") != std::string::npos);
    // the switch lifts it (if this libvips has the magick module at all)
    const bool magick = vips_type_find("VipsOperation", "magickload") != 0;
    if (magick) {
        CHECK(tt::run_command(tt::tessera_binary() + " info --allow-untrusted-loaders " + file.string() + " 2>&1",
                              &log) == 0);
        CHECK(log.find("2") != std::string::npos);
        CHECK(tt::run_command(tt::tessera_binary() + " stitch " + (tmp / "p.csv").string() +
                                  " --allow-untrusted-loaders -q -o " + (tmp / "o.tif").string() + " 2>&1",
                              &log) == 0);
        vips::VImage got = vips::VImage::new_from_file((tmp / "o.tif").c_str());
        CHECK(got.width() == 2);
        CHECK(got.getpoint(0, 0)[2] == 0x10);  // blue of the bottom-up file's first row is at the bottom left
    } else {
        MESSAGE("libvips here has no magick module: only the refusal is tested");
    }
    // in C++ too, when the graph is built
    Graph g(standard_registry());
    CHECK(tt::error_of([&] {
              g.add("load", {}, {{"path", file.string()}});
          }).find("untrusted loader") != std::string::npos);
}

namespace {
std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}
}  // namespace

TEST_CASE("rel: 200 failed runs in one process leave open descriptors and pixel memory at the baseline") {
    tt::TempDir tmp;
    // a good JPEG on the left, one that is gone by the time the run reads
    // it on the right: the first tile opens the good one's streaming
    // decoder, the second fails
    const std::string good = (tmp / "good.jpg").string(), bad = (tmp / "bad.jpg").string();
    tt::pattern(64, 256, 3).jpegsave(good.c_str());
    tt::pattern(64, 256, 3).jpegsave(bad.c_str());
    Graph g(standard_registry());
    NodeId canvas =
        g.add("black", {}, {{"width", std::int64_t(128)}, {"height", std::int64_t(256)}, {"bands", std::int64_t(3)}});
    NodeId a = g.add("load", {}, {{"path", good}});
    NodeId b = g.add("load", {}, {{"path", bad}});
    NodeId m = g.add("insert", {canvas, a, b}, {{"at", std::vector<IntPair>{{0, 0}, {64, 0}}}});
    g.add("save", {m}, {{"path", (tmp / "out.tif").string()}, {"tile", true}});
    g.execution.tile_w = g.execution.tile_h = 64;
    g.execution.threads = 1;
    fs::remove(bad);
    const std::size_t fds = open_descriptors();
    const std::size_t pixels = process_pixel_memory().current();
    Evaluator ev(g);
    for (int run = 0; run < 200; ++run) {
        CAPTURE(run);
        const std::string e = tt::error_of([&] { ev.run_sinks(); });
        REQUIRE(e.find("bad.jpg") != std::string::npos);
        REQUIRE(open_descriptors() == fds);
        REQUIRE(process_pixel_memory().current() == pixels);
    }
    // and a cancelled run likewise
    std::atomic<bool> cancel{false};
    RunOptions o;
    o.cancel = &cancel;
    o.progress = [&](const Progress&) {
        cancel = true;
        return true;
    };
    // (cancelled after the first tile, unless the second failed first)
    const std::string stopped = tt::error_of([&] { ev.run_sinks(o); });
    CHECK((stopped == "cancelled" || stopped.find("bad.jpg") != std::string::npos));
    CHECK(open_descriptors() == fds);
    CHECK(process_pixel_memory().current() == pixels);
    CHECK_FALSE(fs::exists(tmp / "out.tif"));
}
