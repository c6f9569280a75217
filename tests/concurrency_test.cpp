// Shared state under real threads: many std::threads drive the io layer's
// caches and the pyramid writer's job queue at once. These are the tests the
// ThreadSanitizer build runs (tools/check.sh --sanitize); libtbb itself is
// not built with TSan, so the TBB pipeline's hand-offs are invisible to it
// and the evaluator's own runs are checked under ASan/UBSan instead.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support.hpp"
#include "tessera/core/compute_slots.hpp"

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

TEST_CASE("concurrency: sources waiting on another thread lend their compute slot and never more compute at once") {
    // One slot. A holds it and waits, in a WaitScope, for B to hold it:
    // only a lent slot lets B in (without the lending A gives up after 10 s
    // and the test fails; it does not hang). A takes it back only once B
    // has let go.
    {
        ComputeSlots one(1);
        std::atomic<bool> a_waits{false}, b_in{false}, b_out{false}, stuck{false}, a_after_b{false};
        std::thread a([&] {
            ComputeSlots::Hold hold(one);
            {
                WaitScope wait;
                a_waits = true;
                const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                while (!b_in && !stuck)
                    if (std::chrono::steady_clock::now() > deadline)
                        stuck = true;
                    else
                        std::this_thread::yield();
            }  // taken back: B has let go by now
            a_after_b = b_out.load();
        });
        std::thread b([&] {
            while (!a_waits && !stuck) std::this_thread::yield();  // A holds it, and waits
            ComputeSlots::Hold hold(one);
            b_in = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            b_out = true;
        });
        a.join();
        b.join();
        CHECK_FALSE(stuck.load());
        CHECK(a_after_b.load());
        CHECK(one.free_slots() == 1);
    }
    // Two slots, five threads: never more than two hold one at once, a
    // thread's second Hold is its first slot, and outside a Hold a
    // WaitScope lends nothing.
    ComputeSlots slots(2);
    std::atomic<int> holding{0}, most{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 5; ++t)
        threads.emplace_back([&] {
            for (int round = 0; round < 40; ++round) {
                ComputeSlots::Hold hold(slots);
                ComputeSlots::Hold again(slots);
                const int now = ++holding;
                for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {}
                std::this_thread::sleep_for(std::chrono::microseconds(100));
                --holding;
            }
        });
    for (auto& th : threads) th.join();
    CHECK(most.load() == 2);
    CHECK(slots.free_slots() == 2);
    {
        WaitScope idle;
        CHECK(slots.free_slots() == 2);
    }
}
