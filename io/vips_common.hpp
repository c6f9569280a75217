// libvips plumbing shared by the io ops. Private to io/: nothing outside this
// folder includes it, so libvips headers never leak into the public API.
//
// Two rules for every libvips call made here:
//  - operations run outside libvips' operation cache (run_uncached), since
//    that cache would keep files open and output buffers alive behind our
//    back: the open-file cache below is the only place images are kept;
//  - libvips reports errors through one process-wide buffer; take_vips_error
//    copies and clears it at once, and the text becomes an IoError naming the
//    file.
#pragma once

#include <vips/vips.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tessera/core/error.hpp"
#include "tessera/core/format.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera::vipsio {

// Starts libvips once per process (thread-safe; every entry point calls it).
void ensure_vips();

struct GObjectUnref {
    void operator()(void* p) const {
        if (p) g_object_unref(p);
    }
};
using ImagePtr = std::unique_ptr<VipsImage, GObjectUnref>;
using RegionPtr = std::unique_ptr<VipsRegion, GObjectUnref>;
using OperationPtr = std::unique_ptr<VipsOperation, GObjectUnref>;
// A shared, immutable open image (regions on it may be made from any thread).
using SharedImage = std::shared_ptr<VipsImage>;

// The text of libvips' error buffer, trimmed to one line, and the buffer
// cleared ("" when it is empty).
std::string take_vips_error();
// IoError(path, message + ": " + libvips' reason). Clears the error buffer.
[[noreturn]] void throw_vips_error(const std::string& path, const std::string& message);

// Format and interpretation mapping. to_format is empty for the libvips
// formats Tessera has no type for (signed char, complex).
std::optional<Format> to_format(VipsBandFormat f);
VipsBandFormat to_vips_format(Format f);
Interpretation to_interpretation(VipsInterpretation v, Format f);
// The libvips interpretation to save an image as: ours, made consistent with
// the bands and format (a u16 "srgb" is saved as rgb16, and so on).
VipsInterpretation to_vips_interpretation(Interpretation i, int bands, Format f);

// Builds and runs an operation without the libvips operation cache; on
// failure throws IoError(path, message + reason).
void run_uncached(VipsOperation* op, const std::string& path, const std::string& message);
// Sets an optional argument only if this operation has it (not every loader
// has "page"); false if it has not.
bool set_if_present(VipsOperation* op, const char* name, int value);

// What identifies one version of a file: rewriting it (or replacing it by a
// rename) changes this, so a cache entry opened before is not reused.
struct FileStamp {
    std::uint64_t dev = 0, ino = 0, size = 0;
    std::int64_t mtime_ns = 0;
    friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// Checks that path is a readable file; throws IoError saying what to do if
// not. Returns its stamp.
FileStamp check_readable(const std::string& path);

// Opens one page of a file with libvips: reads the header only (pixels are
// decoded on demand), with random access and failing on truncated data.
// Throws IoError naming the file (or ParamError on "page" for a page the
// file does not have).
ImagePtr open_image(const std::string& path, int page);

// The header of an opened image; IoError for pixel types Tessera lacks.
ImageInfo header_of(VipsImage* im, const std::string& path);

// The bounded LRU cache of open images shared by all load ops, keyed by
// (path, page). An entry found with another stamp than the caller's (the file
// was rewritten since) is reopened. Entries in use by a compute() stay alive
// (shared ownership) after eviction until that call returns, so at most
// limit + (threads in flight) images are open at once.
class OpenImageCache {
public:
    // The open image, opening it if needed; IoError if it cannot be opened or
    // its header is not `expect` any more.
    SharedImage get(const std::string& path, int page, const FileStamp& stamp, const ImageInfo& expect);
    // Forgets `im` (after a decode failed, so a later run opens afresh).
    void drop(const std::string& path, int page, const SharedImage& im);
    void set_limit(int max_open);
    int limit() const;
    std::size_t size() const;

    static OpenImageCache& instance();

private:
    struct Impl;
    OpenImageCache();
    std::shared_ptr<Impl> impl_;
};

// Output bytes above which the save sink assembles on disk (from IoLimits).
std::uint64_t save_memory_limit_bytes();
// IoLimits::max_decode_mb in bytes.
std::uint64_t decode_limit_bytes();

}  // namespace tessera::vipsio
