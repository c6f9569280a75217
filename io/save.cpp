// save: writes its input to an image file with libvips (PNG, JPEG, TIFF,
// WebP, or the libvips .v format), or a Deep Zoom / Google tile pyramid.
//
// The op itself moves no pixels: its output is its input (one placed need
// per rect). The work is in its Sink, which the evaluator feeds the tiles in
// row-major order of the tile grid:
//  - start() sets up an image to assemble them in: in memory (libvips owns
//    the buffer) up to IoLimits::save_memory_mb, else a raw file on disc
//    beside the target, written a row of tiles at a time and read back with
//    libvips' rawload (memory-mapped);
//  - write() copies each tile in;
//  - finish() encodes the whole image with libvips under a temporary name in
//    the target's folder (".NAME.tessera-HOST-PID-N", see temp_beside.hpp)
//    and renames it onto the target, so the target is either the old file or
//    the complete new one;
//  - abort() removes the temporary files and leaves the target untouched.
// A georeferenced image saved as TIFF becomes a GeoTIFF (gdal_common.hpp).
// This suits small and medium outputs. Tiled TIFFs (and pyramids) go to the
// streaming writer in tiff_pyramid.cpp instead, which never holds more than a
// strip per level, and .dzi outputs to the tile-pyramid writer in dzsave.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "dzsave.hpp"
#include "gdal_common.hpp"
#include "io_list.hpp"
#include "tessera/io/io.hpp"
#include "tiff_pyramid.hpp"
#include "temp_beside.hpp"
#include "vips_common.hpp"

namespace tessera {
namespace {

using namespace vipsio;
namespace fs = std::filesystem;

enum class FileFormat { png, jpeg, tiff, webp, vips, cog, dz };

const char* kSupported = "png, jpeg (jpg), tiff (tif), cog, webp, v or dz (dzi)";

std::optional<FileFormat> parse_file_format(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (s == "png") return FileFormat::png;
    if (s == "jpeg" || s == "jpg") return FileFormat::jpeg;
    if (s == "tiff" || s == "tif") return FileFormat::tiff;
    if (s == "webp") return FileFormat::webp;
    if (s == "v" || s == "vips") return FileFormat::vips;
    if (s == "cog") return FileFormat::cog;
    if (s == "dz" || s == "dzi") return FileFormat::dz;
    return std::nullopt;
}

const char* saver_name(FileFormat f) {
    switch (f) {
        case FileFormat::png: return "pngsave";
        case FileFormat::jpeg: return "jpegsave";
        case FileFormat::tiff: return "tiffsave";
        case FileFormat::webp: return "webpsave";
        case FileFormat::vips:
        case FileFormat::cog: return "vipssave";  // cog never reaches libvips
        case FileFormat::dz: return "dzsave";
    }
    return "vipssave";
}

const char* format_label(FileFormat f) {
    switch (f) {
        case FileFormat::png: return "png";
        case FileFormat::jpeg: return "jpeg";
        case FileFormat::tiff: return "tiff";
        case FileFormat::webp: return "webp";
        case FileFormat::vips: return "v";
        case FileFormat::cog: return "cog";
        case FileFormat::dz: return "dz";
    }
    return "v";
}

struct Compression {
    const char* name;
    VipsForeignTiffCompression value;
};
constexpr Compression kCompressions[] = {{"none", VIPS_FOREIGN_TIFF_COMPRESSION_NONE},
                                         {"deflate", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE},
                                         {"lzw", VIPS_FOREIGN_TIFF_COMPRESSION_LZW},
                                         {"jpeg", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG},
                                         {"zstd", VIPS_FOREIGN_TIFF_COMPRESSION_ZSTD}};

// The compression parameter's choices: kCompressions' names.
std::vector<std::string> compression_names() {
    std::vector<std::string> out;
    for (const Compression& c : kCompressions) out.emplace_back(c.name);
    return out;
}

// Everything the sink needs, fixed when the op is built.
struct SaveSettings {
    std::string path;
    FileFormat format = FileFormat::png;
    int quality = 75;
    VipsForeignTiffCompression compression = VIPS_FOREIGN_TIFF_COMPRESSION_NONE;
    bool tile = false;
    int tile_width = 256;
    int tile_height = 256;
    bool bigtiff = false;
    bool pyramid = false;
    // tiled TIFF: the streaming writer's settings
    std::optional<io::TiffOptions> tiled;
    // .dzi: the tile-pyramid writer's settings
    std::optional<io::DzOptions> dz;
};

// Encodes `in` to `file` with the settings' saver, outside libvips' operation
// cache (which would otherwise keep the whole image alive after the save).
void encode(VipsImage* in, const std::string& file, const SaveSettings& s) {
    OperationPtr op(vips_operation_new(saver_name(s.format)));
    if (!op) throw_vips_error(s.path, std::string("cannot make the libvips saver ") + saver_name(s.format));
    g_object_set(op.get(), "in", in, "filename", file.c_str(), nullptr);
    switch (s.format) {
        case FileFormat::png:
            // libvips picks the bit depth from the interpretation; a u16
            // image tagged multiband would silently drop to 8 bits.
            if (in->BandFmt == VIPS_FORMAT_USHORT) set_if_present(op.get(), "bitdepth", 16);
            break;
        case FileFormat::jpeg:
        case FileFormat::webp: set_if_present(op.get(), "Q", s.quality); break;
        case FileFormat::tiff:
            set_if_present(op.get(), "compression", s.compression);
            if (s.compression == VIPS_FOREIGN_TIFF_COMPRESSION_JPEG) set_if_present(op.get(), "Q", s.quality);
            set_if_present(op.get(), "tile", s.tile || s.pyramid);
            set_if_present(op.get(), "tile_width", s.tile_width);
            set_if_present(op.get(), "tile_height", s.tile_height);
            set_if_present(op.get(), "bigtiff", s.bigtiff);
            set_if_present(op.get(), "pyramid", s.pyramid);
            break;
        case FileFormat::vips:
        case FileFormat::cog:
        case FileFormat::dz: break;
    }
    run_uncached(op.get(), s.path, "could not be written");
    vips_object_unref_outputs(VIPS_OBJECT(op.get()));
}

void remove_quietly(std::string& file) {
    if (file.empty()) return;
    std::error_code ec;
    fs::remove(file, ec);
    file.clear();
}

class VipsSaveSink final : public Sink {
public:
    explicit VipsSaveSink(SaveSettings s) : s_(std::move(s)) {}
    ~VipsSaveSink() override {
        if (!done_) abort();
    }

    void start(const ImageInfo& info, const SinkContext& context) override {
        abort();  // a second start begins afresh
        try {
            begin(info, context.tile_h);
        } catch (...) {
            abort();
            throw;
        }
    }

    void write(const ConstTile& t) override {
        if (!started_) throw Error("save: write() before start()");
        if (!info_.rect().contains(t.rect) || t.bands != info_.bands || t.format != info_.format)
            throw Error("save: a tile does not fit the image it was started with");
        const std::size_t row = t.row_bytes();
        if (tmpraw_.empty()) {
            for (int y = t.rect.y; y < t.rect.bottom(); ++y)
                std::memcpy(VIPS_IMAGE_ADDR(image_.get(), t.rect.x, y), t.at(t.rect.x, y), row);
        } else {
            if (t.rect.y != strip_y_ || t.rect.h > strip_h_)
                throw Error("save: tiles must arrive in row-major order of the tile grid");
            const std::size_t line = std::size_t(info_.width) * info_.pixel_bytes();
            for (int y = t.rect.y; y < t.rect.bottom(); ++y)
                std::memcpy(strip_.data() + std::size_t(y - strip_y_) * line + std::size_t(t.rect.x) * t.pixel_bytes(),
                            t.at(t.rect.x, y), row);
            if (t.rect.right() == info_.width) {  // the row of tiles is complete
                write_all(strip_.data(), std::size_t(t.rect.h) * line, std::uint64_t(strip_y_) * line);
                strip_y_ = t.rect.bottom();
            }
        }
        written_ += std::uint64_t(t.rect.area());
    }

    void finish() override {
        if (!started_) throw Error("save: finish() without start()");
        const std::uint64_t total = std::uint64_t(info_.width) * std::uint64_t(info_.height);
        if (written_ != total)
            throw Error("save: finish() after " + std::to_string(written_) + " of " + std::to_string(total) +
                        " pixels were written");
        try {
            ImagePtr src;
            if (tmpraw_.empty()) {
                src = std::move(image_);
            } else {
                strip_ = {};
                int fd = fd_;
                fd_ = -1;
                if (::close(fd) != 0)
                    throw IoError(s_.path, "cannot write the temporary file '" + tmpraw_ +
                                               "'; check the free space in the target's folder");
                src = load_raw();
            }
            encode(src.get(), tmp_, s_);
            src.reset();
            if (s_.format == FileFormat::tiff && info_.geo) io::write_georeference(tmp_, *info_.geo, s_.path);
            if (io::is_vsi_path(s_.path)) {
                io::copy_to_vsi(tmp_, s_.path);
                remove_quietly(tmp_);
            } else {
                std::error_code ec;
                fs::rename(tmp_, s_.path, ec);
                if (ec)
                    throw IoError(s_.path, "cannot be replaced (" + ec.message() +
                                               "); check the permissions of the file and its folder");
            }
            tmp_.clear();
        } catch (...) {
            abort();
            throw;
        }
        remove_quietly(tmpraw_);
        started_ = false;
        done_ = true;
    }

    void abort() noexcept override {
        started_ = false;
        image_.reset();
        strip_ = {};
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        remove_quietly(tmp_);
        remove_quietly(tmpraw_);
    }

private:
    // start() proper; start() cleans up if this throws.
    void begin(const ImageInfo& info, int tile_h) {
        ensure_vips();
        done_ = false;
        started_ = true;
        info_ = info;
        written_ = 0;
        io::remove_stale_temporaries(s_.path);
        tmp_ = io::temp_beside(s_.path, s_.format == FileFormat::vips ? ".v" : "");
        const double mb = double(info.bytes()) / (1 << 20);
        if (info.bytes() <= save_memory_limit_bytes()) {
            // In memory: libvips allocates (and later frees) the pixels.
            image_.reset(vips_image_new_memory());
            init_fields(image_.get());
            if (vips_image_write_prepare(image_.get()))
                throw_vips_error(s_.path, "cannot allocate " + std::to_string(int(mb + 0.5)) +
                                              " MB to assemble the output; lower IoLimits::save_memory_mb so it "
                                              "is assembled on disc instead");
        } else {
            // On disc: a raw file beside the target, written a row of tiles
            // at a time (gathered in `strip_`), read back by libvips' rawload.
            tmpraw_ = tmp_ + ".raw";
            fd_ = ::open(tmpraw_.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
            if (fd_ < 0)
                throw IoError(s_.path, "cannot create the temporary file '" + tmpraw_ + "' (" +
                                           std::error_code(errno, std::generic_category()).message() + ")");
            strip_h_ = std::max(1, tile_h);
            strip_.assign(std::size_t(info.width) * std::size_t(strip_h_) * info.pixel_bytes(), std::byte{0});
            strip_y_ = 0;
        }
    }

    void init_fields(VipsImage* im) const {
        vips_image_init_fields(im, info_.width, info_.height, info_.bands, to_vips_format(info_.format),
                               VIPS_CODING_NONE, to_vips_interpretation(info_.interpretation, info_.bands, info_.format),
                               1.0, 1.0);
    }

    // pwrite with retries; IoError on failure (a full disc, mostly).
    void write_all(const std::byte* p, std::size_t n, std::uint64_t offset) {
        while (n > 0) {
            ssize_t k = ::pwrite(fd_, p, n, off_t(offset));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0)
                throw IoError(s_.path, "cannot write the temporary file '" + tmpraw_ + "' (" +
                                           std::error_code(k < 0 ? errno : ENOSPC, std::generic_category()).message() +
                                           "); check the free space in the target's folder");
            p += k;
            n -= std::size_t(k);
            offset += std::uint64_t(k);
        }
    }

    // The raw file as a libvips image (memory-mapped on demand).
    ImagePtr load_raw() const {
        OperationPtr op(vips_operation_new("rawload"));
        if (!op) throw_vips_error(s_.path, "cannot make the libvips rawload operation");
        g_object_set(op.get(), "filename", tmpraw_.c_str(), "width", info_.width, "height", info_.height, "bands",
                     info_.bands, nullptr);
        set_if_present(op.get(), "format", to_vips_format(info_.format));
        set_if_present(op.get(), "interpretation",
                       to_vips_interpretation(info_.interpretation, info_.bands, info_.format));
        run_uncached(op.get(), s_.path, "cannot read back the temporary file '" + tmpraw_ + "'");
        VipsImage* out = nullptr;
        g_object_get(op.get(), "out", &out, nullptr);
        vips_object_unref_outputs(VIPS_OBJECT(op.get()));
        return ImagePtr(out);
    }

    SaveSettings s_;
    ImageInfo info_;
    ImagePtr image_;   // the output in memory
    int fd_ = -1;      // the raw file, on disc
    std::string tmp_;     // the encoded file, renamed onto the target by finish()
    std::string tmpraw_;  // the raw pixels (on disc only)
    std::vector<std::byte> strip_;
    int strip_y_ = 0, strip_h_ = 0;
    std::uint64_t written_ = 0;
    bool started_ = false;
    bool done_ = false;
};

// The format: "format" if given, else the path's extension. The key is
// checked here rather than by spec choices: it is case-insensitive, like the
// extension it replaces.
FileFormat pick_file_format(const Params& p, const std::string& path) {
    if (p.has("format")) {
        std::string f = p.string("format");
        auto ff = parse_file_format(f);
        if (!ff) throw ParamError("format", "unknown format '" + f + "'; use " + kSupported);
        return *ff;
    }
    std::string ext = fs::path(path).extension().string();
    auto ff = parse_file_format(ext.empty() ? ext : ext.substr(1));
    if (!ff)
        throw ParamError("path", (ext.empty() ? std::string("has no extension") : "has the extension '" + ext + "'") +
                                     ", which names no format Tessera writes; use ." + "png, .jpg/.jpeg, "
                                     ".tif/.tiff, .webp, .v or .dzi, or set \"format\" (" + kSupported + ")");
    return *ff;
}

// Deep Zoom settings (a .dzi); tile_size, overlap, suffix and layout are
// errors for any other format, so they have no default_value in the spec:
// whether they were given is what counts.
std::optional<io::DzOptions> dz_settings(const Params& p, const ImageInfo& info, bool dz, const char* fmt,
                                         int quality) {
    for (const char* key : {"tile_size", "overlap", "suffix", "layout"})
        if (p.has(key) && !dz)
            throw ParamError(key, std::string("applies to dz (.dzi) output only, not to ") + fmt +
                                      "; remove it or save to a .dzi");
    if (!dz) return std::nullopt;
    io::DzOptions d;
    d.layout = p.string("layout", "dz") == "dz" ? io::DzOptions::Layout::dz : io::DzOptions::Layout::google;
    const bool google = d.layout == io::DzOptions::Layout::google;
    d.tile_size = int(p.integer("tile_size", google ? 256 : 254));
    d.overlap = int(p.integer("overlap", google ? 0 : 1));
    d.suffix = p.string("suffix", "jpeg");
    if (d.suffix == "jpg") d.suffix = "jpeg";
    d.quality = quality;
    d.band_width = int(p.integer("band_width"));
    io::check_dz_options(info, d);
    return d;
}

// What the format can hold: bands and size, for the libvips savers.
void check_format_holds(FileFormat f, const char* fmt, const ImageInfo& info) {
    auto bands_in = [&](int lo, int hi) {
        if (info.bands < lo || info.bands > hi)
            throw ParamError("format", std::string(fmt) + " holds " + std::to_string(lo) + " to " +
                                           std::to_string(hi) + " bands, the input has " + std::to_string(info.bands) +
                                           "; save as tiff or v, or pick bands first");
    };
    if (f == FileFormat::jpeg) bands_in(1, 4);
    if (f == FileFormat::png || f == FileFormat::webp) bands_in(1, 4);
    auto size_up_to = [&](int most) {
        if (info.width > most || info.height > most)
            throw ParamError("format", std::string(fmt) + " images are at most " + std::to_string(most) + "x" +
                                           std::to_string(most) + " pixels, the input is " +
                                           std::to_string(info.width) + "x" + std::to_string(info.height) +
                                           "; save as tiff (with bigtiff for huge images)");
    };
    if (f == FileFormat::jpeg) size_up_to(65535);
    if (f == FileFormat::webp) size_up_to(16383);
}

// The target's folder must exist and take new files (GDAL's virtual file
// systems, /vsimem/ and the like, are GDAL's to check).
void check_target_folder(const std::string& path) {
    if (io::is_vsi_path(path)) return;
    fs::path target(path);
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw IoError(path, "cannot be written: the folder '" + dir.string() + "' does not exist; create it first");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw IoError(path, "cannot be written: the folder '" + dir.string() +
                                "' is not writable; pick another folder or fix its permissions");
    if (fs::is_directory(target, ec)) throw IoError(path, "is a folder; give the path of a file to write");
}

class SaveOp final : public Op {
public:
    SaveOp(const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        s_.path = p.string("path");
        if (s_.path.empty()) throw ParamError("path", "is empty; give the file to write, e.g. \"out.tif\"");
        s_.format = pick_file_format(p, s_.path);
        // "cog" is a TIFF with its own layout: tiled, with overviews unless
        // told otherwise, 512-pixel tiles and deflate (GDAL's COG defaults,
        // but for LZW, which libtiff would encode on one thread here)
        const bool cog = s_.format == FileFormat::cog;
        if (cog) s_.format = FileFormat::tiff;
        const bool tiff = s_.format == FileFormat::tiff;
        const char* fmt = format_label(s_.format);

        // TIFF settings; each is an error for other formats when it asks for
        // something (a default value given explicitly is accepted). Ranges
        // and choices are the spec's; the defaults that depend on cog are
        // set here.
        auto tiff_only = [&](const std::string& key, bool asks) {
            if (asks && !tiff)
                throw ParamError(key, std::string("applies to tiff output only, not to ") + fmt +
                                          "; remove it or save to a .tif file");
        };
        std::string comp = p.string("compression", cog ? "deflate" : "none");
        tiff_only("compression", comp != "none");
        s_.compression = std::find_if(std::begin(kCompressions), std::end(kCompressions),
                                      [&](const Compression& c) { return comp == c.name; })->value;
        s_.tile = p.boolean("tile", cog);
        tiff_only("tile", s_.tile);
        if (cog && !s_.tile) throw ParamError("tile", "a COG is always tiled; remove \"tile\": false");
        s_.pyramid = p.boolean("pyramid", cog);
        tiff_only("pyramid", s_.pyramid);
        const std::string big = p.string("bigtiff");
        tiff_only("bigtiff", big != "auto");
        // libtiff can only address 4 GB without BigTIFF.
        s_.bigtiff = big == "yes" ||
                     (big == "auto" && info_.bytes() >= (std::uint64_t(4) << 30) - (std::uint64_t(64) << 20));
        for (auto [key, dim] : {std::pair{"tile_width", &s_.tile_width}, std::pair{"tile_height", &s_.tile_height}}) {
            *dim = int(p.integer(key, cog ? 512 : 256));
            tiff_only(key, p.has(key) && *dim != 256);
            if (*dim % 16 != 0)
                throw ParamError(key, std::to_string(*dim) + " is not a multiple of 16, which TIFF tiles must be; "
                                                             "use e.g. " + std::to_string((*dim + 15) / 16 * 16));
        }

        s_.quality = int(p.integer("quality"));
        // For tiff it is kept for compression jpeg and unused otherwise, so
        // a pipeline may switch compressions without editing it.
        const bool has_quality =
            s_.format == FileFormat::jpeg || s_.format == FileFormat::webp || tiff || s_.format == FileFormat::dz;
        if (!has_quality && s_.quality != 75)
            throw ParamError("quality", std::string("applies to jpeg, webp, dz and tiff (compression jpeg), not to ") +
                                            fmt + "; remove it");

        if (tiff && (s_.tile || s_.pyramid)) {
            io::TiffOptions t;
            t.tile_w = s_.tile_width;
            t.tile_h = s_.tile_height;
            t.codec.compression = io::parse_compression(comp);
            t.codec.quality = s_.quality;
            t.pyramid = s_.pyramid;
            t.cog = cog;
            t.codec.predictor = p.boolean("predictor", false);
            if (t.codec.predictor && t.codec.compression != io::Compression::deflate &&
                t.codec.compression != io::Compression::zstd && t.codec.compression != io::Compression::lzw)
                throw ParamError("predictor", std::string("applies to deflate, zstd and lzw compression, not ") +
                                                  io::compression_name(t.codec.compression) + "; remove it");
            t.band_width = int(p.integer("band_width"));
            t.bigtiff = big == "yes" ? io::TiffOptions::BigTiff::yes
                        : big == "no" ? io::TiffOptions::BigTiff::no
                                      : io::TiffOptions::BigTiff::automatic;
            io::check_tiff_options(info_, t);
            s_.tiled = t;
        }
        s_.dz = dz_settings(p, info_, s_.format == FileFormat::dz, fmt, s_.quality);
        check_format_holds(s_.format, fmt, info_);

        tiff_only("predictor", p.boolean("predictor", false));
        if (p.boolean("predictor", false) && !s_.tiled)
            throw ParamError("predictor", "is written by the tiled TIFF writer only; add \"tile\": true");
        check_target_folder(s_.path);
    }

    // The output is the input: every rect is placed straight from it.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, r.origin()}); }
    void compute(const Tile&, std::span<const Pulled>) const override {}

    std::unique_ptr<Sink> make_sink() const override {
        if (s_.tiled) return io::make_tiff_sink(s_.path, *s_.tiled);
        if (s_.dz) return io::make_dz_sink(s_.path, *s_.dz);
        return std::make_unique<VipsSaveSink>(s_);
    }

    // A Deep Zoom pyramid is NAME.dzi and the folder NAME_files (google:
    // NAME), replaced whole (dzsave.cpp).
    std::vector<FileUse> files_written() const override {
        std::vector<FileUse> out{{s_.path, false}};
        if (s_.dz) {
            const fs::path t(s_.path);
            const std::string stem = t.stem().string();
            out.push_back({(t.parent_path() / (s_.dz->layout == io::DzOptions::Layout::dz ? stem + "_files" : stem))
                               .string(),
                           true});
        }
        return out;
    }

private:
    SaveSettings s_;
};

}  // namespace

OpSpec save_op_spec() {
    return {"save", "writes its input to an image file (png, jpeg, tiff, webp, v) via libvips, or a Deep Zoom pyramid (.dzi); replaces the target only when complete",
            1, 1,
            {{"path", ParamType::string, true, "", "the file to write; its extension picks the format", true},
             {"format", ParamType::string, false, "from the extension",
              "png, jpeg, tiff, webp, v, cog (a Cloud Optimized GeoTIFF: tiled 512, deflate, overviews) or dz (a Deep Zoom pyramid)"},
             {.name = "quality", .type = ParamType::integer,
              .doc = "for jpeg, webp, dz tiles and tiff with jpeg compression", .default_value = std::int64_t(75),
              .min = 1, .max = 100},
             // the defaults of compression, tile, pyramid and the tile sizes
             // depend on the format (cog)
             {.name = "compression", .type = ParamType::string, .default_text = "none (cog: deflate)",
              .doc = "tiff: none, deflate, lzw, jpeg or zstd", .choices = compression_names()},
             {"tile", ParamType::boolean, false, "false (cog: true)", "tiff: write tiles rather than strips"},
             {.name = "tile_width", .type = ParamType::integer, .default_text = "256 (cog: 512)",
              .doc = "tiff tile width (a multiple of 16)", .min = 16, .max = 8192},
             {.name = "tile_height", .type = ParamType::integer, .default_text = "256 (cog: 512)",
              .doc = "tiff tile height (a multiple of 16)", .min = 16, .max = 8192},
             {.name = "bigtiff", .type = ParamType::string,
              .doc = "tiff: auto, yes or no (auto: BigTIFF when 4 GB may not hold it)",
              .default_value = std::string("auto"), .choices = {"auto", "yes", "no"}},
             {"pyramid", ParamType::boolean, false, "false (cog: true)", "tiff: add every 2x smaller level down to one tile, in the same pass (implies tile)"},
             {.name = "predictor", .type = ParamType::boolean,
              .doc = "tiled tiff: horizontal differencing before deflate, zstd or lzw", .default_value = false},
             {.name = "band_width", .type = ParamType::integer,
              .doc = "tiled tiff and dz: work in vertical bands about this wide (memory grows with it; pixels never "
                     "change)",
              .default_value = std::int64_t(16384), .min = 32, .max = kMaxDimension},
             // the dz keys have no default_value: giving one is an error
             // for other formats (dz_settings)
             {.name = "tile_size", .type = ParamType::integer, .default_text = "254 (google: 256)",
              .doc = "dz: tile step in pixels, as vips dzsave", .min = 1, .max = 8192},
             {.name = "overlap", .type = ParamType::integer, .default_text = "1 (google: 0)",
              .doc = "dz: pixels each tile reaches beyond its step on every side", .min = 0, .max = 8192},
             {.name = "suffix", .type = ParamType::string, .default_text = "jpeg",
              .doc = "dz: tile format, jpeg, png or webp", .choices = {"jpeg", "jpg", "png", "webp"}},
             {.name = "layout", .type = ParamType::string, .default_text = "dz",
              .doc = "dz: dz (NAME.dzi + NAME_files/LEVEL/COL_ROW) or google (NAME/Z/Y/X)",
              .choices = {"dz", "google"}}},
            true, &make_op<SaveOp>};
}

}  // namespace tessera
