#include "vips_common.hpp"
#include "file_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <list>
#include <mutex>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "tessera/io/io.hpp"

namespace tessera {
namespace vipsio {

namespace {
std::atomic<bool> g_allow_untrusted{false};
}  // namespace

// libvips's untrusted operations off (or on), but for the two loaders of
// tessera's own files: .v (the vips format it writes and documents) and
// rawload (a large save's spill file beside the target, save.cpp).
void block_untrusted(bool block) {
    vips_block_untrusted_set(block);
    vips_operation_block_set("VipsForeignLoadVips", FALSE);
    vips_operation_block_set("VipsForeignLoadRaw", FALSE);
}

void ensure_vips() {
    static std::once_flag once;
    // A throw leaves the flag unset, so a later call tries again.
    std::call_once(once, [] {
        if (VIPS_INIT("tessera")) throw Error("libvips failed to start: " + take_vips_error());
        // libvips's loaders flagged untrusted (ImageMagick's magickload
        // above all, libvips's fallback for files its own loaders reject)
        // are a large attack surface for files from anywhere: off unless
        // asked for (issue 16)
        block_untrusted(!g_allow_untrusted.load());
    });
}

std::string take_vips_error() {
    char* text = vips_error_buffer_copy();  // copies and clears under libvips' lock
    std::string s = text ? text : "";
    g_free(text);
    // One line: libvips ends each message with a newline.
    std::string out;
    for (char c : s) {
        if (c == '\n') {
            if (!out.empty() && out.back() != ' ') out += "; ";
        } else {
            out += c;
        }
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
    return out;
}

void throw_vips_error(const std::string& path, const std::string& message) {
    std::string reason = take_vips_error();
    throw IoError(path, reason.empty() ? message : message + " (libvips: " + reason + ")");
}

std::optional<Format> to_format(VipsBandFormat f) {
    switch (f) {
        case VIPS_FORMAT_UCHAR: return Format::u8;
        case VIPS_FORMAT_USHORT: return Format::u16;
        case VIPS_FORMAT_SHORT: return Format::i16;
        case VIPS_FORMAT_UINT: return Format::u32;
        case VIPS_FORMAT_INT: return Format::i32;
        case VIPS_FORMAT_FLOAT: return Format::f32;
        case VIPS_FORMAT_DOUBLE: return Format::f64;
        default: return std::nullopt;  // char, complex, dpcomplex
    }
}

VipsBandFormat to_vips_format(Format f) {
    switch (f) {
        case Format::u8: return VIPS_FORMAT_UCHAR;
        case Format::u16: return VIPS_FORMAT_USHORT;
        case Format::i16: return VIPS_FORMAT_SHORT;
        case Format::u32: return VIPS_FORMAT_UINT;
        case Format::i32: return VIPS_FORMAT_INT;
        case Format::f32: return VIPS_FORMAT_FLOAT;
        case Format::f64: return VIPS_FORMAT_DOUBLE;
    }
    return VIPS_FORMAT_UCHAR;
}

Interpretation to_interpretation(VipsInterpretation v, Format f) {
    switch (v) {
        case VIPS_INTERPRETATION_B_W: return f == Format::u16 ? Interpretation::grey16 : Interpretation::bw;
        case VIPS_INTERPRETATION_GREY16: return f == Format::u8 ? Interpretation::bw : Interpretation::grey16;
        case VIPS_INTERPRETATION_sRGB:
        case VIPS_INTERPRETATION_RGB: return f == Format::u16 ? Interpretation::rgb16 : Interpretation::srgb;
        case VIPS_INTERPRETATION_RGB16: return f == Format::u8 ? Interpretation::srgb : Interpretation::rgb16;
        // CMYK, Lab, XYZ, scRGB, ...: Tessera carries the bands as they are.
        default: return Interpretation::multiband;
    }
}

VipsInterpretation to_vips_interpretation(Interpretation i, int bands, Format f) {
    bool wide = f == Format::u16;
    switch (i) {
        case Interpretation::bw:
        case Interpretation::grey16: return wide ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
        case Interpretation::srgb:
        case Interpretation::rgb16:
            if (bands < 3) return wide ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
            return wide ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB;
        case Interpretation::multiband: return VIPS_INTERPRETATION_MULTIBAND;
    }
    return VIPS_INTERPRETATION_MULTIBAND;
}

void run_uncached(VipsOperation* op, const std::string& path, const std::string& message) {
    // vips_object_build runs the operation itself; vips_cache_operation_buildp
    // (what vips_call and the C++ API use) would also keep it in the cache.
    if (vips_object_build(VIPS_OBJECT(op))) {
        vips_object_unref_outputs(VIPS_OBJECT(op));
        throw_vips_error(path, message);
    }
}

bool set_if_present(VipsOperation* op, const char* name, int value) {
    GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(op), name);
    if (!spec) return false;
    if (G_IS_PARAM_SPEC_BOOLEAN(spec))
        g_object_set(op, name, gboolean(value != 0), nullptr);
    else
        g_object_set(op, name, value, nullptr);  // int and enum arguments
    return true;
}

FileStamp check_readable(const std::string& path) {
    if (path.empty()) throw IoError(path, "the path is empty; give the image file to read");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            throw IoError(path, "file not found; check the path (a relative path in a pipeline is taken from the "
                                "pipeline's folder)");
        throw IoError(path, "cannot be accessed (" + std::error_code(e, std::generic_category()).message() +
                                "); check the path and its permissions");
    }
    if (S_ISDIR(st.st_mode)) throw IoError(path, "is a folder, not an image file; give the path of a file");
    // a FIFO, socket or device would block the read forever or never end
    // (/dev/zero): only regular files are images
    if (!S_ISREG(st.st_mode)) refuse_special_file(path, "an image to read");
    if (::access(path.c_str(), R_OK) != 0)
        throw IoError(path, "is not readable (permission denied); fix its permissions");
    FileStamp s;
    s.dev = std::uint64_t(st.st_dev);
    s.ino = std::uint64_t(st.st_ino);
    s.size = std::uint64_t(st.st_size);
    s.mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    return s;
}

namespace {

// The loader's image, taking it from the operation (which then drops its own
// reference to it).
ImagePtr take_out(VipsOperation* op) {
    VipsImage* out = nullptr;
    g_object_get(op, "out", &out, nullptr);
    vips_object_unref_outputs(VIPS_OBJECT(op));
    return ImagePtr(out);
}

const char* loader_nickname(const char* type_name) {
    const char* nick = vips_nickname_find(g_type_from_name(type_name));
    return nick ? nick : type_name;
}

ImagePtr open_page(const std::string& path, const char* loader, int page) {
    OperationPtr op(vips_operation_new(loader));
    if (!op) throw_vips_error(path, "cannot make a libvips loader for it");
    g_object_set(op.get(), "filename", path.c_str(), nullptr);
    // Random access: any rect can be read in any order. Formats that cannot
    // seek (JPEG, PNG, WebP) are then decoded whole, once per open, into
    // memory (a temporary file past libvips' disc threshold). A streaming JPEG
    // source with a strip cache is a later issue.
    set_if_present(op.get(), "access", VIPS_ACCESS_RANDOM);
    // A truncated file is an error, not a grey bottom half.
    set_if_present(op.get(), "fail_on", VIPS_FAIL_ON_TRUNCATED);
    if (page != 0) set_if_present(op.get(), "page", page);
    run_uncached(op.get(), path, page ? "cannot open page " + std::to_string(page) : "cannot be read as an image");
    return take_out(op.get());
}

}  // namespace

ImagePtr open_image(const std::string& path, int page) {
    ensure_vips();
    check_readable(path);
    const char* loader = vips_foreign_find_load(path.c_str());
    // find_load still picks a blocked loader (which then fails "operation
    // is blocked"): say what that means and how to lift it
    if (loader && !g_allow_untrusted.load()) {
        const GType type = g_type_from_name(loader);
        gpointer klass = type ? g_type_class_ref(type) : nullptr;
        const bool untrusted = klass && (VIPS_OPERATION_CLASS(klass)->flags & VIPS_OPERATION_BLOCKED);
        if (klass) g_type_class_unref(klass);
        // A TIFF that a blocked loader would take first (libvips 8.14 flags
        // openslideload untrusted, and it outranks tiffload for SVS and
        // similar slides) is still a TIFF: libtiff's loader reads its pages.
        if (untrusted && vips_foreign_is_a("tiffload", path.c_str()))
            loader = "VipsForeignLoadTiffFile";
        else if (untrusted)
            throw IoError(path,
                          std::string("is read only by libvips's ") + loader_nickname(loader) +
                              ", an untrusted loader (ImageMagick's, for magickload) that tessera blocks by "
                              "default; convert the file to TIFF, PNG or JPEG, or pass "
                              "--allow-untrusted-loaders (C++: tessera::allow_untrusted_loaders) if you trust it");
    }
    if (!loader)
        throw_vips_error(path, "is not in a format libvips can read; check that it is an image (JPEG, PNG, TIFF, "
                               "WebP, ...) and not empty or damaged");
    if (page < 0) throw ParamError("page", "must be 0 or more (0 is the first page)");
    if (page != 0) {
        OperationPtr probe(vips_operation_new(loader));
        if (probe && !g_object_class_find_property(G_OBJECT_GET_CLASS(probe.get()), "page"))
            throw ParamError("page", "'" + path + "' is read by " + loader_nickname(loader) +
                                         ", which has one page only; use page 0");
    }
    try {
        return open_page(path, loader, page);
    } catch (const IoError&) {
        if (page == 0) throw;
        // Say how many pages there are, when the first page opens.
        ImagePtr first;
        try {
            first = open_page(path, loader, 0);
        } catch (const IoError&) {}
        int pages = 0;
        if (first && vips_image_get_typeof(first.get(), VIPS_META_N_PAGES))
            vips_image_get_int(first.get(), VIPS_META_N_PAGES, &pages);
        if (pages > 0 && page >= pages)
            throw ParamError("page", "'" + path + "' has " + std::to_string(pages) + " page(s); use a page in [0, " +
                                         std::to_string(pages - 1) + "]");
        throw;
    }
}

ImageInfo header_of(VipsImage* im, const std::string& path) {
    if (im->Coding != VIPS_CODING_NONE)
        throw IoError(path, "holds coded pixels (LABQ or RAD), which Tessera cannot read yet; convert the file "
                            "first, e.g. `vips copy IN OUT.tif`");
    auto format = to_format(im->BandFmt);
    if (!format)
        throw IoError(path, std::string("has samples of type ") + vips_enum_nick(VIPS_TYPE_BAND_FORMAT, im->BandFmt) +
                                ", which Tessera has no format for; convert it first, e.g. `vips cast IN OUT.tif "
                                "short`");
    ImageInfo info;
    info.width = im->Xsize;
    info.height = im->Ysize;
    info.bands = im->Bands;
    info.format = *format;
    info.interpretation = to_interpretation(vips_image_guess_interpretation(im), *format);
    return info;
}

// ---------------------------------------------------------------------------
// The open-image cache.

struct OpenImageCache::Impl {
    struct Entry {
        std::string key;
        FileStamp stamp;
        SharedImage image;
    };
    mutable std::mutex mutex;
    std::list<Entry> lru;  // front: most recently used
    std::unordered_map<std::string, std::list<Entry>::iterator> index;
    int limit = io::default_max_open_files();

    // Drops the least recently used entries past the limit into `out`, so
    // that the caller closes them after unlocking.
    void trim(std::vector<SharedImage>& out) {
        while (lru.size() > std::size_t(limit)) {
            out.push_back(std::move(lru.back().image));
            index.erase(lru.back().key);
            lru.pop_back();
        }
    }
};

namespace {
std::string cache_key(const std::string& path, int page) { return path + '\0' + std::to_string(page); }

std::string describe_header(const ImageInfo& i) {
    return std::to_string(i.width) + "x" + std::to_string(i.height) + " with " + std::to_string(i.bands) +
           " band(s) of " + std::string(format_name(i.format));
}
}  // namespace

OpenImageCache::OpenImageCache() : impl_(std::make_shared<Impl>()) {}

OpenImageCache& OpenImageCache::instance() {
    // Never destroyed: images may still be closed by other static
    // destructors' threads at exit, and the OS reclaims the rest.
    static OpenImageCache* cache = new OpenImageCache();
    return *cache;
}

SharedImage OpenImageCache::get(const std::string& path, int page, const FileStamp& stamp, const ImageInfo& expect) {
    const std::string key = cache_key(path, page);
    std::vector<SharedImage> closed;  // destroyed last, after the lock is released
    {
        std::lock_guard lock(impl_->mutex);
        auto it = impl_->index.find(key);
        if (it != impl_->index.end() && it->second->stamp == stamp) {
            impl_->lru.splice(impl_->lru.begin(), impl_->lru, it->second);
            return it->second->image;
        }
    }
    // Open outside the lock: reading a header costs far more than a lookup.
    // Two threads may open the same file at once; the second to finish uses
    // the first one's image and closes its own.
    ImagePtr opened = open_image(path, page);
    ImageInfo now = header_of(opened.get(), path);
    if (now.width != expect.width || now.height != expect.height || now.bands != expect.bands ||
        now.format != expect.format)
        throw IoError(path, "changed since the pipeline was built: it was " + describe_header(expect) + ", now " +
                                describe_header(now) + "; build the pipeline again");
    SharedImage image(opened.release(), GObjectUnref{});

    std::lock_guard lock(impl_->mutex);
    auto it = impl_->index.find(key);
    if (it != impl_->index.end()) {
        Impl::Entry& e = *it->second;
        if (e.stamp == stamp) {
            closed.push_back(std::move(image));
            image = e.image;
        } else {
            closed.push_back(std::move(e.image));
            e.image = image;
            e.stamp = stamp;
        }
        impl_->lru.splice(impl_->lru.begin(), impl_->lru, it->second);
    } else {
        impl_->lru.push_front({key, stamp, image});
        impl_->index.emplace(key, impl_->lru.begin());
    }
    impl_->trim(closed);
    return image;
}

void OpenImageCache::drop(const std::string& path, int page, const SharedImage& im) {
    SharedImage closed;
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->index.find(cache_key(path, page));
    if (it == impl_->index.end() || it->second->image != im) return;
    closed = std::move(it->second->image);
    impl_->lru.erase(it->second);
    impl_->index.erase(it);
}

void OpenImageCache::set_limit(int max_open) {
    std::vector<SharedImage> closed;
    std::lock_guard lock(impl_->mutex);
    impl_->limit = max_open;
    impl_->trim(closed);
}

int OpenImageCache::limit() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->limit;
}

std::size_t OpenImageCache::size() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->lru.size();
}

namespace {
std::atomic<std::size_t> g_save_memory_mb{512};
}

std::uint64_t save_memory_limit_bytes() { return std::uint64_t(g_save_memory_mb.load()) << 20; }

std::atomic<std::size_t> g_max_decode_mb{4096};
std::uint64_t decode_limit_bytes() { return std::uint64_t(g_max_decode_mb.load()) << 20; }

}  // namespace vipsio

void set_io_limits(const IoLimits& limits) {
    if (limits.max_open_files < 1)
        throw Error("io limits: max_open_files is " + std::to_string(limits.max_open_files) +
                    "; it must be at least 1");
    vipsio::OpenImageCache::instance().set_limit(limits.max_open_files);
    io::FileCache::instance().set_limit(limits.max_open_files);
    vipsio::g_save_memory_mb.store(limits.save_memory_mb);
    vipsio::g_max_decode_mb.store(limits.max_decode_mb);
}

IoLimits io_limits() {
    IoLimits l;
    l.max_open_files = vipsio::OpenImageCache::instance().limit();
    l.save_memory_mb = vipsio::g_save_memory_mb.load();
    l.max_decode_mb = vipsio::g_max_decode_mb.load();
    return l;
}

void allow_untrusted_loaders(bool allow) {
    vipsio::g_allow_untrusted.store(allow);
    vipsio::ensure_vips();
    vipsio::block_untrusted(!allow);
}

// The loaders vips_foreign_find_load walks (vips_foreign_map: the concrete
// subclasses of VipsForeignLoad, by priority), less those it skips for a
// file name (the _buffer and _source ones) and those it can never pick
// (neither a content test nor a suffix: rawload, which tessera runs by name
// on its own spill files only).
std::vector<ImageLoader> image_loaders() {
    vipsio::ensure_vips();
    std::vector<ImageLoader> out;
    vips_foreign_map(
        "VipsForeignLoad",
        [](void* item, void* a, void*) -> void* {
            auto* klass = static_cast<VipsForeignLoadClass*>(item);
            const VipsObjectClass* object = VIPS_OBJECT_CLASS(klass);
            const VipsForeignClass* foreign = VIPS_FOREIGN_CLASS(klass);
            const std::string nick = object->nickname ? object->nickname : "";
            auto ends_with = [&](std::string_view e) {
                return nick.size() >= e.size() && nick.compare(nick.size() - e.size(), e.size(), e) == 0;
            };
            if (ends_with("_buffer") || ends_with("_source") || (!klass->is_a && !foreign->suffs)) return nullptr;
            ImageLoader l;
            l.name = nick;
            l.description = object->description ? object->description : "";
            for (const char* const* s = foreign->suffs; s && *s; ++s) l.suffixes.emplace_back(*s);
            const auto flags = VIPS_OPERATION_CLASS(klass)->flags;
            l.untrusted = flags & VIPS_OPERATION_UNTRUSTED;
            l.blocked = flags & VIPS_OPERATION_BLOCKED;
            static_cast<std::vector<ImageLoader>*>(a)->push_back(std::move(l));
            return nullptr;
        },
        &out, nullptr);
    return out;
}

std::string describe_loaders() {
    const std::vector<ImageLoader> loaders = image_loaders();
    std::size_t name_w = 0, description_w = 0;
    for (const ImageLoader& l : loaders) {
        name_w = std::max(name_w, l.name.size());
        description_w = std::max(description_w, l.description.size());
    }
    auto pad = [](std::string s, std::size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; };
    std::string out = "libvips " + std::string(vips_version_string()) +
                      " file loaders, in the order libvips tries them; \"blocked\": libvips flags it untrusted, and "
                      "tessera refuses a file libvips would read with it (--allow-untrusted-loaders, C++ "
                      "tessera::allow_untrusted_loaders, lifts it)\n";
    for (const ImageLoader& l : loaders) {
        std::string suffixes;
        for (const std::string& x : l.suffixes) suffixes += (suffixes.empty() ? "" : " ") + x;
        out += "  " + pad(l.name, name_w) + "  " + pad(l.blocked ? "blocked" : "allowed", 7) + "  " +
               pad(l.untrusted ? "untrusted" : "", 9) + "  " + pad(l.description, description_w) + "  " +
               (suffixes.empty() ? "(by content)" : suffixes) + "\n";
    }
    return out;
}

}  // namespace tessera
