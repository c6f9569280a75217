// The statistics pre-pass sharded over MPI ranks: each rank sums a share of
// the blocks, rank 0 combines them in block order and broadcasts, so a
// stats sink and a scale fed by the pre-pass write the bytes a single
// process writes. Skipped where the build has no MPI or mpirun is missing.
#include <doctest/doctest.h>

#include <fstream>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

TEST_CASE("mpi: statistics pre-pass on 2 ranks gives the single-process stats and scaled file byte for byte") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    // floats whose sums depend on the order they are added in, and 16-bit
    // counts for a percentile stretch
    const vips::VImage f32 = ((tt::pattern(700, 530, 1, VIPS_FORMAT_FLOAT, 3) - 120) * 9876.54321 +
                              tt::pattern(700, 530, 1, VIPS_FORMAT_FLOAT, 5) / 3.0)
                                 .cast(VIPS_FORMAT_FLOAT);
    const vips::VImage u16 = (tt::pattern(640, 480, 3, VIPS_FORMAT_UCHAR, 2) * 199 + 77).cast(VIPS_FORMAT_USHORT);
    const std::string pipeline = R"({"version": 1, "execution": {"tile": [64, 64]}, "nodes": [
        {"id": "f", "op": "load", "path": "f32.tif"},
        {"id": "st", "op": "stats", "inputs": ["f"], "path": "stats.json"},
        {"id": "in", "op": "load", "path": "u16.tif"},
        {"id": "eq", "op": "scale", "inputs": ["in"], "percentiles": [1, 99]},
        {"id": "out", "op": "save", "inputs": ["eq"], "path": "out.tif"}]})";
    for (const char* d : {"one", "two"}) {
        fs::create_directories(tmp / d);
        tt::save(f32, tmp / d / "f32.tif");
        tt::save(u16, tmp / d / "u16.tif");
        std::ofstream(tmp / d / "p.json") << pipeline;
    }
    std::string log1, log2;
    REQUIRE_MESSAGE(tt::run_command(tt::tessera_binary() + " run " + (tmp / "one" / "p.json").string() +
                                        " --threads 2 --progress none --stats",
                                    &log1) == 0,
                    log1);
    REQUIRE_MESSAGE(
        tt::run_command("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np 2 " +
                            tt::tessera_binary() + " run " + (tmp / "two" / "p.json").string() +
                            " --threads 1 --progress none --stats",
                        &log2) == 0,
        log2);
    const std::string stats = tt::slurp(tmp / "one" / "stats.json");
    REQUIRE(stats.size() > 100);
    CHECK(tt::slurp(tmp / "two" / "stats.json") == stats);
    CHECK(tt::slurp(tmp / "two" / "out.tif") == tt::slurp(tmp / "one" / "out.tif"));
    // the pre-pass ran and was reported, and both ranks took part in it
    CHECK(log1.find("statistics pre-pass: 'in' for 'eq' (histogram)") != std::string::npos);
    CHECK(log2.find("statistics pre-pass: 'in' for 'eq' (histogram)") != std::string::npos);
    // rank 1 computed a share of the stats sink's blocks and of the pre-pass's
    std::size_t shares = 0;
    for (std::size_t at = 0; (at = log2.find("rank 1: ", at)) != std::string::npos; ++at)
        shares += log2.compare(at, 15, "rank 1: 0 tiles") != 0;
    CHECK(shares >= 2);
}
