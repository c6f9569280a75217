// save: writes its input to a file in one of the formats of the format
// table (formats.cpp, tessera/io/formats.hpp): the node's "format", else its
// path's extension, picks the entry; the entry says which keys apply (any
// other key that asks for something is an error naming the formats that
// read it), which images it holds (checked here, naming the file), how its
// keys are read and which sink writes it. Streaming formats (tiled TIFF and
// COG and OME-TIFF: tiff_pyramid.cpp; Deep Zoom: dzsave.cpp) never hold more than a few
// strips; the others go through libvips whole, in the sink below.
//
// The op itself moves no pixels: its output is its input (one placed need
// per rect). The libvips sink is fed the tiles in row-major order of the
// tile grid:
//  - start() sets up an image to assemble them in: in memory (libvips owns
//    the buffer) up to IoLimits::save_memory_mb, else a raw file on disc
//    beside the target, written a row of tiles at a time and read back with
//    libvips' rawload (memory-mapped);
//  - consume() copies each tile in;
//  - finish() encodes the whole image with the entry's libvips saver into
//    the temporary of an OutputTarget (output_target.hpp: a hidden name in
//    the target's folder, removed on a signal) and commits it (a rename, or
//    a copy into a GDAL /vsi target), so the target is either the old file
//    or the complete new one;
//  - abort() removes the temporary files and leaves the target untouched.
// A georeferenced image saved as TIFF becomes a GeoTIFF (gdal_common.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "format_writer.hpp"
#include "gdal_common.hpp"
#include "io_list.hpp"
#include "tessera/io/io.hpp"
#include "tessera/core/temporaries.hpp"
#include "tessera/io/formats.hpp"
#include "tessera/io/output_target.hpp"
#include "vips_common.hpp"

namespace tessera {
namespace {

using namespace vipsio;
namespace fs = std::filesystem;

// Encodes `in` to `file` with the format's libvips saver, outside libvips'
// operation cache (which would otherwise keep the whole image alive after
// the save).
void encode(VipsImage* in, const std::string& file, const io::SaveSettings& s) {
    const io::FormatWriter& w = *s.format->writer;
    OperationPtr op(vips_operation_new(w.vips_saver));
    if (!op) throw_vips_error(s.path, std::string("cannot make the libvips saver ") + w.vips_saver);
    g_object_set(op.get(), "in", in, "filename", file.c_str(), nullptr);
    if (w.vips_options) w.vips_options(op.get(), in, s);
    run_uncached(op.get(), s.path, "could not be written");
    vips_object_unref_outputs(VIPS_OBJECT(op.get()));
}

// Removes the raw file (and forgets it for signal cleanup).
void remove_raw(std::string& file, int& slot) {
    if (file.empty()) return;
    std::error_code ec;
    fs::remove(file, ec);
    untrack_temporary(slot);
    slot = -1;
    file.clear();
}

class VipsSaveSink final : public Sink {
public:
    explicit VipsSaveSink(io::SaveSettings s) : s_(std::move(s)) {}
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

    void consume(const ConstTile& t, std::shared_ptr<void>) override {
        if (!started_) throw Error("save: a tile before start()");
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
            encode(src.get(), out_->temp(), s_);
            src.reset();
            if (s_.format->georeferenced && info_.geo) io::write_georeference(out_->temp(), *info_.geo, s_.path);
            out_->commit();
            out_.reset();
        } catch (...) {
            abort();
            throw;
        }
        remove_raw(tmpraw_, raw_slot_);
        started_ = false;
        done_ = true;
    }

    void abort() noexcept override {
        started_ = false;
        image_.reset();
        strip_ = {};
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        out_.reset();  // removes the temporary
        remove_raw(tmpraw_, raw_slot_);
    }

private:
    // start() proper; start() cleans up if this throws.
    void begin(const ImageInfo& info, int tile_h) {
        ensure_vips();
        done_ = false;
        started_ = true;
        info_ = info;
        written_ = 0;
        out_.emplace(s_.path, OutputTarget::Kind::file, s_.format->writer->temp_suffix);
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
            tmpraw_ = out_->temp() + ".raw";
            raw_slot_ = track_temporary(tmpraw_);
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
                               VIPS_CODING_NONE,
                               to_vips_interpretation(info_.interpretation, info_.bands, info_.format), 1.0, 1.0);
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

    io::SaveSettings s_;
    ImageInfo info_;
    ImagePtr image_;                   // the output in memory
    int fd_ = -1;                      // the raw file, on disc
    std::optional<OutputTarget> out_;  // the encoded file, committed by finish()
    std::string tmpraw_;               // the raw pixels (on disc only)
    int raw_slot_ = -1;                // tmpraw_'s signal-cleanup slot
    std::vector<std::byte> strip_;
    int strip_y_ = 0, strip_h_ = 0;
    std::uint64_t written_ = 0;
    bool started_ = false;
    bool done_ = false;
};

// The format: "format" if given, else the path's extension, through the
// table (formats.cpp). The key is checked here rather than by spec choices:
// it is case-insensitive, like the extension it replaces. A "format" that
// disagrees with the extension is the pipeline's explicit choice (the CLI's
// --format refuses it).
const OutputFormat& pick_file_format(const Params& p, const std::string& path) {
    if (p.has("format")) {
        const std::string f = p.string("format");
        const OutputFormat* ff = find_output_format(f);
        if (!ff) throw ParamError("format", "unknown format '" + f + "'; use " + supported_format_names());
        return *ff;
    }
    if (const OutputFormat* ff = format_of_extension(path)) return *ff;
    const std::string ext = format_extension(path);
    throw ParamError("path", (ext.empty() ? std::string("has no extension") : "has the extension '" + ext + "'") +
                                 ", which names no format Tessera writes; use " + supported_extensions() +
                                 ", or set \"format\" (" + supported_format_names() + ")");
}

// The value of a key that asks for nothing: a pipeline may state it for a
// format that does not read the key. The spec's default where it has one;
// the keys whose default depends on the format (cog) are listed; a key in
// neither (the dz ones) asks for something whenever it is given.
const ParamValue* asks_for_nothing(const std::string& key) {
    static const std::map<std::string, ParamValue> values = [] {
        std::map<std::string, ParamValue> m{{"compression", std::string("none")},
                                            {"tile", false},
                                            {"pyramid", false},
                                            {"tile_width", std::int64_t(256)},
                                            {"tile_height", std::int64_t(256)}};
        for (const ParamSpec& ps : save_op_spec().params)
            if (ps.default_value) m.emplace(ps.name, *ps.default_value);
        return m;
    }();
    auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
}

// A key the format does not read is an error when it asks for something,
// naming the formats that read it.
void refuse_other_formats_keys(const OutputFormat& f, const Params& p) {
    for (const auto& [key, value] : p.values()) {
        if (key == "path" || key == "format" || f.takes(key)) continue;
        const ParamValue* nothing = asks_for_nothing(key);
        if (nothing && *nothing == value) continue;
        std::vector<std::string> takers, exts;
        for (const OutputFormat& o : output_formats()) {
            if (!o.takes(key)) continue;
            takers.push_back(o.name);
            if (!o.extensions.empty() && std::find(exts.begin(), exts.end(), o.extensions[0]) == exts.end())
                exts.push_back(o.extensions[0]);
        }
        throw ParamError(key, "applies to " + or_list(takers) + " output only, not to " + f.name +
                                  "; remove it or save to a " + or_list(exts));
    }
}

// What the format holds (bands, sample format, size): an image it would
// change is refused, naming the file, with what would hold it.
void check_holds(const OutputFormat& f, const ImageInfo& info, const std::string& path) {
    const std::string why = f.holds.refusal(f.name, info);
    if (why.empty()) return;
    std::string fix;
    if (!f.holds.formats.empty() &&
        std::find(f.holds.formats.begin(), f.holds.formats.end(), info.format) == f.holds.formats.end()) {
        std::vector<std::string> names;
        for (Format x : f.holds.formats) names.emplace_back(format_name(x));
        fix = "cast it to " + or_list(names) + " first (the cast op)";
    } else if (std::find(f.holds.bands.begin(), f.holds.bands.end(), info.bands) != f.holds.bands.end() ||
               f.holds.bands.empty()) {
        fix = "crop or shrink it first";
    } else {
        fix = "pick the bands it holds first";
    }
    std::vector<std::string> others;
    for (const OutputFormat& o : output_formats())
        if (&o != &f && !o.extensions.empty() && o.holds.refusal(o.name, info).empty())
            others.push_back(o.extensions[0]);
    if (!others.empty()) fix += ", or save to a " + or_list(others) + ", which holds it";
    throw ParamError("format", "'" + path + "': " + why + "; " + fix);
}

// The target's folder must exist and take new files (GDAL's virtual file
// systems, /vsimem/ and the like, are GDAL's to check).
void check_target_folder(const std::string& path, bool folder_output) {
    if (io::is_vsi_path(path)) return;
    fs::path target(path);
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw IoError(path, "cannot be written: the folder '" + dir.string() + "' does not exist; create it first");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw IoError(path, "cannot be written: the folder '" + dir.string() +
                                "' is not writable; pick another folder or fix its permissions");
    if (!folder_output && fs::is_directory(target, ec))
        throw IoError(path, "is a folder; give the path of a file to write");
}

class SaveOp final : public Op {
public:
    SaveOp(const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        s_.info = info_;
        s_.path = p.string("path");
        if (s_.path.empty()) throw ParamError("path", "is empty; give the file to write, e.g. \"out.tif\"");
        s_.format = &pick_file_format(p, s_.path);
        refuse_other_formats_keys(*s_.format, p);
        check_holds(*s_.format, info_, s_.path);
        s_.format->writer->configure(p, s_);
        check_target_folder(s_.path, s_.format->writer->folder);
    }

    // The output is the input: every rect is placed straight from it.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, r.origin()}); }
    void compute(const Tile&, std::span<const Pulled>) const override {}

    std::unique_ptr<Sink> make_sink() const override { return s_.format->writer->make_sink(s_); }

    // A Deep Zoom pyramid is NAME.dzi and the folder NAME_files (google:
    // NAME), replaced whole (dzsave.cpp).
    std::vector<FileUse> files_written() const override {
        std::vector<FileUse> out{{s_.path, s_.format->writer->folder}};
        if (s_.dz && s_.dz->zipped()) return {{io::dz_target(s_.path, *s_.dz), false}};  // one archive
        if (s_.dz) {
            const fs::path t(s_.path);
            const std::string stem = t.stem().string();
            out.push_back(
                {(t.parent_path() / (s_.dz->layout == io::DzOptions::Layout::dz ? stem + "_files" : stem)).string(),
                 true});
        }
        return out;
    }

private:
    io::SaveSettings s_;
};

}  // namespace

std::unique_ptr<Sink> io::make_vips_save_sink(const io::SaveSettings& s) { return std::make_unique<VipsSaveSink>(s); }

OpSpec save_op_spec() {
    return {
        "save",
        "writes its input to an image file in one of the formats `tessera formats` lists (tiled TIFF, COG, OME-TIFF "
        "and Deep Zoom by streaming writers, the others whole through libvips); replaces the target only when complete",
        1,
        1,
        {{"path", ParamType::string, true, "", "the file to write; its extension picks the format", true},
         {"format", ParamType::string, false, "from the extension",
          supported_format_names() + " (any case); `tessera formats` describes each"},
         {.name = "quality",
          .type = ParamType::integer,
          .doc = "for jpeg, webp, dz tiles and tiff with jpeg compression",
          .default_value = std::int64_t(75),
          .min = 1,
          .max = 100},
         // the defaults of compression, tile, pyramid and the tile sizes
         // depend on the format (cog)
         {.name = "compression",
          .type = ParamType::string,
          .default_text = "none (cog: deflate)",
          .doc = "tiff: none, deflate, lzw, jpeg or zstd; ome-zarr: blosc (lz4, the default), blosc-zstd, zstd, "
                 "deflate or none",
          .choices = {"none", "deflate", "lzw", "jpeg", "zstd", "blosc", "blosc-zstd"}},
         // (no default_value: the default depends on the codec, and giving
         // it for a codec without levels is an error, see formats.cpp)
         {.name = "level",
          .type = ParamType::integer,
          .default_text = "deflate 6, zstd 9 (ome-zarr: zstd 3, blosc 5)",
          .doc = "tiff, cog, ome-tiff, ome-zarr: compression effort, as libvips tiffsave's level and GDAL's "
                 "ZLEVEL/ZSTD_LEVEL: deflate 1-12 (tiled tiff; ome-zarr 1-9), zstd 1-22, blosc 1-9; higher is "
                 "smaller and slower",
          .min = 1,
          .max = 22},
         {"tile", ParamType::boolean, false, "false (cog: true)", "tiff: write tiles rather than strips"},
         {.name = "tile_width",
          .type = ParamType::integer,
          .default_text = "256 (cog: 512)",
          .doc = "tiff tile width (a multiple of 16)",
          .min = 16,
          .max = 8192},
         {.name = "tile_height",
          .type = ParamType::integer,
          .default_text = "256 (cog: 512)",
          .doc = "tiff tile height (a multiple of 16)",
          .min = 16,
          .max = 8192},
         {.name = "bigtiff",
          .type = ParamType::string,
          .doc = "tiff: auto, yes or no (auto: BigTIFF when 4 GB may not hold it)",
          .default_value = std::string("auto"),
          .choices = {"auto", "yes", "no"}},
         {"pyramid", ParamType::boolean, false, "false (cog: true)",
          "tiff: add every 2x smaller level down to one tile, in the same pass (implies tile)"},
         {.name = "predictor",
          .type = ParamType::boolean,
          .doc = "tiled tiff: horizontal differencing before deflate, zstd or lzw",
          .default_value = false},
         {.name = "band_width",
          .type = ParamType::integer,
          .doc = "tiled tiff and dz: work in vertical bands about this wide (memory grows with it; pixels never "
                 "change)",
          .default_value = std::int64_t(16384),
          .min = 32,
          .max = kMaxDimension},
         // the dz keys have no default_value: giving one is an error
         // for other formats (dz_settings)
         {.name = "tile_size",
          .type = ParamType::integer,
          .default_text = "254 (google: 256)",
          .doc = "dz: tile step in pixels, as vips dzsave",
          .min = 1,
          .max = 8192},
         {.name = "overlap",
          .type = ParamType::integer,
          .default_text = "1 (google: 0)",
          .doc = "dz: pixels each tile reaches beyond its step on every side",
          .min = 0,
          .max = 8192},
         {.name = "suffix",
          .type = ParamType::string,
          .default_text = "jpeg",
          .doc = "dz: tile format, jpeg, png or webp",
          .choices = {"jpeg", "jpg", "png", "webp"}},
         {.name = "layout",
          .type = ParamType::string,
          .default_text = "dz",
          .doc = "dz: dz (NAME.dzi + NAME_files/LEVEL/COL_ROW), google (NAME/Z/Y/X), iiif or iiif3 (NAME/info.json "
                 "+ NAME/REGION/SIZE/0/default.EXT, IIIF Image API 2 or 3 level 0)",
          .choices = {"dz", "google", "iiif", "iiif3"}},
         {.name = "container",
          .type = ParamType::string,
          .default_text = "fs (.zip: zip, .szi: szi)",
          .doc = "dz: fs (files), zip (NAME.zip, everything under NAME/) or szi (NAME.szi: the zip with "
                 "scan-properties.xml)",
          .choices = {"fs", "zip", "szi"}},
         {.name = "skip_blanks",
          .type = ParamType::integer,
          .default_text = "-1 (google: 5)",
          .doc = "dz: tiles whose every sample is within this of the background (255) are not written; -1: none "
                 "skipped",
          .min = -1,
          .max = 65535},
         {.name = "id",
          .type = ParamType::string,
          .default_text = "https://example.com/iiif",
          .doc = "dz iiif/iiif3: the base URL info.json names the image by (ID/NAME)"},
         {.name = "channel_names",
          .type = ParamType::strings,
          .default_text = "ome-tiff: C0, C1, ... (8-bit RGB: RGB); ome-zarr: Channel 0, ...",
          .doc = "ome-tiff, ome-zarr: a name per channel, e.g. [\"DAPI\", \"GFP\"] (an 8-bit RGB OME-TIFF is one "
                 "channel)",
          .default_value = std::vector<std::string>()},
         {.name = "pixel_size",
          .type = ParamType::string,
          .default_text = "none",
          .doc = "ome-tiff, ome-zarr: physical pixel size \"X[,Y[,Z]] UNIT\", e.g. \"0.325 um\" (nm, um, mm, ...; Z: "
                 "the focal planes' spacing)",
          .default_value = std::string()},
         {.name = "size_z",
          .type = ParamType::integer,
          .doc = "ome-tiff, ome-zarr: focal planes the bands hold: band c + C (z + Z t) is channel c of plane z at "
                 "time t (OME's XYCZT), so a z-stack is the bandjoin of its planes",
          .default_value = std::int64_t(1),
          .min = 1,
          .max = kMaxBands},
         {.name = "size_t",
          .type = ParamType::integer,
          .doc = "ome-tiff, ome-zarr: time points the bands hold (see size_z)",
          .default_value = std::int64_t(1),
          .min = 1,
          .max = kMaxBands},
         {.name = "description",
          .type = ParamType::string,
          .default_text = "none",
          .doc = "ome-tiff: the image's description in its OME-XML",
          .default_value = std::string()}},
        true,
        &make_op<SaveOp>,
        false,
        "sink",
        "0"};
}

}  // namespace tessera
