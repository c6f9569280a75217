// Compression of single TIFF tiles, thread-safe, so that sinks can encode in
// the evaluator's parallel stage and only order bytes in the serial one.
// Internal to io/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"

namespace tessera::io {

enum class Compression { none, deflate, lzw, zstd, jpeg };
Compression parse_compression(const std::string& s);  // throws ParamError("compression")
const char* compression_name(Compression c);

struct TileCodec {
    Compression compression = Compression::none;
    int quality = 75;  // jpeg
    // Effort: deflate 1-12 (libdeflate's levels; 0: 6, zlib's default),
    // zstd 1-22 (0: 9, libtiff's and libvips's default).
    int level = 0;
    int deflate_level() const { return level > 0 ? level : 6; }
    int zstd_level() const { return level > 0 ? level : 9; }
    // TIFF predictor 2 (horizontal differencing of each sample from the one
    // a pixel to its left, in the sample's own integer width), for deflate,
    // zstd and lzw: much smaller files for smooth 16-bit and float rasters.
    bool predictor = false;

    // True when encode() can produce this compression's bytes itself
    // (LZW is left to libtiff, which encodes it in the serial writer).
    bool encodes_raw() const { return compression != Compression::lzw; }
    // The bytes of one tile of tw x th pixels: `tile` is copied into the top
    // left and the rest is padding (zero), as TIFF tiles are always whole.
    std::vector<std::uint8_t> encode(const ConstTile& tile, int tw, int th) const;
    // The same from a whole padded tile of `bands` samples of `format` (what
    // pad_tile or pad_band give), encoded in place where it can be.
    // zstd_size: the input size zstd picks its level's parameters for (0:
    // raw's own). zstd has a parameter table per size class, and for inputs
    // of 128 KB or less (one u16 plane of a 256^2 tile) level 9 searches
    // deeper for shorter matches: 1.7x the time of the whole tile's
    // parameters, for 2 % larger output (measured on mid's planes). An
    // OME-TIFF plane passes its whole tile's size, so it costs per byte what
    // the interleaved tile does.
    std::vector<std::uint8_t> encode_padded(std::vector<std::uint8_t> raw, int bands, Format format, int tw, int th,
                                            std::size_t zstd_size = 0) const;
    // JPEG: the tables shared by every tile (the JPEGTables tag); tiles are
    // abbreviated streams without them.
    std::vector<std::uint8_t> jpeg_tables(int bands) const;
};

// JPEG chroma subsampling factor used at this quality (2 below 90, else 1).
inline int jpeg_chroma_subsampling(int quality) { return quality < 90 ? 2 : 1; }

// A complete JPEG file of w x h pixels (1 or 3 bands of u8, packed rows),
// byte for byte what libvips's jpegsave writes with strip: no JFIF or other
// markers, chroma subsampled below quality 90. Thread-safe.
std::vector<std::uint8_t> encode_jpeg_file(const std::uint8_t* pixels, int w, int h, int bands, int quality);

// Pads `tile` into a whole tw x th tile (zeros outside), in a fresh vector.
std::vector<std::uint8_t> pad_tile(const ConstTile& tile, int tw, int th);
// The same for band `band` of `tile` alone: a one-band tile (a planar TIFF's
// plane, as OME-TIFF stores channels).
std::vector<std::uint8_t> pad_band(const ConstTile& tile, int band, int tw, int th);

}  // namespace tessera::io
