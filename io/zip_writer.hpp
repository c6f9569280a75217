// A zip archive written entry by entry, internal to io/: the container of a
// zipped Deep Zoom pyramid (dzsave.cpp, container zip and szi). Wraps
// minizip (zlib's contrib, Debian's libminizip), whose header stays in
// zip_writer.cpp.
//
// Entries are stored, never recompressed (the tiles are JPEG/PNG/WebP
// already; vips dzsave's default, compression 0, does the same), each
// written whole as it is added: nothing is staged. Archives past 4 GB or
// 65535 entries get zip64 end records (minizip adds them past 4 GB, close()
// past 65535 entries, where minizip does not), as libvips's libarchive
// writer does.
#pragma once

#include <cstddef>
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
    void* zip_ = nullptr;
    std::string file_, target_;
    std::tm when_{};
    std::size_t entries_ = 0;
};

}  // namespace tessera::io
