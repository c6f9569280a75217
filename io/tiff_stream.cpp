#include "tiff_stream.hpp"

#include <tiffio.h>

#include <algorithm>
#include <array>
#include <functional>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "block_cache.hpp"
#include "file_cache.hpp"
#include "tessera/core/compute_slots.hpp"
#include "tessera/core/error.hpp"
#include "vips_common.hpp"

namespace tessera::io {
namespace {

// libtiff reads through these: the file cache's shared descriptors (pread),
// so thousands of pages hold no descriptor of their own. A read error is
// kept for the message (no exception may cross libtiff's C frames).
struct ClientFile {
    std::string path;
    std::uint64_t size = 0, pos = 0;
    std::string error;  // libtiff's messages and read failures, for the IoError
};

tmsize_t client_read(thandle_t h, void* buf, tmsize_t n) {
    auto* f = static_cast<ClientFile*>(h);
    try {
        std::size_t got = 0;
        while (got < std::size_t(n)) {
            const std::size_t r =
                FileCache::instance().read(f->path, f->pos + got, static_cast<char*>(buf) + got, std::size_t(n) - got);
            if (r == 0) break;  // end of file: libtiff reports the short read
            got += r;
        }
        f->pos += got;
        return tmsize_t(got);
    } catch (const std::exception& e) {
        f->error = e.what();
        return -1;
    }
}
tmsize_t client_write(thandle_t, void*, tmsize_t) { return -1; }
toff_t client_seek(thandle_t h, toff_t off, int whence) {
    auto* f = static_cast<ClientFile*>(h);
    const std::uint64_t base = whence == SEEK_CUR ? f->pos : whence == SEEK_END ? f->size : 0;
    f->pos = base + off;
    return f->pos;
}
int client_close(thandle_t) { return 0; }
toff_t client_size(thandle_t h) { return static_cast<ClientFile*>(h)->size; }
int client_map(thandle_t, void**, toff_t*) { return 0; }  // no mapping: reads go through pread
void client_unmap(thandle_t, void*, toff_t) {}

int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    auto* f = static_cast<ClientFile*>(user);
    if (f->error.empty()) f->error = std::string(module ? module : "libtiff") + ": " + buf;
    return 1;  // handled: libvips's or the writer's global handler is not called
}
int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }  // unknown tags and the like

struct TiffCloser {
    void operator()(TIFF* t) const { TIFFClose(t); }
};

// One open page: its directory parsed, its block layout, its raw block
// offsets (uncompressed pages are read by offset, without libtiff).
struct Page {
    std::uint64_t id = 0;  // the block cache's key (never reused)
    std::unique_ptr<ClientFile> file;
    std::unique_ptr<TIFF, TiffCloser> tif;
    std::mutex mu;  // libtiff's handle is one thread's at a time
    bool tiled = false, raw = false, swab = false;
    std::uint32_t width = 0, height = 0;
    std::uint32_t bw = 0, bh = 0;                // block size: a tile, or the full width x rows per strip
    std::uint32_t across = 1;                    // blocks per block row
    std::size_t px = 0, sample = 0;              // bytes per pixel, per sample
    std::vector<std::uint64_t> offsets, counts;  // per block (raw pages)
};

struct Conditions {
    bool ok = false;
    std::string why;
};

// Opens `page` of `path` with libtiff; null (and f.error) when it cannot.
std::unique_ptr<TIFF, TiffCloser> open_tiff(ClientFile& f, int page) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &f);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, &f);
    // "rm": read, and never map the file (the size above counts reads)
    std::unique_ptr<TIFF, TiffCloser> t(TIFFClientOpenExt(f.path.c_str(), "rm", &f, client_read, client_write,
                                                          client_seek, client_close, client_size, client_map,
                                                          client_unmap, opts));
    TIFFOpenOptionsFree(opts);
    if (t && page > 0 && !TIFFSetDirectory(t.get(), tdir_t(page))) t.reset();
    return t;
}

template <typename T>
T field(TIFF* t, ttag_t tag, T def) {
    T v{};
    return TIFFGetField(t, tag, &v) ? v : def;
}

// What libvips's tiffload would read unchanged, matching info; fills the
// page's layout.
bool layout_of(TIFF* t, const ImageInfo& info, Page& p) {
    const auto bits = field<std::uint16_t>(t, TIFFTAG_BITSPERSAMPLE, 1);
    const auto spp = field<std::uint16_t>(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    const auto fmt = field<std::uint16_t>(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
    const auto planar = field<std::uint16_t>(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    const auto orient = field<std::uint16_t>(t, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    const auto comp = field<std::uint16_t>(t, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
    std::uint16_t photo = 0;
    if (!TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo)) return false;
    const Format f = bits == 8 && fmt == SAMPLEFORMAT_UINT      ? Format::u8
                     : bits == 16 && fmt == SAMPLEFORMAT_UINT   ? Format::u16
                     : bits == 32 && fmt == SAMPLEFORMAT_IEEEFP ? Format::f32
                                                                : Format::f64;  // f64: not taken
    if (f == Format::f64 || f != info.format || int(spp) != info.bands || spp < 1 || spp > 4) return false;
    if (spp > 1 && planar != PLANARCONFIG_CONTIG) return false;
    if (orient != ORIENTATION_TOPLEFT) return false;
    if (!(photo == PHOTOMETRIC_MINISBLACK || (photo == PHOTOMETRIC_RGB && spp >= 3))) return false;
    if (comp == COMPRESSION_JPEG || comp == COMPRESSION_OJPEG || !TIFFIsCODECConfigured(comp)) return false;
    std::uint16_t extra_n = 0;
    std::uint16_t* extra = nullptr;
    if (TIFFGetField(t, TIFFTAG_EXTRASAMPLES, &extra_n, &extra))
        for (int i = 0; i < extra_n; ++i)
            if (extra[i] == EXTRASAMPLE_ASSOCALPHA) return false;  // libvips may unpremultiply it
    p.width = field<std::uint32_t>(t, TIFFTAG_IMAGEWIDTH, 0);
    p.height = field<std::uint32_t>(t, TIFFTAG_IMAGELENGTH, 0);
    if (std::int64_t(p.width) != info.width || std::int64_t(p.height) != info.height) return false;
    p.sample = bits / 8;
    p.px = p.sample * spp;
    p.tiled = TIFFIsTiled(t);
    if (p.tiled) {
        p.bw = field<std::uint32_t>(t, TIFFTAG_TILEWIDTH, 0);
        p.bh = field<std::uint32_t>(t, TIFFTAG_TILELENGTH, 0);
    } else {
        p.bw = p.width;
        p.bh = std::min(field<std::uint32_t>(t, TIFFTAG_ROWSPERSTRIP, p.height), p.height);
    }
    if (p.bw == 0 || p.bh == 0) return false;
    p.across = (p.width + p.bw - 1) / p.bw;
    p.swab = TIFFIsByteSwapped(t);
    p.raw = comp == COMPRESSION_NONE;
    if (p.raw) {
        const std::uint32_t n = p.tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
        std::uint64_t *off = nullptr, *cnt = nullptr;
        const ttag_t to = p.tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS;
        const ttag_t tc = p.tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS;
        if (!TIFFGetField(t, to, &off) || !TIFFGetField(t, tc, &cnt) || !off || !cnt) return false;
        p.offsets.assign(off, off + n);
        p.counts.assign(cnt, cnt + n);
    }
    return true;
}

void byteswap(std::byte* d, std::size_t n, std::size_t sample) {
    if (sample == 2)
        for (std::size_t i = 0; i + 1 < n; i += 2) std::swap(d[i], d[i + 1]);
    else if (sample == 4)
        for (std::size_t i = 0; i + 3 < n; i += 4) std::swap(d[i], d[i + 3]), std::swap(d[i + 1], d[i + 2]);
}

}  // namespace

bool probe_streamable_tiff(const std::string& path, int page, const ImageInfo& info) {
    ClientFile f;
    f.path = path;
    f.size = vipsio::check_readable(path).size;
    auto t = open_tiff(f, page);
    Page p;
    const bool ok = t && layout_of(t.get(), info, p);
    t.reset();
    // the header is read: its descriptor goes, as the load op's header read
    // promises (a graph of 2000 loads holds none until it runs)
    FileCache::instance().close(path);
    return ok;
}

struct TiffReaders::Impl {
    std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<Page>> pages;  // "path\npage"
    std::array<std::mutex, 16> opening;                            // (see page_of)
    std::unordered_map<std::string, int> announced;                // segments expected and not ended
    std::size_t max_pages = std::size_t(std::max(default_max_open_files(), 4));
    // decoded blocks of compressed pages: (page id, block) -> bytes, LRU
    // (block_cache.hpp, which zarr_load's chunks share)
    BlockCache blocks{std::size_t(64) << 20};
    std::atomic<std::uint64_t> decoded{0}, hits{0}, raw_reads{0}, opened{0};

    static std::string key(const std::string& path, int page) { return path + '\n' + std::to_string(page); }

    std::shared_ptr<Page> page_of(const std::string& path, int page, const ImageInfo& info) {
        const std::string k = key(path, page);
        auto find = [&]() -> std::shared_ptr<Page> {
            std::lock_guard lock(mu);
            auto it = pages.find(k);
            return it != pages.end() ? it->second : nullptr;
        };
        if (auto p = find()) return p;
        // one thread opens it while the others wait (lending their slot),
        // where each opened its own and all but one were thrown away
        auto opening_lock = lock_or_lend(opening[std::hash<std::string>{}(k) % opening.size()]);
        if (auto p = find()) return p;
        auto p = std::make_shared<Page>();
        p->file = std::make_unique<ClientFile>();
        p->file->path = path;
        p->file->size = vipsio::check_readable(path).size;
        p->tif = open_tiff(*p->file, page);
        if (!p->tif)
            throw IoError(path,
                          "cannot be read as a TIFF any more (" +
                              (p->file->error.empty() ? std::string("libtiff could not open it") : p->file->error) +
                              "); was it replaced while the pipeline ran?");
        if (!layout_of(p->tif.get(), info, *p))
            throw IoError(path, "is no longer the TIFF the pipeline was built on (its size, samples or layout "
                                "changed); build the pipeline again");
        p->id = blocks.next_owner();
        ++opened;
        std::lock_guard lock(mu);
        auto [it, fresh] = pages.emplace(k, p);
        if (fresh && pages.size() > max_pages) evict_one(it->first);
        return it->second;
    }

    // Over the limit (sources the evaluator never released: a long-lived
    // process): forget a page no read holds, the oldest opened first. It is
    // opened again if asked for.
    void evict_one(const std::string& keep_key) {  // mu held
        auto victim = pages.end();
        for (auto it = pages.begin(); it != pages.end(); ++it)
            if (it->first != keep_key && it->second.use_count() == 1 &&
                (victim == pages.end() || it->second->id < victim->second->id))
                victim = it;
        if (victim == pages.end()) return;
        blocks.drop(victim->second->id);
        pages.erase(victim);
    }

    // A compressed block, decoded (from the cache when another tile of the
    // same output row asked for it already).
    std::shared_ptr<const std::vector<std::byte>> block_of(Page& p, std::uint32_t block) {
        if (auto b = blocks.find(p.id, block)) {
            ++hits;
            return b;
        }
        auto lock = lock_or_lend(p.mu);           // (another thread may be decoding it: lend the wait)
        if (auto b = blocks.find(p.id, block)) {  // decoded while this thread waited
            ++hits;
            return b;
        }
        TIFF* t = p.tif.get();
        const tmsize_t size = p.tiled ? TIFFTileSize(t) : TIFFStripSize(t);
        auto bytes = std::make_shared<std::vector<std::byte>>(std::size_t(size));
        p.file->error.clear();
        const tmsize_t got = p.tiled ? TIFFReadEncodedTile(t, block, bytes->data(), size)
                                     : TIFFReadEncodedStrip(t, block, bytes->data(), size);
        if (got < 0)
            throw IoError(p.file->path, "could not be decoded (" +
                                            (p.file->error.empty() ? std::string("libtiff") : p.file->error) +
                                            "); the file may be truncated or damaged: check it, or write it again");
        ++decoded;
        std::shared_ptr<const std::vector<std::byte>> out = std::move(bytes);
        blocks.keep(p.id, block, out);
        return out;
    }
};

TiffReaders::TiffReaders() : impl_(new Impl) {}

TiffReaders& TiffReaders::instance() {
    static TiffReaders r;  // never destroyed before the last read (as the file cache)
    return r;
}

void TiffReaders::read(const std::string& path, int page, const ImageInfo& info, const Tile& out) {
    // Cases, per block (strip or tile) the rect meets: uncompressed, its
    // rows' bytes read straight from the file (byte-swapped for a
    // big-endian file); compressed, the whole block decoded once (cached)
    // and its rows copied. Blocks of a tiled page run past the image's edge
    // (padding): only the rect's part is copied.
    std::shared_ptr<Page> pp = impl_->page_of(path, page, info);
    Page& p = *pp;
    const Rect r = out.rect;
    const std::uint32_t bx0 = std::uint32_t(r.x) / p.bw, bx1 = std::uint32_t(r.right() - 1) / p.bw;
    const std::uint32_t by0 = std::uint32_t(r.y) / p.bh, by1 = std::uint32_t(r.bottom() - 1) / p.bh;
    for (std::uint32_t by = by0; by <= by1; ++by)
        for (std::uint32_t bx = bx0; bx <= bx1; ++bx) {
            const std::uint32_t block = by * p.across + bx;
            const Rect br{int(bx * p.bw), int(by * p.bh), int(p.bw), int(p.bh)};
            const Rect part = r.intersect(br);
            const std::size_t row_bytes = std::size_t(part.w) * p.px;
            const std::size_t stride = std::size_t(p.bw) * p.px;  // a block row's bytes
            if (p.raw) {
                if (block >= p.offsets.size())
                    throw IoError(path, "has fewer strips or tiles than its size needs: the file is truncated or "
                                        "damaged; check it, or write it again");
                // the part's rows are one span of the block: read it in one
                // call (straight into out when its rows are whole block
                // rows, else through the thread's scratch), not row by row:
                // a blur's halo reads a few columns of each neighbouring
                // tile, and a call per row was 4.8 million preads for a
                // 20000^2 image, 40 % of its CPU. Only where the span is
                // small (a tile's worth) or mostly wanted: a few columns of
                // a wide strip are still read row by row, not the whole
                // strip for each of them.
                const std::uint64_t first = std::uint64_t(part.y - br.y) * stride + std::uint64_t(part.x - br.x) * p.px;
                const std::uint64_t span = std::uint64_t(part.h - 1) * stride + row_bytes;
                if (first + span > p.counts[block])
                    throw IoError(path, "has a strip or tile shorter than its rows: the file is truncated or "
                                        "damaged; check it, or write it again");
                const std::uint64_t wanted = std::uint64_t(part.h) * row_bytes;
                if (part.h > 1 && span > (std::uint64_t(256) << 10) && span > 4 * wanted) {
                    for (int y = part.y; y < part.bottom(); ++y) {
                        const std::uint64_t at = std::uint64_t(y - br.y) * stride + std::uint64_t(part.x - br.x) * p.px;
                        std::byte* dst = out.at(part.x, y);
                        std::size_t got = 0;
                        while (got < row_bytes) {
                            const std::size_t n = FileCache::instance().read(path, p.offsets[block] + at + got,
                                                                             dst + got, row_bytes - got);
                            if (n == 0)
                                throw IoError(path, "ends inside its pixel data: the file is truncated or damaged; "
                                                    "check it, or write it again");
                            got += n;
                        }
                        if (p.swab) byteswap(dst, row_bytes, p.sample);
                    }
                    ++impl_->raw_reads;
                    continue;
                }
                const bool direct = row_bytes == stride && out.stride == stride;
                thread_local std::vector<std::byte> scratch;
                if (!direct) scratch.resize(span);
                std::byte* dst = direct ? out.at(part.x, part.y) : scratch.data();
                std::size_t got = 0;
                while (got < span) {
                    const std::size_t n = FileCache::instance().read(path, p.offsets[block] + first + got, dst + got,
                                                                     std::size_t(span) - got);
                    if (n == 0)
                        throw IoError(path, "ends inside its pixel data: the file is truncated or damaged; check "
                                            "it, or write it again");
                    got += n;
                }
                for (int y = part.y; y < part.bottom(); ++y) {
                    std::byte* row = out.at(part.x, y);
                    if (!direct) std::memcpy(row, scratch.data() + std::size_t(y - part.y) * stride, row_bytes);
                    if (p.swab) byteswap(row, row_bytes, p.sample);
                }
                ++impl_->raw_reads;
                continue;
            }
            const auto bytes = impl_->block_of(p, block);
            for (int y = part.y; y < part.bottom(); ++y) {
                const std::size_t at = std::size_t(y - br.y) * stride + std::size_t(part.x - br.x) * p.px;
                if (at + row_bytes > bytes->size())
                    throw IoError(path, "has a strip or tile that decodes to fewer rows than it holds: the file is "
                                        "truncated or damaged; check it, or write it again");
                std::memcpy(out.at(part.x, y), bytes->data() + at, row_bytes);
            }
        }
}

void TiffReaders::expect(const std::string& path, int page) {
    std::lock_guard lock(impl_->mu);
    ++impl_->announced[Impl::key(path, page)];
}

void TiffReaders::release(const std::string& path, int page) {
    std::lock_guard lock(impl_->mu);
    const std::string key = Impl::key(path, page);
    if (auto a = impl_->announced.find(key); a != impl_->announced.end())
        if (--a->second > 0)
            return;  // a later segment is still to be read
        else
            impl_->announced.erase(a);
    auto it = impl_->pages.find(key);
    if (it == impl_->pages.end()) return;
    impl_->blocks.drop(it->second->id);
    impl_->pages.erase(it);  // closed when the last reader lets go of it
}

void TiffReaders::set_budget(std::size_t bytes) { impl_->blocks.set_budget(bytes); }

std::string TiffReaders::stats() const {
    return "tiff: " + std::to_string(impl_->opened.load()) + " pages opened, " +
           std::to_string(impl_->raw_reads.load()) + " uncompressed block reads, " +
           std::to_string(impl_->decoded.load()) + " blocks decoded (" + std::to_string(impl_->hits.load()) +
           " served from the cache)";
}

}  // namespace tessera::io
