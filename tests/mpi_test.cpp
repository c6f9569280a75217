// Sharded runs: `mpirun -np N tessera ...` writes the bytes one process
// writes, and a rank that fails or is killed ends the job with nothing at
// the target path. Skipped where the build has no MPI or mpirun is missing.
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "geo_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

// `mpirun --oversubscribe -np N tessera ARGS`; OpenMPI refuses root unless told.
std::string mpirun(int ranks, const std::string& args) {
    return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun "
           "--oversubscribe -np " +
           std::to_string(ranks) + " " + tt::tessera_binary() + " " + args;
}

int tessera_cmd(const std::string& args, std::string* out = nullptr) {
    return tt::run_command(tt::tessera_binary() + " " + args, out);
}

// Files in dir whose name is not in `keep`: what a failed run left behind.
std::vector<std::string> strays(const fs::path& dir, const std::vector<std::string>& keep) {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir))
        if (std::find(keep.begin(), keep.end(), e.path().filename().string()) == keep.end())
            out.push_back(e.path().filename().string());
    return out;
}

// A small scanned mosaic: JPEG tiles at jittered overlapping positions.
fs::path make_scans(const fs::path& dir, int cols, int rows, int tw, int th, int& canvas_w, int& canvas_h) {
    fs::create_directories(dir / "tiles");
    const int sx = tw * 3 / 4, sy = th * 3 / 4;
    canvas_w = sx * (cols - 1) + tw + 8;
    canvas_h = sy * (rows - 1) + th + 8;
    vips::VImage slide = tt::pattern(canvas_w, canvas_h, 3, VIPS_FORMAT_UCHAR, 5)
                             .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    std::ofstream csv(dir / "positions.csv");
    csv << "file,x,y\n";
    std::mt19937 rng(11);
    for (int j = 0; j < rows; ++j)
        for (int i = 0; i < cols; ++i) {
            const int x = i * sx + int(rng() % 9), y = j * sy + int(rng() % 9);
            const std::string name = "tiles/t" + std::to_string(j) + "_" + std::to_string(i) + ".jpg";
            slide.extract_area(x, y, tw, th).jpegsave((dir / name).c_str(), vips::VImage::option()->set("Q", 85));
            csv << name << "," << x << "," << y << "\n";
        }
    return dir / "positions.csv";
}

}  // namespace

TEST_CASE("mpi: stitch on 3 ranks writes the single-process pyramid TIFF byte for byte") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    int w = 0, h = 0;
    const fs::path csv = make_scans(tmp / "scan", 6, 5, 240, 180, w, h);
    const std::string args = "stitch " + csv.string() + " --canvas " + std::to_string(w) + " " + std::to_string(h) +
                             " --tile-size 32 --pyramid --compression jpeg --quality 80 -q";
    REQUIRE(tessera_cmd(args + " -o " + (tmp / "one.tif").string()) == 0);
    const std::string one = tt::slurp(tmp / "one.tif");
    REQUIRE(one.size() > 10000);
    std::string log;
    REQUIRE_MESSAGE(tt::run_command(mpirun(3, args + " --threads 1 -o " + (tmp / "three.tif").string()), &log) == 0,
                    log);
    CHECK(tt::slurp(tmp / "three.tif") == one);
    // every rank computed a share and reported it; the writer sent nothing
    CHECK(log.find("rank 0: ") != std::string::npos);
    CHECK(log.find("rank 2: ") != std::string::npos);
    CHECK(log.find("rank 0: 0 tiles") == std::string::npos);
    CHECK(log.find("rank 2: 0 tiles") == std::string::npos);
    CHECK(strays(tmp.path, {"scan", "one.tif", "three.tif"}).empty());
}

TEST_CASE("mpi: mosaic (registered and feathered) on 3 ranks writes the single-process file byte for byte") {
    // the ranks register a slice of the pairs each and share the matches,
    // then every rank solves and builds the graph: the solved positions must
    // not depend on the rank count or the threads
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    int w = 0, h = 0;
    make_scans(tmp / "scan", 5, 4, 256, 256, w, h);  // 64 px overlaps
    // the CSV gives the nominal grid (the scans are up to 8 px off it), so
    // registration has positions to correct
    const fs::path nominal = tmp / "scan" / "nominal.csv";
    {
        std::ofstream out(nominal);
        out << "file,x,y\n";
        for (int j = 0; j < 4; ++j)
            for (int i = 0; i < 5; ++i)
                out << "tiles/t" << j << "_" << i << ".jpg," << i * 192 << "," << j * 192 << "\n";
    }
    const std::string args = "mosaic " + nominal.string() + " --canvas " + std::to_string(w) + " " + std::to_string(h) +
                             " --search 12 --tile-size 32 --pyramid --compression deflate";
    std::string said;
    REQUIRE_MESSAGE(tessera_cmd(args + " --threads 2 -o " + (tmp / "one.tif").string() + " --positions-out " +
                                    (tmp / "one.csv").string() + " --pairs-out " + (tmp / "pairs1.csv").string(),
                                &said) == 0,
                    said);
    const std::string one = tt::slurp(tmp / "one.tif");
    REQUIRE(one.size() > 10000);
    std::string log;
    REQUIRE_MESSAGE(tt::run_command(mpirun(3, args + " --threads 1 -o " + (tmp / "three.tif").string() +
                                                  " --positions-out " + (tmp / "three.csv").string() + " --pairs-out " +
                                                  (tmp / "pairs3.csv").string()),
                                    &log) == 0,
                    log);
    CHECK_MESSAGE(tt::slurp(tmp / "three.tif") == one, log);
    CHECK(log.find("rank 2: 0 tiles") == std::string::npos);
    // the ranks split the pairs; rank 0 alone reports them and writes the CSVs
    CHECK(tt::slurp(tmp / "three.csv") == tt::slurp(tmp / "one.csv"));
    CHECK(tt::slurp(tmp / "pairs3.csv") == tt::slurp(tmp / "pairs1.csv"));
    CHECK(tt::slurp(tmp / "pairs1.csv").size() > 100);
    const std::size_t said_at = log.find("registration: ");
    CHECK_MESSAGE(said_at != std::string::npos, log);
    CHECK_MESSAGE(log.find("registration: ", said_at + 1) == std::string::npos, log);
    // registration moved some tile off its CSV position, or the blend would
    // not be exercised on solved positions
    CHECK(tt::slurp(tmp / "one.csv") != tt::slurp(nominal));
}

TEST_CASE("mpi: pyramid TIFF in several bands on 2 and 3 ranks - both sinks of a pipeline") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    // 1000x700 in 32-pixel tiles and 256-pixel bands: 4 bands, shares cut
    // inside bands, levels finished by the ranks and by the writer; and a
    // PNG beside it, which one rank writes whole
    tt::save(tt::pattern(1000, 700, 3, VIPS_FORMAT_UCHAR, 2), tmp / "in.png");
    auto pipeline = [&](const std::string& tag) {
        const std::string json = R"({"version": 1, "nodes": [
          {"id": "in", "op": "load", "path": "in.png"},
          {"id": "tif", "op": "save", "inputs": ["in"], "path": "out-)" +
                                 tag + R"(.tif",
           "tile_width": 32, "tile_height": 32, "pyramid": true, "compression": "deflate", "band_width": 256},
          {"id": "png", "op": "save", "inputs": ["in"], "path": "out-)" +
                                 tag + R"(.png"}]})";
        std::ofstream(tmp / ("p-" + tag + ".json")) << json;
        return (tmp / ("p-" + tag + ".json")).string();
    };
    REQUIRE(tessera_cmd("run -q " + pipeline("one")) == 0);
    const std::string tif = tt::slurp(tmp / "out-one.tif"), png = tt::slurp(tmp / "out-one.png");
    REQUIRE(!tif.empty());
    for (int n : {2, 3}) {
        const std::string tag = std::to_string(n);
        std::string log;
        REQUIRE_MESSAGE(tt::run_command(mpirun(n, "run -q --threads 1 " + pipeline(tag)), &log) == 0, log);
        CHECK_MESSAGE(tt::slurp(tmp / ("out-" + tag + ".tif")) == tif, n << " ranks");
        CHECK_MESSAGE(tt::slurp(tmp / ("out-" + tag + ".png")) == png, n << " ranks");
    }
}

TEST_CASE("mpi: an image smaller than the ranks' shares - idle ranks still end cleanly") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    tt::save(tt::pattern(40, 30, 1, VIPS_FORMAT_UCHAR, 1), tmp / "in.png");
    const std::string args = "run -q --threads 1 " + (tmp / "p.json").string();
    std::ofstream(tmp / "p.json") << R"({"version": 1, "nodes": [
      {"id": "in", "op": "load", "path": "in.png"},
      {"id": "out", "op": "save", "inputs": ["in"], "path": "out.tif",
       "tile_width": 16, "tile_height": 16, "pyramid": true, "compression": "lzw"}]})";
    REQUIRE(tessera_cmd(args) == 0);
    const std::string one = tt::slurp(tmp / "out.tif");
    std::string log;
    REQUIRE_MESSAGE(tt::run_command(mpirun(4, args), &log) == 0, log);
    CHECK(tt::slurp(tmp / "out.tif") == one);
    CHECK_MESSAGE(log.find(" 0 tiles") != std::string::npos, log);  // 6 tiles, 2 units: some rank has none
}

TEST_CASE("mpi: merge to a COG on 3 ranks writes the single-process file byte for byte") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    // 3 overlapping uint16 rasters with nodata, 1500x1100 merged
    std::vector<std::string> inputs;
    for (int k = 0; k < 3; ++k) {
        geo::Raster r;
        r.width = 900;
        r.height = 800;
        r.format = Format::u16;
        r.transform = {500000.0 + 300 * k, 10, 0, 4200000.0 - 150 * k, 0, -10};
        r.srs = "EPSG:32633";
        r.nodata = 0;
        r.value = [k](int x, int y, int) {
            return (x + y) % 97 == 0 ? 0.0 : double(1000 * (k + 1) + (x * 3 + y) % 500);
        };
        const std::string vrt = geo::write_vrt(tmp.path, "r" + std::to_string(k), r);
        const std::string tif = (tmp / ("r" + std::to_string(k) + ".tif")).string();
        REQUIRE(tt::run_command("gdal_translate -q -co TILED=YES " + vrt + " " + tif) == 0);
        inputs.push_back(tif);
    }
    std::string args = "merge";
    for (const auto& i : inputs) args += " " + i;
    args += " --format cog --co BLOCKSIZE=128 -q";
    REQUIRE(tessera_cmd(args + " -o " + (tmp / "one.tif").string()) == 0);
    const std::string one = tt::slurp(tmp / "one.tif");
    REQUIRE(!one.empty());
    std::string log;
    REQUIRE_MESSAGE(tt::run_command(mpirun(3, args + " --threads 1 -o " + (tmp / "three.tif").string()), &log) == 0,
                    log);
    CHECK(tt::slurp(tmp / "three.tif") == one);
    // and as a plain tiled GeoTIFF
    args = "merge";
    for (const auto& i : inputs) args += " " + i;
    args += " --tile-size 64 -q";
    REQUIRE(tessera_cmd(args + " -o " + (tmp / "one-gtiff.tif").string()) == 0);
    REQUIRE_MESSAGE(tt::run_command(mpirun(3, args + " --threads 1 -o " + (tmp / "three-gtiff.tif").string()), &log) ==
                        0,
                    log);
    CHECK(tt::slurp(tmp / "three-gtiff.tif") == tt::slurp(tmp / "one-gtiff.tif"));
}

TEST_CASE("mpi: a rank that fails ends every rank with an error and writes nothing") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    int w = 0, h = 0;
    const fs::path csv = make_scans(tmp / "scan", 6, 5, 240, 180, w, h);
    // the last tile, in the last rank's share, is cut short
    const fs::path victim = tmp / "scan" / "tiles" / "t4_5.jpg";
    const std::string bytes = tt::slurp(victim);
    std::ofstream(victim, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    std::string log;
    const int rc = tt::run_command(mpirun(3, "stitch " + csv.string() + " --canvas " + std::to_string(w) + " " +
                                                 std::to_string(h) + " --tile-size 32 --pyramid --threads 1 -q -o " +
                                                 (tmp / "out.tif").string()),
                                   &log);
    CHECK(rc != 0);
    CHECK_MESSAGE(log.find("t4_5.jpg") != std::string::npos, log);
    CHECK_MESSAGE(log.find("error") != std::string::npos, log);
    // the two others heard it from the failed rank, cleaned up and said so
    std::size_t said = 0;
    for (std::size_t at = 0; (at = log.find("stopped, no output was written: rank ", at)) != std::string::npos; ++at)
        ++said;
    CHECK_MESSAGE(said == 2, log);
    CHECK(!fs::exists(tmp / "out.tif"));
    CHECK(strays(tmp.path, {"scan"}).empty());
}

TEST_CASE("mpi: a rank killed mid-run ends the job - no output and no temporary file at the target") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    // big enough to take a few seconds on one thread per rank
    tt::save(tt::pattern(6000, 4000, 3, VIPS_FORMAT_UCHAR, 4), tmp / "in.v");
    const std::string out = (tmp / "out.tif").string();
    // mpirun in the background; once the writer has its temporary file,
    // SIGKILL the rank-1 process (found by its environment)
    const std::string script =
        "cd " + tmp.path.string() + "\n(" + mpirun(3, "run -q --threads 1 p.json") +
        " > log 2>&1; echo $? > rc) & "
        "for i in $(seq 1 300); do ls -a | grep -q 'out.tif.tessera' && break; sleep 0.05; done; "
        "for p in $(pgrep -f 'tessera.*p.json'); do "
        "  if tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then kill -9 $p; echo "
        "killed; fi; "
        "done; wait";
    std::ofstream(tmp / "p.json") << R"({"version": 1, "nodes": [
      {"id": "in", "op": "load", "path": "in.v"},
      {"id": "out", "op": "save", "inputs": ["in"], "path": "out.tif",
       "tile_width": 16, "tile_height": 16, "pyramid": true, "compression": "deflate"}]})";
    std::ofstream(tmp / "kill.sh") << script << "\n";
    std::string said;
    tt::run_command("bash " + (tmp / "kill.sh").string(), &said);
    REQUIRE_MESSAGE(said.find("killed") != std::string::npos, said);
    const std::string log = tt::slurp(tmp / "log");
    CHECK_MESSAGE(std::stoi(tt::slurp(tmp / "rc")) != 0, log);
    // the writer said why it stopped
    CHECK_MESSAGE(log.find("rank 0 of 3: stopped by a signal") != std::string::npos, log);
    CHECK(!fs::exists(out));
    CHECK_MESSAGE(strays(tmp.path, {"in.v", "p.json", "log", "rc", "kill.sh"}).empty(), log);
}

TEST_CASE("mpi: srun without --mpi=pmix (plain copies of the job) is refused - with or without MPI in the build") {
    // srun sets SLURM_STEP_NUM_TASKS for each task of a step; without an MPI
    // plugin no PMI variable says the tasks belong together
    tt::TempDir tmp;
    tt::save(tt::pattern(40, 30, 1, VIPS_FORMAT_UCHAR, 1), tmp / "in.png");
    const std::string out = (tmp / "out.tif").string();
    std::string said;
    const int rc =
        tt::run_command("env -u PMIX_RANK -u PMI_RANK -u PMI_SIZE -u OMPI_COMM_WORLD_SIZE "
                        "SLURM_STEP_NUM_TASKS=4 SLURM_PROCID=1 " +
                            tt::tessera_binary() + " stitch " + (tmp / "in.png").string() + " --canvas 40 30 -o " + out,
                        &said);
    CHECK(rc == 1);
    CHECK_MESSAGE(said.find("one of 4 tasks srun started without MPI") != std::string::npos, said);
    CHECK_MESSAGE(said.find("--mpi=pmix") != std::string::npos, said);
    CHECK(!fs::exists(out));
    // one task (srun -n 1, or a batch script's shell, which has no step
    // count) runs as one process
    std::ofstream(tmp / "p.json") << R"({"version": 1, "nodes": [
      {"id": "in", "op": "load", "path": "in.png"},
      {"id": "out", "op": "save", "inputs": ["in"], "path": "out.tif"}]})";
    CHECK(tt::run_command("SLURM_STEP_NUM_TASKS=1 " + tt::tessera_binary() + " run -q " + (tmp / "p.json").string()) ==
          0);
    CHECK(fs::exists(out));
}

TEST_CASE("mpi: --on-error background on 3 ranks - the same file - rank 0 reports every rank's fills once") {
    if (!tt::mpi_ready()) return;
    tt::TempDir tmp;
    int w = 0, h = 0;
    const fs::path csv = make_scans(tmp / "scan", 6, 5, 240, 180, w, h);
    // damaged tiles at the top (rank 0's share) and the bottom (the last rank's)
    for (const char* name : {"t0_0.jpg", "t4_5.jpg"}) {
        const fs::path victim = tmp / "scan" / "tiles" / name;
        const std::string bytes = tt::slurp(victim);
        std::ofstream(victim, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    }
    const std::string args = "stitch " + csv.string() + " --canvas " + std::to_string(w) + " " + std::to_string(h) +
                             " --tile-size 32 --pyramid --compression deflate --on-error background -q";
    // the report's lines, in order
    auto lines_with = [](const std::string& log, const std::string& what) {
        std::vector<std::string> out;
        std::istringstream in(log);
        for (std::string line; std::getline(in, line);)
            if (line.find(what) != std::string::npos) out.push_back(line);
        return out;
    };
    std::string one_log, three_log;
    REQUIRE_MESSAGE(tessera_cmd(args + " -o " + (tmp / "one.tif").string(), &one_log) == 0, one_log);
    REQUIRE_MESSAGE(tt::run_command(mpirun(3, args + " --threads 1 -o " + (tmp / "three.tif").string()), &three_log) ==
                        0,
                    three_log);
    CHECK(tt::slurp(tmp / "three.tif") == tt::slurp(tmp / "one.tif"));
    const auto fills = lines_with(one_log, "filled with background: node");
    CHECK(fills.size() >= 2);
    CHECK(lines_with(three_log, "filled with background: node") == fills);
    CHECK(lines_with(three_log, "were filled with background") == lines_with(one_log, "were filled with background"));
    CHECK(lines_with(three_log, "were filled with background").size() == 1);
}
