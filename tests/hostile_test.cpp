// Hostile and mislabelled inputs: each fails with the file named (or, where
// the file is fine but misnamed, works), never a crash or a huge allocation.
#include <doctest/doctest.h>

#include <fstream>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

std::uint32_t crc32(const std::string& bytes) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : bytes) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

std::string be32(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string chunk(const std::string& type, const std::string& data) {
    return be32(std::uint32_t(data.size())) + type + data + be32(crc32(type + data));
}

// A valid PNG header claiming w x h RGBA, with a token image stream.
std::string png_bomb(std::uint32_t w, std::uint32_t h) {
    std::string ihdr = be32(w) + be32(h) + std::string("\x08\x06\x00\x00\x00", 5);
    std::string idat("\x78\x9c\x03\x00\x00\x00\x00\x01", 8);  // an empty zlib stream
    return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", "");
}

}  // namespace

TEST_CASE("hostile: a PNG header claiming 65535x65535x4 is refused when the graph is built") {
    tt::TempDir dir;
    fs::path p = dir / "bomb.png";
    std::ofstream(p, std::ios::binary) << png_bomb(65535, 65535);
    Graph g(standard_registry());
    std::string e = tt::error_of([&] { g.add("load", {}, {{"path", p.string()}}, "bomb"); });
    CHECK(e.find("bomb.png") != std::string::npos);
    CHECK(e.find("node 'bomb'") != std::string::npos);
    CHECK(e.find("65535x65535x4") != std::string::npos);
    CHECK(e.find("max_decode_mb") != std::string::npos);
}

TEST_CASE("hostile: a zero-byte file and a folder fail naming the path") {
    tt::TempDir dir;
    std::ofstream(dir / "empty.jpg");
    fs::create_directories(dir / "folder.png");
    for (const char* name : {"empty.jpg", "folder.png"}) {
        CAPTURE(name);
        Graph g(standard_registry());
        std::string e = tt::error_of([&] { g.add("load", {}, {{"path", (dir / name).string()}}); });
        CHECK(e.find(name) != std::string::npos);
    }
}

TEST_CASE("hostile: a PNG named .jpg is read by what it is") {
    tt::TempDir dir;
    vips::VImage im = tt::pattern(40, 30);
    fs::path p = dir / "really_a_png.jpg";
    im.pngsave(p.c_str());
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", p.string()}});
    CHECK(tt::max_abs_diff(tt::render(g, n, 16, 2), im) == 0);
}
