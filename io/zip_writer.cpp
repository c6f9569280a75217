#include "zip_writer.hpp"

#include <unzip.h>
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/io/unzip.hpp"

namespace tessera::io {

ZipWriter::ZipWriter(const std::string& file, const std::string& target, std::time_t when)
    : file_(file), target_(target) {
    localtime_r(&when, &when_);
    zip_ = zipOpen64(file.c_str(), APPEND_STATUS_CREATE);
    if (!zip_) throw IoError(target_, "cannot create the zip archive '" + file + "'; is the folder writable?");
}

ZipWriter::~ZipWriter() {
    if (zip_) zipClose(static_cast<zipFile>(zip_), nullptr);
}

void ZipWriter::add(const std::string& name, const void* data, std::size_t n) {
    zip_fileinfo info{};
    info.tmz_date.tm_sec = uInt(when_.tm_sec);
    info.tmz_date.tm_min = uInt(when_.tm_min);
    info.tmz_date.tm_hour = uInt(when_.tm_hour);
    info.tmz_date.tm_mday = uInt(when_.tm_mday);
    info.tmz_date.tm_mon = uInt(when_.tm_mon);
    info.tmz_date.tm_year = uInt(when_.tm_year + 1900);
    info.external_fa = 0100644u << 16;  // a regular file, rw-r--r--, as unzip shows it
    auto* z = static_cast<zipFile>(zip_);
    // method 0: stored; zip64 local fields only for an entry that needs
    // them (none of a pyramid's do; offsets past 4 GB get zip64 records in
    // the central directory regardless)
    const int zip64 = n >= 0xffffffffu ? 1 : 0;
    bool ok = zipOpenNewFileInZip4_64(z, name.c_str(), &info, nullptr, 0, nullptr, 0, nullptr, 0, 0, 0, -MAX_WBITS,
                                      DEF_MEM_LEVEL, Z_DEFAULT_STRATEGY, nullptr, 0, 3 << 8 /* made by Unix */, 0,
                                      zip64) == ZIP_OK;
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t done = 0; ok && done < n;) {
        const unsigned chunk = unsigned(std::min<std::size_t>(n - done, 1u << 30));
        ok = zipWriteInFileInZip(z, p + done, chunk) == ZIP_OK;
        done += chunk;
    }
    ok = zipCloseFileInZip(z) == ZIP_OK && ok;
    if (!ok) throw IoError(target_, "cannot write '" + name + "' into the zip archive; is the disk full?");
    ++entries_;
}

namespace {

void put_le(std::vector<unsigned char>& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
std::uint64_t get_le(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// minizip 1.1 writes the zip64 end records only when an offset passes
// 4 GB; past 65535 entries (a 95000x80000 slide has 160 000 tiles) it
// writes 0xFFFF as the count and nothing else, which Info-ZIP's unzip then
// refuses. So the end of such an archive is rewritten as the zip64
// specification (APPNOTE 4.3.14-4.3.16) has it: the zip64 end record with
// the real count, its locator, then the classic end record pointing at them.
bool add_zip64_end(const std::string& file, std::uint64_t entries) {
    std::FILE* f = std::fopen(file.c_str(), "r+b");
    if (!f) return false;
    unsigned char eocd[22];
    bool ok = std::fseek(f, -22, SEEK_END) == 0;
    const long at = ok ? std::ftell(f) : -1;
    ok = ok && at > 0 && std::fread(eocd, 1, 22, f) == 22 && get_le(eocd, 4) == 0x06054b50u;
    const std::uint64_t cd_size = get_le(eocd + 12, 4), cd_offset = get_le(eocd + 16, 4);
    if (ok && cd_offset != 0xffffffffu) {  // (past 4 GB minizip wrote the zip64 records itself)
        std::vector<unsigned char> end;
        put_le(end, 0x06064b50u, 4);  // zip64 end of central directory record
        put_le(end, 44, 8);           // its size after this field
        put_le(end, 45, 2);           // version made by, needed: 4.5 (zip64)
        put_le(end, 45, 2);
        put_le(end, 0, 4);  // this disk, the central directory's disk
        put_le(end, 0, 4);
        put_le(end, entries, 8);  // entries on this disk, in all
        put_le(end, entries, 8);
        put_le(end, cd_size, 8);
        put_le(end, cd_offset, 8);
        put_le(end, 0x07064b50u, 4);  // its locator
        put_le(end, 0, 4);
        put_le(end, std::uint64_t(at), 8);
        put_le(end, 1, 4);                       // disks
        end.insert(end.end(), eocd, eocd + 22);  // the classic record, 0xFFFF counts: "see zip64"
        ok = std::fseek(f, at, SEEK_SET) == 0 && std::fwrite(end.data(), 1, end.size(), f) == end.size();
    }
    return std::fclose(f) == 0 && ok;
}

}  // namespace

void ZipWriter::close() {
    auto* z = static_cast<zipFile>(zip_);
    zip_ = nullptr;
    if (z && zipClose(z, nullptr) != ZIP_OK)
        throw IoError(target_, "cannot finish the zip archive (its central directory); is the disk full?");
    if (entries_ >= 0xffff && !add_zip64_end(file_, entries_))
        throw IoError(target_, "cannot write the zip64 end of the archive's " + std::to_string(entries_) +
                                   " entries; is the disk full?");
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
