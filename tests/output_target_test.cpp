// io's OutputTarget: side files (positions, pairs, reports, pages) are
// whole or absent, and leave no temporary behind either way; a run stopped
// while its output is put in place (the copy into /vsimem/, the rename)
// leaves nothing at the target.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>

#include "support.hpp"
#include "tessera/io/output_target.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {
std::size_t entries(const fs::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
    return n;
}
}  // namespace

TEST_CASE("output target: written whole - replaced whole - nothing left on failure") {
    tt::TempDir tmp;
    const std::string path = (tmp / "pairs.csv").string();
    write_output_file(path, "a,b\n1,2\n", "the pairs CSV");
    CHECK(tt::slurp(path) == "a,b\n1,2\n");
    write_output_file(path, "x\n", "the pairs CSV");
    CHECK(tt::slurp(path) == "x\n");
    CHECK(entries(tmp.path) == 1);  // no temporary beside it

    // an uncommitted target (a failure on the way) removes its temporary
    {
        OutputTarget t(path);
        CHECK(fs::path(t.temp()).parent_path() == tmp.path);
        write_output_file(t.temp(), "half", "a test file");
        CHECK(entries(tmp.path) == 2);
    }
    CHECK(entries(tmp.path) == 1);
    CHECK(tt::slurp(path) == "x\n");  // the old file stays

    // a folder that does not exist, and a target that is a folder: errors
    // naming the path, nothing made
    const std::string missing = (tmp / "no/such/dir/p.csv").string();
    std::string e = tt::error_of([&] { write_output_file(missing, "x", "the pairs CSV"); });
    CHECK(e.find(missing) != std::string::npos);
    CHECK(e.find("the pairs CSV") != std::string::npos);
    fs::create_directories(tmp / "adir" / "inside");
    e = tt::error_of([&] { write_output_file((tmp / "adir").string(), "x", "the report"); });
    CHECK(e.find("adir") != std::string::npos);
    CHECK(fs::is_directory(tmp / "adir"));
    CHECK(entries(tmp.path) == 2);  // pairs.csv and adir only
}

TEST_CASE("output target: a run stopped during its final copy or rename leaves nothing at the target") {
    tt::TempDir tmp;
    // 1500 x 1000 RGB uncompressed: 4.5 MB, five 1 MiB chunks of the copy
    // into /vsimem/
    auto graph = [](const std::string& path) {
        Graph g(standard_registry());
        const NodeId b =
            g.add("black", {},
                  {{"width", std::int64_t(1500)}, {"height", std::int64_t(1000)}, {"bands", std::int64_t(3)}});
        g.add("save", {b}, {{"path", path}, {"compression", std::string("none")}});
        return g;
    };
    auto present = [](const std::string& path) {
        Graph g(standard_registry());
        return tt::error_of([&] { g.add("gdal_load", {}, {{"path", path}}); }) == "(no error)";
    };
    // what every temporary of a target's name contains (temp_beside.hpp)
    auto temporaries = [](const fs::path& dir, const std::string& target) {
        std::size_t n = 0;
        for (const auto& e : fs::directory_iterator(dir))
            n += e.path().filename().string().find(fs::path(target).filename().string() + ".tessera-") !=
                 std::string::npos;
        return n;
    };
    const std::string stem = "/vsimem/tessera-stop-" + std::to_string(::getpid());
    // progress calls made once every tile is done: the last tile's, then
    // the ones the commit makes (before it, and after each chunk)
    std::size_t at_end = 0;
    auto counting = [&](std::size_t stop_at, std::atomic<bool>* token) {
        at_end = 0;
        RunOptions o;
        o.progress = [&at_end, stop_at, token](const Progress& p) {
            if (p.tiles_done < p.tiles_total) return true;
            if (++at_end < stop_at) return true;
            if (token) token->store(true);  // as a signal handler does
            return token != nullptr;
        };
        o.cancel = token;
        return o;
    };
    {
        Graph g = graph(stem + "-whole.tif");
        Evaluator(g).run_sinks(counting(SIZE_MAX, nullptr));
        CHECK(present(stem + "-whole.tif"));
        CHECK(at_end >= 2 + 5);  // asked before the copy and between its chunks
    }
    // stopped after the first chunk: by the callback, then by the token
    for (bool by_token : {false, true}) {
        CAPTURE(by_token);
        const std::string mem = stem + (by_token ? "-token.tif" : "-progress.tif");
        Graph g = graph(mem);
        std::atomic<bool> token{false};
        CHECK_THROWS_AS(Evaluator(g).run_sinks(counting(3, by_token ? &token : nullptr)), Cancelled);
        CHECK(at_end == 3);  // nothing was asked after the stop
        CHECK_FALSE(present(mem));
        CHECK(temporaries(fs::temp_directory_path(), mem) == 0);
    }
    // a local target, stopped after its encode, before the rename
    const std::string local = (tmp / "out.tif").string();
    Graph g = graph(local);
    CHECK_THROWS_AS(Evaluator(g).run_sinks(counting(2, nullptr)), Cancelled);
    CHECK_FALSE(fs::exists(local));
    CHECK(entries(tmp.path) == 0);
}
