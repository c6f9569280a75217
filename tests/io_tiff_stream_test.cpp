// io: striped and tiled TIFFs read block by block (io/tiff_stream.cpp), not
// decoded whole by libvips. Pixels are compared with libvips decoding the
// same file (the oracle) across tile seams, for the layouts acquisition
// software writes; a big-endian file (hand-written: libvips writes only
// little-endian); a truncated one; and the memory bound that was the point.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "support.hpp"
#include "tessera/io/io.hpp"

using namespace tessera;
using vips::VImage;

namespace {

NodeId add_load(Graph& g, const std::string& path) { return g.add("load", {}, Params{{"path", path}}); }

// "N pages opened" from the io statistics line.
long tiff_pages_opened() {
    const std::string s = io_stats();
    const auto at = s.find("tiff: ");
    REQUIRE(at != std::string::npos);
    return std::stol(s.substr(at + 6));
}

VImage pattern16(int w, int h, int bands) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_UINT) * 257 + 3)
        .cast(VIPS_FORMAT_USHORT)
        .copy(VImage::option()->set("interpretation",
                                    bands >= 3 ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_GREY16));
}

// A big-endian (MM) uncompressed 16-bit grey TIFF, strips of `rps` rows, the
// directory first and the pixels after it: value(x, y) = 1000 + 7x + 301y.
std::vector<std::uint8_t> big_endian_tiff(int w, int h, int rps) {
    std::vector<std::uint8_t> f;
    auto u16 = [&](unsigned v) { f.push_back(std::uint8_t(v >> 8)), f.push_back(std::uint8_t(v)); };
    auto u32 = [&](unsigned v) { u16(v >> 16), u16(v & 0xffff); };
    const int strips = (h + rps - 1) / rps, entries = 10;
    const unsigned ifd = 8, arrays = ifd + 2 + 12 * entries + 4;  // strip offsets, then byte counts
    const unsigned data = arrays + 8 * unsigned(strips);
    for (std::uint8_t b : {'M', 'M', '\0', '*'}) f.push_back(b);  // big-endian, 42
    u32(ifd);
    u16(entries);
    auto entry = [&](unsigned tag, unsigned type, unsigned count, unsigned value) {
        u16(tag), u16(type), u32(count);
        if (type == 3 && count == 1)
            u16(value), u16(0);  // a SHORT sits in the value's first two bytes
        else
            u32(value);
    };
    entry(256, 4, 1, unsigned(w));                                 // ImageWidth
    entry(257, 4, 1, unsigned(h));                                 // ImageLength
    entry(258, 3, 1, 16);                                          // BitsPerSample
    entry(259, 3, 1, 1);                                           // Compression: none
    entry(262, 3, 1, 1);                                           // Photometric: min-is-black
    entry(273, 4, unsigned(strips), strips == 1 ? data : arrays);  // StripOffsets
    entry(277, 3, 1, 1);                                           // SamplesPerPixel
    entry(278, 4, 1, unsigned(rps));                               // RowsPerStrip
    entry(279, 4, unsigned(strips), strips == 1 ? unsigned(w * h * 2) : arrays + 4 * unsigned(strips));
    entry(284, 3, 1, 1);  // PlanarConfig: contig
    u32(0);               // no next directory
    for (int s = 0; s < strips; ++s) u32(data + unsigned(s * rps * w * 2));
    for (int s = 0; s < strips; ++s) u32(unsigned(std::min(rps, h - s * rps) * w * 2));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) u16(unsigned(1000 + 7 * x + 301 * y) & 0xffff);
    return f;
}

}  // namespace

TEST_CASE("tiff stream: striped and tiled TIFFs of every layout read as libvips decodes them / across tile seams") {
    tt::TempDir dir;
    const int w = 203, h = 157;
    struct Case {
        std::string name;
        VImage image;
        vips::VOption* options;
    };
    auto opt = [] { return VImage::option(); };
    std::vector<Case> cases = {
        {"grey8-strips.tif", tt::pattern(w, h, 1), opt()},
        {"grey16-strips.tif", pattern16(w, h, 1), opt()},
        {"rgb8-strips-deflate-predictor.tif", tt::pattern(w, h, 3),
         opt()
             ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE)
             ->set("predictor", VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL)},
        {"grey16-strips-lzw.tif", pattern16(w, h, 1), opt()->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_LZW)},
        {"rgb16-tiled.tif", pattern16(w, h, 3),
         opt()->set("tile", true)->set("tile_width", 64)->set("tile_height", 32)},
        {"grey16-tiled-zstd.tif", pattern16(w, h, 1),
         opt()
             ->set("tile", true)
             ->set("tile_width", 48)
             ->set("tile_height", 48)
             ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_ZSTD)},
        {"rgba8-strips.tif", tt::pattern(w, h, 4), opt()},
        {"float2-strips.tif", tt::pattern(w, h, 2, VIPS_FORMAT_FLOAT, 4), opt()},
    };
    for (auto& c : cases) {
        CAPTURE(c.name);
        const std::string path = (dir / c.name).string();
        c.image.tiffsave(path.c_str(), c.options);
        VImage oracle = VImage::new_from_file(path.c_str());
        const long before = tiff_pages_opened();
        Graph g(standard_registry());
        NodeId n = add_load(g, path);
        CHECK(g.info(n).bands == oracle.bands());
        tt::check_pixels(g, n, oracle);
        CHECK(tiff_pages_opened() > before);  // served in blocks, not by libvips
    }
}

TEST_CASE("tiff stream: a big-endian uncompressed TIFF is byte-swapped as libtiff would / a truncated one is an error "
          "naming it") {
    tt::TempDir dir;
    const int w = 90, h = 70;
    const std::vector<std::uint8_t> bytes = big_endian_tiff(w, h, 16);
    const std::string path = (dir / "be.tif").string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    {
        Graph g(standard_registry());
        NodeId n = add_load(g, path);
        REQUIRE(g.info(n).format == Format::u16);
        Buffer out = tt::render(g, n, 32, 2);
        int wrong = 0;
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                std::uint16_t v;
                std::memcpy(&v, out.tile().at(x, y), 2);
                wrong += v != ((1000 + 7 * x + 301 * y) & 0xffff);
            }
        CHECK(wrong == 0);
        CHECK(tt::max_abs_diff(out, VImage::new_from_file(path.c_str())) == 0);
    }
    // the directory is intact, the last strips are gone
    std::filesystem::resize_file(path, bytes.size() - std::size_t(w * 2 * 30));
    Graph g(standard_registry());
    NodeId n = add_load(g, path);
    const std::string err = tt::error_of([&] { tt::render(g, n, 32, 2); });
    CHECK(err.find(path) != std::string::npos);
    CHECK(err.find("truncated") != std::string::npos);
}

TEST_CASE("tiff stream: a few columns of wide strips are read row by row and a tile's part in one read - same "
          "pixels") {
    // 6000 x 200, 64-row strips of 750 KB: a 32-px tile's part of a strip
    // spans 24 times what it wants (read row by row); a narrow file's whole
    // strips are small (read at once). Both must give every pixel.
    tt::TempDir dir;
    for (const auto& [w, h, rps] : {std::array<int, 3>{6000, 200, 64}, std::array<int, 3>{100, 90, 40}}) {
        CAPTURE(w);
        const std::vector<std::uint8_t> bytes = big_endian_tiff(w, h, rps);
        const std::string path = (dir / ("be" + std::to_string(w) + ".tif")).string();
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        Graph g(standard_registry());
        NodeId n = add_load(g, path);
        NodeId crop =
            g.add("extract_area", {n}, Params{{"left", w - 70}, {"top", 5}, {"width", 70}, {"height", h - 9}});
        for (int tile : {32, 37}) {
            Buffer out = tt::render(g, crop, tile, 2);
            int wrong = 0;
            for (int y = 0; y < h - 9; ++y)
                for (int x = 0; x < 70; ++x) {
                    std::uint16_t v;
                    std::memcpy(&v, out.tile().at(x, y), 2);
                    wrong += v != ((1000 + 7 * (x + w - 70) + 301 * (y + 5)) & 0xffff);
                }
            CHECK(wrong == 0);
        }
    }
}

// Peak resident memory of this process since the last reset (VmHWM), and
// the reset (writing 5 to clear_refs).
long peak_kb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}
bool reset_peak() { return bool(std::ofstream("/proc/self/clear_refs") << "5"); }

TEST_CASE("tiff stream: a mosaic of 16-bit striped TIFFs holds a few strips of each and not the whole files") {
    // 36 tiles of 1024x1024 16-bit (2 MB each decoded, 72 MB in all):
    // libvips held every open one whole (the open-image cache keeps 256);
    // read in strips, a streamed save's peak stays near its tiles in
    // flight. The pixels equal libvips's insert of the same files.
    tt::TempDir dir;
    const int n = 6, size = 1024, step = 1000, canvas = step * (n - 1) + size;
    Graph g(standard_registry());
    std::vector<NodeId> inputs{
        g.add("black", {},
              {{"width", std::int64_t(canvas)}, {"height", std::int64_t(canvas)}, {"format", std::string("u16")}})};
    std::vector<IntPair> at;
    VImage want = VImage::black(canvas, canvas).cast(VIPS_FORMAT_USHORT);
    for (int r = 0; r < n; ++r)
        for (int c = 0; c < n; ++c) {
            const std::string path = (dir / ("t" + std::to_string(r * n + c) + ".tif")).string();
            (pattern16(size, size, 1) + (r * n + c) * 97).cast(VIPS_FORMAT_USHORT).tiffsave(path.c_str());
            inputs.push_back(add_load(g, path));
            at.push_back({c * step, r * step});
            want = want.insert(VImage::new_from_file(path.c_str()), c * step, r * step);
        }
    const NodeId m = g.add("insert", inputs, {{"at", at}});
    const std::string out = (dir / "out.tif").string();
    g.add("save", {m}, {{"path", out}, {"tile", true}});
    g.execution.threads = 2;
    const long before = tiff_pages_opened();
    REQUIRE(reset_peak());
    const long base = peak_kb();
    Evaluator(g).run_sinks();
    const long grew_mb = (peak_kb() - base) / 1024;
    CAPTURE(grew_mb);
    CHECK(tiff_pages_opened() - before == n * n);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // (a sanitizer's quarantine keeps freed tiles resident: no bound there)
    CHECK(grew_mb < 24);  // 2 MB measured; 72 MB when libvips decoded the files
#endif
    CHECK(VImage::new_from_file(out.c_str()).subtract(want).abs().max() == 0);
}

TEST_CASE("tiff stream: a page stays open until the last announced segment ends - then it goes") {
    // A run announces a source's next segment before the last one's tiles
    // are all computed; ending the first must not close the page the
    // second reads. Unannounced, a release closes it as before.
    tt::TempDir dir;
    const std::string path = (dir / "s.tif").string();
    pattern16(300, 200, 1).tiffsave(path.c_str());
    Graph g(standard_registry());
    const Op& op = *g.node(add_load(g, path)).op;
    Buffer b(nullptr, Rect{0, 0, 300, 20}, 1, Format::u16);
    const long before = tiff_pages_opened();
    op.expect(Rect{0, 0, 300, 100});
    op.compute(b.tile(), {});
    op.expect(Rect{0, 100, 300, 100});  // the next segment, announced first
    op.release();                       // the first ends
    op.compute(b.tile(), {});
    CHECK(tiff_pages_opened() - before == 1);  // still open
    op.release();                              // the second ends: closed
    op.compute(b.tile(), {});
    CHECK(tiff_pages_opened() - before == 2);  // opened again
    op.release();                              // (none announced: closes it)
    op.compute(b.tile(), {});
    CHECK(tiff_pages_opened() - before == 3);
    op.release();
}
