// A zip archive written entry by entry, internal to io/: the container of a
// zipped Deep Zoom pyramid (dzsave.cpp, container zip and szi).
//
// Entries are stored, never recompressed (the tiles are JPEG/PNG/WebP
// already; vips dzsave's default, compression 0, does the same), each
// written whole as it is added: nothing is staged. The central directory
// (a record per entry, about 75 bytes for a tile: 11 MB for the 157 000
// tiles of a 95000x80000 slide, which minizip kept in memory to the end)
// waits in an unlinked temporary file beside the archive and is copied in
// by close(), so that memory does not grow with the entries. Archives past
// 4 GB or 65535 entries get zip64 records (APPNOTE 4.3.14-4.3.16, 4.5.3),
// as libvips's libarchive writer does. The format is written here (a
// stored zip is headers around the bytes; CRC-32 by libdeflate); minizip
// (zlib's contrib) reads archives back (unzip_to).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace tessera::io {

class ZipWriter {
public:
    // Creates `file` (a temporary beside `target`, which errors name);
    // every entry gets the modification time `when` (local time, as zip
    // stores it). IoError when the file cannot be created.
    ZipWriter(const std::string& file, const std::string& target, std::time_t when);
    ~ZipWriter();  // closes without the central directory if close() was not called
    ZipWriter(const ZipWriter&) = delete;
    ZipWriter& operator=(const ZipWriter&) = delete;

    // Serial: one entry, `name` relative ("a/b/c.png"), its bytes stored.
    void add(const std::string& name, const void* data, std::size_t n);
    // Writes the central directory and closes the file; IoError if it
    // cannot (a full disk).
    void close();
    std::size_t entries() const { return entries_; }

private:
    std::FILE* out_ = nullptr;  // the archive
    std::FILE* cd_ = nullptr;   // the central directory so far (unlinked)
    std::string file_, target_;
    std::uint16_t dos_time_ = 0, dos_date_ = 0;
    std::uint64_t offset_ = 0;   // bytes written to the archive
    std::uint64_t cd_size_ = 0;  // bytes of cd_
    std::size_t entries_ = 0;
};

}  // namespace tessera::io
