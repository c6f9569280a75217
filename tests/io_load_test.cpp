// io: the load op. Pixels are compared with libvips decoding the same file
// (the oracle), across tile seams; headers, errors naming the file, and the
// bounded open-file cache.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "support.hpp"

using namespace tessera;
using vips::VImage;

namespace {

NodeId add_load(Graph& g, const std::string& path, std::int64_t page = 0) {
    Params p{{"path", path}};
    if (page) p.set("page", page);
    return g.add("load", {}, p);
}

// Open descriptors of this process.
int open_fds() {
    int n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Sets io limits for one test and restores the defaults after.
struct LimitsGuard {
    explicit LimitsGuard(IoLimits l) { set_io_limits(l); }
    ~LimitsGuard() { set_io_limits(IoLimits{}); }
};

// Keeps the first `keep` bytes of a file.
void truncate_file(const std::string& path, std::uintmax_t keep) { std::filesystem::resize_file(path, keep); }

// A 16-bit image whose values use the high byte too.
VImage pattern16(int w, int h, int bands) {
    return (tt::pattern(w, h, bands, VIPS_FORMAT_UINT) * 257 + 3)
        .cast(VIPS_FORMAT_USHORT)
        .copy(VImage::option()->set("interpretation",
                                    bands >= 3 ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_GREY16));
}

struct Case {
    std::string name;
    VImage image;
};

}  // namespace

TEST_CASE("load: JPEG / PNG / TIFF / WebP / 16-bit / 1 and 4 bands decode as libvips does / across tile seams") {
    tt::TempDir dir;
    const int w = 101, h = 75;
    std::vector<Case> cases = {
        {"rgb.jpg", tt::pattern(w, h, 3)},
        {"rgb.png", tt::pattern(w, h, 3)},
        {"rgb.tif", tt::pattern(w, h, 3, VIPS_FORMAT_UCHAR, 1)},
        {"rgb.webp", tt::pattern(w, h, 3)},
        {"rgb16.png", pattern16(w, h, 3)},
        {"grey.png", tt::pattern(w, h, 1, VIPS_FORMAT_UCHAR, 2)},
        {"grey.jpg", tt::pattern(w, h, 1)},
        {"rgba.png", tt::pattern(w, h, 4, VIPS_FORMAT_UCHAR, 3)},
        {"rgba.tif", tt::pattern(w, h, 4)},
        {"float.tif", tt::pattern(w, h, 2, VIPS_FORMAT_FLOAT, 4)},
    };
    for (auto& c : cases) {
        CAPTURE(c.name);
        std::string path = tt::save(c.image, dir / c.name);
        VImage oracle = VImage::new_from_file(path.c_str());
        Graph g(standard_registry());
        NodeId n = add_load(g, path);
        CHECK(g.info(n).width == w);
        CHECK(g.info(n).height == h);
        CHECK(g.info(n).bands == oracle.bands());
        for (int tile : {16, 64, 37})
            for (int threads : {1, 2}) {
                CAPTURE(tile);
                CAPTURE(threads);
                Buffer out = tt::render(g, n, tile, threads);
                CHECK(tt::max_abs_diff(out, oracle) == 0);
            }
    }
}

TEST_CASE("load: the header is read without pixels and matches libvips") {
    tt::TempDir dir;
    std::string rgb = tt::save(tt::pattern(40, 30, 3), dir / "a.jpg");
    std::string grey = tt::save(tt::pattern(41, 31, 1), dir / "b.png");
    std::string wide = tt::save(pattern16(42, 32, 3), dir / "c.png");
    std::string rgba = tt::save(tt::pattern(43, 33, 4), dir / "d.webp");

    Graph g(standard_registry());
    const ImageInfo& a = g.info(add_load(g, rgb));
    CHECK(a.width == 40);
    CHECK(a.height == 30);
    CHECK(a.bands == 3);
    CHECK(a.format == Format::u8);
    CHECK(a.interpretation == Interpretation::srgb);
    CHECK(a == read_image_header(rgb));

    ImageInfo b = read_image_header(grey);
    CHECK(b.bands == 1);
    CHECK(b.format == Format::u8);
    CHECK(b.interpretation == Interpretation::bw);

    ImageInfo c = read_image_header(wide);
    CHECK(c.width == 42);
    CHECK(c.format == Format::u16);
    CHECK(c.interpretation == Interpretation::rgb16);

    ImageInfo d = read_image_header(rgba);
    CHECK(d.bands == 4);
    CHECK(d.interpretation == Interpretation::srgb);

    std::string text = describe_image(wide);
    CHECK(text.find("size: 42x32") != std::string::npos);
    CHECK(text.find("bands: 3") != std::string::npos);
    CHECK(text.find("format: u16") != std::string::npos);
    CHECK(text.find("interpretation: rgb16") != std::string::npos);
    CHECK(text.find("loader: pngload") != std::string::npos);
}

TEST_CASE("load: multi-page files read the page asked for") {
    tt::TempDir dir;
    // Three 20x10 pages stacked vertically, as libvips writes multi-page TIFF.
    VImage pages = tt::pattern(20, 30, 1, VIPS_FORMAT_UCHAR, 5).copy();
    pages.set("page-height", 10);
    std::string path = tt::save(pages, dir / "pages.tif");
    Graph g(standard_registry());
    NodeId p1 = add_load(g, path, 1);
    CHECK(g.info(p1).height == 10);
    Buffer out = tt::render(g, p1, 16, 1);
    CHECK(tt::max_abs_diff(out, VImage::new_from_file(path.c_str(), VImage::option()->set("page", 1))) == 0);
    CHECK(describe_image(path).find("pages: 3") != std::string::npos);

    std::string msg = tt::error_of([&] { add_load(g, path, 3); });
    CHECK(msg.find("'page'") != std::string::npos);
    CHECK(msg.find("3 page") != std::string::npos);
}

TEST_CASE("load: a missing or unreadable file fails when the graph is built / naming the file") {
    tt::TempDir dir;
    std::string missing = (dir / "nope.jpg").string();
    Graph g(standard_registry());
    std::string msg = tt::error_of([&] { add_load(g, missing); });
    CHECK(msg.find(missing) != std::string::npos);
    CHECK(msg.find("not found") != std::string::npos);
    CHECK_THROWS_AS(read_image_header(missing), IoError);

    std::string text = (dir / "notes.png").string();
    std::ofstream(text) << "this is not an image\n";
    msg = tt::error_of([&] { add_load(g, text); });
    CHECK(msg.find(text) != std::string::npos);

    msg = tt::error_of([&] { add_load(g, dir.path.string()); });
    CHECK(msg.find("folder") != std::string::npos);
}

TEST_CASE("load: a truncated file fails at run / naming the file") {
    tt::TempDir dir;
    for (std::string name : {"big.jpg", "big.png"}) {
        CAPTURE(name);
        std::string path = tt::save(tt::pattern(300, 200, 3), dir / name);
        truncate_file(path, std::filesystem::file_size(path) / 2);
        Graph g(standard_registry());
        NodeId n = add_load(g, path);  // the header is intact
        std::string msg = tt::error_of([&] { tt::render(g, n, 64, 2); });
        CHECK(msg.find(path) != std::string::npos);
        // A second run fails the same way (the failed image is not kept).
        msg = tt::error_of([&] { tt::render(g, n, 64, 1); });
        CHECK(msg.find(path) != std::string::npos);
    }
    // libtiff writes the directory after the pixels and WebP is parsed whole
    // up front: truncated, they fail as soon as the header is read, naming
    // the file too.
    for (std::string name : {"big.tif", "big.webp"}) {
        CAPTURE(name);
        std::string path = tt::save(tt::pattern(300, 200, 3), dir / name);
        truncate_file(path, std::filesystem::file_size(path) / 2);
        Graph g(standard_registry());
        std::string msg = tt::error_of([&] { tt::render(g, add_load(g, path), 64, 2); });
        CHECK(msg.find(path) != std::string::npos);
    }
}

TEST_CASE("load: files open lazily and the open-file cache bounds descriptors") {
    tt::TempDir dir;
    const int count = 200, side = 16, across = 20;
    std::vector<std::string> paths;
    std::vector<VImage> kinds;
    for (int k = 0; k < 13; ++k) kinds.push_back(tt::pattern(side, side, 3, VIPS_FORMAT_UCHAR, k));
    for (int i = 0; i < count; ++i) {
        // WebP: libvips keeps a loaded WebP file open as long as the image.
        paths.push_back(tt::save(kinds[i % kinds.size()], dir / ("t" + std::to_string(i) + ".webp")));
    }

    LimitsGuard limits(IoLimits{8});
    const int before = open_fds();
    Graph g(standard_registry());
    std::vector<NodeId> loads;
    for (auto& p : paths) loads.push_back(add_load(g, p));
    CHECK(open_fds() <= before + 1);  // building opened nothing for good
    NodeId join = g.add("arrayjoin", loads, {{"across", std::int64_t(across)}});

    // Sample the descriptors as the run goes.
    Buffer out;
    int peak = 0;
    struct Collect final : Sink {
        Buffer& out;
        explicit Collect(Buffer& o) : out(o) {}
        void start(const ImageInfo& info, const SinkContext&) override {
            out = Buffer(nullptr, info.rect(), info.bands, info.format);
        }
        void consume(const ConstTile& t, std::shared_ptr<void>) override { copy_pixels(t, out.tile()); }
        void finish() override {}
        void abort() noexcept override {}
    } sink(out);
    g.execution.tile_w = g.execution.tile_h = 32;
    g.execution.threads = 2;
    RunOptions options;
    options.progress = [&](const Progress&) {
        peak = std::max(peak, open_fds());
        return true;
    };
    Evaluator(g).run(join, sink, options);
    // 8 cached, plus one per thread still reading an evicted image, plus slack.
    CHECK(peak - before <= 8 + 2 + 2);
    CHECK(open_fds() - before <= 8 + 1);

    // And the pixels are right though files were closed and reopened.
    std::vector<VImage> decoded;
    for (auto& p : paths) decoded.push_back(VImage::new_from_file(p.c_str()));
    CHECK(tt::max_abs_diff(out, VImage::arrayjoin(decoded, VImage::option()->set("across", across))) == 0);
}

TEST_CASE("load: a file rewritten between runs is read afresh") {
    tt::TempDir dir;
    std::string path = (dir / "x.png").string();
    tt::save(tt::pattern(50, 40, 3, VIPS_FORMAT_UCHAR, 1), path);
    {
        Graph g(standard_registry());
        NodeId n = add_load(g, path);
        CHECK(tt::max_abs_diff(tt::render(g, n, 32, 1), VImage::new_from_file(path.c_str())) == 0);
    }
    // Same size, other pixels, written under another name and renamed over.
    VImage second = tt::pattern(50, 40, 3, VIPS_FORMAT_UCHAR, 7);
    tt::save(second, dir / "y.png");
    std::filesystem::rename(dir / "y.png", path);
    Graph g(standard_registry());
    NodeId n = add_load(g, path);
    CHECK(tt::max_abs_diff(tt::render(g, n, 32, 1), second) == 0);
}

TEST_CASE("load: a JPEG read outside what expect() announced - and one file loaded twice - decodes as libvips does") {
    // The streaming decoder crops its decode to the columns expect() named.
    // A restart (rows above the window) must still make the columns asked
    // for when the advice has changed meanwhile, and two load ops of one
    // file each keep their own decoder and advice.
    tt::TempDir dir;
    const std::string path = tt::save(tt::pattern(640, 400, 3), dir / "in.jpg");
    const VImage want = VImage::new_from_file(path.c_str());
    Graph g(standard_registry());
    const Op& a = *g.node(add_load(g, path)).op;
    const Op& b = *g.node(add_load(g, path)).op;
    auto same_as_libvips = [&](const Op& op, const Rect& r) {
        Buffer got(nullptr, r, 3, Format::u8);
        op.compute(got.tile(), {});
        Buffer ref = tt::from_vips(want.extract_area(r.x, r.y, r.w, r.h));
        return std::memcmp(got.tile().data, ref.tile().data, std::size_t(r.w) * r.h * 3) == 0;
    };
    a.expect(Rect{0, 0, 160, 400});
    CHECK(same_as_libvips(a, Rect{0, 200, 64, 32}));
    // new advice: the right-hand columns; the next request is in the old
    // columns and above the window, so the decode restarts
    a.expect(Rect{400, 0, 240, 400});
    CHECK(same_as_libvips(a, Rect{16, 8, 64, 32}));
    CHECK(same_as_libvips(a, Rect{450, 40, 64, 32}));
    // b interleaves with a on other rows and columns: neither disturbs the other
    b.expect(Rect{400, 0, 240, 400});
    CHECK(same_as_libvips(b, Rect{500, 300, 100, 50}));
    CHECK(same_as_libvips(a, Rect{420, 100, 64, 32}));
    CHECK(same_as_libvips(b, Rect{520, 360, 100, 40}));
    a.release();
    b.release();
    CHECK(same_as_libvips(a, Rect{0, 0, 640, 400}));
}

TEST_CASE("load: the real Aperio slide opens with the untrusted loaders blocked - read by tiffload") {
    // libvips 8.14 flags openslideload untrusted and it outranks tiffload for
    // an SVS: the file is a TIFF, so libtiff's loader reads it instead of a
    // refusal (the pixels are tiffload's page 0)
    const std::string path = (tt::shared_dir() / "data/real/slide/CMU-1-Small-Region.svs").string();
    REQUIRE(std::filesystem::exists(path));
    Graph g(standard_registry());
    NodeId n = add_load(g, path);
    VImage oracle = VImage::tiffload(path.c_str());
    CHECK(g.info(n).width == oracle.width());
    CHECK(g.info(n).height == oracle.height());
    CHECK(tt::max_abs_diff(tt::render(g, n, 256, 2), oracle) == 0);
}
