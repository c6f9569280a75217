// The OME-Zarr writer sharded over MPI (issue 21): `mpirun -np 3 tessera`
// writes the same store, file for file and byte for byte, as one process:
// every rank writes its own chunks into rank 0's temporary folder, and the
// chunks whose level-0 tiles span shares are built by rank 0 from the
// quarters the others send (odd edges, narrow bands, empty shares).
#include <doctest/doctest.h>

#include <fstream>
#include <map>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kMpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np 3 ";

bool can_shard() {
    if (!tessera::mpi_available()) {
        MESSAGE("this build has no MPI (TESSERA_MPI): sharded OME-Zarr not tested");
        return false;
    }
    if (tt::run_command("command -v mpirun") != 0) {
        MESSAGE("mpirun is not on PATH: sharded OME-Zarr not tested");
        return false;
    }
    return true;
}

std::map<std::string, std::string> files_under(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file()) out[fs::relative(e.path(), root).generic_string()] = tt::slurp(e.path());
    return out;
}

void check_sharded(int w, int h, int bands, const std::string& cast, const std::string& options) {
    tt::TempDir tmp;
    const fs::path src = tmp / "src.v";
    vips::VImage im = tt::pattern(w, h, bands, VIPS_FORMAT_UCHAR, w + h);
    if (cast == "u16") im = (im * 257).cast(VIPS_FORMAT_USHORT);
    tt::save(im, src);
    std::string log;
    for (const char* run : {"one", "three"}) {
        fs::create_directories(tmp / run);
        const fs::path json = tmp / (std::string(run) + ".json");
        std::ofstream(json) << R"({"version": 1, "nodes": [
            {"id": "in", "op": "load", "path": ")" +
                                   src.string() + R"("},
            {"id": "out", "op": "save", "inputs": ["in"], "path": ")" +
                                   (tmp / run / "s.ome.zarr").string() + "\", " + options + "}]}";
        const std::string cmd =
            (std::string(run) == "one" ? "" : kMpirun) + tt::tessera_binary() + " run -q " + json.string();
        std::string out;
        INFO(cmd);
        REQUIRE_MESSAGE(tt::run_command(cmd, &out) == 0, out);
        if (std::string(run) == "three") log = out;
    }
    MESSAGE(log);
    const auto one = files_under(tmp / "one"), three = files_under(tmp / "three");
    CHECK(one.size() >= 4);  // .zgroup, .zattrs, a .zarray and a chunk at least
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

TEST_CASE("mpi ome-zarr: 3 ranks write the store of one process - narrow bands and odd edges and planes") {
    if (!can_shard()) return;
    check_sharded(1001, 603, 3, "u8", R"("tile_width": 64, "tile_height": 64, "band_width": 256)");
    check_sharded(515, 757, 1, "u16",
                  R"("tile_width": 32, "tile_height": 32, "band_width": 128, "compression": "zstd")");
    // a chunk file per plane (t, c, z, y, x), each rank writing its own
    check_sharded(301, 203, 8, "u16",
                  R"("tile_width": 32, "tile_height": 32, "band_width": 64, "size_z": 2, "size_t": 2)");
}

TEST_CASE("mpi ome-zarr: narrow images where some ranks get an empty share") {
    if (!can_shard()) return;
    check_sharded(40, 150, 3, "u8", R"("tile_width": 64, "tile_height": 64)");
    check_sharded(50, 50, 3, "u8", R"("tile_width": 64, "tile_height": 64)");
}

TEST_CASE("mpi ome-zarr: stitch -o slide.ome.zarr under mpirun equals one process") {
    if (!can_shard()) return;
    tt::TempDir tmp;
    fs::copy(tt::source_dir() / "examples" / "stitch", tmp / "stitch", fs::copy_options::recursive);
    for (const char* run : {"one", "three"}) {
        fs::create_directories(tmp / run);
        const std::string cmd = (std::string(run) == "one" ? "" : kMpirun) + tt::tessera_binary() + " stitch -q " +
                                (tmp / "stitch" / "positions.csv").string() +
                                " --canvas 1000 700 --tile-size 128 --pixel-size '0.25 um' --channel-names R,G,B -o " +
                                (tmp / run / "slide.ome.zarr").string();
        std::string out;
        INFO(cmd);
        REQUIRE_MESSAGE(tt::run_command(cmd, &out) == 0, out);
    }
    const auto one = files_under(tmp / "one"), three = files_under(tmp / "three");
    CHECK(one.size() > 4);
    CHECK(one == three);
    CHECK(one.at("slide.ome.zarr/.zattrs").find("\"label\": \"G\"") != std::string::npos);
    CHECK(one.at("slide.ome.zarr/.zattrs").find("\"unit\": \"micrometer\"") != std::string::npos);
}
