// tessera::Image (tools/include/tessera/image.hpp): apply over inputs of
// several graphs, windows computed in parallel equal to the single-threaded
// render, memory sources without a copy, save, standalone JSON.
#include <doctest/doctest.h>

#include <numeric>

#include "support.hpp"
#include "tessera/image.hpp"

using tessera::Image;
using namespace tt;

namespace {

Image loaded(const TempDir& dir, const vips::VImage& im, const std::string& name) {
    return Image::apply("load", {}, {{"path", save(im, dir / name)}});
}

}  // namespace

TEST_CASE("image: apply combines inputs of different graphs and windows equal render") {
    TempDir dir;
    const Image a = loaded(dir, pattern(300, 200, 3, VIPS_FORMAT_UCHAR, 1), "a.v");
    const Image b = loaded(dir, pattern(120, 90, 3, VIPS_FORMAT_UCHAR, 2), "b.v");
    const Image canvas = Image::apply("black", {}, {{"width", 500}, {"height", 400}, {"bands", 3}});
    const Image m = Image::apply("insert", {canvas, a, b}, {{"at", std::vector<IntPair>{{10, 20}, {250, 150}}}});
    CHECK(m.width() == 500);
    CHECK(m.height() == 400);
    CHECK(m.bands() == 3);
    CHECK(m.format() == Format::u8);
    CHECK(m.graph().size() == 4);
    CHECK(a.graph().size() == 1);  // the inputs' graphs are left as they were
    // a window across tile seams, on 2 workers, against the evaluator's render
    const Rect win{37, 61, 301, 233};
    const Buffer got = m.region(win, {.threads = 2});
    REQUIRE(got.rect() == win);
    const Buffer want = Evaluator(m.graph()).render(m.node(), win);
    CHECK(max_abs_diff(got, want) == 0);
    // the same with another tile grid and one thread
    Graph g = m.standalone();
    g.execution.tile_w = 37;
    g.execution.tile_h = 16;
    const Image m2(std::make_shared<const Graph>(std::move(g)), 3);
    CHECK(max_abs_diff(m2.region(win, {.threads = 1}), want) == 0);
    // and the pixels are the inputs' where they were placed
    const Buffer pa = a.region({0, 0, 300, 200});
    const Buffer part = m.region({10, 20, 240, 130});
    CHECK(std::memcmp(part.view().row<std::uint8_t>(20), pa.view().row<std::uint8_t>(0), 240 * 3) == 0);
}

TEST_CASE("image: windows outside the image and sinks are refused naming the node") {
    const Image c = Image::apply("black", {}, {{"width", 50}, {"height", 40}});
    CHECK(error_of([&] { c.region({40, 0, 20, 10}); }).find("not inside the image (50x40)") != std::string::npos);
    CHECK(error_of([&] { c.region({0, 0, 0, 10}); }).find("node 'black0'") != std::string::npos);
    CHECK(error_of([&] {
              Image::apply("black", {}, {{"width", 0}, {"height", 4}});
          }).find("key 'width'") != std::string::npos);
    CHECK(error_of([&] { Image::apply("black", {}, {{"colour", 3}}); }).find("key 'colour'") != std::string::npos);
}

TEST_CASE("image: a memory source reads the caller's pixels without a copy and keeps them alive") {
    const int w = 70, h = 50, bands = 2;
    auto pixels = std::make_shared<std::vector<std::uint16_t>>(std::size_t(w) * h * bands);
    std::iota(pixels->begin(), pixels->end(), std::uint16_t(7));
    const ImageInfo info = header(w, h, bands, Format::u16);
    std::weak_ptr<std::vector<std::uint16_t>> alive = pixels;
    Image img = Image::from_memory(pixels, reinterpret_cast<const std::byte*>(pixels->data()), info,
                                   std::size_t(w) * bands * 2);
    pixels.reset();
    CHECK_FALSE(alive.expired());  // the node holds them
    const Buffer b = img.region({5, 3, 60, 40});
    for (int y = 3; y < 43; ++y)
        for (int x = 5; x < 65; ++x)
            for (int k = 0; k < bands; ++k)
                REQUIRE(b.view().row<std::uint16_t>(y)[(x - 5) * bands + k] ==
                        std::uint16_t(7 + (y * w + x) * bands + k));
    // through an op (its graph holds the node again) and out of scope
    Image crop = Image::apply("extract_area", {img}, {{"left", 10}, {"top", 10}, {"width", 20}, {"height", 5}});
    img = crop;
    CHECK_FALSE(alive.expired());
    const Buffer c = crop.region({0, 0, 20, 5});
    CHECK(c.view().row<std::uint16_t>(0)[0] == std::uint16_t(7 + (10 * w + 10) * bands));
    crop = img = Image::apply("black", {}, {{"width", 1}, {"height", 1}});
    CHECK(alive.expired());
    // its JSON names a handle no other process has
    CHECK(to_json(Image::from_memory(std::make_shared<int>(0), reinterpret_cast<const std::byte*>(c.view().data),
                                     header(20, 5, 2, Format::u16), 80)
                      .standalone())
              .find("\"op\": \"memory\"") != std::string::npos);
    CHECK(error_of([&] {
              parse_pipeline(R"({"version": 1, "nodes": [{"id": "m", "op": "memory", "handle": 999999}]})",
                             tessera::image_registry());
          }).find("no memory image 999999") != std::string::npos);
}

TEST_CASE("image: save writes the image and leaves its graph unchanged") {
    TempDir dir;
    const Image a = loaded(dir, pattern(200, 150, 3, VIPS_FORMAT_UCHAR, 3), "a.v");
    const Image s = Image::apply("shrink", {a}, {{"hshrink", 2}, {"vshrink", 2}});
    const auto out = dir / "s.tif";
    s.save(out.string(), {{"tile", true}, {"compression", std::string("deflate")}});
    CHECK(s.graph().size() == 2);
    const Image back = Image::apply("load", {}, {{"path", out.string()}});
    CHECK(back.width() == 100);
    CHECK(max_abs_diff(back.region({0, 0, 100, 75}), s.region({0, 0, 100, 75})) == 0);
    // a bad option names the key and nothing is written
    CHECK(error_of([&] {
              s.save((dir / "t.tif").string(), {{"quality", 0}});
          }).find("key 'quality'") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "t.tif"));
}

TEST_CASE("image: a file that fails while a window is computed names the node and keeps the file's path") {
    TempDir dir;
    // the header is read when the node is made, the strips only when a
    // window is computed: by then the file has lost its second half
    const std::string path = save(pattern(256, 256, 1, VIPS_FORMAT_USHORT, 3), dir / "a.tif");
    const Image a = Image::apply("load", {}, {{"path", path}});
    (void)a.region({0, 0, 8, 8});
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
    try {
        (void)a.region(a.info().rect());
        FAIL("a truncated file was read");
    } catch (const GraphError& e) {
        CHECK(e.node() == "load0");
        CHECK(e.path() == path);
        CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
    // a graph that is wrong has no file to blame
    try {
        (void)Image::apply("black", {}, {{"width", 0}, {"height", 4}});
    } catch (const GraphError& e) {
        CHECK(e.path().empty());
    }
}
