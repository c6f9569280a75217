// Shared state under real threads: many std::threads drive the io layer's
// caches and the pyramid writer's job queue at once. These are the tests the
// ThreadSanitizer build runs (tools/check.sh --sanitize); libtbb itself is
// not built with TSan, so the TBB pipeline's hand-offs are invisible to it
// and the evaluator's own runs are checked under ASan/UBSan instead.
#include <doctest/doctest.h>

#include <thread>

#include "support.hpp"

using namespace tessera;

TEST_CASE("concurrency: sources read by many threads at once give the same pixels") {
    tt::TempDir dir;
    Graph g(standard_registry());
    std::vector<NodeId> nodes;
    std::vector<vips::VImage> refs;
    for (int i = 0; i < 3; ++i) {
        vips::VImage im = tt::pattern(120 + 7 * i, 80, 3, VIPS_FORMAT_UCHAR, i);
        std::string jpg = (dir / ("s" + std::to_string(i) + ".jpg")).string();
        im.jpegsave(jpg.c_str());
        nodes.push_back(g.add("load", {}, {{"path", jpg}}));
        refs.push_back(vips::VImage::new_from_file(jpg.c_str()).copy_memory());
        nodes.push_back(tt::load_image(g, dir, im, "p" + std::to_string(i) + ".png"));
        refs.push_back(im);
    }
    set_io_limits({2, 512});  // fewer open files than sources: the caches evict while others read
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            Evaluator ev(g);
            for (int round = 0; round < 2; ++round)
                for (std::size_t k = 0; k < nodes.size(); ++k) {
                    std::size_t n = (k + t) % nodes.size();
                    // bands of rows top to bottom, as a run asks for them
                    for (int y = 0; y < 80; y += 20) {
                        Buffer b = ev.render(nodes[n], {t * 10, y, 80, 20});
                        if (tt::max_abs_diff(tt::from_vips(tt::to_vips(b)), refs[n].extract_area(t * 10, y, 80, 20)) !=
                            0)
                            ++wrong;
                    }
                }
        });
    for (auto& th : threads) th.join();
    set_io_limits({64, 512});
    CHECK(wrong == 0);
}

TEST_CASE("concurrency: the pyramid writer compresses on many threads and writes in order") {
    tt::TempDir dir;
    vips::VImage src = tt::pattern(700, 500, 3, VIPS_FORMAT_UCHAR, 4)
                           .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    std::string in = tt::save(src, dir / "in.png"), out = (dir / "out.tif").string();
    Graph g(standard_registry());
    NodeId n = g.add("load", {}, {{"path", in}});
    NodeId s = g.add("save", {n},
                     {{"path", out},
                      {"pyramid", true},
                      {"compression", std::string("deflate")},
                      {"tile_width", std::int64_t(64)},
                      {"tile_height", std::int64_t(64)},
                      {"band_width", std::int64_t(256)}});
    // drive the sink by hand: prepare on 4 threads, consume in order on this one
    auto sink = g.node(s).op->make_sink();
    sink->start(g.info(n), SinkContext{64, 64});
    Evaluator ev(g);
    const int cols = 11, rows = 8;
    std::vector<std::uint32_t> order = sink->tile_order(cols, rows);
    REQUIRE(order.size() == std::size_t(cols * rows));
    std::vector<Buffer> tiles(order.size());
    std::vector<std::shared_ptr<void>> prepared(order.size());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (std::size_t k = t; k < order.size(); k += 4) {
                int i = int(order[k]);
                Rect r = Rect{(i % cols) * 64, (i / cols) * 64, 64, 64}.intersect({0, 0, 700, 500});
                tiles[k] = ev.render(n, r);
                prepared[k] = sink->prepare(tiles[k].view());
            }
        });
    for (auto& th : threads) th.join();
    for (std::size_t k = 0; k < order.size(); ++k) sink->consume(tiles[k].view(), prepared[k]);
    sink->finish();
    // the same save run by the evaluator is the reference, page by page
    std::string ref = (dir / "ref.tif").string();
    Graph r(standard_registry());
    NodeId rn = r.add("load", {}, {{"path", in}});
    r.add("save", {rn},
          {{"path", ref},
           {"pyramid", true},
           {"compression", std::string("deflate")},
           {"tile_width", std::int64_t(64)},
           {"tile_height", std::int64_t(64)}});
    r.execution.threads = 1;  // (one thread: TBB's hand-offs stay out of the TSan run)
    Evaluator(r).run_sinks();
    CHECK(vips::VImage::new_from_file(out.c_str()).get_int("n-pages") == 5);  // 700x500 down to 43x31
    for (int level = 0; level < 5; ++level) {
        CAPTURE(level);
        auto page = [&](const std::string& f) {
            return vips::VImage::new_from_file(f.c_str(), vips::VImage::option()->set("page", level)).copy_memory();
        };
        CHECK(tt::max_abs_diff(tt::from_vips(page(out)), page(ref)) == 0);
    }
}
