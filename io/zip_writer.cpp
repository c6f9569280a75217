#include "zip_writer.hpp"

#include <unzip.h>
#include <zip.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/io/unzip.hpp"

namespace tessera::io {

ZipWriter::ZipWriter(const std::string& file, const std::string& target, std::time_t when) : target_(target) {
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

void ZipWriter::close() {
    auto* z = static_cast<zipFile>(zip_);
    zip_ = nullptr;
    if (z && zipClose(z, nullptr) != ZIP_OK)
        throw IoError(target_, "cannot finish the zip archive (its central directory); is the disk full?");
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
            throw IoError(archive, std::string("has the entry '") + name + "', which would land outside the folder; "
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
        if (!ok) throw IoError(archive, "cannot unpack '" + n + "' to '" + out.string() + "' (a damaged archive, a full disk, or zip64 sizes this zip reader cannot take: libarchive's, "
                                    "in vips dzsave's archives; unzip those with unzip first)");
    }
    if (rc != UNZ_END_OF_LIST_OF_FILE) throw IoError(archive, "is damaged: its entries cannot be listed");
}

}  // namespace tessera
