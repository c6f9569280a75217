// Runs that meet damaged inputs or a full disk: the --on-error policy and
// clean failures. (The hostile-file classes - truncated, empty, bomb,
// mislabelled - are in corpus_test.cpp, over the checked-in tests/corpus.)
#include <doctest/doctest.h>

#include <fstream>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

TEST_CASE("on_error background: a truncated tile is filled with background and reported - the rest is intact") {
    tt::TempDir tmp;
    // three tiles side by side; the middle one loses the second half of its bytes
    std::vector<vips::VImage> tiles;
    std::ofstream csv(tmp / "positions.csv");
    csv << "file,x,y\n";
    for (int i = 0; i < 3; ++i) {
        tiles.push_back(tt::pattern(200, 300, 3, VIPS_FORMAT_UCHAR, i + 1));
        std::string name = "t" + std::to_string(i) + ".jpg";
        tiles.back().jpegsave((tmp / name).c_str(), vips::VImage::option()->set("Q", 95));
        csv << name << "," << i * 200 << ",0\n";
    }
    csv.close();
    const std::string cut = (tmp / "t1.jpg").string();
    {
        std::ifstream in(cut, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        std::ofstream(cut, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    }
    const std::string cmd = tt::tessera_binary() + " stitch " + (tmp / "positions.csv").string() +
                            " --canvas 600 300 --tile-size 64 -q -o ";
    std::string log;
    // the default fails, naming the file, and writes nothing
    CHECK(tt::run_command(cmd + (tmp / "fail.tif").string() + " 2>&1", &log) != 0);
    CHECK(log.find("t1.jpg") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "fail.tif"));

    std::string first_bytes;
    for (int threads : {1, 2}) {
        const fs::path out = tmp / ("bg" + std::to_string(threads) + ".tif");
        REQUIRE(tt::run_command(cmd + out.string() + " --on-error background --threads " + std::to_string(threads) +
                                    " 2>&1",
                                &log) == 0);
        CAPTURE(log);
        CHECK(log.find("filled with background: node") != std::string::npos);
        CHECK(log.find("t1.jpg") != std::string::npos);
        CHECK(log.find("of 1 file(s) were filled with background") != std::string::npos);
        vips::VImage got = vips::VImage::new_from_file(out.c_str());
        // the intact tiles are there, pixel for pixel as decoded
        for (int i : {0, 2}) {
            vips::VImage want = vips::VImage::new_from_file((tmp / ("t" + std::to_string(i) + ".jpg")).c_str());
            CHECK(got.extract_area(i * 200, 0, 200, 300).subtract(want).abs().max() == 0);
        }
        // the truncated one: its top rows decoded, then background at the bottom
        vips::VImage mid = got.extract_area(200, 0, 200, 300);
        CHECK(mid.extract_area(0, 290, 200, 10).max() == 0);
        CHECK(mid.extract_area(0, 0, 200, 10).max() > 0);
        std::ifstream in(out, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        if (first_bytes.empty())
            first_bytes = bytes;
        else
            CHECK(bytes == first_bytes);  // threads do not change what is filled
    }

    // the pipeline setting, and its round trip
    Graph g = parse_pipeline(R"({"version": 1, "execution": {"on_error": "background"}, "nodes": []})",
                             standard_registry(), "p.json");
    CHECK(g.execution.on_error == Execution::OnError::background);
    CHECK(to_json(g).find("\"on_error\": \"background\"") != std::string::npos);
    std::string e = tt::error_of([] {
        parse_pipeline(R"({"version": 1, "execution": {"on_error": "ignore"}, "nodes": []})", standard_registry(),
                       "p.json");
    });
    CHECK(e.find("execution.on_error") != std::string::npos);
}

TEST_CASE("a full disk gives a clear error and leaves the previous output and no temporary behind") {
    tt::TempDir tmp;
    std::ofstream csv(tmp / "positions.csv");
    csv << "file,x,y\n";
    for (int i = 0; i < 4; ++i) {
        tt::pattern(300, 300, 3, VIPS_FORMAT_UCHAR, i).pngsave((tmp / ("t" + std::to_string(i) + ".png")).c_str());
        csv << "t" << i << ".png," << i * 300 << ",0\n";
    }
    csv.close();
    // two ways to fill a disk: a 256 KiB tmpfs where the machine lets us
    // mount one (root), and always a file-size limit (write() then fails
    // with EFBIG, SIGXFSZ ignored), which hits the same error paths
    const fs::path small = tmp / "small";
    fs::create_directories(small);
    const bool mounted = tt::run_command("mount -t tmpfs -o size=256k tmpfs " + small.string() + " 2>/dev/null") == 0;
    struct Unmount {
        bool on;
        fs::path p;
        ~Unmount() {
            if (on) tt::run_command("umount " + p.string());
        }
    } unmount{mounted, small};
    if (!mounted) MESSAGE("cannot mount a tmpfs here (not root?): only the file-size limit is tried");

    const std::string stitch = tt::tessera_binary() + " stitch " + (tmp / "positions.csv").string() +
                               " --canvas 1200 300 --compression none -q";
    struct Case {
        std::string prefix;  // how the command is run
        fs::path dir;        // where the output goes
    };
    std::vector<Case> cases{{"ulimit -f 200; trap '' XFSZ; ", tmp.path}};
    if (mounted) cases.push_back({"", small});
    for (const Case& c : cases) {
        for (const std::string ext : {".tif", ".png"}) {
            const fs::path out = c.dir / ("out" + ext);
            std::ofstream(out) << "the previous output";
            std::string cmd = stitch + " -o " + out.string();
            if (ext == ".png") {  // the libvips writer, through a pipeline
                std::ofstream(tmp / "p.json")
                    << R"({"version": 1, "nodes": [{"id": "a", "op": "black", "width": 3000, "height": 3000, "bands": 3, "value": [7]},
                          {"id": "s", "op": "save", "inputs": ["a"], "path": ")" +
                           out.string() + R"(", "format": "v"}]})";
                cmd = tt::tessera_binary() + " run -q " + (tmp / "p.json").string();
            }
            std::string log;
            CAPTURE(c.prefix);
            CAPTURE(ext);
            CHECK(tt::run_command("sh -c \"" + c.prefix + cmd + "\" 2>&1", &log) == 1);
            CAPTURE(log);
            CHECK(log.find(out.filename().string()) != std::string::npos);
            CHECK((log.find("full") != std::string::npos || log.find("space") != std::string::npos ||
                   log.find("too large") != std::string::npos));
            std::ifstream in(out);
            std::string kept((std::istreambuf_iterator<char>(in)), {});
            CHECK(kept == "the previous output");
            for (const auto& e : fs::directory_iterator(c.dir))
                CHECK_MESSAGE(e.path().filename().string().find(".tmp") == std::string::npos, e.path().string());
        }
    }
}
