// The chunk codecs of Zarr v2 as numcodecs names them, internal to io/: the
// OME-Zarr writer (ome_zarr.cpp) compresses with them and writes their
// metadata, zarr_load (zarr_load.cpp) reads what zarr-python, bioformats2raw
// or GDAL wrote. Blosc through libblosc (Debian's libblosc-dev, the library
// numcodecs itself wraps), zstd through libzstd, zlib through libdeflate.
// Every call is thread-safe (blosc's _ctx functions: no global state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::io {

struct ZarrCodec {
    enum class Kind { none, blosc, zstd, zlib } kind = Kind::blosc;
    std::string cname = "lz4";  // blosc's inner codec: lz4, lz4hc, zstd, zlib, blosclz
    int level = 5;              // blosc clevel, zstd level, zlib level
    int shuffle = 1;            // blosc: 0 none, 1 byte, 2 bit (numcodecs' NOSHUFFLE, SHUFFLE, BITSHUFFLE)
};

// The save key's value: blosc (lz4, byte shuffle: zarr-python's default),
// blosc-zstd, zstd, deflate (numcodecs zlib) or none. ParamError on
// "compression" for another.
ZarrCodec zarr_codec_for(const std::string& compression);

// The .zarray "compressor" value: numcodecs' config, or null.
std::string zarr_codec_json(const ZarrCodec& c);

// `n` bytes of `typesize`-byte samples, encoded. Error naming `what` when
// the library fails.
std::vector<std::uint8_t> zarr_encode(const ZarrCodec& c, const std::uint8_t* data, std::size_t n, std::size_t typesize,
                                      const std::string& what);

// Decodes a chunk file's bytes into exactly `n` bytes at `out`; IoError
// naming `what` (the chunk file) when they are not a chunk of that size.
void zarr_decode(const ZarrCodec& c, const std::uint8_t* data, std::size_t size, std::uint8_t* out, std::size_t n,
                 const std::string& what);

// zarr_load's line for --stats: chunks decoded, and served from its cache
// (zarr_load.cpp).
std::string zarr_chunk_stats();

}  // namespace tessera::io
