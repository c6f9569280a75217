// zarr_load: a Zarr v2 array as a source: an OME-Zarr image (NGFF 0.4:
// level 0, or the level `level` of its multiscales) or a plain array of one
// 2-D image, (y, x) or (c, y, x), as zarr-python, bioformats2raw, GDAL or
// tessera's own writer (ome_zarr.cpp) wrote it.
//
// Building the op reads the metadata only (.zattrs' multiscales, the
// level's .zarray) and checks everything it needs (zarr_format 2, dtype
// little-endian or single-byte of a sample format tessera has, order C, no
// filters, a compressor it decodes: blosc, zstd, zlib or none, the
// numcodecs ids). Of OME-Zarr's t and z axes (NGFF's axis of type time, and
// a space axis before y and x) one plane is read: the keys `t` and `z`
// (0 by default, as napari and QuPath open a stack). Any other axis but the
// channel and the last two (y, x), as a plain array's, must have size 1.
// compute() reads, lazily, the chunk files the tile touches (a missing one
// is fill_value, as Zarr says), decodes each and copies its part of the
// tile, channels interleaved as tessera keeps them.
//
// Chunk cache. A chunk the tile covers whole is decoded into a per-thread
// scratch (a tile grid on the chunk grid, the default for the store's own
// 256 chunks: no other tile needs it, so caching it would only churn
// memory). A chunk the tile covers in part (another tile grid, a chunk
// larger than a tile: bioformats2raw's 1024, GDAL's 512) is shared with the
// tiles beside it, which the evaluator computes at about the same time
// (rows of tiles across a band): it is decoded once into a byte-bounded LRU
// (block_cache.hpp, the one the TIFF strip reader uses; 64 MiB for all
// zarr_load ops of the process) and copied from there. Two threads wanting
// the same chunk at once decode it once (striped locks; a chunk decodes in
// about a millisecond). release() and the op's end drop its chunks.
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "block_cache.hpp"
#include "io_list.hpp"
#include "tessera/core/compute_slots.hpp"
#include "tessera/core/error.hpp"
#include "tessera/io/io.hpp"
#include "zarr_codec.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// the chunks of every zarr_load op of the process (see the header)
io::BlockCache& chunk_cache() {
    static io::BlockCache c{std::size_t(64) << 20};
    return c;
}
std::atomic<std::uint64_t> g_decoded{0}, g_hits{0};

json read_json(const fs::path& file, const std::string& path) {
    std::ifstream f(file, std::ios::binary);
    if (!f) throw IoError(path, "cannot read '" + file.string() + "'");
    try {
        return json::parse(f);
    } catch (const json::exception& e) {
        throw IoError(path, "'" + file.filename().string() + "' is not JSON (" + e.what() + ")");
    }
}

Format format_of_dtype(const std::string& d, const std::string& path) {
    if (d == "|u1" || d == "<u1") return Format::u8;
    if (d == "<u2") return Format::u16;
    if (d == "<i2") return Format::i16;
    if (d == "<u4") return Format::u32;
    if (d == "<i4") return Format::i32;
    if (d == "<f4") return Format::f32;
    if (d == "<f8") return Format::f64;
    throw IoError(path, "has dtype '" + d +
                            "', which zarr_load does not read; it reads |u1, <u2, <i2, <u4, <i4, "
                            "<f4 and <f8 (rewrite it little-endian, as one of those)");
}

io::ZarrCodec codec_of(const json& c, const std::string& path) {
    io::ZarrCodec k;
    if (c.is_null()) return {io::ZarrCodec::Kind::none, "", 0, 0};
    const std::string id = c.is_object() && c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
    if (id == "blosc") return k;
    if (id == "zstd") return {io::ZarrCodec::Kind::zstd, "", 0, 0};
    if (id == "zlib") return {io::ZarrCodec::Kind::zlib, "", 0, 0};
    throw IoError(path, "is compressed with '" + (id.empty() ? c.dump() : id) +
                            "', which zarr_load does not decode; it reads blosc, zstd, zlib and uncompressed "
                            "arrays (rewrite it with one of those)");
}

class ZarrLoadOp final : public Op {
public:
    ZarrLoadOp(const Params& p, std::span<const ImageInfo>) {
        path_ = p.string("path");
        if (path_.empty()) throw ParamError("path", "is empty; give the Zarr store or array to read");
        const fs::path root(path_);
        const int level = int(p.integer("level"));
        std::error_code ec;
        if (!fs::is_directory(root, ec))
            throw IoError(path_, "is not a folder; a Zarr store or array is one (NAME.zarr/ with .zarray or .zattrs)");
        std::vector<std::string> axis_names, axis_types;
        if (fs::exists(root / ".zarray", ec)) {
            array_ = root;
            if (level != 0)
                throw ParamError("level", "'" + path_ +
                                              "' is a plain Zarr array, of one level; remove \"level\" or "
                                              "give the OME-Zarr image it belongs to");
        } else if (fs::exists(root / ".zattrs", ec)) {
            const json a = read_json(root / ".zattrs", path_);
            if (!a.contains("multiscales") || !a["multiscales"].is_array() || a["multiscales"].empty())
                throw IoError(path_, "has .zattrs without multiscales: it is no OME-Zarr image; give an array in it "
                                     "(a folder with .zarray)");
            const json& m = a["multiscales"][0];
            const json& datasets = m.value("datasets", json::array());
            if (level >= int(datasets.size()))
                throw ParamError("level", "'" + path_ + "' has " + std::to_string(datasets.size()) + " levels (0 to " +
                                              std::to_string(int(datasets.size()) - 1) + "); ask for one of them");
            const json& ds = datasets[std::size_t(level)];
            if (!ds.contains("path") || !ds["path"].is_string())
                throw IoError(path_, "multiscales dataset " + std::to_string(level) + " has no path");
            array_ = root / ds["path"].get<std::string>();
            if (m.contains("axes") && m["axes"].is_array())
                for (const json& ax : m["axes"]) {  // NGFF 0.4: objects; 0.3: names
                    axis_names.push_back(ax.is_string() ? ax.get<std::string>() : ax.value("name", ""));
                    axis_types.push_back(ax.is_object() ? ax.value("type", "") : "");
                }
        } else if (fs::exists(root / "zarr.json", ec)) {
            throw IoError(path_, "is a Zarr v3 store (zarr.json), which zarr_load does not read yet; it reads Zarr v2 "
                                 "(OME-Zarr up to NGFF 0.4)");
        } else {
            throw IoError(path_, "has neither .zarray nor .zattrs: it is no Zarr v2 array or OME-Zarr image");
        }
        read_array(axis_names, axis_types, {int(p.integer("z")), int(p.integer("t"))});
    }

    void demand(const Rect&, Demand&) const override {}

    ~ZarrLoadOp() override { chunk_cache().drop(owner_); }

    // The evaluator is done with this source: its cached chunks go.
    void release() const override { chunk_cache().drop(owner_); }

    // Cases: each chunk the tile touches (channel chunks x row x column) is
    // missing (fill_value) or a file, decoded whole: into this thread's
    // scratch when the tile covers the chunk whole, else through the chunk
    // cache (the tiles beside it read it too); its part inside the tile is
    // copied, channel by channel.
    void compute(const Tile& out, std::span<const Pulled>) const override {
        if (out.rect.empty()) return;
        const std::size_t sz = format_size(info_.format), n = chunk_elems_ * sz;
        thread_local std::vector<std::uint8_t> scratch, file;
        const int cw = chunks_[x_], ch = chunks_[y_], cc = c_ >= 0 ? chunks_[std::size_t(c_)] : 1;
        const int C = info_.bands;
        const Rect image{0, 0, info_.width, info_.height};
        for (int kc = 0; kc * cc < C; ++kc)
            for (int ky = out.rect.y / ch; ky * ch < out.rect.bottom(); ++ky)
                for (int kx = out.rect.x / cw; kx * cw < out.rect.right(); ++kx) {
                    const Rect whole = Rect{kx * cw, ky * ch, cw, ch}.intersect(image);
                    const Rect part = whole.intersect(out.rect);
                    const std::uint8_t* chunk = nullptr;
                    io::BlockCache::Bytes shared;
                    if (part == whole) {
                        scratch.resize(n);
                        load_chunk(kc, ky, kx, scratch.data(), n, file);
                        ++g_decoded;
                        chunk = scratch.data();
                    } else {
                        shared = cached_chunk(kc, ky, kx, file);
                        chunk = reinterpret_cast<const std::uint8_t*>(shared->data());
                    }
                    for (int c = kc * cc; c < std::min(C, (kc + 1) * cc); ++c)
                        for (int y = part.y; y < part.bottom(); ++y) {
                            const std::uint8_t* src =
                                chunk + (plane_offset_ + std::size_t(c - kc * cc) * stride_c_ +
                                         std::size_t(y - ky * ch) * stride_y_ + std::size_t(part.x - kx * cw)) *
                                            sz;
                            std::byte* dst = out.at(part.x, y) + std::size_t(c) * sz;
                            copy_samples(src, dst, part.w, sz, out.pixel_bytes());
                        }
                }
    }

    std::vector<std::string> files_read() const override { return {path_}; }

private:
    static void copy_samples(const std::uint8_t* src, std::byte* dst, int w, std::size_t sz, std::size_t step) {
        switch (sz) {
            case 1:
                for (int x = 0; x < w; ++x) dst[std::size_t(x) * step] = std::byte(src[x]);
                return;
            case 2:
                for (int x = 0; x < w; ++x) std::memcpy(dst + std::size_t(x) * step, src + 2 * std::size_t(x), 2);
                return;
            case 4:
                for (int x = 0; x < w; ++x) std::memcpy(dst + std::size_t(x) * step, src + 4 * std::size_t(x), 4);
                return;
            default:
                for (int x = 0; x < w; ++x) std::memcpy(dst + std::size_t(x) * step, src + sz * std::size_t(x), sz);
        }
    }

    // The level's .zarray, checked; the header from it.
    void read_array(const std::vector<std::string>& names, const std::vector<std::string>& types,
                    std::array<int, 2> zt) {
        const std::string where = array_.string();
        const json z = read_json(array_ / ".zarray", where);
        if (z.value("zarr_format", 0) != 2)
            throw IoError(where, "is not a Zarr v2 array (zarr_format " + z.value("zarr_format", json()).dump() + ")");
        if (!z.contains("shape") || !z.contains("chunks") || !z["shape"].is_array() || !z["chunks"].is_array() ||
            z["shape"].size() != z["chunks"].size())
            throw IoError(where, ".zarray has no shape and chunks of the same length");
        for (const json& v : z["shape"]) shape_.push_back(v.get<std::int64_t>());
        for (const json& v : z["chunks"]) chunks_.push_back(int(v.get<std::int64_t>()));
        const std::size_t nd = shape_.size();
        if (nd < 2 || nd > 5)
            throw IoError(where, "has " + std::to_string(nd) +
                                     " dimensions; zarr_load reads images of 2 (y, x) to 5 "
                                     "(t, c, z, y, x, all but c, y and x of size 1)");
        for (int c : chunks_)
            if (c < 1) throw IoError(where, ".zarray has a chunk size below 1");
        y_ = nd - 2;
        x_ = nd - 1;
        // the channel axis: NGFF's axis of type channel, else the first of a
        // plain 3-D array
        c_ = -1;
        if (!names.empty()) {
            if (names.size() != nd)
                throw IoError(path_, "lists " + std::to_string(names.size()) + " axes for an array of " +
                                         std::to_string(nd) + " dimensions");
            for (std::size_t i = 0; i < y_; ++i)
                if (types[i] == "channel" || names[i] == "c") c_ = int(i);
        } else if (nd >= 3) {
            c_ = int(nd - 3);
        }
        // the plane of each other axis: z's and t's as asked, 0 elsewhere
        plane_.assign(nd, 0);
        std::array<bool, 2> found{false, false};
        for (std::size_t i = 0; i < y_; ++i) {
            if (int(i) == c_) continue;
            const int k = names.empty()                            ? -1
                          : types[i] == "time" || names[i] == "t"  ? 1
                          : types[i] == "space" || names[i] == "z" ? 0
                                                                   : -1;
            if (k < 0) {
                if (shape_[i] != 1)
                    throw IoError(where, "has " + std::to_string(shape_[i]) + " planes along axis " +
                                             (names.empty() ? std::to_string(i) : "'" + names[i] + "'") +
                                             "; zarr_load reads one 2-D image (of any channels): write that plane "
                                             "as an array of its own");
                continue;
            }
            const char* key = k ? "t" : "z";
            found[std::size_t(k)] = true;
            if (zt[std::size_t(k)] >= shape_[i])
                throw ParamError(key, std::to_string(zt[std::size_t(k)]) + " is past '" + path_ + "''s " +
                                          std::to_string(shape_[i]) + (k ? " time points" : " focal planes") +
                                          "; give 0 to " + std::to_string(shape_[i] - 1));
            plane_[i] = zt[std::size_t(k)];
        }
        for (int k = 0; k < 2; ++k)
            if (zt[std::size_t(k)] != 0 && !found[std::size_t(k)])
                throw ParamError(k ? "t" : "z", "'" + path_ + "' has no " + (k ? "time" : "z") + " axis; remove \"" +
                                                    (k ? "t" : "z") + "\"");
        if (shape_[y_] < 1 || shape_[x_] < 1 || shape_[y_] > kMaxDimension || shape_[x_] > kMaxDimension)
            throw IoError(where, "is " + std::to_string(shape_[x_]) + "x" + std::to_string(shape_[y_]) +
                                     " pixels; an image here is 1 to " + std::to_string(kMaxDimension) + " a side");
        const std::int64_t bands = c_ >= 0 ? shape_[std::size_t(c_)] : 1;
        if (bands < 1 || bands > kMaxBands)
            throw IoError(where, "has " + std::to_string(bands) + " channels; at most " + std::to_string(kMaxBands));
        const std::string order = z.value("order", "C");
        if (order != "C")
            throw IoError(where, "has order '" + order + "'; zarr_load reads order C (row-major) chunks only");
        if (z.contains("filters") && !z["filters"].is_null() && !z["filters"].empty())
            throw IoError(where, "has filters (" + z["filters"].dump() +
                                     "), which zarr_load does not apply; rewrite "
                                     "it without");
        codec_ = codec_of(z.value("compressor", json()), where);
        if (!z.contains("dtype") || !z["dtype"].is_string()) throw IoError(where, ".zarray has no dtype string");
        info_.format = format_of_dtype(z["dtype"].get<std::string>(), where);
        info_.width = int(shape_[x_]);
        info_.height = int(shape_[y_]);
        info_.bands = int(bands);
        const std::string sep = z.value("dimension_separator", ".");
        if (sep != "." && sep != "/")
            throw IoError(where, "has dimension_separator '" + sep + "'; Zarr v2 has . and /");
        sep_ = sep[0];
        chunk_elems_ = 1;
        for (int c : chunks_) chunk_elems_ *= std::size_t(c);
        chunks_x_ = (shape_[x_] + chunks_[x_] - 1) / chunks_[x_];
        chunks_y_ = (shape_[y_] + chunks_[y_] - 1) / chunks_[y_];
        if (chunk_elems_ * format_size(info_.format) > (std::size_t(1) << 31))
            throw IoError(where, "has chunks over 2 GB; zarr_load reads chunks up to 2 GB");
        stride_x_ = 1;
        stride_y_ = std::size_t(chunks_[x_]);
        std::size_t s = stride_y_ * std::size_t(chunks_[y_]);
        stride_c_ = 0;
        plane_offset_ = 0;
        for (std::size_t i = y_; i-- > 0;) {  // the axes before y, innermost first
            if (int(i) == c_)
                stride_c_ = s;
            else
                plane_offset_ += std::size_t(plane_[i] % chunks_[i]) * s;
            s *= std::size_t(chunks_[i]);
        }
        // fill_value: a number, NaN/Infinity strings, or null (0 here)
        fill_ = 0;
        if (z.contains("fill_value")) {
            const json& f = z["fill_value"];
            if (f.is_number())
                fill_ = f.get<double>();
            else if (f.is_string() && f.get<std::string>() == "NaN")
                fill_ = std::numeric_limits<double>::quiet_NaN();
            else if (f.is_string() && f.get<std::string>() == "Infinity")
                fill_ = std::numeric_limits<double>::infinity();
            else if (f.is_string() && f.get<std::string>() == "-Infinity")
                fill_ = -std::numeric_limits<double>::infinity();
        }
    }

    // Chunk (kc, ky, kx) from the cache, decoded into it first if it is not
    // there (once, whichever threads ask at the same time).
    io::BlockCache::Bytes cached_chunk(int kc, int ky, int kx, std::vector<std::uint8_t>& file) const {
        const std::uint64_t key =
            (std::uint64_t(kc) * std::uint64_t(chunks_y_) + std::uint64_t(ky)) * std::uint64_t(chunks_x_) +
            std::uint64_t(kx);
        if (auto b = chunk_cache().find(owner_, key)) {
            ++g_hits;
            return b;
        }
        auto lock = lock_or_lend(decoding_[key % decoding_.size()]);  // (another thread may be decoding it)
        if (auto b = chunk_cache().find(owner_, key)) {               // decoded while this thread waited
            ++g_hits;
            return b;
        }
        const std::size_t n = chunk_elems_ * format_size(info_.format);
        auto bytes = std::make_shared<std::vector<std::byte>>(n);
        load_chunk(kc, ky, kx, reinterpret_cast<std::uint8_t*>(bytes->data()), n, file);
        ++g_decoded;
        io::BlockCache::Bytes out = std::move(bytes);
        chunk_cache().keep(owner_, key, out);
        return out;
    }

    // Chunk (kc, ky, kx) (the other axes' the chunk of their plane) decoded
    // into `chunk` (n bytes).
    void load_chunk(int kc, int ky, int kx, std::uint8_t* chunk, std::size_t n, std::vector<std::uint8_t>& file) const {
        std::string name;
        for (std::size_t i = 0; i < shape_.size(); ++i) {
            const int k = i == x_ ? kx : i == y_ ? ky : int(i) == c_ ? kc : plane_[i] / chunks_[i];
            name += (i ? std::string(1, sep_) : std::string()) + std::to_string(k);
        }
        const fs::path p = array_ / name;
        std::FILE* f = std::fopen(p.c_str(), "rb");
        if (!f) {
            if (errno != ENOENT)
                throw IoError(path_, "cannot read chunk '" + p.string() + "': " + std::strerror(errno));
            fill(chunk, n);
            return;
        }
        file.clear();
        std::uint8_t buf[1 << 16];
        std::size_t k;
        while ((k = std::fread(buf, 1, sizeof buf, f)) > 0) file.insert(file.end(), buf, buf + k);
        const bool bad = std::ferror(f);
        std::fclose(f);
        if (bad) throw IoError(path_, "cannot read chunk '" + p.string() + "'");
        io::zarr_decode(codec_, file.data(), file.size(), chunk, n, p.string());
    }

    void fill(std::uint8_t* chunk, std::size_t n) const {
        if (fill_ == 0) {
            std::fill(chunk, chunk + n, std::uint8_t(0));
            return;
        }
        const double one[1] = {fill_};
        const std::size_t sz = format_size(info_.format);
        const int w = int(n / sz);
        fill_pixels(Tile{Rect{0, 0, w, 1}, 1, info_.format, reinterpret_cast<std::byte*>(chunk), n}, one, 1);
    }

    std::string path_;
    fs::path array_;
    std::vector<std::int64_t> shape_;
    std::vector<int> chunks_;
    std::size_t x_ = 1, y_ = 0;
    int c_ = -1;
    std::vector<int> plane_;  // per axis: the plane read (0 for c, y and x)
    std::size_t chunk_elems_ = 1, stride_x_ = 1, stride_y_ = 1, stride_c_ = 0;
    std::size_t plane_offset_ = 0;  // the plane's place in a chunk (in samples)
    char sep_ = '.';
    double fill_ = 0;
    io::ZarrCodec codec_;
    std::int64_t chunks_x_ = 1, chunks_y_ = 1;          // chunks across and down
    std::uint64_t owner_ = chunk_cache().next_owner();  // this op's chunks in the cache
    mutable std::array<std::mutex, 16> decoding_;       // (see cached_chunk)
};

}  // namespace

namespace io {
std::string zarr_chunk_stats() {
    return "zarr: " + std::to_string(g_decoded.load()) + " chunks decoded (" + std::to_string(g_hits.load()) +
           " served from the cache)";
}
}  // namespace io

OpSpec zarr_load_op_spec() {
    return {"zarr_load",
            "a Zarr v2 array of one 2-D image as a source: an OME-Zarr image (NGFF 0.4; level 0 or `level`; one "
            "plane of a z or t axis, `z`, `t`) or a plain (y, x) or (c, y, x) array (zarr-python, bioformats2raw); "
            "blosc, zstd, zlib or uncompressed chunks, read lazily by chunk",
            0,
            0,
            {{"path", ParamType::string, true, "", "the store's folder (NAME.ome.zarr) or an array's (with .zarray)",
              true},
             {.name = "level",
              .type = ParamType::integer,
              .doc = "OME-Zarr: the multiscales level to read (0: full resolution)",
              .default_value = std::int64_t(0),
              .min = 0,
              .max = 64},
             {.name = "z",
              .type = ParamType::integer,
              .doc = "OME-Zarr with a z axis: the focal plane to read",
              .default_value = std::int64_t(0),
              .min = 0,
              .max = kMaxDimension},
             {.name = "t",
              .type = ParamType::integer,
              .doc = "OME-Zarr with a t axis: the time point to read",
              .default_value = std::int64_t(0),
              .min = 0,
              .max = kMaxDimension}},
            false,
            &make_op<ZarrLoadOp>,
            false,
            "source",
            "0"};
}

}  // namespace tessera
