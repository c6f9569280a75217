// Streaming JPEG decode for the load op, internal to io/.
//
// JPEG decodes top to bottom. The evaluator walks output tiles in row-major
// order, so each input is asked for its rows in increasing order, one band
// (a tile row's worth) at a time, by several tiles side by side. A decoder
// per source (load op) keeps its libjpeg state between requests and a window holding
// the current band of rows: each row is decoded once, rows nobody asks for
// are skipped (jpeg_skip_scanlines), and the decoder is dropped when the
// evaluator says no later tile needs the file (release), or by an LRU under
// a byte budget. A request for rows the window has already let go restarts
// the decode from the top (counted: it means an unusual traversal).
//
// Pixels equal libvips's JPEG decode (same libjpeg, same settings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tessera/core/buffer.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera::io {

// The header of a JPEG the streaming decoder can serve (1 or 3 components,
// 8 bits): fills info and returns true; false for anything else (CMYK,
// 12-bit, not a JPEG), which the caller leaves to libvips.
bool probe_streamable_jpeg(const std::string& path, ImageInfo& info);

// Decoders belong to sources (load ops), not to files: Op::expect and
// Op::release speak for one op, and a file placed many times (one load op
// per placement) is read by each placement in its own order and columns.
// Each load op takes a source id once and names it in every call.
class JpegDecoders {
public:
    using Source = std::uint64_t;
    static JpegDecoders& instance();
    // A fresh id for a new source (never reused in the process).
    static Source new_source();
    // Copies out.rect (image frame) of the decoded file into out.
    void read(Source source, const std::string& path, const ImageInfo& info, const Tile& out);
    // The next decode for this source will be asked for `region` only: it
    // may decode just those columns.
    void expect(Source source, const std::string& path, const ImageInfo& info, const Rect& region);
    // The oldest announced segment ended: its decoder and window go (a
    // later segment's, announced while its tiles were in flight, stays).
    void release(Source source);
    // Drops every decoder of the source (its op goes).
    void forget(Source source);
    void set_budget(std::size_t bytes);
    std::size_t rewinds() const;
    std::string stats() const;             // one line for --stats
    std::uint64_t pixels_decoded() const;  // by every decoder so far (rows x decoded columns)
    std::size_t live() const;
    MemoryAccount& account();
};

}  // namespace tessera::io
