// Deep Zoom (and Google/XYZ) tile pyramids in one pass.
//
// Geometry, as `vips dzsave` (libvips 8.14) lays it out, checked by
// tests/dzsave_test.cpp against the vips command:
//  - level sizes: each level is the one above halved, rounding up (a 5-pixel
//    wide level becomes 3), until 1x1 (dz) or until it fits one tile
//    (google); dz numbers levels from 0 = smallest, google's z likewise;
//  - a level's tiles step by tile_size; a dz tile reaches `overlap` pixels
//    beyond its step on each side, clipped to the level (edge tiles are
//    smaller); google tiles are always tile_size square, the part outside the
//    level filled with the background (255);
//  - a level pixel is the mean of the 2x2 pixels above it, (sum + 2) >> 2,
//    with an odd level's last column and row repeated: libvips's "region
//    shrink" mean. Our bits are libvips's: PNG tiles are identical (encoded
//    by libvips's own saver), and JPEG tiles too (libjpeg with jpegsave's
//    settings: quality, strip, subsampling below 90).
//
// Order and memory. Level 0 is asked for on a tile_size grid in vertical
// bands, like the pyramid TIFF writer (tiff_pyramid.cpp), so that what the
// pipeline keeps live (decode windows) is one band wide. Every level is held
// as blocks (a tile step square) that arrive, for level 0 from the
// evaluator, for the others by shrinking a 2x2 group of blocks of the level
// above as soon as the group is complete. A tile is cut as soon as every
// block it touches (its own and, with overlap, its 8 neighbours') is there,
// and a block is dropped as soon as its tiles are cut and it was shrunk. So
// what is held is about two block rows of a band per level, plus, with
// overlap, the blocks of a band's last column, which wait for the next
// band's first column (a column as tall as the level: about
// 2 x height x (tile_size + overlap) x bands bytes over all levels, e.g.
// 30 MB for a 20000-pixel-tall RGB image).
//
// Threads. Cutting and shrinking happen in the serial stage (consume); the
// cut tiles are queued and worker threads encode and write them in prepare()
// (two per call, more than the 4/3 tiles each level-0 tile brings on
// average, so the queue stays short); finish() does what is left.
//
// Files. Everything goes into a temporary folder beside the target
// (".NAME.tessera-PID-N.tmp"); finish() moves NAME_files (or google's NAME)
// and NAME.dzi into place, and only then deletes the old NAME_files. A run
// that fails or is cancelled removes the temporary folder and leaves the old
// output as it was.
#include "dzsave.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tessera/core/error.hpp"
#include "tile_codec.hpp"
#include "tiff_pyramid.hpp"
#include "vips_common.hpp"

namespace tessera::io {

namespace {

using namespace vipsio;
namespace fs = std::filesystem;

enum : std::uint8_t { kArrived = 1, kShrunk = 2, kCut = 4 };

struct Level {
    int width = 0, height = 0;
    int tiles_x = 0, tiles_y = 0;
    int number = 0;  // dz level / google z: 0 is the smallest
    std::unordered_map<std::uint64_t, Buffer> blocks;
    std::vector<std::uint8_t> state;  // per block (= per tile): kArrived, kShrunk, kCut
    std::uint8_t& at(int bx, int by) { return state[std::size_t(by) * tiles_x + bx]; }
};

std::uint64_t key(int bx, int by) { return (std::uint64_t(std::uint32_t(by)) << 32) | std::uint32_t(bx); }

// One tile's pixels, encoded as dzsave does (metadata stripped). JPEG
// through libjpeg straight (tile_codec.cpp), with libvips's settings: the
// bytes are the same, and a libvips save per tile costs its thread pool's
// hand-offs (a hundred futex calls a tile, doubling the run time); PNG and
// WebP through libvips's savers.
std::vector<std::uint8_t> encode_tile(const std::uint8_t* px, int w, int h, int bands, const std::string& suffix,
                                      int quality, const std::string& path) {
    if (suffix == "jpeg") {
        try {
            return encode_jpeg_file(px, w, h, bands, quality);
        } catch (const Error& e) {
            throw IoError(path, e.what());
        }
    }
    ImagePtr im(vips_image_new_from_memory(px, std::size_t(w) * h * bands, w, h, bands, VIPS_FORMAT_UCHAR));
    if (!im) throw_vips_error(path, "cannot wrap a tile for encoding");
    const char* saver = suffix == "png" ? "pngsave_buffer" : suffix == "webp" ? "webpsave_buffer" : "jpegsave_buffer";
    OperationPtr op(vips_operation_new(saver));
    if (!op) throw_vips_error(path, std::string("cannot make the libvips saver ") + saver);
    g_object_set(op.get(), "in", im.get(), nullptr);
    if (suffix != "png") set_if_present(op.get(), "Q", quality);
    set_if_present(op.get(), "strip", 1);
    run_uncached(op.get(), path, "cannot encode a " + suffix + " tile");
    VipsBlob* blob = nullptr;
    g_object_get(op.get(), "buffer", &blob, nullptr);
    vips_object_unref_outputs(VIPS_OBJECT(op.get()));
    if (!blob) throw IoError(path, "libvips returned no bytes for a tile");
    std::size_t n = 0;
    const auto* data = static_cast<const std::uint8_t*>(vips_blob_get(blob, &n));
    std::vector<std::uint8_t> out(data, data + n);
    vips_area_unref(VIPS_AREA(blob));
    return out;
}

void write_file(const fs::path& file, const void* data, std::size_t n, const std::string& target) {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (!f) throw IoError(target, "cannot create '" + file.string() + "': " + std::strerror(errno));
    bool ok = std::fwrite(data, 1, n, f) == n;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw IoError(target, "cannot write '" + file.string() + "'; is the disk full?");
}

class DzSink final : public Sink {
public:
    DzSink(std::string path, DzOptions o) : path_(std::move(path)), opt_(std::move(o)) {}
    ~DzSink() override { abort(); }

    std::optional<Point> tile_size() const override { return Point{opt_.tile_size, opt_.tile_size}; }

    // Vertical bands of a power-of-two number of tiles, top to bottom, the
    // lanes of a band row interleaved (as the pyramid TIFF writer).
    std::vector<std::uint32_t> tile_order(int cols, int rows) const override {
        return band_tile_order(cols, rows, band_tiles());
    }

    void start(const ImageInfo& info, int tile_w, int tile_h) override {
        abort();  // a second start begins afresh
        ensure_vips();
        info_ = info;
        const int T = opt_.tile_size;
        if (tile_w != T || tile_h != T) throw Error("dzsave: the evaluator did not use the sink's tile size");
        levels_.clear();
        const int limit = opt_.layout == DzOptions::Layout::dz ? 1 : T;
        for (int w = info.width, h = info.height;;) {
            Level l;
            l.width = w;
            l.height = h;
            l.tiles_x = (w + T - 1) / T;
            l.tiles_y = (h + T - 1) / T;
            l.state.assign(std::size_t(l.tiles_x) * l.tiles_y, 0);
            levels_.push_back(std::move(l));
            if (w <= limit && h <= limit) break;
            w = (w + 1) / 2;
            h = (h + 1) / 2;
        }
        for (std::size_t d = 0; d < levels_.size(); ++d) levels_[d].number = int(levels_.size() - 1 - d);

        fs::path target(path_);
        dir_ = target.parent_path().empty() ? fs::path(".") : target.parent_path();
        stem_ = target.stem().string();
        root_ = opt_.layout == DzOptions::Layout::dz ? stem_ + "_files" : stem_;
        static std::atomic<unsigned> counter{0};
        tmp_ = dir_ / ("." + stem_ + ".tessera-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".tmp");
        std::error_code ec;
        if (!fs::create_directory(tmp_, ec) || ec) {
            tmp_.clear();
            throw IoError(path_, "cannot create a temporary folder beside it (" + ec.message() +
                                     "); check that the folder is writable");
        }
        try {
            for (const Level& l : levels_) {
                fs::path d = tmp_ / root_ / std::to_string(l.number);
                fs::create_directories(d);
                if (opt_.layout == DzOptions::Layout::google)
                    for (int y = 0; y < l.tiles_y; ++y) fs::create_directory(d / std::to_string(y));
            }
        } catch (const fs::filesystem_error& e) {
            throw IoError(path_, std::string("cannot create the tile folders: ") + e.code().message());
        }
    }

    // Parallel: encode and write waiting tiles: two, or more while the
    // queue is long (a finished band row of blocks brings a burst).
    std::shared_ptr<void> prepare(const ConstTile&) override {
        run_jobs(2);
        while (queued() > kQueueTarget) run_jobs(1);
        return nullptr;
    }

    void write(const ConstTile& tile) override { consume(tile, prepare(tile)); }

    void consume(const ConstTile& tile, std::shared_ptr<void>) override {
        const int T = opt_.tile_size;
        Buffer b(account_, tile.rect, tile.bands, tile.format);
        copy_pixels(tile, b.tile());
        arrive(0, tile.rect.x / T, tile.rect.y / T, std::move(b));
    }

    void finish() override {
        if (tmp_.empty()) throw Error("dzsave: finish() without start()");
        // the tiles the workers did not get to, on a few threads
        {
            unsigned n = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
            std::vector<std::thread> pool;
            std::vector<std::exception_ptr> errors(n);
            for (unsigned i = 0; i < n; ++i)
                pool.emplace_back([this, i, &errors] {
                    try {
                        run_jobs(-1);
                    } catch (...) {
                        errors[i] = std::current_exception();
                    }
                });
            for (auto& t : pool) t.join();
            for (auto& e : errors)
                if (e) std::rethrow_exception(e);
        }
        for (const Level& l : levels_)
            for (std::uint8_t s : l.state)
                if (!(s & kCut)) throw Error("dzsave: internal: a tile of level " + std::to_string(l.number) + " was never cut");
        for (Level& l : levels_) l.blocks.clear();

        if (opt_.layout == DzOptions::Layout::dz) {
            write_dzi(tmp_ / (stem_ + ".dzi"));
        } else {
            // libvips writes the background tile google viewers show outside
            // the image
            const int T = opt_.tile_size;
            std::vector<std::uint8_t> blank(std::size_t(T) * T, std::uint8_t(std::clamp(opt_.background, 0.0, 255.0)));
            auto bytes = encode_tile(blank.data(), T, T, 1, "png", opt_.quality, path_);
            write_file(tmp_ / root_ / "blank.png", bytes.data(), bytes.size(), path_);
        }
        move_into_place();
    }

    void abort() noexcept override {
        {
            std::lock_guard lock(mu_);
            for (Job& j : queue_)
                if (account_) account_->release(j.pixels.size());
            queue_.clear();
        }
        for (Level& l : levels_) l.blocks.clear();
        if (!tmp_.empty()) {
            std::error_code ec;
            fs::remove_all(tmp_, ec);
            tmp_.clear();
        }
    }

private:
    // Level-0 tiles per band: a power of two, at least 2.
    int band_tiles() const {
        int n = 2;
        while (std::int64_t(n) * 2 * opt_.tile_size <= opt_.band_width) n *= 2;
        return n;
    }

    // The tiles (bx +- r, by +- r) touch block (bx, by).
    int reach() const { return opt_.overlap > 0 ? 1 : 0; }

    // Level rect of tile (tx, ty), overlap included, clipped.
    Rect tile_rect(const Level& l, int tx, int ty) const {
        const int T = opt_.tile_size, ov = opt_.overlap;
        return Rect{tx * T - ov, ty * T - ov, T + 2 * ov, T + 2 * ov}.intersect(Rect{0, 0, l.width, l.height});
    }

    // Block (bx, by) of level d is complete: cut the tiles it completes,
    // shrink it (with its 2x2 group) into the level below, drop what is
    // done with.
    void arrive(std::size_t d, int bx, int by, Buffer block) {
        Level& l = levels_[d];
        l.blocks.emplace(key(bx, by), std::move(block));
        l.at(bx, by) |= kArrived;
        if (d + 1 == levels_.size()) l.at(bx, by) |= kShrunk;  // nothing below
        const int r = reach();
        for (int ty = std::max(0, by - r); ty <= std::min(l.tiles_y - 1, by + r); ++ty)
            for (int tx = std::max(0, bx - r); tx <= std::min(l.tiles_x - 1, bx + r); ++tx) try_cut(d, tx, ty);
        if (d + 1 < levels_.size()) try_shrink(d, bx / 2, by / 2);
        try_drop(d, bx, by);
    }

    // Cuts tile (tx, ty) of level d if every block it touches is there.
    void try_cut(std::size_t d, int tx, int ty) {
        Level& l = levels_[d];
        if (l.at(tx, ty) & kCut) return;
        const int T = opt_.tile_size;
        const Rect r = tile_rect(l, tx, ty);
        const int bx0 = r.x / T, bx1 = (r.right() - 1) / T, by0 = r.y / T, by1 = (r.bottom() - 1) / T;
        for (int by = by0; by <= by1; ++by)
            for (int bx = bx0; bx <= bx1; ++bx)
                if (!(l.at(bx, by) & kArrived)) return;
        // google tiles are whole, padded with the background
        const bool whole = opt_.layout == DzOptions::Layout::google;
        const int w = whole ? T : r.w, h = whole ? T : r.h;
        const int bands = info_.bands;
        Job job;
        job.w = w;
        job.h = h;
        job.pixels.assign(std::size_t(w) * h * bands,
                          whole ? std::uint8_t(std::clamp(opt_.background, 0.0, 255.0)) : std::uint8_t(0));
        Tile out{Rect{r.x, r.y, w, h}, bands, Format::u8, reinterpret_cast<std::byte*>(job.pixels.data()),
                 std::size_t(w) * bands};
        for (int by = by0; by <= by1; ++by)
            for (int bx = bx0; bx <= bx1; ++bx) {
                const Buffer& b = l.blocks.at(key(bx, by));
                copy_pixels(b.view(), out.sub(b.rect().intersect(r)));
            }
        const std::string ext = "." + opt_.suffix;
        job.file = opt_.layout == DzOptions::Layout::dz
                       ? tmp_ / root_ / std::to_string(l.number) / (std::to_string(tx) + "_" + std::to_string(ty) + ext)
                       : tmp_ / root_ / std::to_string(l.number) / std::to_string(ty) / (std::to_string(tx) + ext);
        l.at(tx, ty) |= kCut;
        if (account_) account_->charge(job.pixels.size());
        {
            std::lock_guard lock(mu_);
            queue_.push_back(std::move(job));
        }
        for (int by = by0; by <= by1; ++by)
            for (int bx = bx0; bx <= bx1; ++bx) try_drop(d, bx, by);
    }

    // Block (px, py) of level d + 1 from its 2x2 group in level d, once the
    // group is complete: the mean of each 2x2, rounded half up, an odd
    // level's last column and row repeated (libvips's region shrink).
    void try_shrink(std::size_t d, int px, int py) {
        Level& l = levels_[d];
        Level& below = levels_[d + 1];
        if (below.at(px, py) & kArrived) return;
        const int T = opt_.tile_size;
        const int cx1 = std::min(2 * px + 1, l.tiles_x - 1), cy1 = std::min(2 * py + 1, l.tiles_y - 1);
        for (int cy = 2 * py; cy <= cy1; ++cy)
            for (int cx = 2 * px; cx <= cx1; ++cx)
                if (!(l.at(cx, cy) & kArrived)) return;
        const Rect pr = Rect{px * T, py * T, T, T}.intersect(Rect{0, 0, below.width, below.height});
        const int bands = info_.bands;
        // the 2w x 2h source, gathered from the group, edges repeated
        const int sw = 2 * pr.w, sh = 2 * pr.h, sx0 = 2 * pr.x, sy0 = 2 * pr.y;
        src_.resize(std::size_t(sw) * sh * bands);
        for (int sy = 0; sy < sh; ++sy) {
            const int y = std::min(sy0 + sy, l.height - 1);
            std::uint8_t* row = src_.data() + std::size_t(sy) * sw * bands;
            for (int cx = 2 * px; cx <= cx1; ++cx) {
                const Buffer& b = l.blocks.at(key(cx, y / T));
                const Rect& br = b.rect();
                std::memcpy(row + std::size_t(br.x - sx0) * bands, b.view().at(br.x, y), std::size_t(br.w) * bands);
            }
            if (sx0 + sw > l.width)  // odd width: repeat the last column
                std::memcpy(row + std::size_t(sw - 1) * bands, row + std::size_t(sw - 2) * bands, bands);
        }
        Buffer half(account_, pr, bands, Format::u8);
        const Tile o = half.tile();
        for (int y = 0; y < pr.h; ++y) {
            const std::uint8_t* a = src_.data() + std::size_t(2 * y) * sw * bands;
            const std::uint8_t* b = a + std::size_t(sw) * bands;
            std::uint8_t* q = o.row<std::uint8_t>(pr.y + y);
            for (int x = 0; x < pr.w; ++x, a += 2 * bands, b += 2 * bands, q += bands)
                for (int k = 0; k < bands; ++k)
                    q[k] = std::uint8_t((unsigned(a[k]) + a[bands + k] + b[k] + b[bands + k] + 2) >> 2);
        }
        for (int cy = 2 * py; cy <= cy1; ++cy)
            for (int cx = 2 * px; cx <= cx1; ++cx) l.at(cx, cy) |= kShrunk;
        arrive(d + 1, px, py, std::move(half));
        for (int cy = 2 * py; cy <= cy1; ++cy)
            for (int cx = 2 * px; cx <= cx1; ++cx) try_drop(d, cx, cy);
    }

    // Drops block (bx, by) of level d once it was shrunk and every tile it
    // touches is cut. Once it was shrunk and its own tile is cut, its
    // neighbours' tiles need only its edges (overlap wide): it is cut down
    // to what they still need (mostly its bottom rows, while the next row
    // of blocks arrives), which keeps about one row of whole blocks a band.
    void try_drop(std::size_t d, int bx, int by) {
        Level& l = levels_[d];
        if ((l.at(bx, by) & (kArrived | kShrunk)) != (kArrived | kShrunk)) return;
        auto it = l.blocks.find(key(bx, by));
        if (it == l.blocks.end()) return;
        const int r = reach();
        const Rect whole = it->second.rect();
        Rect need{0, 0, 0, 0};
        for (int ty = std::max(0, by - r); ty <= std::min(l.tiles_y - 1, by + r); ++ty)
            for (int tx = std::max(0, bx - r); tx <= std::min(l.tiles_x - 1, bx + r); ++tx) {
                if (l.at(tx, ty) & kCut) continue;
                if (tx == bx && ty == by) return;  // its own tile needs all of it
                Rect part = tile_rect(l, tx, ty).intersect(whole);
                need = need.unite(part);
            }
        if (need.empty()) {
            l.blocks.erase(it);
        } else if (std::int64_t(need.area()) * 2 <= std::int64_t(whole.area())) {
            Buffer edge(account_, need, info_.bands, info_.format);
            copy_pixels(it->second.view(), edge.tile());
            it->second = std::move(edge);
        }
    }

    static constexpr std::size_t kQueueTarget = 16;
    std::size_t queued() {
        std::lock_guard lock(mu_);
        return queue_.size();
    }

    struct Job {
        fs::path file;
        std::vector<std::uint8_t> pixels;
        int w = 0, h = 0;
    };
    // Encodes and writes up to `most` queued tiles (all: -1); any thread.
    void run_jobs(int most) {
        for (int i = 0; most < 0 || i < most; ++i) {
            Job job;
            {
                std::lock_guard lock(mu_);
                if (queue_.empty()) return;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            struct Release {
                MemoryAccount* a;
                std::size_t n;
                ~Release() {
                    if (a) a->release(n);
                }
            } release{account_, job.pixels.size()};
            auto bytes = encode_tile(job.pixels.data(), job.w, job.h, info_.bands, opt_.suffix, opt_.quality, path_);
            write_file(job.file, bytes.data(), bytes.size(), path_);
        }
    }

    // The .dzi, laid out as libvips writes it.
    void write_dzi(const fs::path& file) const {
        std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"\n"
                        "  Format=\"" + opt_.suffix + "\"\n"
                        "  Overlap=\"" + std::to_string(opt_.overlap) + "\"\n"
                        "  TileSize=\"" + std::to_string(opt_.tile_size) + "\"\n"
                        "  >\n"
                        "  <Size \n"
                        "    Height=\"" + std::to_string(info_.height) + "\"\n"
                        "    Width=\"" + std::to_string(info_.width) + "\"\n"
                        "  />\n"
                        "</Image>\n";
        write_file(file, s.data(), s.size(), path_);
    }

    // Old output aside (into the temporary folder), new one in, then the
    // temporary folder (with the old output) goes.
    void move_into_place() {
        const fs::path final_root = dir_ / root_, old = tmp_ / ".old";
        std::error_code ec;
        const bool had_old = fs::symlink_status(final_root, ec).type() != fs::file_type::not_found && !ec;
        if (had_old) {
            fs::rename(final_root, old, ec);
            if (ec)
                throw IoError(path_, "cannot move the old '" + final_root.string() + "' aside (" + ec.message() +
                                         "); check the folder's permissions");
        }
        fs::rename(tmp_ / root_, final_root, ec);
        if (ec) {
            std::error_code ec2;
            if (had_old) fs::rename(old, final_root, ec2);
            throw IoError(path_, "cannot move the finished tiles into place (" + ec.message() + ")");
        }
        if (opt_.layout == DzOptions::Layout::dz) {
            fs::rename(tmp_ / (stem_ + ".dzi"), path_, ec);
            if (ec) throw IoError(path_, "cannot move the finished .dzi into place (" + ec.message() + ")");
        }
        fs::remove_all(tmp_, ec);
        tmp_.clear();
    }

    std::string path_;
    DzOptions opt_;
    ImageInfo info_;
    std::vector<Level> levels_;
    std::vector<std::uint8_t> src_;  // shrink scratch (serial stage only)
    fs::path dir_, tmp_;
    std::string stem_, root_;
    std::mutex mu_;
    std::deque<Job> queue_;
};

}  // namespace

void check_dz_options(const ImageInfo& info, const DzOptions& o) {
    if (o.tile_size < 1 || o.tile_size > 8192)
        throw ParamError("tile_size", "use a tile size in [1, 8192] (vips dzsave's default is 254)");
    if (o.overlap < 0 || o.overlap > o.tile_size / 2)
        throw ParamError("overlap", "use an overlap in [0, tile_size / 2]; got " + std::to_string(o.overlap));
    if (o.layout == DzOptions::Layout::google && o.overlap != 0)
        throw ParamError("overlap", "google tiles do not overlap; use overlap 0 (the default for that layout)");
    if (o.suffix != "jpeg" && o.suffix != "png" && o.suffix != "webp")
        throw ParamError("suffix", "unknown tile format '" + o.suffix + "'; use jpeg, png or webp");
    if (o.quality < 1 || o.quality > 100) throw ParamError("quality", "use a quality in [1, 100]");
    if (info.format != Format::u8)
        throw ParamError("format", "tile pyramids hold 8-bit images and this one is " +
                                       std::string(format_name(info.format)) + "; cast it to u8 first");
    if (o.suffix == "jpeg" && info.bands != 1 && info.bands != 3)
        throw ParamError("suffix", "JPEG tiles hold 1 or 3 bands and the image has " + std::to_string(info.bands) +
                                       "; use suffix png (or webp), or drop the extra bands first");
    if (info.bands > 4)
        throw ParamError("suffix", "tiles hold 1 to 4 bands and the image has " + std::to_string(info.bands) +
                                       "; pick bands first");
    if (o.band_width < 32) throw ParamError("band_width", "use a band width of at least 32 pixels");
}

std::unique_ptr<Sink> make_dz_sink(const std::string& path, const DzOptions& options) {
    return std::make_unique<DzSink>(path, options);
}

}  // namespace tessera::io
