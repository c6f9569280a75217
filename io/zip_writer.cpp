#include "zip_writer.hpp"

#include <unzip.h>
#include <libdeflate.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/io/unzip.hpp"
#include "temp_beside.hpp"

namespace tessera::io {

namespace {

void put_le(std::vector<unsigned char>& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

constexpr std::uint64_t k32 = 0xffffffffu;  // a 4-byte field's "see the zip64 field"

}  // namespace

ZipWriter::ZipWriter(const std::string& file, const std::string& target, std::time_t when)
    : file_(file), target_(target) {
    std::tm tm{};
    localtime_r(&when, &tm);
    // MS-DOS time and date, as zip stores them (local time, 2-second steps)
    dos_time_ = std::uint16_t((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    dos_date_ = std::uint16_t((std::max(tm.tm_year + 1900 - 1980, 0) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    out_ = std::fopen(file.c_str(), "wb");
    if (!out_) throw IoError(target_, "cannot create the zip archive '" + file + "'; is the folder writable?");
    const std::string cd = temp_beside(target, ".zipdir");
    cd_ = std::fopen(cd.c_str(), "w+b");
    if (!cd_) {
        std::fclose(out_);
        out_ = nullptr;
        throw IoError(target_, "cannot create a temporary file beside it for the archive's directory; is the folder "
                               "writable?");
    }
    ::unlink(cd.c_str());  // gone from the folder; freed when closed
}

ZipWriter::~ZipWriter() {
    if (out_) std::fclose(out_);
    if (cd_) std::fclose(cd_);
}

void ZipWriter::add(const std::string& name, const void* data, std::size_t n) {
    if (!out_) throw IoError(target_, "internal: an entry added to a closed zip archive");
    const std::uint32_t crc = std::uint32_t(libdeflate_crc32(0, data, n));
    const bool big = n >= k32;  // zip64 sizes in the local header
    const bool far = offset_ >= k32;
    // the local header: stored (method 0), sizes known, no data descriptor
    std::vector<unsigned char> h;
    put_le(h, 0x04034b50u, 4);
    put_le(h, big ? 45 : 10, 2);  // version needed: 1.0, 4.5 with zip64
    put_le(h, 0, 2);              // flags
    put_le(h, 0, 2);              // stored
    put_le(h, dos_time_, 2);
    put_le(h, dos_date_, 2);
    put_le(h, crc, 4);
    put_le(h, big ? k32 : n, 4);
    put_le(h, big ? k32 : n, 4);
    put_le(h, name.size(), 2);
    put_le(h, big ? 20 : 0, 2);
    h.insert(h.end(), name.begin(), name.end());
    if (big) {
        put_le(h, 0x0001, 2);  // zip64 extended information
        put_le(h, 16, 2);
        put_le(h, n, 8);
        put_le(h, n, 8);
    }
    bool ok = std::fwrite(h.data(), 1, h.size(), out_) == h.size() && std::fwrite(data, 1, n, out_) == n;
    if (!ok) throw IoError(target_, "cannot write '" + name + "' into the zip archive; is the disk full?");
    // its central directory record, kept aside until close()
    std::vector<unsigned char> c;
    const int extra = (big ? 16 : 0) + (far ? 8 : 0);
    put_le(c, 0x02014b50u, 4);
    put_le(c, (3 << 8) | (big || far ? 45 : 20), 2);  // made by: Unix, zip 2.0 (4.5 with zip64)
    put_le(c, big || far ? 45 : 10, 2);
    put_le(c, 0, 2);
    put_le(c, 0, 2);
    put_le(c, dos_time_, 2);
    put_le(c, dos_date_, 2);
    put_le(c, crc, 4);
    put_le(c, big ? k32 : n, 4);
    put_le(c, big ? k32 : n, 4);
    put_le(c, name.size(), 2);
    put_le(c, extra ? extra + 4 : 0, 2);
    put_le(c, 0, 2);                 // comment
    put_le(c, 0, 2);                 // disk
    put_le(c, 0, 2);                 // internal attributes
    put_le(c, 0100644u << 16, 4);    // a regular file, rw-r--r--, as unzip shows it
    put_le(c, far ? k32 : offset_, 4);
    c.insert(c.end(), name.begin(), name.end());
    if (extra) {
        put_le(c, 0x0001, 2);
        put_le(c, extra, 2);
        if (big) {
            put_le(c, n, 8);
            put_le(c, n, 8);
        }
        if (far) put_le(c, offset_, 8);
    }
    if (std::fwrite(c.data(), 1, c.size(), cd_) != c.size())
        throw IoError(target_, "cannot write the temporary file of the archive's directory; is the disk full?");
    offset_ += h.size() + n;
    cd_size_ += c.size();
    ++entries_;
}

void ZipWriter::close() {
    if (!out_) return;
    std::FILE* out = out_;
    out_ = nullptr;
    const std::uint64_t cd_offset = offset_;
    // the central directory, copied in from its temporary file
    bool ok = std::fflush(cd_) == 0 && std::fseek(cd_, 0, SEEK_SET) == 0;
    std::vector<unsigned char> buf(1 << 16);
    for (std::size_t got; ok && (got = std::fread(buf.data(), 1, buf.size(), cd_)) > 0;)
        ok = std::fwrite(buf.data(), 1, got, out) == got;
    ok = ok && !std::ferror(cd_);
    std::fclose(cd_);
    cd_ = nullptr;
    // past 65535 entries or 4 GB: the zip64 end record and its locator, the
    // classic record's fields then saying "see zip64"
    std::vector<unsigned char> end;
    const bool zip64 = entries_ >= 0xffff || cd_offset >= k32 || cd_size_ >= k32;
    if (zip64) {
        put_le(end, 0x06064b50u, 4);
        put_le(end, 44, 8);  // its size after this field
        put_le(end, (3 << 8) | 45, 2);
        put_le(end, 45, 2);
        put_le(end, 0, 4);  // this disk, the central directory's disk
        put_le(end, 0, 4);
        put_le(end, entries_, 8);  // entries on this disk, in all
        put_le(end, entries_, 8);
        put_le(end, cd_size_, 8);
        put_le(end, cd_offset, 8);
        put_le(end, 0x07064b50u, 4);  // its locator
        put_le(end, 0, 4);
        put_le(end, cd_offset + cd_size_, 8);
        put_le(end, 1, 4);  // disks
    }
    put_le(end, 0x06054b50u, 4);
    put_le(end, 0, 2);
    put_le(end, 0, 2);
    put_le(end, std::min<std::uint64_t>(entries_, 0xffff), 2);
    put_le(end, std::min<std::uint64_t>(entries_, 0xffff), 2);
    put_le(end, std::min<std::uint64_t>(cd_size_, k32), 4);
    put_le(end, std::min<std::uint64_t>(cd_offset, k32), 4);
    put_le(end, 0, 2);  // comment
    ok = ok && std::fwrite(end.data(), 1, end.size(), out) == end.size();
    ok = std::fclose(out) == 0 && ok;
    if (!ok) throw IoError(target_, "cannot finish the zip archive (its central directory); is the disk full?");
}

}  // namespace tessera::io

namespace tessera {

void unzip_to(const std::string& archive, const std::string& folder) {
    namespace fs = std::filesystem;
    unzFile z = unzOpen64(archive.c_str());
    if (!z) throw IoError(archive, "is not a zip archive (or cannot be read)");
    struct Close {
        unzFile z;
        ~Close() { unzClose(z); }
    } close{z};
    int rc = unzGoToFirstFile(z);
    std::vector<char> buf(1 << 16);
    for (; rc == UNZ_OK; rc = unzGoToNextFile(z)) {
        unz_file_info64 info{};
        char name[4096];
        if (unzGetCurrentFileInfo64(z, &info, name, sizeof name, nullptr, 0, nullptr, 0) != UNZ_OK)
            throw IoError(archive, "has an entry that cannot be read; is it complete?");
        const fs::path rel = fs::path(name).lexically_normal();
        if (rel.empty() || rel.is_absolute() || *rel.begin() == "..")
            throw IoError(archive, std::string("has the entry '") + name +
                                       "', which would land outside the folder; "
                                       "it was not written by a Deep Zoom save");
        const std::string n(name);
        const fs::path out = fs::path(folder) / rel;
        std::error_code ec;
        if (!n.empty() && n.back() == '/') {
            fs::create_directories(out, ec);
            continue;
        }
        fs::create_directories(out.parent_path(), ec);
        if (unzOpenCurrentFile(z) != UNZ_OK) throw IoError(archive, "cannot open its entry '" + n + "'");
        std::FILE* f = std::fopen(out.c_str(), "wb");
        bool ok = f != nullptr;
        for (int got; ok && (got = unzReadCurrentFile(z, buf.data(), unsigned(buf.size()))) != 0;)
            ok = got > 0 && std::fwrite(buf.data(), 1, std::size_t(got), f) == std::size_t(got);
        if (f) ok = std::fclose(f) == 0 && ok;
        ok = unzCloseCurrentFile(z) == UNZ_OK && ok;  // also checks the entry's CRC
        if (!ok)
            throw IoError(
                archive,
                "cannot unpack '" + n + "' to '" + out.string() +
                    "' (a damaged archive, a full disk, or zip64 sizes this zip reader cannot take: libarchive's, "
                    "in vips dzsave's archives; unzip those with unzip first)");
    }
    if (rc != UNZ_END_OF_LIST_OF_FILE) throw IoError(archive, "is damaged: its entries cannot be listed");
}

}  // namespace tessera
