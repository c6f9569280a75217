// OME-Zarr: NGFF 0.4 multiscale images on Zarr v2, every level in one pass.
//
// What is written (https://ngff.openmicroscopy.org/0.4/, the version
// napari-ome-zarr, QuPath 0.4+, OMERO and bioformats2raw's readers take; the
// same layout bioformats2raw writes for one image, less its OME/ folder):
//  NAME.ome.zarr/.zgroup             {"zarr_format": 2}
//  NAME.ome.zarr/.zattrs             multiscales (axes c, y, x: channel and
//                                    space with the pixel size's unit; one
//                                    dataset per level with a scale
//                                    transformation, pixel size x 2^level)
//                                    and omero (a channel per channel:
//                                    label, colour, window from the sample
//                                    type)
//  NAME.ome.zarr/L/.zarray           level L: shape (C, H_L, W_L), chunks
//                                    (C, tile_h, tile_w), dtype as numpy
//                                    ('|u1', '<u2', '<f4', ...), order C,
//                                    fill_value 0, dimension_separator "/",
//                                    compressor numcodecs' config (blosc
//                                    lz4 + shuffle by default) or null
//  NAME.ome.zarr/L/0/Y/X             chunk (0, Y, X) of level L
// With focal planes or time points (the save's size_z, size_t: the bands
// are C channels x Z x T, pixel_size.hpp), the axes are NGFF's t, c, z, y,
// x, each of size 1 left out (NGFF 0.4 orders them time, channel, space):
// shape (T, C, Z, H_L, W_L), chunks (1, C, 1, tile_h, tile_w), chunk
// L/t/0/z/Y/X; the z axis's scale is the pixel size's Z (1 if not given,
// then without a unit), t's 1. Each tile is then Z x T chunk files, one
// per plane, from the same pass.
// A chunk holds every channel of its tile: a tile arrives with its bands
// interleaved and is transposed once, an RGB or few-channel viewer reads one
// file per tile (as a Deep Zoom viewer does), and the file count is that of
// a Deep Zoom pyramid rather than C times it. (A viewer of one channel of a
// 40-channel image would read 40 times what it shows; per-channel chunks
// would suit that case: a chunk key away.) Edge chunks are whole, the part
// outside the level 0 (fill_value), as Zarr v2 requires.
//
// Levels: each the one above halved, rounded down, down to one chunk (as
// the pyramid TIFF's: pyramid_levels with Halving::down), a pixel the
// rounded mean of the 2x2 above it (libvips's pyramid mean,
// core/shrink.hpp: the pyramid TIFF writer's level 1 is the same pixels).
// NGFF's scale 2^L is then exact for every pixel that exists.
//
// Order and memory. Level 0 is asked for in the banded order of
// pyramid_layout.hpp, on the chunk grid. A level-0 tile is transposed,
// compressed and written as its chunk file in prepare() (the evaluator's
// workers, in parallel), and shrunk 2x2 there too; the serial stage drops
// the shrunk quarter into its level-1 chunk, which is complete when its
// (up to) 4 quarters are in: it is then queued (encode_queue.hpp) for a
// worker to compress and write, and shrunk into level 2, and so on. What is
// held is the incomplete chunks: about one chunk row of a band per level.
//
// Files. Everything goes into a temporary folder beside the target (an
// OutputTarget folder, removed by the next run if this one is killed);
// finish() writes the metadata and moves NAME.ome.zarr into place (an old
// store of that name is moved aside first and removed once the new one is
// in). A failed or cancelled run removes the temporary folder: the target
// is never a half-written store.
//
// Sharded runs (shard.hpp): chunks are files, so every rank writes its own
// chunks straight into rank 0's temporary folder (whose name rank 0
// broadcasts), as the Deep Zoom writer does. A share is a run of whole
// units (band rows, pyramid_layout.hpp), so a producer builds every chunk
// of a higher level whose level-0 tiles are all its own, and sends rank 0
// the shrunk quarter of each chunk whose parent is not (a chunk's quarters
// lie inside it: floor halving of even chunks never straddles). Rank 0
// builds the chunks that span shares (the few top levels, and a row per
// share boundary) from its own quarters and those received. A producer
// sends its end once its last chunk file is closed; rank 0 writes the
// metadata and moves the store into place only when every producer has
// ended. No pixel crosses between ranks except those quarters.
#include "ome_zarr.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <unordered_map>
#include <variant>

#include "encode_queue.hpp"
#include "pyramid_layout.hpp"
#include "shard_messages.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/shrink.hpp"
#include "tessera/io/output_target.hpp"

namespace tessera::io {

namespace {

namespace fs = std::filesystem;

std::uint64_t key(int bx, int by) { return (std::uint64_t(std::uint32_t(by)) << 32) | std::uint32_t(bx); }

const char* numpy_dtype(Format f) {
    switch (f) {
        case Format::u8: return "|u1";
        case Format::u16: return "<u2";
        case Format::i16: return "<i2";
        case Format::u32: return "<u4";
        case Format::i32: return "<i4";
        case Format::f32: return "<f4";
        case Format::f64: return "<f8";
    }
    return "|u1";
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// Shortest text that reads back as the same double.
std::string number(double v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

void write_file(const fs::path& file, const void* data, std::size_t n, const std::string& target) {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (!f) throw IoError(target, "cannot create '" + file.string() + "': " + std::strerror(errno));
    bool ok = std::fwrite(data, 1, n, f) == n;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw IoError(target, "cannot write '" + file.string() + "'; is the disk full?");
}

// Bands [b0, b0 + C) of `src` (bands interleaved) into a C x th x tw
// planar chunk whose top-left is `origin`; the rest of the chunk is 0.
template <class T>
void planar(const ConstTile& src, int b0, int C, Point origin, int tw, int th, std::uint8_t* out) {
    const int B = src.bands;
    T* o = reinterpret_cast<T*>(out);
    std::fill(o, o + std::size_t(C) * tw * th, T(0));
    for (int y = src.rect.y; y < src.rect.bottom(); ++y) {
        const T* row = src.row<T>(y) + b0;
        const std::size_t oy = std::size_t(y - origin.y) * tw + std::size_t(src.rect.x - origin.x);
        for (int c = 0; c < C; ++c) {
            T* dst = o + std::size_t(c) * tw * th + oy;
            for (int x = 0; x < src.rect.w; ++x) dst[x] = row[std::size_t(x) * B + c];
        }
    }
}

void to_planar(const ConstTile& src, int b0, int C, Point origin, int tw, int th, std::uint8_t* out) {
    switch (format_size(src.format)) {
        case 1: return planar<std::uint8_t>(src, b0, C, origin, tw, th, out);
        case 2: return planar<std::uint16_t>(src, b0, C, origin, tw, th, out);
        case 4: return planar<std::uint32_t>(src, b0, C, origin, tw, th, out);
        default: return planar<std::uint64_t>(src, b0, C, origin, tw, th, out);
    }
}

// A level's chunk being filled with its quarters.
struct Pending {
    Buffer pixels;  // the whole chunk (tw x th at the chunk's origin), 0 outside what arrived
    int arrived = 0;
};

struct Level : LevelGrid {
    explicit Level(const LevelGrid& g) : LevelGrid(g) {}
    std::unordered_map<std::uint64_t, Pending> pending;
    std::vector<std::uint8_t> mine;  // producers: the chunk's level-0 tiles are all this rank's
};

// A complete chunk of a level above 0, waiting to be compressed and written.
struct Job {
    int level = 0, cx = 0, cy = 0;
    Buffer pixels;
};

class OmeZarrSink final : public ShardedSink {
public:
    OmeZarrSink(std::string path, OmeZarrOptions o)
        : path_(std::move(path)),
          opt_(std::move(o)),
          layout_(opt_.tile_w, opt_.band_width),
          queue_([this](Job& j) { write_chunk(j.level, j.cx, j.cy, j.pixels.view()); }, EncodeQueue<Job>::Order::any) {}
    ~OmeZarrSink() override { abort(); }

    std::optional<Point> tile_size() const override { return Point{opt_.tile_w, opt_.tile_h}; }
    std::vector<std::uint32_t> tile_order(int cols, int rows) const override { return layout_.order(cols, rows); }
    std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const override {
        return layout_.share_starts(cols, rows, ranks);
    }

    void start(const ImageInfo& info, const SinkContext& context) override {
        abort();  // a second start begins afresh
        info_ = info;
        part_.start(context, "OME-Zarr pieces");
        queue_.start(part_.account, context.threads);
        if (context.tile_w != opt_.tile_w || context.tile_h != opt_.tile_h)
            throw Error("ome-zarr: the evaluator did not use the sink's tile size");
        levels_.clear();
        if (opt_.pyramid) {
            for (const LevelGrid& g : pyramid_levels(info.width, info.height, opt_.tile_w, opt_.tile_h, Halving::down,
                                                     opt_.tile_w, opt_.tile_h))
                levels_.emplace_back(g);
        } else {
            levels_.emplace_back(LevelGrid{info.width, info.height, (info.width + opt_.tile_w - 1) / opt_.tile_w,
                                           (info.height + opt_.tile_h - 1) / opt_.tile_h});
        }
        const fs::path target(path_);
        dir_ = target.parent_path().empty() ? fs::path(".") : target.parent_path();
        name_ = target.filename().string();
        ends_ = 0;
        if (!part_.share) return make_tmp();
        // sharded: rank 0 makes the folder and tells the others its name; a
        // failure is thrown after the broadcast, so that no producer waits in it
        std::exception_ptr failed;
        if (!part_.producer()) try {
                make_tmp();
            } catch (...) {
                failed = std::current_exception();
                abort();
            }
        Courier& c = *part_.share->courier;
        const std::string name = part_.producer() || failed ? std::string() : tmp_.filename().string();
        std::vector<std::byte> bytes(name.size());
        if (!name.empty()) std::memcpy(bytes.data(), name.data(), name.size());
        bytes = c.broadcast(std::move(bytes));
        if (failed) std::rethrow_exception(failed);
        if (bytes.empty()) throw IoError(path_, "rank 0 could not make the temporary folder beside it (see its error)");
        if (part_.producer()) {
            tmp_ = dir_ / std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            store_ = tmp_ / name_;
            mark_mine();
        }
    }

    // Parallel: level 0's chunk file, and its shrunk quarter for level 1;
    // then waiting chunks of the levels above (two, or more while the
    // queue is long: a finished row of chunks brings a burst).
    std::shared_ptr<void> prepare(const ConstTile& tile) override {
        const int cx = tile.rect.x / opt_.tile_w, cy = tile.rect.y / opt_.tile_h;
        write_chunk(0, cx, cy, tile);
        std::shared_ptr<void> quarter;
        if (levels_.size() > 1) {
            const Rect q = half(tile.rect, levels_[1]);
            if (!q.empty()) {
                auto b = std::make_shared<Buffer>(part_.account, q, info_.bands, info_.format);
                shrink2x2_mean(tile.sub(Rect{2 * q.x, 2 * q.y, 2 * q.w, 2 * q.h}), b->tile());
                quarter = b;
            }
        }
        queue_.run(2);
        while (queue_.queued() > kQueueTarget) queue_.run(1);
        return quarter;
    }

    void consume(const ConstTile& tile, std::shared_ptr<void> prepared) override {
        if (store_.empty()) throw Error("ome-zarr: a tile before start()");
        const int cx = tile.rect.x / opt_.tile_w, cy = tile.rect.y / opt_.tile_h;
        ++level0_;
        if (levels_.size() > 1) {
            Buffer* q = static_cast<Buffer*>(prepared.get());
            arrive(1, cx / 2, cy / 2, q ? q->view() : ConstTile());
        }
        if (part_.writer()) receive_parts(false);  // keeps the producers' sends moving
    }

    void finish() override {
        if (store_.empty()) throw Error("ome-zarr: finish() without start()");
        finish_chunks();
        for (std::size_t d = 0; d < levels_.size(); ++d)
            if (!levels_[d].pending.empty())
                throw Error("ome-zarr: internal: " + std::to_string(levels_[d].pending.size()) + " chunks of level " +
                            std::to_string(d) + " were never complete");
        if (part_.producer()) {  // every chunk file of this rank is closed: rank 0 may move the store
            part_.link->send_end();
            store_.clear();
            return;
        }
        if (!part_.share && level0_ != std::uint64_t(levels_[0].tiles_x) * levels_[0].tiles_y)
            throw Error("ome-zarr: finish() after " + std::to_string(level0_) + " of " +
                        std::to_string(std::uint64_t(levels_[0].tiles_x) * levels_[0].tiles_y) + " tiles");
        write_metadata();
        out_->commit({name_});
        out_.reset();
        store_.clear();
    }

    void abort() noexcept override {
        queue_.clear();
        for (Level& l : levels_) l.pending.clear();
        out_.reset();  // removes the temporary folder (rank 0, or the only process)
        store_.clear();
        tmp_.clear();
        level0_ = 0;
    }

private:
    // The temporary folder, with the store and every chunk-row folder in it.
    void make_tmp() {
        out_.emplace(path_, OutputTarget::Kind::folder);
        tmp_ = out_->temp();
        store_ = tmp_ / name_;
        try {
            for (std::size_t d = 0; d < levels_.size(); ++d)
                for (int t = 0; t < opt_.planes.t; ++t)
                    for (int z = 0; z < opt_.planes.z; ++z)
                        for (int y = 0; y < levels_[d].tiles_y; ++y) fs::create_directories(row_dir(d, z, t, y));
        } catch (const fs::filesystem_error& e) {
            throw IoError(path_, std::string("cannot create the chunk folders: ") + e.code().message());
        }
    }

    // The rect of the level below that `r` (a chunk's part of level l)
    // shrinks to: halved, rounded down (r's origin is even), inside it.
    static Rect half(const Rect& r, const LevelGrid& below) {
        return Rect{r.x / 2, r.y / 2, r.w / 2, r.h / 2}.intersect(Rect{0, 0, below.width, below.height});
    }
    Rect chunk_rect(int cx, int cy) const { return {cx * opt_.tile_w, cy * opt_.tile_h, opt_.tile_w, opt_.tile_h}; }

    // The folder of chunk row cy of level d's plane (z, t): d/[t/]0/[z/]cy,
    // the axes of size 1 left out as the arrays leave them out.
    fs::path row_dir(std::size_t d, int z, int t, int cy) const {
        fs::path p = store_ / std::to_string(d);
        if (opt_.planes.t > 1) p /= std::to_string(t);
        p /= "0";
        if (opt_.planes.z > 1) p /= std::to_string(z);
        return p / std::to_string(cy);
    }

    // Chunk (cx, cy) of level d from `px` (its part of the level, bands
    // interleaved): for each plane, its channels transposed, padded,
    // compressed, written. Any thread.
    void write_chunk(int d, int cx, int cy, const ConstTile& px) const {
        const int tw = opt_.tile_w, th = opt_.tile_h;
        const int C = opt_.planes.channels(info_.bands);
        const std::size_t n = std::size_t(tw) * th * C * format_size(info_.format);
        thread_local std::vector<std::uint8_t> scratch;
        scratch.resize(n);
        const Rect level{0, 0, levels_[std::size_t(d)].width, levels_[std::size_t(d)].height};
        const ConstTile part = px.sub(px.rect.intersect(level));
        for (int t = 0; t < opt_.planes.t; ++t)
            for (int z = 0; z < opt_.planes.z; ++z) {
                to_planar(part, opt_.planes.band(0, z, t, info_.bands), C, chunk_rect(cx, cy).origin(), tw, th,
                          scratch.data());
                const fs::path file = row_dir(std::size_t(d), z, t, cy) / std::to_string(cx);
                const auto bytes = zarr_encode(opt_.codec, scratch.data(), n, format_size(info_.format), path_);
                write_file(file, bytes.data(), bytes.size(), path_);
            }
    }

    // Level d's axes, outermost first (NGFF 0.4: time, channel, space),
    // each of size 1 but c left out: what .zarray's shape and chunks and
    // .zattrs' axes and scale say of each. z has the unit when its spacing
    // is given (else its scale 1 counts planes, not a length).
    struct Axis {
        const char* name;
        const char* type;
        int size, chunk;
        double scale;
        bool unit;
    };
    std::vector<Axis> axes(std::size_t d) const {
        const LevelGrid& l = levels_[d];
        const PixelSize px = opt_.pixel_size.value_or(PixelSize{});
        const double f = double(std::uint64_t(1) << d);
        const int C = opt_.planes.channels(info_.bands);
        std::vector<Axis> a;
        if (opt_.planes.t > 1) a.push_back({"t", "time", opt_.planes.t, 1, 1, false});
        a.push_back({"c", "channel", C, C, 1, false});
        if (opt_.planes.z > 1) a.push_back({"z", "space", opt_.planes.z, 1, px.z > 0 ? px.z : 1, px.z > 0});
        a.push_back({"y", "space", l.height, opt_.tile_h, px.y * f, true});
        a.push_back({"x", "space", l.width, opt_.tile_w, px.x * f, true});
        return a;
    }

    // Quarter `q` (maybe empty: a level's last odd column or row shrinks to
    // nothing) of chunk (px, py) of level d has arrived.
    void arrive(std::size_t d, int px, int py, const ConstTile& q) {
        if (d >= levels_.size()) return;
        Level& l = levels_[d];
        if (px >= l.tiles_x || py >= l.tiles_y) return;  // (q is empty then)
        if (part_.producer() && !l.mine[std::size_t(py) * l.tiles_x + px]) {
            if (q.rect.empty()) {
                part_.link->send_block(std::uint32_t(d), px, py,
                                       ConstTile(Rect{0, 0, 0, 0}, info_.bands, info_.format, nullptr, 0),
                                       Rect{0, 0, 0, 0}, true);
            } else {
                part_.link->send_block(std::uint32_t(d), px, py, q, q.rect, true);
            }
            return;
        }
        Pending& p = l.pending[key(px, py)];
        if (!p.pixels.valid()) {
            p.pixels = Buffer(part_.account, chunk_rect(px, py), info_.bands, info_.format);
            std::memset(p.pixels.tile().data, 0, p.pixels.size());
        }
        if (!q.rect.empty()) copy_pixels(q, p.pixels.tile());
        if (++p.arrived < quarters(d, px, py)) return;
        Buffer chunk = std::move(p.pixels);
        l.pending.erase(key(px, py));
        complete(d, px, py, std::move(chunk));
    }

    // How many chunks of level d - 1 make chunk (px, py) of level d.
    int quarters(std::size_t d, int px, int py) const {
        const LevelGrid& up = levels_[d - 1];
        return (std::min(2 * px + 1, up.tiles_x - 1) - 2 * px + 1) *
               (std::min(2 * py + 1, up.tiles_y - 1) - 2 * py + 1);
    }

    // Chunk (cx, cy) of level d >= 1 is whole: its quarter goes down a
    // level, and it is queued for a worker to write.
    void complete(std::size_t d, int cx, int cy, Buffer chunk) {
        if (d + 1 < levels_.size()) {
            const Rect valid = chunk.rect().intersect(Rect{0, 0, levels_[d].width, levels_[d].height});
            const Rect q = half(valid, levels_[d + 1]);
            if (q.empty()) {
                arrive(d + 1, cx / 2, cy / 2, ConstTile());
            } else {
                Buffer b(part_.account, q, info_.bands, info_.format);
                shrink2x2_mean(chunk.view().sub(Rect{2 * q.x, 2 * q.y, 2 * q.w, 2 * q.h}), b.tile());
                arrive(d + 1, cx / 2, cy / 2, b.view());
            }
        }
        queue_.push(Job{int(d), cx, cy, std::move(chunk)}, 0);  // (the Buffer is charged already)
    }

    // Producer: which chunks of each level are made of this rank's level-0
    // tiles alone.
    void mark_mine() {
        const int cols = levels_[0].tiles_x, rows = levels_[0].tiles_y;
        const std::vector<std::uint32_t> order = layout_.order(cols, rows);
        if (part_.share->first > part_.share->last || part_.share->last > order.size())
            throw Error("ome-zarr: internal: a share outside the tile order");
        levels_[0].mine.assign(order.size(), 0);
        for (std::uint64_t k = part_.share->first; k < part_.share->last; ++k) levels_[0].mine[order[k]] = 1;
        for (std::size_t d = 1; d < levels_.size(); ++d) {
            Level &l = levels_[d], &up = levels_[d - 1];
            l.mine.assign(std::size_t(l.tiles_x) * l.tiles_y, 1);
            for (int py = 0; py < l.tiles_y; ++py)
                for (int px = 0; px < l.tiles_x; ++px)
                    for (int cy = 2 * py; cy <= std::min(2 * py + 1, up.tiles_y - 1); ++cy)
                        for (int cx = 2 * px; cx <= std::min(2 * px + 1, up.tiles_x - 1); ++cx)
                            if (!up.mine[std::size_t(cy) * up.tiles_x + cx])
                                l.mine[std::size_t(py) * l.tiles_x + px] = 0;
        }
    }

    // Rank 0: takes in the producers' quarters (wait: at least one
    // message) while few chunks wait for a worker; the rest waits at the
    // producers (Courier::send holds them back), so rank 0's memory stays
    // bounded however fast they send.
    void receive_parts(bool wait) {
        while (queue_.queued() < kReceiveRoom) {
            const auto m = part_.link->receive(wait);
            if (!m) break;
            wait = false;
            if (std::holds_alternative<EndMessage>(*m)) {
                ++ends_;
            } else if (const auto* b = std::get_if<BlockMessage>(&*m)) {
                if (b->level == 0 || b->level >= levels_.size() || b->bx < 0 || b->by < 0 ||
                    b->bx >= levels_[b->level].tiles_x || b->by >= levels_[b->level].tiles_y ||
                    (!b->rect.empty() && !chunk_rect(b->bx, b->by).contains(b->rect)))
                    throw Error("ome-zarr: internal: a malformed quarter of a chunk from another rank");
                arrive(b->level, b->bx, b->by, b->rect.empty() ? ConstTile() : b->tile(info_.bands, info_.format));
            } else {
                throw Error("ome-zarr: internal: an unexpected message from another rank");
            }
        }
    }

    // The chunks the workers did not get to, on the run's threads; rank 0
    // takes in the producers' quarters meanwhile, until each has ended.
    void finish_chunks() {
        if (!part_.writer()) return queue_.drain();
        queue_.drain(
            [this] {
                if (ends_ >= part_.link->ranks() - 1) return false;
                receive_parts(true);
                return true;
            },
            kReceiveRoom);
    }

    // .zgroup, .zattrs and every level's .zarray.
    void write_metadata() const {
        const std::string zgroup = "{\n    \"zarr_format\": 2\n}\n";
        write_file(store_ / ".zgroup", zgroup.data(), zgroup.size(), path_);
        const std::string dtype = numpy_dtype(info_.format);
        for (std::size_t d = 0; d < levels_.size(); ++d) {
            std::string chunks, shape;
            for (const Axis& a : axes(d)) {
                chunks += (chunks.empty() ? "" : ", ") + std::to_string(a.chunk);
                shape += (shape.empty() ? "" : ", ") + std::to_string(a.size);
            }
            const std::string z = "{\n    \"chunks\": [" + chunks +
                                  "],\n    \"compressor\": " + zarr_codec_json(opt_.codec) +
                                  ",\n    \"dimension_separator\": \"/\",\n    \"dtype\": \"" + dtype +
                                  "\",\n    \"fill_value\": 0,\n    \"filters\": null,\n    \"order\": \"C\",\n    " +
                                  "\"shape\": [" + shape + "],\n    \"zarr_format\": 2\n}\n";
            write_file(store_ / std::to_string(d) / ".zarray", z.data(), z.size(), path_);
        }
        const std::string attrs = zattrs();
        write_file(store_ / ".zattrs", attrs.data(), attrs.size(), path_);
    }

    std::string zattrs() const {
        std::string name = name_;
        for (const char* ext : {".ome.zarr", ".zarr"})
            if (name.size() > std::strlen(ext) && name.ends_with(ext)) {
                name.resize(name.size() - std::strlen(ext));
                break;
            }
        const PixelSize px = opt_.pixel_size.value_or(PixelSize{});
        const std::string unit = opt_.pixel_size ? ", \"unit\": " + json_string(px.unit) : std::string();
        std::string s = "{\n    \"multiscales\": [\n        {\n            \"version\": \"0.4\",\n"
                        "            \"name\": " +
                        json_string(name) +
                        ",\n"
                        "            \"axes\": [\n";
        const std::vector<Axis> ax = axes(0);
        for (std::size_t i = 0; i < ax.size(); ++i)
            s += "                {\"name\": \"" + std::string(ax[i].name) + "\", \"type\": \"" + ax[i].type + "\"" +
                 (ax[i].unit ? unit : std::string()) + "}" + (i + 1 < ax.size() ? ",\n" : "\n");
        s += "            ],\n            \"datasets\": [\n";
        for (std::size_t d = 0; d < levels_.size(); ++d) {
            std::string scale;
            for (const Axis& a : axes(d)) scale += (scale.empty() ? "" : ", ") + number(a.scale);
            s += "                {\"path\": \"" + std::to_string(d) +
                 "\", \"coordinateTransformations\": [{\"type\": \"scale\", \"scale\": [" + scale + "]}]}" +
                 (d + 1 < levels_.size() ? ",\n" : "\n");
        }
        s += "            ],\n            \"type\": \"mean\",\n"
             "            \"metadata\": {\"description\": \"each level the rounded mean of 2x2 pixels of the one "
             "above (libvips's pyramid mean)\", \"method\": \"tessera\"}\n        }\n    ],\n";
        // omero: what a viewer shows before anyone has set it; the window
        // is the sample type's range (floats: 0 to 1, libvips's convention)
        double lo = 0, hi = 1;
        switch (info_.format) {
            case Format::u8: hi = 255; break;
            case Format::u16: hi = 65535; break;
            case Format::i16: lo = -32768, hi = 32767; break;
            case Format::u32: hi = 4294967295.0; break;
            case Format::i32: lo = -2147483648.0, hi = 2147483647.0; break;
            default: break;
        }
        const int C = opt_.planes.channels(info_.bands);
        static const char* kColours[] = {"FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00"};
        const bool rgb = (C == 3 || C == 4) && info_.format == Format::u8;
        s += "    \"omero\": {\n        \"version\": \"0.4\",\n        \"name\": " + json_string(name) +
             ",\n        \"rdefs\": {\"model\": \"" + std::string(C == 1 ? "greyscale" : "color") +
             "\", \"defaultT\": 0, \"defaultZ\": 0},\n        \"channels\": [\n";
        for (int c = 0; c < C; ++c) {
            const std::string label =
                opt_.channel_names.empty() ? "Channel " + std::to_string(c) : opt_.channel_names[std::size_t(c)];
            const std::string colour = C == 1 ? "FFFFFF" : rgb && c == 3 ? "FFFFFF" : kColours[c % 6];
            s += "            {\"label\": " + json_string(label) + ", \"color\": \"" + colour +
                 "\", \"active\": " + (rgb && c == 3 ? "false" : "true") +
                 ", \"coefficient\": 1, \"family\": \"linear\", \"inverted\": false, \"window\": {\"min\": " +
                 number(lo) + ", \"max\": " + number(hi) + ", \"start\": " + number(lo) + ", \"end\": " + number(hi) +
                 "}}" + (c + 1 < C ? ",\n" : "\n");
        }
        s += "        ]\n    }\n}\n";
        return s;
    }

    static constexpr std::size_t kQueueTarget = 16;
    static constexpr std::size_t kReceiveRoom = 2 * kQueueTarget;

    std::string path_;
    OmeZarrOptions opt_;
    BandLayout layout_;
    ImageInfo info_;
    WriterPart part_;
    std::vector<Level> levels_;
    std::optional<OutputTarget> out_;  // rank 0 (or the only process): the temporary folder, removed unless committed
    fs::path dir_, tmp_, store_;       // store_: tmp_/NAME, where the chunks go (empty: not started)
    std::string name_;
    std::uint64_t level0_ = 0;
    int ends_ = 0;  // rank 0: producers finished
    EncodeQueue<Job> queue_;
};

}  // namespace

void check_ome_zarr_options(const ImageInfo& info, const OmeZarrOptions& o) {
    for (auto [key, v] : {std::pair{"tile_width", o.tile_w}, std::pair{"tile_height", o.tile_h}})
        if (v % 2 != 0)
            throw ParamError(key, std::to_string(v) +
                                      " is odd; OME-Zarr chunks here are even (a level's 2x2 "
                                      "groups then never straddle two chunks); use e.g. " +
                                      std::to_string(v + 1));
    if (std::uint64_t(o.tile_w) * o.tile_h * info.pixel_bytes() > (std::uint64_t(1) << 31) - 64)
        throw ParamError("tile_width", "a chunk of " + std::to_string(o.tile_w) + "x" + std::to_string(o.tile_h) +
                                           " with every band is over 2 GB, which blosc cannot hold; use smaller tiles");
    if (!o.channel_names.empty() && int(o.channel_names.size()) != o.planes.channels(info.bands))
        throw ParamError("channel_names", "gives " + std::to_string(o.channel_names.size()) +
                                              " names for an image of " +
                                              std::to_string(o.planes.channels(info.bands)) + " channels");
}

std::unique_ptr<Sink> make_ome_zarr_sink(const std::string& path, const OmeZarrOptions& options) {
    return std::make_unique<OmeZarrSink>(path, options);
}

}  // namespace tessera::io
