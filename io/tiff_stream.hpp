// Region reads of striped and tiled TIFFs for the load op, internal to io/.
//
// libvips's tiffload reads a tiled TIFF in parts, but a striped one (what
// microscopes, cameras and most acquisition software write: rows per strip,
// often uncompressed) is a "sequential" format to it, so a random-access
// open decodes the whole page into memory on the first pixel asked for and
// keeps it while the image stays open. A mosaic of 2000 16-bit 2048x2048
// tiles then held 8 MB per open tile (2.6 GB at the open-image cache's 256),
// where the tiles a band of output needs are a few strips of each.
//
// Here a page is read block by block (a strip or a tile) through libtiff,
// from descriptors shared through the file cache (pread): uncompressed
// blocks by reading just the bytes of the rect's rows, compressed ones by
// decoding whole blocks into a byte-bounded cache that the tiles of one
// output row share (a strip is asked for by every output tile across it).
// Pixels equal libvips's tiffload of the same page (the same libtiff; the
// files taken are those where libvips changes nothing: see probe).
#pragma once

#include <cstddef>
#include <string>

#include "tessera/core/buffer.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera::io {

// True when page `page` of the TIFF at `path` can be served here with the
// pixels libvips's tiffload gives for `info` (its header, from libvips):
// 8/16-bit unsigned or 32-bit float samples, 1 to 4 of them interleaved,
// grey (min-is-black) or RGB, no palette, no YCbCr or JPEG, no associated
// alpha, top-left orientation, a codec this libtiff has. Anything else is
// left to libvips.
bool probe_streamable_tiff(const std::string& path, int page, const ImageInfo& info);

class TiffReaders {
public:
    static TiffReaders& instance();
    // Copies out.rect (image frame) of the page into out. IoError naming the
    // file when it cannot be read or is no longer what the graph was built on.
    void read(const std::string& path, int page, const ImageInfo& info, const Tile& out);
    // A segment of a run's reads is announced (Op::expect), and one has
    // ended (Op::release). A run announces the next segment of a source
    // before the tiles of the last one are all computed (its tiles in flight
    // run ahead), so the page stays open until the last announced one ends;
    // then, or with none announced, its parsed directory and cached blocks
    // go.
    void expect(const std::string& path, int page);
    void release(const std::string& path, int page);
    void set_budget(std::size_t bytes);  // the decoded-block cache's bytes (default 64 MiB)
    std::string stats() const;           // one line for --stats

private:
    struct Impl;
    TiffReaders();
    Impl* impl_;  // lives as long as the process (as the other io caches)
};

}  // namespace tessera::io
