#include "zarr_codec.hpp"

#include <blosc.h>
#include <libdeflate.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "tessera/core/error.hpp"

namespace tessera::io {

ZarrCodec zarr_codec_for(const std::string& s) {
    ZarrCodec c;
    if (s == "blosc" || s == "blosc-lz4") return c;
    if (s == "blosc-zstd") {
        c.cname = "zstd";
        c.level = 5;
        return c;
    }
    if (s == "zstd") return {ZarrCodec::Kind::zstd, "", 3, 0};
    if (s == "deflate" || s == "zlib") return {ZarrCodec::Kind::zlib, "", 6, 0};
    if (s == "none") return {ZarrCodec::Kind::none, "", 0, 0};
    throw ParamError("compression", "'" + s +
                                        "' is no Zarr codec; use blosc (the default), blosc-zstd, zstd, "
                                        "deflate or none");
}

std::string zarr_codec_json(const ZarrCodec& c) {
    switch (c.kind) {
        case ZarrCodec::Kind::none: return "null";
        case ZarrCodec::Kind::blosc:
            return "{\"blocksize\": 0, \"clevel\": " + std::to_string(c.level) + ", \"cname\": \"" + c.cname +
                   "\", \"id\": \"blosc\", \"shuffle\": " + std::to_string(c.shuffle) + "}";
        case ZarrCodec::Kind::zstd: return "{\"id\": \"zstd\", \"level\": " + std::to_string(c.level) + "}";
        case ZarrCodec::Kind::zlib: return "{\"id\": \"zlib\", \"level\": " + std::to_string(c.level) + "}";
    }
    return "null";
}

std::vector<std::uint8_t> zarr_encode(const ZarrCodec& c, const std::uint8_t* data, std::size_t n, std::size_t typesize,
                                      const std::string& what) {
    std::vector<std::uint8_t> out;
    switch (c.kind) {
        case ZarrCodec::Kind::none: out.assign(data, data + n); return out;
        case ZarrCodec::Kind::blosc: {
            out.resize(n + BLOSC_MAX_OVERHEAD);
            // one internal thread: the writer's workers already run one chunk each
            const int k = blosc_compress_ctx(c.level, c.shuffle, typesize, n, data, out.data(), out.size(),
                                             c.cname.c_str(), 0, 1);
            if (k <= 0) throw IoError(what, "blosc could not compress a chunk (" + c.cname + ")");
            out.resize(std::size_t(k));
            return out;
        }
        case ZarrCodec::Kind::zstd: {
            out.resize(ZSTD_compressBound(n));
            const std::size_t k = ZSTD_compress(out.data(), out.size(), data, n, c.level);
            if (ZSTD_isError(k))
                throw IoError(what, std::string("zstd could not compress a chunk: ") + ZSTD_getErrorName(k));
            out.resize(k);
            return out;
        }
        case ZarrCodec::Kind::zlib: {
            std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> z(libdeflate_alloc_compressor(
                                                                                           c.level),
                                                                                       libdeflate_free_compressor);
            if (!z) throw IoError(what, "cannot make a zlib compressor (out of memory?)");
            out.resize(libdeflate_zlib_compress_bound(z.get(), n));
            const std::size_t k = libdeflate_zlib_compress(z.get(), data, n, out.data(), out.size());
            if (k == 0) throw IoError(what, "zlib could not compress a chunk");
            out.resize(k);
            return out;
        }
    }
    return out;
}

void zarr_decode(const ZarrCodec& c, const std::uint8_t* data, std::size_t size, std::uint8_t* out, std::size_t n,
                 const std::string& what) {
    const std::string bad = "is not a chunk of " + std::to_string(n) + " bytes ";
    switch (c.kind) {
        case ZarrCodec::Kind::none:
            if (size != n) throw IoError(what, bad + "(uncompressed, it has " + std::to_string(size) + ")");
            std::memcpy(out, data, n);
            return;
        case ZarrCodec::Kind::blosc: {
            std::size_t nbytes = 0, cbytes = 0, block = 0;
            if (size < BLOSC_MIN_HEADER_LENGTH) throw IoError(what, bad + "(too short for blosc)");
            blosc_cbuffer_sizes(data, &nbytes, &cbytes, &block);
            if (nbytes != n || cbytes > size) throw IoError(what, bad + "(its blosc header says otherwise)");
            if (blosc_decompress_ctx(data, out, n, 1) != int(n)) throw IoError(what, bad + "(blosc cannot decode it)");
            return;
        }
        case ZarrCodec::Kind::zstd: {
            const unsigned long long m = ZSTD_getFrameContentSize(data, size);
            if (m != ZSTD_CONTENTSIZE_UNKNOWN && m != n) throw IoError(what, bad + "(its zstd frame says otherwise)");
            const std::size_t k = ZSTD_decompress(out, n, data, size);
            if (ZSTD_isError(k) || k != n) throw IoError(what, bad + "(zstd cannot decode it)");
            return;
        }
        case ZarrCodec::Kind::zlib: {
            std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> z(
                libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
            std::size_t k = 0;
            if (!z || libdeflate_zlib_decompress(z.get(), data, size, out, n, &k) != LIBDEFLATE_SUCCESS || k != n)
                throw IoError(what, bad + "(zlib cannot decode it)");
            return;
        }
    }
}

}  // namespace tessera::io
