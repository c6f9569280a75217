// The streaming writers' shared machinery (issue 15): the 2x2 kernels and
// their rules (core/shrink.hpp), level geometry (io/pyramid_layout), the
// encode queue (io/encode_queue.hpp), the typed shard messages
// (io/shard_messages) and OutputTarget's folder commit. The writers
// themselves are checked end to end by dzsave_test, cog_test, mpi_test and
// mpi_dz_test; these pin down each piece's own contract. (The io headers
// here are private to io/; the test includes them by path.)
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <type_traits>
#include <thread>

#include "../io/encode_queue.hpp"
#include "../io/pyramid_layout.hpp"
#include "../io/shard_messages.hpp"
#include "support.hpp"
#include "tessera/core/shrink.hpp"
#include "tessera/io/output_target.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

template <class T>
constexpr Format format_of() {
    if constexpr (std::is_same_v<T, std::uint8_t>) return Format::u8;
    if constexpr (std::is_same_v<T, std::uint16_t>) return Format::u16;
    if constexpr (std::is_same_v<T, std::int16_t>) return Format::i16;
    return Format::f32;
}

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// w x h pixels of one band, as a view.
template <class T>
ConstTile view(const std::vector<T>& px, int w, int h) {
    return ConstTile(Rect{0, 0, w, h}, 1, format_of<T>(), reinterpret_cast<const std::byte*>(px.data()),
                     std::size_t(w) * sizeof(T));
}
template <class T>
T shrunk(void (*kernel)(const ConstTile&, const Tile&), std::vector<T> px) {
    T out{};
    kernel(view(px, 2, 2), Tile{Rect{0, 0, 1, 1}, 1, format_of<T>(), reinterpret_cast<std::byte*>(&out), sizeof(T)});
    return out;
}
void box(const ConstTile& s, const Tile& d) { shrink_box(s, d, 2, 2, s.rect); }
void mean(const ConstTile& s, const Tile& d) { shrink2x2_mean(s, d); }

// The producers' courier of one process: sends queue up, receives take them.
class LoopCourier final : public Courier {
public:
    int rank() const override { return 0; }
    int ranks() const override { return 2; }
    void send(std::vector<std::byte> m) override {
        sent_ += m.size();
        q_.push_back(std::move(m));
    }
    void flush() override { ++flushes; }
    bool receive(std::vector<std::byte>& m, bool) override {
        if (q_.empty()) return false;
        m = std::move(q_.front());
        q_.pop_front();
        return true;
    }
    std::vector<std::byte> broadcast(std::vector<std::byte> b) override { return b; }
    std::uint64_t bytes_sent() const override { return sent_; }
    double seconds_waited() const override { return 0; }
    std::deque<std::vector<std::byte>> q_;
    std::uint64_t sent_ = 0;
    int flushes = 0;
};

}  // namespace

// The u8/u16 pyramid kernel runs in three passes along each row, and u8
// with 1-4 bands in groups of 8 output samples with SSSE3 where the CPU has
// it (see core/src/shrink.cpp); each output sample must still be (a + b + c
// + d + 2) >> 2 of its own four, for any band count, width (odd, one pixel,
// either side of a group's or a shuffle repeat's end) and offset of the
// tile in its source, with no byte written outside it.
template <class T>
void check_mean_rows(int bands) {
    std::uint32_t seed = 12345u + unsigned(bands);
    auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
    for (int w : {1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 47, 256}) {
        CAPTURE(w);
        const Rect src_rect{6, 4, 2 * w + 6, 8};  // the tile is at x 3..3+w of dst's frame
        const Rect dst_rect{5, 2, w, 3};          // rows 4..9 of src, columns 10..10+2w
        std::vector<T> in(std::size_t(src_rect.area()) * bands);
        for (T& v : in) v = T(next() >> 8);
        const ConstTile src(src_rect, bands, format_of<T>(), reinterpret_cast<const std::byte*>(in.data()),
                            std::size_t(src_rect.w) * bands * sizeof(T));
        const int stride = (w + 2) * bands;  // a guard column each side
        std::vector<T> out(std::size_t(stride) * dst_rect.h, T(7));
        const Tile dst(dst_rect, bands, format_of<T>(), reinterpret_cast<std::byte*>(out.data() + bands),
                       std::size_t(stride) * sizeof(T));
        shrink2x2_mean(src, dst);
        for (int y = 0; y < dst_rect.h; ++y) {
            for (int k = 0; k < bands; ++k) {
                CHECK(out[std::size_t(y) * stride + k] == T(7));
                CHECK(out[std::size_t(y) * stride + (w + 1) * bands + k] == T(7));
            }
            for (int x = 0; x < w; ++x)
                for (int k = 0; k < bands; ++k) {
                    auto at = [&](int sx, int sy) {
                        return std::uint64_t(
                            in[(std::size_t(sy - src_rect.y) * src_rect.w + (sx - src_rect.x)) * bands + k]);
                    };
                    const int sx = 2 * (dst_rect.x + x), sy = 2 * (dst_rect.y + y);
                    const auto want = T((at(sx, sy) + at(sx + 1, sy) + at(sx, sy + 1) + at(sx + 1, sy + 1) + 2) >> 2);
                    CHECK(out[std::size_t(y) * stride + (x + 1) * bands + k] == want);
                }
        }
    }
}

TEST_CASE("writers: the u8 and u16 2x2 mean is exact for every band count - width and offset") {
    for (bool simd : {true, false}) {
        CAPTURE(simd);
        const bool was = set_shrink_simd(simd);
        for (int bands : {1, 2, 3, 4, 5}) {
            CAPTURE(bands);
            check_mean_rows<std::uint8_t>(bands);
            check_mean_rows<std::uint16_t>(bands);
        }
        set_shrink_simd(was);
    }
}

TEST_CASE("writers: the 2x2 kernels follow their own libvips rules") {
    // vips_shrink rounds the column means, then their mean: (1+0+1)/2 = 1,
    // (0+0+1)/2 = 0, (1+0+1)/2 = 1; the region shrink rounds the mean of
    // four once: (1 + 2) >> 2 = 0
    CHECK(shrunk<std::uint8_t>(box, {1, 0, 0, 0}) == 1);
    CHECK(shrunk<std::uint8_t>(mean, {1, 0, 0, 0}) == 0);
    CHECK(shrunk<std::uint8_t>(mean, {1, 1, 0, 0}) == 1);  // 4 >> 2: half up
    CHECK(shrunk<std::uint8_t>(mean, {255, 255, 255, 254}) == 255);
    // signed: an arithmetic shift rounds half up (toward +inf), -2/4 -> 0,
    // -3/4 -> -1; vips_shrink's C division rounds toward zero
    CHECK(shrunk<std::int16_t>(mean, {-1, -1, 0, 0}) == 0);
    CHECK(shrunk<std::int16_t>(mean, {-1, -1, -1, 0}) == -1);
    CHECK(shrunk<std::int16_t>(box, {-1, -1, -1, 0}) == 0);
    CHECK(shrunk<float>(mean, {1, 2, 3, 5}) == 2.75f);

    // GDAL's AVERAGE: only the valid samples, nodata where none is; a
    // nodata no sample can hold (-9999 in u16) marks nothing
    std::uint16_t o = 1;
    const Tile out{Rect{0, 0, 1, 1}, 1, Format::u16, reinterpret_cast<std::byte*>(&o), 2};
    std::vector<std::uint16_t> px{0, 10, 0, 13};
    shrink2x2_pyramid(view(px, 2, 2), out, 0.0);
    CHECK(o == 12);  // (10 + 13) / 2 = 11.5, half up
    shrink2x2_pyramid(view(px, 2, 2), out, -9999.0);
    CHECK(o == 6);  // (23 + 2) >> 2
    px = {7, 7, 7, 7};
    shrink2x2_pyramid(view(px, 2, 2), out, 7.0);
    CHECK(o == 7);  // all nodata: nodata
    float f = 0;
    const std::vector<float> fp{std::nanf(""), 1, 2, std::nanf("")};
    shrink2x2_pyramid(view(fp, 2, 2), Tile{Rect{0, 0, 1, 1}, 1, Format::f32, reinterpret_cast<std::byte*>(&f), 4},
                      std::nan(""));
    CHECK(f == 1.5f);
}

TEST_CASE("writers: level sizes halve as tiffsave (down) and dzsave (up) do") {
    using io::Halving;
    // tiffsave: down to the level that fits one tile
    auto t = io::pyramid_levels(1000, 600, 256, 256, Halving::down, 256, 256);
    REQUIRE(t.size() == 3);
    CHECK(t[1].width == 500);
    CHECK(t[2].width == 250);
    CHECK(t[2].height == 150);
    CHECK(t[0].tiles_x == 4);
    CHECK(t[0].tiles_y == 3);
    // an odd size: 5 -> 2 -> 1 (down), 5 -> 3 -> 2 -> 1 (up)
    CHECK(io::pyramid_levels(5, 5, 1, 1, Halving::down, 1, 1).size() == 3);
    auto d = io::pyramid_levels(5, 5, 254, 254, Halving::up, 1, 1);
    REQUIRE(d.size() == 4);
    CHECK(d[1].width == 3);
    // dzsave: down to 1x1, ceil(log2(1000)) + 1 levels
    auto z = io::pyramid_levels(1000, 600, 254, 254, Halving::up, 1, 1);
    REQUIRE(z.size() == 11);
    CHECK(z[4].width == 63);
    CHECK(z[4].height == 38);
    // a long thin image stops halving (down) at one pixel high
    CHECK(io::pyramid_levels(4096, 3, 256, 256, Halving::down, 256, 256).size() == 2);

    // banded order: every tile once, a band's rows before the next band
    const io::BandLayout layout(256, 1024);
    CHECK(layout.band() == 4);
    const auto order = layout.order(10, 3);
    REQUIRE(order.size() == 30);
    std::vector<int> seen(30, 0);
    for (auto i : order) ++seen[i];
    CHECK(std::count(seen.begin(), seen.end(), 1) == 30);
    for (std::size_t k = 0; k < 12; ++k) CHECK(order[k] % 10 < 4);  // band 0 first
    // shares start at units of whole band rows
    const auto starts = layout.share_starts(10, 3, 2);
    CHECK(starts.front() == 0);
    CHECK(std::is_sorted(starts.begin(), starts.end()));
    CHECK(layout.unit_rows(10, 3, 2) == 1);  // 3 bands x 3 rows = 9 units < 16: rows of 1
}

TEST_CASE("writers: the encode queue keeps order - releases its charges - runs on the budget") {
    using Queue = io::EncodeQueue<int>;
    MemoryAccount account;
    std::atomic<int> running{0}, most{0};
    Queue kept(
        [&](int& v) {
            const int now = ++running;
            for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {}
            std::this_thread::sleep_for(std::chrono::microseconds((v * 37) % 200));
            v = -v;
            --running;
        },
        Queue::Order::kept);
    kept.start(&account, 3);
    for (int i = 1; i <= 120; ++i) kept.push(i, 100);
    CHECK(account.current() == 120 * 100);
    // workers take jobs as they come (prepare), out of order
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) workers.emplace_back([&] { kept.run(20); });
    for (auto& w : workers) w.join();
    std::vector<int> got;
    kept.retire([&](int& v) { got.push_back(v); });
    kept.drain();  // the rest, on 3 threads
    kept.retire([&](int& v) { got.push_back(v); });
    CHECK(kept.all_retired());
    REQUIRE(got.size() == 120);
    for (int i = 0; i < 120; ++i) CHECK(got[std::size_t(i)] == -(i + 1));
    CHECK(account.current() == 0);
    CHECK(most.load() <= 4);

    // drain never starts more threads than the budget; feed queues more
    most = 0;
    int fed = 0;
    Queue any(
        [&](int&) {
            const int now = ++running;
            for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {}
            std::this_thread::sleep_for(std::chrono::microseconds(300));
            --running;
        },
        Queue::Order::any);
    any.start(&account, 2);
    any.drain(
        [&] {
            if (fed == 40) return false;
            any.push(fed++, 10);
            return true;
        },
        4);
    CHECK(fed == 40);
    CHECK(any.queued() == 0);
    CHECK(most.load() <= 2);
    CHECK(account.current() == 0);

    // an error in a job is thrown by drain; what was queued is released
    Queue failing(
        [](int& v) {
            if (v == 3) throw Error("job 3 failed");
        },
        Queue::Order::any);
    failing.start(&account, 2);
    for (int i = 0; i < 50; ++i) failing.push(i, 10);
    CHECK(tt::error_of([&] { failing.drain(); }).find("job 3 failed") != std::string::npos);
    failing.clear();
    CHECK(account.current() == 0);
}

TEST_CASE("writers: shard messages arrive as they were sent") {
    LoopCourier c;
    io::ShardLink link(c, "test messages");
    link.send(io::ShareMessage{1, 5, 17});
    const std::vector<std::uint8_t> bytes{1, 2, 3, 250};
    link.send_tile(2, 9, bytes);
    // a block from a strided view: rows packed, frame kept
    std::vector<std::uint16_t> px(6 * 4);
    for (std::size_t i = 0; i < px.size(); ++i) px[i] = std::uint16_t(1000 + i);
    const ConstTile whole(Rect{10, 20, 6, 4}, 2, Format::u16, reinterpret_cast<const std::byte*>(px.data()), 6 * 2);
    link.send_block(3, 4, 5, whole.sub(Rect{11, 21, 2, 2}), Rect{10, 20, 3, 4}, false);
    link.send_end();
    CHECK(c.flushes == 1);

    auto m = link.receive(false);
    REQUIRE(m);
    const auto* s = std::get_if<io::ShareMessage>(&*m);
    REQUIRE(s);
    CHECK(s->rank == 1);
    CHECK(s->first == 5);
    CHECK(s->stop == 17);
    m = link.receive(false);
    const auto* t = std::get_if<io::TileMessage>(&*m);
    REQUIRE(t);
    CHECK(t->level == 2);
    CHECK(t->index == 9);
    REQUIRE(t->bytes.size() == 4);
    CHECK(std::uint8_t(t->bytes[3]) == 250);
    m = link.receive(false);
    const auto* b = std::get_if<io::BlockMessage>(&*m);
    REQUIRE(b);
    CHECK(b->level == 3);
    CHECK(b->bx == 4);
    CHECK(b->by == 5);
    CHECK(b->rect == Rect{11, 21, 2, 2});
    CHECK(b->whole == Rect{10, 20, 3, 4});
    CHECK(!b->last);
    const ConstTile got = b->tile(2, Format::u16);
    CHECK(got.row<std::uint16_t>(22)[1] == px[(22 - 20) * 6 + 1 * 2 + 1]);  // (11, 22), band 1
    CHECK(tt::error_of([&] { b->tile(3, Format::u16); }).find("wrong size") != std::string::npos);
    m = link.receive(false);
    CHECK(std::holds_alternative<io::EndMessage>(*m));
    CHECK(!link.receive(false));

    // a message cut short names what it was
    link.send_tile(0, 1, bytes);
    c.q_.back().resize(c.q_.back().size() - 2);
    CHECK(tt::error_of([&] { link.receive(false); }).find("test messages") != std::string::npos);
}

TEST_CASE("writers: a folder output replaces the old entries only when every new one is in") {
    tt::TempDir tmp;
    const std::string target = (tmp / "slide.dzi").string();
    fs::create_directory(tmp / "slide_files");
    write_text(tmp / "slide_files" / "old.jpeg", "old");
    write_text(tmp / "slide.dzi", "old dzi");
    {
        OutputTarget out(target, OutputTarget::Kind::folder);
        CHECK(fs::is_directory(out.temp()));
        fs::create_directory(fs::path(out.temp()) / "slide_files");
        write_text(fs::path(out.temp()) / "slide_files" / "new.jpeg", "new");
        write_text(fs::path(out.temp()) / "slide.dzi", "new dzi");
        out.commit({"slide_files", "slide.dzi"});
        CHECK(!fs::exists(out.temp()));
    }
    CHECK(fs::exists(tmp / "slide_files" / "new.jpeg"));
    CHECK(!fs::exists(tmp / "slide_files" / "old.jpeg"));
    CHECK(tt::slurp((tmp / "slide.dzi").string()) == "new dzi");

    // an entry that cannot be moved in: the old one is back, nothing left
    {
        OutputTarget out(target, OutputTarget::Kind::folder);
        const std::string e = tt::error_of([&] { out.commit({"slide_files"}); });  // never made
        CHECK(e.find("slide.dzi") != std::string::npos);
        CHECK(e.find("slide_files") != std::string::npos);
    }
    CHECK(fs::exists(tmp / "slide_files" / "new.jpeg"));
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path)) ++n;
    CHECK(n == 2);  // slide.dzi, slide_files: no temporary folder left
}
