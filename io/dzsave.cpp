// Deep Zoom (and Google/XYZ, IIIF level 0) tile pyramids in one pass, in a
// folder or a zip.
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
//  - iiif / iiif3 levels stop at one tile as google's, tiles are clipped as
//    dz's (never overlapping), and are named by their region in full-size
//    pixels and the size they are shown at (dzsave.c's tile_name);
//    info.json is vips's text (write_json), its scaleFactors included;
//  - skip_blanks: a tile none of whose samples (overlap included; google's
//    padding is background) differs from the background by more than the
//    threshold is not written (dzsave.c's region_tile_equal); the levels
//    below are shrunk from every pixel all the same;
//  - zip / szi: the entries vips 8.14 writes (NAME/NAME.dzi and
//    NAME/NAME_files/..., or NAME/... for the other layouts; szi adds
//    NAME/scan-properties.xml), stored. The tiles are encoded on the
//    workers as for a folder, and put into the archive in the serial stage
//    in the order they were cut (EncodeQueue::Order::kept), so that the
//    entries' order never depends on the threads.
//
// Order and memory. Level 0 is asked for on a tile_size grid in the banded
// order the pyramid TIFF writer uses (pyramid_layout.hpp), so that what the
// pipeline keeps live (decode windows) is one band wide. Every level is held
// as blocks (a tile step square) that arrive, for level 0 from the
// evaluator, for the others by shrinking a 2x2 group of blocks of the level
// above as soon as the group is complete. A tile is cut as soon as every
// block it touches (its own and, with overlap, its 8 neighbours') is there,
// and a block is dropped as soon as its tiles are cut and it was shrunk. So
// what is held is about two block rows of a band per level. With overlap,
// the blocks of a band's last column wait for the next band's first column
// (their tiles reach into it): a column as tall as the level, about
// 2 x height x tile_size x bands bytes over all levels (122 MB for an
// 80000-pixel-tall RGB image), which would make the memory grow with the
// image. Such a block, once all it waits for lies in a band not begun, is
// parked: written to an unlinked temporary file beside the output, and read
// back when the next band reaches its row. Only the bytes' place changes,
// so they are the same; what is held is then a few rows of blocks of a
// band per level, whatever the image's size (the test "memory is the same
// for an image 4x larger" checks it).
//
// Threads. Cutting and shrinking happen in the serial stage (consume); the
// cut tiles are queued (encode_queue.hpp) and worker threads encode and
// write them in prepare() (two per call, more than the 4/3 tiles each
// level-0 tile brings on average, so the queue stays short); finish() does
// what is left on the run's thread budget.
//
// Files. Everything goes into a temporary folder (zipped: a temporary
// archive, renamed onto NAME.zip when complete) beside the target (an
// OutputTarget folder; the next run removes one a killed run left);
// finish() moves NAME_files (or google's NAME) and NAME.dzi into place, and
// only then deletes the old NAME_files. A run that fails or is cancelled
// removes the temporary folder and leaves the old output as it was.
//
// Sharded runs (shard.hpp). A share is a run of whole units of the tile
// order, a unit being one band's rows [k R, (k + 1) R) (as the pyramid TIFF
// writer's), and every rank writes the tiles it can make from its share
// straight into the one temporary folder: rank 0 makes it and tells the
// others its name (Courier::broadcast), so no tile is ever copied between
// ranks as a file. What a rank can make follows from the pyramid being a
// quadtree of blocks: a block of level d is made of the 2^d x 2^d level-0
// blocks under it (an odd level's repeated edge comes from the same group),
// so its builder is the rank whose share holds all of those, and rank 0
// when they are split between ranks (a share boundary crosses it, or it is
// above the size of a unit). A tile is cut by the builder of every block it
// touches when that is one rank, else by rank 0. So a producer sends only
// what rank 0 needs for those: a whole block whose parent rank 0 builds,
// and the overlap strips (or whole blocks) of its blocks that tiles cut by
// rank 0 touch. Sending the source blocks rather than a producer's half of
// the shrink keeps odd tile sizes exact (a shrunk pixel may straddle two
// blocks). Rank 0 needs every rank's share to know which tiles are its own:
// each producer sends its share as its first message, before the broadcast.
// Rank 0 takes in pieces between its own tiles and, in finish(), until every
// producer's end, which a producer sends after its last file is closed;
// only then does rank 0 write the .dzi and move the folder into place, so a
// failed run (whose ranks are all ended, rank 0 removing the folder) leaves
// no partial output. Memory stays as bounded as one process's: a producer
// holds what a single run over its share would, and rank 0, besides its own
// share, the received blocks that wait for a neighbour from another rank
// (about one row or column of blocks a level per share boundary). The
// bytes are those of the single-process run: every tile is cut from the
// same pixels and encoded alone.
#include "dzsave.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <unordered_map>
#include <variant>
#include <vector>

#include "encode_queue.hpp"
#include "pyramid_layout.hpp"
#include "shard_messages.hpp"
#include "temp_beside.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/shrink.hpp"
#include "tessera/io/output_target.hpp"
#include "tile_codec.hpp"
#include "vips_common.hpp"
#include "zip_writer.hpp"

namespace tessera::io {

namespace {

using namespace vipsio;
namespace fs = std::filesystem;

enum : std::uint8_t { kArrived = 1, kShrunk = 2, kCut = 4 };

struct Level : LevelGrid {
    explicit Level(const LevelGrid& g) : LevelGrid(g), state(std::size_t(g.tiles_x) * g.tiles_y, 0) {}
    int number = 0;  // dz level / google z: 0 is the smallest
    std::unordered_map<std::uint64_t, Buffer> blocks;
    std::unordered_map<std::uint64_t, std::pair<Rect, std::uint64_t>> parked;  // in the park file: rect, offset
    std::vector<std::uint8_t> state;  // per block (= per tile): kArrived, kShrunk, kCut
    std::uint8_t& at(int bx, int by) { return state[std::size_t(by) * tiles_x + bx]; }
    std::uint8_t at(int bx, int by) const { return state[std::size_t(by) * tiles_x + bx]; }
};

std::uint64_t key(int bx, int by) { return (std::uint64_t(std::uint32_t(by)) << 32) | std::uint32_t(bx); }

// The blocks that wait for the next band (see the header), kept in an
// unlinked temporary file beside the output rather than in memory: the
// pages are the kernel's to keep or write out, never this process's. A
// freed slot is reused by the next block of its size (most are whole
// blocks), so the file stays about as large as what waits at once.
class ParkFile {
public:
    ParkFile() = default;
    ParkFile(const ParkFile&) = delete;
    ParkFile& operator=(const ParkFile&) = delete;
    ~ParkFile() { close(); }

    // Serial: the bytes of `t` (a whole Buffer's, rows packed); where.
    std::uint64_t put(const ConstTile& t, const std::string& target) {
        if (fd_ < 0) open(target);
        const std::size_t n = t.row_bytes() * std::size_t(t.rect.h);
        std::uint64_t at = end_;
        auto slot = free_.find(n);
        if (slot != free_.end() && !slot->second.empty()) {
            at = slot->second.back();
            slot->second.pop_back();
        } else {
            end_ += n;
        }
        for (std::size_t done = 0; done < n;) {
            const ssize_t w = ::pwrite(fd_, t.data + done, n - done, off_t(at + done));
            if (w <= 0)
                throw IoError(target, "cannot write the temporary file of waiting blocks beside it: " +
                                          std::string(std::strerror(errno)) + "; is the disk full?");
            done += std::size_t(w);
        }
        return at;
    }
    // Serial: reads back what put() wrote at `at` into `t` (packed rows of
    // the same size), and frees its slot.
    void take(std::uint64_t at, const Tile& t, const std::string& target) {
        const std::size_t n = t.row_bytes() * std::size_t(t.rect.h);
        for (std::size_t done = 0; done < n;) {
            const ssize_t r = ::pread(fd_, t.data + done, n - done, off_t(at + done));
            if (r <= 0)
                throw IoError(target, "cannot read back the temporary file of waiting blocks beside it: " +
                                          std::string(r < 0 ? std::strerror(errno) : "it is shorter than written"));
            done += std::size_t(r);
        }
        free_[n].push_back(at);
    }
    void close() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        end_ = 0;
        free_.clear();
    }

private:
    void open(const std::string& target) {
        const std::string name = temp_beside(target, ".blocks");
        fd_ = ::open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd_ < 0)
            throw IoError(target, "cannot create a temporary file beside it for the blocks that wait for the next "
                                  "band: " + std::string(std::strerror(errno)) + "; is the folder writable?");
        ::unlink(name.c_str());  // gone from the folder; freed when closed
    }

    int fd_ = -1;
    std::uint64_t end_ = 0;
    std::unordered_map<std::size_t, std::vector<std::uint64_t>> free_;  // freed slots by size
};

// One tile's pixels, encoded as dzsave does (metadata stripped). JPEG
// through libjpeg straight (tile_codec.cpp), with libvips's settings: the
// bytes are the same, and a libvips save per tile costs its thread pool's
// hand-offs (a hundred futex calls a tile, doubling the run time); PNG and
// WebP through libvips's savers.
std::vector<std::uint8_t> encode_tile(const std::uint8_t* px, int w, int h, int bands, const std::string& suffix,
                                      int quality, const std::string& path) {
    if (suffix == "jpeg" || suffix == "jpg") {
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

// A cut tile waiting to be encoded and written: to `file` (a folder), or
// as the archive's entry `file` (zipped: its bytes kept until the serial
// stage stores them, in the order the tiles were cut).
struct Job {
    fs::path file;
    std::vector<std::uint8_t> pixels;
    std::vector<std::uint8_t> bytes;
    int w = 0, h = 0;
    bool make_folders = false;  // iiif: every tile has folders of its own
};

// An ISO 8601 UTC time with microseconds, as libvips stamps the properties
// it writes ("2026-12-01T13:13:57.190126Z").
std::string iso8601_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, int(us));
    return buf;
}

class DzSink final : public ShardedSink {
public:
    DzSink(std::string path, DzOptions o)
        : path_(std::move(path)),
          opt_(std::move(o)),
          layout_(opt_.tile_size, opt_.band_width),
          // an archive's entries go in in the order the tiles were cut, so
          // that its bytes do not depend on which thread finished first
          queue_([this](Job& j) { run_job(j); },
                 opt_.zipped() ? EncodeQueue<Job>::Order::kept : EncodeQueue<Job>::Order::any) {}
    ~DzSink() override { abort(); }

    std::optional<Point> tile_size() const override { return Point{opt_.tile_size, opt_.tile_size}; }

    std::vector<std::uint32_t> tile_order(int cols, int rows) const override { return layout_.order(cols, rows); }

    // Units of whole band rows, as the pyramid TIFF writer's: any cut gives
    // the same bytes (see the header), taller units only send less.
    std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const override {
        return layout_.share_starts(cols, rows, ranks);
    }

    void start(const ImageInfo& info, const SinkContext& context) override {
        abort();  // a second start begins afresh
        ensure_vips();
        info_ = info;
        part_.start(context, "Deep Zoom pieces");
        queue_.start(part_.account, context.threads);
        const int T = opt_.tile_size;
        if (context.tile_w != T || context.tile_h != T)
            throw Error("dzsave: the evaluator did not use the sink's tile size");
        // the levels: halved (rounded up) down to 1x1 (dz) or one tile (the others)
        const int limit = opt_.google_like() ? T : 1;
        levels_.clear();
        for (const LevelGrid& g : pyramid_levels(info.width, info.height, T, T, Halving::up, limit, limit))
            levels_.emplace_back(g);
        for (std::size_t d = 0; d < levels_.size(); ++d) levels_[d].number = int(levels_.size() - 1 - d);

        fs::path target(dz_target(path_, opt_));
        dir_ = target.parent_path().empty() ? fs::path(".") : target.parent_path();
        stem_ = target.stem().string();
        name_ = target.filename().string();  // the .dzi as named, its extension's case kept
        root_ = opt_.layout == DzOptions::Layout::dz ? stem_ + "_files" : stem_;
        // zipped, everything is under NAME/ (as vips dzsave 8.14 writes
        // it): NAME/NAME.dzi and NAME/NAME_files/..., or NAME/Z/Y/X...
        entry_root_ = opt_.layout == DzOptions::Layout::dz ? stem_ + "/" + root_ : root_;
        me_ = 0;
        builder_.clear();
        if (!part_.share) return make_tmp();
        // sharded: rank 0 makes the folder; a failure is thrown after the
        // broadcast, so that the producers are not left waiting in it
        std::exception_ptr failed;
        if (!part_.producer()) try {
                make_tmp();
            } catch (...) {
                failed = std::current_exception();
                abort();
            }
        join_share(failed);
    }

    // The temporary folder with every level's folder in it (zipped: the
    // temporary archive).
    void make_tmp() {
        if (opt_.zipped()) {
            const std::string target = dz_target(path_, opt_);
            out_.emplace(target, OutputTarget::Kind::file);
            tmp_ = out_->temp();
            zip_.emplace(tmp_.string(), target, std::time(nullptr));
            return;
        }
        out_.emplace(path_, OutputTarget::Kind::folder);
        tmp_ = out_->temp();
        if (opt_.layout == DzOptions::Layout::iiif || opt_.layout == DzOptions::Layout::iiif3) {
            fs::create_directories(tmp_ / root_);  // each tile makes its own folders
            return;
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
        queue_.run(2);
        while (queue_.queued() > kQueueTarget) queue_.run(1);
        return nullptr;
    }

    void consume(const ConstTile& tile, std::shared_ptr<void>) override {
        const int T = opt_.tile_size;
        band_now_ = std::max(band_now_, tile.rect.x / T / layout_.band());
        Buffer b(part_.account, tile.rect, tile.bands, tile.format);
        copy_pixels(tile, b.tile());
        arrive(0, tile.rect.x / T, tile.rect.y / T, std::move(b));
        if (part_.writer()) receive_parts(false);  // keeps the producers' sends moving
        store_done();
    }

    void finish() override {
        if (tmp_.empty()) throw Error("dzsave: finish() without start()");
        finish_tiles();
        for (const Level& l : levels_)
            for (std::uint8_t s : l.state)
                if (!(s & kCut))
                    throw Error("dzsave: internal: a tile of level " + std::to_string(l.number) + " was never cut");
        for (Level& l : levels_) {
            l.blocks.clear();
            l.parked.clear();
        }
        park_.close();
        if (part_.producer()) {  // every file of this rank is closed: rank 0 may move the folder
            part_.link->send_end();
            tmp_.clear();
            return;
        }

        store_done();
        if (!queue_.all_retired()) throw Error("dzsave: internal: a tile was never stored in the archive");

        // the descriptor: NAME.dzi (dz), blank.png (google: the background
        // tile viewers show outside the image), info.json (iiif)
        if (opt_.layout == DzOptions::Layout::dz) {
            put(zip_ ? stem_ + "/" + stem_ + ".dzi" : name_, dzi_text());
        } else if (opt_.layout == DzOptions::Layout::google) {
            const int T = opt_.tile_size;
            std::vector<std::uint8_t> blank(std::size_t(T) * T, std::uint8_t(std::clamp(opt_.background, 0.0, 255.0)));
            auto bytes = encode_tile(blank.data(), T, T, 1, "png", opt_.quality, path_);
            put(root_ + "/blank.png", std::string(bytes.begin(), bytes.end()));
        } else {
            put(root_ + "/info.json", info_json());
        }
        if (zip_) {
            if (opt_.container == DzOptions::Container::szi) put(stem_ + "/scan-properties.xml", scan_properties());
            zip_->close();
            zip_.reset();
            out_->commit();  // the archive renamed onto NAME.zip
        } else if (opt_.layout == DzOptions::Layout::dz) {
            // the old output aside, the new one in, then the old one goes
            out_->commit({root_, name_});
        } else {
            out_->commit({root_});
        }
        out_.reset();
        tmp_.clear();
    }

    void abort() noexcept override {
        queue_.clear();
        for (Level& l : levels_) {
            l.blocks.clear();
            l.parked.clear();
        }
        park_.close();
        band_now_ = 0;
        zip_.reset();  // closed before its temporary file is removed
        out_.reset();  // rank 0's folder, with the producers' files in it
        tmp_.clear();
        ends_ = 0;
    }

private:
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
        levels_[d].blocks.emplace(key(bx, by), std::move(block));
        arrived(d, bx, by);
    }
    void arrived(std::size_t d, int bx, int by) {
        Level& l = levels_[d];
        l.at(bx, by) |= kArrived;
        // nothing below, or another rank's block below
        const bool shrink_here = d + 1 < levels_.size() && builder(d + 1, bx / 2, by / 2) == me_;
        if (!shrink_here) l.at(bx, by) |= kShrunk;
        if (part_.producer()) send_pieces(d, bx, by);
        const int r = reach();
        for (int ty = std::max(0, by - r); ty <= std::min(l.tiles_y - 1, by + r); ++ty)
            for (int tx = std::max(0, bx - r); tx <= std::min(l.tiles_x - 1, bx + r); ++tx) try_cut(d, tx, ty);
        if (shrink_here) try_shrink(d, bx / 2, by / 2);
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
        l.at(tx, ty) |= kCut;
        Job job;
        job.w = w;
        job.h = h;
        job.pixels.assign(std::size_t(w) * h * bands,
                          whole ? std::uint8_t(std::clamp(opt_.background, 0.0, 255.0)) : std::uint8_t(0));
        Tile out{Rect{r.x, r.y, w, h}, bands, Format::u8, reinterpret_cast<std::byte*>(job.pixels.data()),
                 std::size_t(w) * bands};
        for (int by = by0; by <= by1; ++by)
            for (int bx = bx0; bx <= bx1; ++bx) {
                const Buffer& b = held(d, bx, by);
                copy_pixels(b.view(), out.sub(b.rect().intersect(r)));
            }
        // a blank tile (vips's rule: every sample, overlap and google's
        // padding included, within the threshold of the background) is cut
        // but not written
        if (!blank(job.pixels)) {
            const std::string rel = tile_name(d, tx, ty);
            job.file = zip_ ? fs::path(entry_root_ + "/" + rel) : tmp_ / root_ / rel;
            job.make_folders =
                !zip_ && (opt_.layout == DzOptions::Layout::iiif || opt_.layout == DzOptions::Layout::iiif3);
            const std::size_t n = job.pixels.size();
            queue_.push(std::move(job), n);
        }
        for (int by = by0; by <= by1; ++by)
            for (int bx = bx0; bx <= bx1; ++bx) try_drop(d, bx, by);
    }

    bool blank(const std::vector<std::uint8_t>& px) const {
        if (opt_.skip_blanks < 0) return false;
        const int ink = int(std::clamp(opt_.background, 0.0, 255.0));
        for (std::uint8_t v : px)
            if (std::abs(int(v) - ink) > opt_.skip_blanks) return false;
        return true;
    }

    // Tile (tx, ty) of level d (0: the full size), relative to the root,
    // as vips dzsave names it.
    std::string tile_name(std::size_t d, int tx, int ty) const {
        const Level& l = levels_[d];
        const std::string ext = "." + opt_.suffix;
        auto num = [](std::int64_t v) { return std::to_string(v); };
        switch (opt_.layout) {
            case DzOptions::Layout::dz: return num(l.number) + "/" + num(tx) + "_" + num(ty) + ext;
            case DzOptions::Layout::google: return num(l.number) + "/" + num(ty) + "/" + num(tx) + ext;
            case DzOptions::Layout::iiif:
            case DzOptions::Layout::iiif3: break;
        }
        // IIIF: the region in full-size pixels (the level's tile scaled up,
        // clipped to the image), then the size it is shown at, then the
        // rotation: "x,y,w,h/w,/0/default.jpg" (IIIF 3: "w,h").
        const std::int64_t T = opt_.tile_size, sub = std::int64_t(1) << d;
        const std::int64_t left = tx * T * sub, top = ty * T * sub;
        const std::int64_t w = std::min(T * sub, info_.width - left), h = std::min(T * sub, info_.height - top);
        const std::int64_t sw = std::min(T, l.width - tx * T), sh = std::min(T, l.height - ty * T);
        const std::string size = opt_.layout == DzOptions::Layout::iiif3 ? num(sw) + "," + num(sh) : num(sw) + ",";
        return num(left) + "," + num(top) + "," + num(w) + "," + num(h) + "/" + size + "/0/default" + ext;
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
        for (int cy = 2 * py; cy <= cy1; ++cy)
            for (int cx = 2 * px; cx <= cx1; ++cx) held(d, cx, cy);  // parked ones back in memory
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
        Buffer half(part_.account, pr, bands, Format::u8);
        shrink2x2_mean(ConstTile(Rect{sx0, sy0, sw, sh}, bands, Format::u8,
                                 reinterpret_cast<const std::byte*>(src_.data()), std::size_t(sw) * bands),
                       half.tile());
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
    // What is left, once all it waits for is in a band not begun (a band's
    // last column waits for the next band's first), is parked.
    void try_drop(std::size_t d, int bx, int by) {
        Level& l = levels_[d];
        if (!(l.at(bx, by) & kArrived)) return;
        auto it = l.blocks.find(key(bx, by));
        if (it == l.blocks.end()) return;
        if (l.at(bx, by) & kShrunk) {
            const int r = reach();
            const Rect whole = it->second.rect();
            Rect need{0, 0, 0, 0};
            bool own = false;  // its own tile needs all of it
            for (int ty = std::max(0, by - r); ty <= std::min(l.tiles_y - 1, by + r) && !own; ++ty)
                for (int tx = std::max(0, bx - r); tx <= std::min(l.tiles_x - 1, bx + r) && !own; ++tx) {
                    if (l.at(tx, ty) & kCut) continue;
                    own = tx == bx && ty == by;
                    need = need.unite(tile_rect(l, tx, ty).intersect(whole));
                }
            if (!own && need.empty()) {
                l.blocks.erase(it);
                return;
            }
            if (!own && std::int64_t(need.area()) * 2 <= std::int64_t(whole.area())) {
                Buffer edge(part_.account, need, info_.bands, info_.format);
                copy_pixels(it->second.view(), edge.tile());
                it->second = std::move(edge);
            }
        }
        if (waits_for_later_band(d, bx, by)) {
            l.parked.emplace(key(bx, by), std::make_pair(it->second.rect(), park_.put(it->second.view(), path_)));
            l.blocks.erase(it);
        }
    }

    // Whether everything block (bx, by) of level d still waits for (the
    // tiles it touches that are not cut, the shrink of its 2x2 group) waits
    // for a block of a band the evaluator has not begun. Such a block would
    // stay in memory for a whole band: the last column of every band of
    // every level, as tall as the image (2 x height x tile_size x bands
    // bytes), so it waits in the park file instead.
    bool waits_for_later_band(std::size_t d, int bx, int by) const {
        const Level& l = levels_[d];
        const int T = opt_.tile_size;
        // block column x of level d begins in level-0 band (x 2^d) / band
        auto later = [&](int x) { return (std::int64_t(x) << d) / layout_.band() > band_now_; };
        // (a tile or shrink waits for a later band when any block it lacks
        // is in one, whatever else it lacks)
        bool waits = false;
        if (!(l.at(bx, by) & kShrunk)) {
            const int cx1 = std::min((bx & ~1) + 1, l.tiles_x - 1), cy1 = std::min((by & ~1) + 1, l.tiles_y - 1);
            bool late = false;
            for (int cy = by & ~1; cy <= cy1; ++cy)
                for (int cx = bx & ~1; cx <= cx1; ++cx) late = late || (!(l.at(cx, cy) & kArrived) && later(cx));
            if (!late) return false;
            waits = true;
        }
        const int r = reach();
        for (int ty = std::max(0, by - r); ty <= std::min(l.tiles_y - 1, by + r); ++ty)
            for (int tx = std::max(0, bx - r); tx <= std::min(l.tiles_x - 1, bx + r); ++tx) {
                if (l.at(tx, ty) & kCut) continue;
                const Rect tr = tile_rect(l, tx, ty);
                bool late = false;
                for (int y = tr.y / T; y <= (tr.bottom() - 1) / T; ++y)
                    for (int x = tr.x / T; x <= (tr.right() - 1) / T; ++x)
                        late = late || (!(l.at(x, y) & kArrived) && later(x));
                if (!late) return false;
                waits = true;
            }
        return waits;
    }

    // Block (bx, by) of level d, in memory (a parked one is read back).
    Buffer& held(std::size_t d, int bx, int by) {
        Level& l = levels_[d];
        const std::uint64_t k = key(bx, by);
        if (auto it = l.blocks.find(k); it != l.blocks.end()) return it->second;
        auto p = l.parked.find(k);
        if (p == l.parked.end())
            throw Error("dzsave: internal: block " + std::to_string(bx) + "," + std::to_string(by) + " of level " +
                        std::to_string(l.number) + " is needed and was dropped");
        Buffer b(part_.account, p->second.first, info_.bands, Format::u8);
        park_.take(p->second.second, b.tile(), path_);
        l.parked.erase(p);
        return l.blocks.emplace(k, std::move(b)).first->second;
    }

    // --- Sharded runs ---
    static constexpr int kOther = -2;  // a producer's mark for a level-0 tile of another rank

    // The rank that builds block (bx, by) of level d (see the header); a
    // producer knows only whether it is itself.
    int builder(std::size_t d, int bx, int by) const {
        return builder_.empty() ? 0 : builder_[d][std::size_t(by) * levels_[d].tiles_x + bx];
    }
    // The rank that cuts tile (tx, ty) of level d.
    int cutter(std::size_t d, int tx, int ty) const {
        const int T = opt_.tile_size;
        const Rect r = tile_rect(levels_[d], tx, ty);
        const int bx0 = r.x / T, bx1 = (r.right() - 1) / T, by0 = r.y / T, by1 = (r.bottom() - 1) / T;
        const int v = builder(d, bx0, by0);
        for (int by = by0; by <= by1; ++by)
            for (int bx = bx0; bx <= bx1; ++bx)
                if (builder(d, bx, by) != v) return 0;
        return v;
    }

    // start() of a sharded run: the shares to rank 0, the folder's name to
    // the producers, then who builds and cuts what.
    void join_share(std::exception_ptr failed) {
        Courier& c = *part_.share->courier;
        me_ = c.rank();
        const int cols = levels_[0].tiles_x, rows = levels_[0].tiles_y;
        const std::vector<std::uint32_t> order = layout_.order(cols, rows);
        std::vector<int> owner(order.size(), part_.producer() ? kOther : 0);
        auto own = [&](int rank, std::uint64_t first, std::uint64_t stop) {
            if (first > stop || stop > order.size()) throw Error("dzsave: internal: a share outside the tile order");
            for (std::uint64_t k = first; k < stop; ++k) owner[order[k]] = rank;
        };
        own(me_, part_.share->first, part_.share->last);
        if (part_.producer()) {
            part_.link->send(ShareMessage{me_, part_.share->first, part_.share->last});
        } else {
            for (int k = 1; k < c.ranks(); ++k) {
                const auto m = part_.link->receive(true);
                const auto* h = m ? std::get_if<ShareMessage>(&*m) : nullptr;
                if (!h || h->rank <= 0 || h->rank >= c.ranks())
                    throw Error("dzsave: internal: a rank's first message is not its share");
                own(h->rank, h->first, h->stop);
            }
        }
        const std::string name = part_.producer() || failed ? std::string() : tmp_.filename().string();
        std::vector<std::byte> bytes(name.size());
        if (!name.empty()) std::memcpy(bytes.data(), name.data(), name.size());
        bytes = c.broadcast(std::move(bytes));
        if (failed) std::rethrow_exception(failed);
        if (bytes.empty()) throw IoError(path_, "rank 0 could not make the temporary folder beside it (see its error)");
        if (part_.producer()) tmp_ = dir_ / std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        // a block is its 2x2 group's builder when they agree, else rank 0's
        builder_.assign(levels_.size(), {});
        builder_[0] = std::move(owner);
        for (std::size_t d = 1; d < levels_.size(); ++d) {
            const Level &l = levels_[d], &up = levels_[d - 1];
            builder_[d].assign(std::size_t(l.tiles_x) * l.tiles_y, 0);
            for (int py = 0; py < l.tiles_y; ++py)
                for (int px = 0; px < l.tiles_x; ++px) {
                    int v = builder(d - 1, 2 * px, 2 * py);
                    for (int cy = 2 * py; cy <= std::min(2 * py + 1, up.tiles_y - 1); ++cy)
                        for (int cx = 2 * px; cx <= std::min(2 * px + 1, up.tiles_x - 1); ++cx)
                            if (builder(d - 1, cx, cy) != v) v = 0;
                    builder_[d][std::size_t(py) * l.tiles_x + px] = v;
                }
        }
        // another rank's tiles count as cut here
        for (std::size_t d = 0; d < levels_.size(); ++d)
            for (int ty = 0; ty < levels_[d].tiles_y; ++ty)
                for (int tx = 0; tx < levels_[d].tiles_x; ++tx)
                    if (cutter(d, tx, ty) != me_) levels_[d].at(tx, ty) |= kCut;
    }

    // Producer: block (bx, by) of level d was made here; sends rank 0 what
    // it needs of it: all of it when rank 0 shrinks it, else the parts of
    // the tiles rank 0 cuts (overlap strips, or all of it for its own tile).
    void send_pieces(std::size_t d, int bx, int by) {
        const Level& l = levels_[d];
        const Buffer& b = held(d, bx, by);
        const Rect whole = b.rect();
        std::vector<Rect> parts;
        if (d + 1 < levels_.size() && builder(d + 1, bx / 2, by / 2) != me_) {
            parts.push_back(whole);
        } else {
            const int r = reach();
            for (int ty = std::max(0, by - r); ty <= std::min(l.tiles_y - 1, by + r); ++ty)
                for (int tx = std::max(0, bx - r); tx <= std::min(l.tiles_x - 1, bx + r); ++tx)
                    if (cutter(d, tx, ty) != me_) {
                        const Rect p = tile_rect(l, tx, ty).intersect(whole);
                        if (!p.empty()) parts.push_back(p);
                    }
            // a corner inside a strip goes with the strip
            std::vector<Rect> kept;
            for (std::size_t i = 0; i < parts.size(); ++i) {
                bool inside = false;
                for (std::size_t j = 0; j < parts.size() && !inside; ++j)
                    inside = j != i && parts[j].contains(parts[i]) && (parts[j] != parts[i] || j < i);
                if (!inside) kept.push_back(parts[i]);
            }
            parts = std::move(kept);
        }
        if (parts.empty()) return;
        Rect u{0, 0, 0, 0};
        for (const Rect& p : parts) u = u.unite(p);
        for (std::size_t i = 0; i < parts.size(); ++i)
            part_.link->send_block(std::uint32_t(d), bx, by, b.view().sub(parts[i]), u, i + 1 == parts.size());
    }

    // Rank 0: takes in what the producers sent (wait: at least one message),
    // while few cut tiles wait for encoding: the rest waits at the producers
    // (Courier::send holds them back), so that rank 0's memory stays bounded
    // however fast they send.
    void receive_parts(bool wait) {
        while (queue_.queued() < kReceiveRoom) {
            const auto m = part_.link->receive(wait);
            if (!m) break;
            wait = false;
            if (std::holds_alternative<EndMessage>(*m))
                ++ends_;
            else if (const auto* b = std::get_if<BlockMessage>(&*m))
                take_piece(*b);
            else
                throw Error("dzsave: internal: an unexpected message from another rank");
        }
    }
    void take_piece(const BlockMessage& h) {
        const int T = opt_.tile_size, bands = info_.bands;
        const Rect &r = h.rect, &u = h.whole;
        if (h.level >= levels_.size()) throw Error("dzsave: internal: a piece of a level that does not exist");
        Level& l = levels_[h.level];
        const Rect block = Rect{h.bx * T, h.by * T, T, T}.intersect(Rect{0, 0, l.width, l.height});
        if (h.bx < 0 || h.by < 0 || h.bx >= l.tiles_x || h.by >= l.tiles_y || r.empty() || !u.contains(r) ||
            !block.contains(u) || (l.at(h.bx, h.by) & kArrived))
            throw Error("dzsave: internal: a malformed piece of a block from another rank");
        const ConstTile px = h.tile(bands, Format::u8);
        auto [it, fresh] = l.blocks.try_emplace(key(h.bx, h.by));
        if (fresh) it->second = Buffer(part_.account, u, bands, Format::u8);
        copy_pixels(px, it->second.tile());
        if (h.last) arrived(h.level, h.bx, h.by);
    }

    // The tiles the workers did not get to, on the run's threads; rank 0
    // takes in the producers' parts meanwhile, until each has ended, while
    // few cut tiles wait (see receive_parts).
    void finish_tiles() {
        if (!part_.writer()) return queue_.drain();
        queue_.drain(
            [this] {
                if (ends_ >= part_.link->ranks() - 1) return false;
                receive_parts(true);
                return true;
            },
            kReceiveRoom);
    }

    static constexpr std::size_t kQueueTarget = 16;
    static constexpr std::size_t kReceiveRoom = 2 * kQueueTarget;

    // A queued tile, encoded and written (any thread); zipped, encoded
    // only: store_done() puts it in the archive.
    void run_job(Job& job) {
        auto bytes = encode_tile(job.pixels.data(), job.w, job.h, info_.bands, opt_.suffix, opt_.quality, path_);
        if (zip_) {
            job.bytes = std::move(bytes);
            job.pixels = {};
            return;
        }
        if (job.make_folders) {
            std::error_code ec;
            fs::create_directories(job.file.parent_path(), ec);
            if (ec)
                throw IoError(path_, "cannot create the tile folder '" + job.file.parent_path().string() +
                                         "': " + ec.message());
        }
        write_file(job.file, bytes.data(), bytes.size(), path_);
    }

    // Serial, zipped: the encoded tiles at the head of the queue into the
    // archive, in the order they were cut.
    void store_done() {
        if (zip_) queue_.retire([this](Job& j) { zip_->add(j.file.generic_string(), j.bytes.data(), j.bytes.size()); });
    }

    // A descriptor file, `rel` to the temporary folder (zipped: the
    // archive's entry).
    void put(const std::string& rel, const std::string& bytes) {
        if (zip_)
            zip_->add(rel, bytes.data(), bytes.size());
        else
            write_file(tmp_ / rel, bytes.data(), bytes.size(), path_);
    }

    // info.json, as vips dzsave 8.14 writes it: its id is ID/NAME, and its
    // scaleFactors are those of all levels but the smallest (1, 2, ... up
    // to 2^(levels - 2): vips's count, kept so that the file is the same;
    // a viewer then never asks for the smallest level, which is written).
    std::string info_json() const {
        const bool v3 = opt_.layout == DzOptions::Layout::iiif3;
        // clang-format off (text laid out as it reads)
        std::string s =
            "{\n  \"@context\": \"http://iiif.io/api/image/" + std::string(v3 ? "3" : "2") + "/context.json\",\n";
        if (v3)
            s += "  \"id\": \"" + opt_.id + "/" + stem_ +
                 "\",\n  \"type\": \"ImageService3\",\n"
                 "  \"profile\": \"level0\",\n  \"protocol\": \"http://iiif.io/api/image\",\n";
        else
            s += "  \"@id\": \"" + opt_.id + "/" + stem_ +
                 "\",\n  \"profile\": [\n"
                 "    \"http://iiif.io/api/image/2/level0.json\",\n    {\n      \"formats\": [\n        \"" +
                 opt_.suffix +
                 "\"\n      ],\n      \"qualities\": [\n        \"default\"\n      ]\n    }\n  ],\n"
                 "  \"protocol\": \"http://iiif.io/api/image\",\n";
        s += "  \"tiles\": [\n    {\n      \"scaleFactors\": [\n";
        const int top = int(levels_.size()) - 1;
        for (int i = 0; i < top; ++i) s += "        " + std::to_string(1 << i) + (i + 1 < top ? ",\n" : "\n");
        s += "      ],\n      \"width\": " + std::to_string(opt_.tile_size) + "\n    }\n  ],\n";
        s += "  \"width\": " + std::to_string(info_.width) + ",\n  \"height\": " + std::to_string(info_.height) +
             "\n}\n";
        return s;
        // clang-format on
    }

    // The .szi's scan-properties.xml, as libvips writes it: the size (the
    // slide fields it adds come from OpenSlide metadata, which a stitched
    // image does not have).
    std::string scan_properties() const {
        return "<?xml version=\"1.0\"?>\n<image xmlns=\"http://www.pathozoom.com/szi\" date=\"" + iso8601_now() +
               "\" version=\"1.0\">\n  <properties>\n"
               "    <property>\n      <name>ImageWidth</name>\n      <value type=\"gint\">" +
               std::to_string(info_.width) +
               "</value>\n    </property>\n"
               "    <property>\n      <name>ImageHeight</name>\n      <value type=\"gint\">" +
               std::to_string(info_.height) + "</value>\n    </property>\n  </properties>\n</image>\n";
    }

    // The .dzi, laid out as libvips writes it.
    std::string dzi_text() const {
        // clang-format off (text laid out as it reads)
        std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"\n"
                        "  Format=\"" +
                        opt_.suffix +
                        "\"\n"
                        "  Overlap=\"" +
                        std::to_string(opt_.overlap) +
                        "\"\n"
                        "  TileSize=\"" +
                        std::to_string(opt_.tile_size) +
                        "\"\n"
                        "  >\n"
                        "  <Size \n"
                        "    Height=\"" +
                        std::to_string(info_.height) +
                        "\"\n"
                        "    Width=\"" +
                        std::to_string(info_.width) +
                        "\"\n"
                        "  />\n"
                        "</Image>\n";
        // clang-format on
        return s;
    }

    std::string path_;
    DzOptions opt_;
    BandLayout layout_;
    ImageInfo info_;
    WriterPart part_;  // the run's account; sharded runs: the share and the link
    std::vector<Level> levels_;
    std::vector<std::uint8_t> src_;    // shrink scratch (serial stage only)
    ParkFile park_;                    // the blocks that wait for a band not begun
    int band_now_ = 0;                 // the latest level-0 band the evaluator has begun
    std::optional<OutputTarget> out_;  // rank 0 (or the only process): the temporary folder, removed unless committed
    fs::path dir_, tmp_;               // tmp_: where the tiles go (on producers, rank 0's folder)
    std::string stem_, name_, root_;
    std::string entry_root_;        // zipped: root_ in the archive (dz: NAME/NAME_files)
    std::optional<ZipWriter> zip_;  // zipped: the temporary archive
    EncodeQueue<Job> queue_;
    // sharded runs
    int me_ = 0;                             // this rank (0 when not sharded)
    std::vector<std::vector<int>> builder_;  // per level, per block: its builder (empty: not sharded)
    int ends_ = 0;                           // rank 0: producers finished
};

}  // namespace

void check_dz_options(const ImageInfo& info, const DzOptions& o) {
    if (o.tile_size < 1 || o.tile_size > 8192)
        throw ParamError("tile_size", "use a tile size in [1, 8192] (vips dzsave's default is 254)");
    if (o.overlap < 0 || o.overlap > o.tile_size / 2)
        throw ParamError("overlap", "use an overlap in [0, tile_size / 2]; got " + std::to_string(o.overlap));
    if (o.google_like() && o.overlap != 0)
        throw ParamError("overlap", std::string(o.layout == DzOptions::Layout::google ? "google" : "IIIF") +
                                        " tiles do not overlap; use overlap 0 (the default for that layout)");
    if (o.suffix != "jpeg" && o.suffix != "jpg" && o.suffix != "png" && o.suffix != "webp")
        throw ParamError("suffix", "unknown tile format '" + o.suffix + "'; use jpeg (or jpg), png or webp");
    if (o.skip_blanks < -1 || o.skip_blanks > 65535)
        throw ParamError("skip_blanks", "use a threshold in [0, 65535], or -1 to write every tile");
    // written into info.json as it is (as vips does): no character JSON
    // would need escaped
    if (o.id.empty() || o.id.find_first_of("\"\\") != std::string::npos ||
        std::any_of(o.id.begin(), o.id.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        throw ParamError("id", "give the base URL the IIIF image is served from, e.g. https://example.org/iiif "
                               "(no quotes, backslashes or control characters)");
    if (o.quality < 1 || o.quality > 100) throw ParamError("quality", "use a quality in [1, 100]");
    if (info.format != Format::u8)
        throw ParamError("format", "tile pyramids hold 8-bit images and this one is " +
                                       std::string(format_name(info.format)) + "; cast it to u8 first");
    if ((o.suffix == "jpeg" || o.suffix == "jpg") && info.bands != 1 && info.bands != 3)
        throw ParamError("suffix", "JPEG tiles hold 1 or 3 bands and the image has " + std::to_string(info.bands) +
                                       "; use suffix png (or webp), or drop the extra bands first");
    if (info.bands > 4)
        throw ParamError("suffix", "tiles hold 1 to 4 bands and the image has " + std::to_string(info.bands) +
                                       "; pick bands first");
    if (o.band_width < 32) throw ParamError("band_width", "use a band width of at least 32 pixels");
}

namespace {
// A zipped pyramid: the same writer, not a ShardedSink, so that under MPI
// rank 0 computes and writes it alone (an archive has one writer).
class ZippedDzSink final : public Sink {
public:
    ZippedDzSink(const std::string& path, const DzOptions& o) : s_(path, o) {}
    std::optional<Point> tile_size() const override { return s_.tile_size(); }
    std::vector<std::uint32_t> tile_order(int cols, int rows) const override { return s_.tile_order(cols, rows); }
    void start(const ImageInfo& info, const SinkContext& context) override { s_.start(info, context); }
    std::shared_ptr<void> prepare(const ConstTile& t) override { return s_.prepare(t); }
    void consume(const ConstTile& t, std::shared_ptr<void> p) override { s_.consume(t, std::move(p)); }
    void finish() override { s_.finish(); }
    void abort() noexcept override { s_.abort(); }

private:
    DzSink s_;
};
}  // namespace

std::string dz_target(const std::string& path, const DzOptions& o) {
    if (!o.zipped()) return path;
    const fs::path p(path);
    std::string ext = p.extension().string();
    for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    const char* want = o.container == DzOptions::Container::zip ? ".zip" : ".szi";
    if (ext == want) return path;
    // NAME.dzi (or NAME) with container zip: NAME.zip beside it
    return (p.parent_path() / (ext == ".dzi" ? p.stem().string() : p.filename().string())).string() + want;
}

std::unique_ptr<Sink> make_dz_sink(const std::string& path, const DzOptions& options) {
    if (options.zipped()) return std::make_unique<ZippedDzSink>(path, options);
    return std::make_unique<DzSink>(path, options);
}

}  // namespace tessera::io
