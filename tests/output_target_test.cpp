// io's OutputTarget: side files (positions, pairs, reports, pages) are
// whole or absent, and leave no temporary behind either way.
#include <doctest/doctest.h>

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
