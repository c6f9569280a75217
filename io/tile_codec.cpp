#include "tile_codec.hpp"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <jpeglib.h>
#include <libdeflate.h>
#include <memory>
// (ZSTD_getCParams: zstd's experimental API, exported by the shared library
// since 1.0 and unchanged since)
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "tessera/core/error.hpp"

namespace tessera::io {

Compression parse_compression(const std::string& s) {
    if (s == "none") return Compression::none;
    if (s == "deflate" || s == "zip") return Compression::deflate;
    if (s == "lzw") return Compression::lzw;
    if (s == "zstd") return Compression::zstd;
    if (s == "jpeg" || s == "jpg") return Compression::jpeg;
    throw ParamError("compression", "unknown compression '" + s + "'; use none, deflate, lzw, zstd or jpeg");
}

const char* compression_name(Compression c) {
    switch (c) {
        case Compression::none: return "none";
        case Compression::deflate: return "deflate";
        case Compression::lzw: return "lzw";
        case Compression::zstd: return "zstd";
        case Compression::jpeg: return "jpeg";
    }
    return "?";
}

std::vector<std::uint8_t> pad_tile(const ConstTile& tile, int tw, int th) {
    const std::size_t px = tile.pixel_bytes();
    std::vector<std::uint8_t> out(std::size_t(tw) * th * px, 0);
    for (int y = 0; y < tile.rect.h; ++y)
        std::memcpy(out.data() + std::size_t(y) * tw * px, tile.at(tile.rect.x, tile.rect.y + y), tile.row_bytes());
    return out;
}

std::vector<std::uint8_t> pad_band(const ConstTile& tile, int band, int tw, int th) {
    const std::size_t ss = format_size(tile.format), px = tile.pixel_bytes();
    std::vector<std::uint8_t> out(std::size_t(tw) * th * ss, 0);
    for (int y = 0; y < tile.rect.h; ++y) {
        const std::byte* src = tile.at(tile.rect.x, tile.rect.y + y) + std::size_t(band) * ss;
        std::uint8_t* dst = out.data() + std::size_t(y) * tw * ss;
        // (fixed-size copies, which the compiler inlines)
        auto copy = [&](auto sample) {
            constexpr std::size_t n = sizeof sample;
            for (int x = 0; x < tile.rect.w; ++x) std::memcpy(dst + std::size_t(x) * n, src + std::size_t(x) * px, n);
        };
        switch (ss) {
            case 1: copy(std::uint8_t{}); break;
            case 2: copy(std::uint16_t{}); break;
            case 4: copy(std::uint32_t{}); break;
            default: copy(std::uint64_t{}); break;
        }
    }
    return out;
}

namespace {

// libjpeg reports errors through longjmp; turn them into exceptions at the
// call site (no C++ object with a destructor lives between setjmp and the
// libjpeg calls).
struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};
extern "C" void jpeg_error_exit(j_common_ptr c) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    (*c->err->format_message)(c, e->message);
    std::longjmp(e->jump, 1);
}

// A growing memory destination for libjpeg: a scratch buffer per thread
// that keeps its size between tiles (so it is not zero-filled again for
// every tile, as a fresh vector's resize would be: 64 KB of memset per
// tile), copied out at the exact compressed length.
struct VectorDest {
    jpeg_destination_mgr mgr;
    std::vector<std::uint8_t>* scratch;
    std::size_t used = 0;
};
extern "C" void dest_init(j_compress_ptr c) {
    auto* d = reinterpret_cast<VectorDest*>(c->dest);
    if (d->scratch->size() < 64 * 1024) d->scratch->resize(64 * 1024);
    d->mgr.next_output_byte = d->scratch->data();
    d->mgr.free_in_buffer = d->scratch->size();
}
extern "C" boolean dest_empty(j_compress_ptr c) {
    auto* d = reinterpret_cast<VectorDest*>(c->dest);
    std::size_t used = d->scratch->size();
    d->scratch->resize(used * 2);
    d->mgr.next_output_byte = d->scratch->data() + used;
    d->mgr.free_in_buffer = d->scratch->size() - used;
    return TRUE;
}
extern "C" void dest_term(j_compress_ptr c) {
    auto* d = reinterpret_cast<VectorDest*>(c->dest);
    d->used = d->scratch->size() - d->mgr.free_in_buffer;
}

void setup_jpeg(jpeg_compress_struct& c, int bands, int quality) {
    c.input_components = bands;
    c.in_color_space = bands == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    // RGB is stored as YCbCr; chroma is 2x2 subsampled below quality 90 and
    // kept whole from 90 up, as libvips does (the TIFF's YCbCrSubsampling
    // tag says which: jpeg_chroma_subsampling()).
    jpeg_set_quality(&c, quality, TRUE);
    if (bands == 3 && jpeg_chroma_subsampling(quality) == 1)
        c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
    c.dct_method = JDCT_ISLOW;
}

// Runs libjpeg compression of h rows of w pixels, `stride` bytes apart (or
// only the tables when rows is null): an abbreviated stream (TIFF tiles), or
// with `whole` a complete one.
bool run_jpeg(const std::uint8_t* rows, std::size_t stride, int w, int h, int bands, int quality,
              std::vector<std::uint8_t>& out, std::string& error, bool whole = false) {
    thread_local std::vector<std::uint8_t> scratch;
    std::vector<JSAMPROW> row_ptrs(rows ? std::size_t(h) : 0);
    for (std::size_t y = 0; y < row_ptrs.size(); ++y) row_ptrs[y] = const_cast<JSAMPROW>(rows + y * stride);
    jpeg_compress_struct c;
    JpegError err;
    VectorDest dest;
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_error_exit;
    if (setjmp(err.jump)) {
        error = err.message;
        jpeg_destroy_compress(&c);
        return false;
    }
    jpeg_create_compress(&c);
    dest.scratch = &scratch;
    dest.mgr.init_destination = dest_init;
    dest.mgr.empty_output_buffer = dest_empty;
    dest.mgr.term_destination = dest_term;
    c.dest = &dest.mgr;
    c.image_width = JDIMENSION(w);
    c.image_height = JDIMENSION(h);
    setup_jpeg(c, bands, quality);
    if (!rows) {
        jpeg_write_tables(&c);
    } else {
        if (whole) {
            c.write_JFIF_header = FALSE;  // as libvips's jpegsave with strip
        } else {
            jpeg_suppress_tables(&c, TRUE);  // tables live in the JPEGTables tag
        }
        jpeg_start_compress(&c, whole ? TRUE : FALSE);
        while (c.next_scanline < c.image_height)
            jpeg_write_scanlines(&c, row_ptrs.data() + c.next_scanline, c.image_height - c.next_scanline);
        jpeg_finish_compress(&c);
    }
    jpeg_destroy_compress(&c);
    out.assign(scratch.data(), scratch.data() + dest.used);
    return true;
}

}  // namespace

std::vector<std::uint8_t> TileCodec::jpeg_tables(int bands) const {
    std::vector<std::uint8_t> out;
    std::string error;
    if (!run_jpeg(nullptr, 0, 8, 8, bands, quality, out, error)) throw Error("JPEG tables: " + error);
    return out;
}

namespace {

// Predictor 2 in place over whole padded rows, right to left so each sample
// is differenced against its original left neighbour. Floats are differenced
// as unsigned integers of their width, as libtiff does.
template <class U>
void horizontal_difference(std::uint8_t* data, int tw, int th, int bands) {
    const std::size_t row = std::size_t(tw) * bands;
    for (int y = 0; y < th; ++y) {
        U* r = reinterpret_cast<U*>(data) + std::size_t(y) * row;
        for (std::size_t i = row; i-- > std::size_t(bands);) r[i] = U(r[i] - r[i - bands]);
    }
}

void apply_predictor(std::vector<std::uint8_t>& raw, int bands, Format format, int tw, int th) {
    switch (format_size(format)) {
        case 1: return horizontal_difference<std::uint8_t>(raw.data(), tw, th, bands);
        case 2: return horizontal_difference<std::uint16_t>(raw.data(), tw, th, bands);
        case 4: return horizontal_difference<std::uint32_t>(raw.data(), tw, th, bands);
        default: return horizontal_difference<std::uint64_t>(raw.data(), tw, th, bands);
    }
}

}  // namespace

std::vector<std::uint8_t> encode_jpeg_file(const std::uint8_t* pixels, int w, int h, int bands, int quality) {
    std::vector<std::uint8_t> out;
    std::string error;
    if (!run_jpeg(pixels, std::size_t(w) * bands, w, h, bands, quality, out, error, true))
        throw Error("JPEG encode: " + error);
    return out;
}

std::vector<std::uint8_t> TileCodec::encode(const ConstTile& tile, int tw, int th) const {
    // a whole tile goes to libjpeg from its own rows: the padded copy would
    // be the same bytes (measured: the copy and its zero fill were 3 % of
    // a JPEG pyramid's CPU)
    if (compression == Compression::jpeg && tile.rect.w == tw && tile.rect.h == th) {
        std::vector<std::uint8_t> out;
        std::string error;
        if (!run_jpeg(reinterpret_cast<const std::uint8_t*>(tile.at(tile.rect.x, tile.rect.y)), tile.stride, tw, th,
                      tile.bands, quality, out, error))
            throw Error("JPEG encode: " + error);
        return out;
    }
    return encode_padded(pad_tile(tile, tw, th), tile.bands, tile.format, tw, th);
}

std::vector<std::uint8_t> TileCodec::encode_padded(std::vector<std::uint8_t> raw, int bands, Format format, int tw,
                                                   int th, std::size_t zstd_size) const {
    // LZW's predictor is applied by libtiff, which encodes it
    if (predictor && (compression == Compression::deflate || compression == Compression::zstd))
        apply_predictor(raw, bands, format, tw, th);
    switch (compression) {
        case Compression::none:
        case Compression::lzw: return raw;
        case Compression::deflate: {
            // libdeflate (whole-buffer, as a tile is) writes the zlib stream
            // TIFF's Adobe deflate wants 3-5x faster than zlib at level 6.
            struct Free {
                void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
            };
            // (a compressor is made for one level: kept while the level stays)
            thread_local std::unique_ptr<libdeflate_compressor, Free> c;
            thread_local int made_for = 0;
            if (!c || made_for != deflate_level()) {
                c.reset(libdeflate_alloc_compressor(deflate_level()));
                made_for = deflate_level();
            }
            if (!c) throw Error("deflate: cannot allocate a compressor");
            std::vector<std::uint8_t> out(libdeflate_zlib_compress_bound(c.get(), raw.size()));
            std::size_t n = libdeflate_zlib_compress(c.get(), raw.data(), raw.size(), out.data(), out.size());
            if (n == 0) throw Error("deflate failed");
            out.resize(n);
            return out;
        }
        case Compression::zstd: {
            // a context per thread, reused: ZSTD_compress makes and frees
            // one per call (the same bytes either way)
            struct Free {
                void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
            };
            thread_local std::unique_ptr<ZSTD_CCtx, Free> c(ZSTD_createCCtx());
            if (!c) throw Error("zstd: cannot allocate a compressor");
            std::vector<std::uint8_t> out(ZSTD_compressBound(raw.size()));
            std::size_t n = 0;
            if (zstd_size == 0 || zstd_size == raw.size()) {
                n = ZSTD_compressCCtx(c.get(), out.data(), out.size(), raw.data(), raw.size(), zstd_level());
            } else {
                // the level's parameters for zstd_size bytes (see the header);
                // reset after, so the plain path above starts clean
                const ZSTD_compressionParameters p = ZSTD_getCParams(zstd_level(), zstd_size, 0);
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_windowLog, int(p.windowLog));
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_chainLog, int(p.chainLog));
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_hashLog, int(p.hashLog));
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_searchLog, int(p.searchLog));
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_minMatch, int(p.minMatch));
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_targetLength, int(p.targetLength));
                ZSTD_CCtx_setParameter(c.get(), ZSTD_c_strategy, int(p.strategy));
                n = ZSTD_compress2(c.get(), out.data(), out.size(), raw.data(), raw.size());
                ZSTD_CCtx_reset(c.get(), ZSTD_reset_session_and_parameters);
            }
            if (ZSTD_isError(n)) throw Error(std::string("zstd failed: ") + ZSTD_getErrorName(n));
            out.resize(n);
            return out;
        }
        case Compression::jpeg: {
            std::vector<std::uint8_t> out;
            std::string error;
            if (!run_jpeg(raw.data(), std::size_t(tw) * bands, tw, th, bands, quality, out, error))
                throw Error("JPEG encode: " + error);
            return out;
        }
    }
    return raw;
}

}  // namespace tessera::io
