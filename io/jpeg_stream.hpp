// Streaming JPEG decode for the load op, internal to io/.
//
// JPEG decodes top to bottom. The evaluator walks output tiles in row-major
// order, so each input is asked for its rows in increasing order, one band
// (a tile row's worth) at a time, by several tiles side by side. A decoder
// per file keeps its libjpeg state between requests and a window holding
// the current band of rows: each row is decoded once, rows nobody asks for
// are skipped (jpeg_skip_scanlines), and the decoder is dropped when the
// evaluator says no later tile needs the file (release), or by an LRU under
// a byte budget. A request for rows the window has already let go restarts
// the decode from the top (counted: it means an unusual traversal).
//
// Pixels equal libvips's JPEG decode (same libjpeg, same settings).
#pragma once

#include <cstddef>
#include <string>

#include "tessera/core/buffer.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera::io {

// The header of a JPEG the streaming decoder can serve (1 or 3 components,
// 8 bits): fills info and returns true; false for anything else (CMYK,
// 12-bit, not a JPEG), which the caller leaves to libvips.
bool probe_streamable_jpeg(const std::string& path, ImageInfo& info);

class JpegDecoders {
public:
    static JpegDecoders& instance();
    // Copies out.rect (image frame) of the decoded file into out.
    void read(const std::string& path, const ImageInfo& info, const Tile& out);
    // The next decode of this file will be asked for `region` only: it may
    // decode just those columns.
    void expect(const std::string& path, const ImageInfo& info, const Rect& region);
    // No later request is expected: drop the decoder and its window.
    void release(const std::string& path);
    void set_budget(std::size_t bytes);
    std::size_t rewinds() const;
    std::string stats() const;  // one line for --stats
    std::size_t live() const;
    MemoryAccount& account();
};

}  // namespace tessera::io
