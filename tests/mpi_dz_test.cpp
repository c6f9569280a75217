// The Deep Zoom writer sharded over MPI (issue 8): `mpirun -np 3 tessera`
// must write the same files, byte for byte, as one process with the same
// settings, whatever falls on the share boundaries (overlap strips, 2x2
// groups, the top levels, odd edges, odd tile sizes, empty shares).
#include <doctest/doctest.h>

#include <fstream>
#include <map>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {

// mpirun refuses root unless told; the tests may run as root in a container
const std::string kMpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np 3 ";

bool can_shard() {
    if (!tessera::mpi_available()) {
        MESSAGE("this build has no MPI (TESSERA_MPI): sharded Deep Zoom not tested");
        return false;
    }
    if (tt::run_command("command -v mpirun") != 0) {
        MESSAGE("mpirun is not on PATH: sharded Deep Zoom not tested");
        return false;
    }
    return true;
}

// Every file under root (relative path -> bytes), temporary ones included.
std::map<std::string, std::string> files_under(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file()) out[fs::relative(e.path(), root).generic_string()] = tt::slurp(e.path());
    return out;
}

struct Case {
    int w, h, bands;
    std::string options;  // the save node's extra keys, JSON
};

// Saves a pattern image as dz with `c`'s options, alone into one/ and
// with 3 ranks into three/; both folders must hold the same files.
void check_sharded(const Case& c) {
    tt::TempDir tmp;
    const fs::path src = tmp / "src.v";
    tt::save(tt::pattern(c.w, c.h, c.bands, VIPS_FORMAT_UCHAR, c.w + c.h), src);
    std::string log;
    for (const char* run : {"one", "three"}) {
        fs::create_directories(tmp / run);
        const fs::path json = tmp / (std::string(run) + ".json");
        std::ofstream(json) << R"({"version": 1, "nodes": [
            {"id": "in", "op": "load", "path": ")" +
                                   src.string() + R"("},
            {"id": "out", "op": "save", "inputs": ["in"], "path": ")" +
                                   (tmp / run / "slide.dzi").string() + "\", " + c.options + "}]}";
        const std::string cmd =
            (std::string(run) == "one" ? "" : kMpirun) + tt::tessera_binary() + " run -q " + json.string();
        std::string out;
        INFO(cmd);
        REQUIRE_MESSAGE(tt::run_command(cmd, &out) == 0, out);
        if (std::string(run) == "three") log = out;
    }
    MESSAGE(log);  // what each rank computed and sent
    const auto one = files_under(tmp / "one"), three = files_under(tmp / "three");
    CHECK(one.size() > 1);
    CHECK(one.size() == three.size());
    for (const auto& [name, bytes] : one) {
        CAPTURE(name);
        auto it = three.find(name);
        REQUIRE(it != three.end());
        CHECK(it->second == bytes);
    }
    for (const auto& [name, bytes] : three) {
        CAPTURE(name);
        CHECK(one.count(name) == 1);  // nothing more, no temporary folder left
    }
}

}  // namespace

TEST_CASE("mpi dz: overlap 1 png - narrow bands and one-row units") {
    if (!can_shard()) return;
    check_sharded({1001, 603, 3, R"("suffix": "png", "tile_size": 64, "overlap": 1, "band_width": 256)"});
}

TEST_CASE("mpi dz: overlap 0 jpeg") {
    if (!can_shard()) return;
    check_sharded({777, 1203, 3, R"("suffix": "jpeg", "tile_size": 100, "overlap": 0, "band_width": 450)"});
}

TEST_CASE("mpi dz: overlap 3 png one band") {
    if (!can_shard()) return;
    check_sharded({515, 757, 1, R"("suffix": "png", "tile_size": 32, "overlap": 3, "band_width": 128)"});
}

TEST_CASE("mpi dz: google layout jpeg") {
    if (!can_shard()) return;
    check_sharded(
        {1001, 603, 3, R"("layout": "google", "suffix": "jpeg", "tile_size": 64, "overlap": 0, "band_width": 128)"});
}

TEST_CASE("mpi dz: odd size and odd tile size") {
    if (!can_shard()) return;
    // 51-pixel tiles: a shrunk pixel can straddle two blocks
    check_sharded({333, 517, 3, R"("suffix": "png", "tile_size": 51, "overlap": 2, "band_width": 100)"});
}

TEST_CASE("mpi dz: narrow images where some ranks get an empty share") {
    if (!can_shard()) return;
    check_sharded({40, 150, 3, R"("suffix": "png", "tile_size": 64, "overlap": 1)"});  // 3 one-row units
    check_sharded({50, 50, 3, R"("suffix": "jpeg", "tile_size": 64, "overlap": 1)"});  // one tile: rank 0 has none
}

TEST_CASE("mpi dz: stitch -o slide.dzi under mpirun equals one process") {
    if (!can_shard()) return;
    tt::TempDir tmp;
    fs::copy(tt::source_dir() / "examples" / "stitch", tmp / "stitch", fs::copy_options::recursive);
    for (const char* run : {"one", "three"}) {
        fs::create_directories(tmp / run);
        const std::string cmd = (std::string(run) == "one" ? "" : kMpirun) + tt::tessera_binary() + " stitch -q " +
                                (tmp / "stitch" / "positions.csv").string() +
                                " --canvas 1000 700 --suffix png --overlap 2 -o " + (tmp / run / "slide.dzi").string();
        std::string out;
        INFO(cmd);
        INFO(out);
        REQUIRE_MESSAGE(tt::run_command(cmd, &out) == 0, out);
    }
    const auto one = files_under(tmp / "one"), three = files_under(tmp / "three");
    CHECK(one.size() > 1);
    CHECK(one == three);
}
