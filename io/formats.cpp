// The output format table (tessera/io/formats.hpp): one entry per format
// tessera writes, and what reads it (lookup by name and extension, the lists
// in messages, `tessera formats`). To add a format, see io/README.md: a
// libvips whole-image saver is one entry here (its saver's name, the keys it
// reads, what it holds); a streaming writer is its own file plus one entry.
//
// The entries' `holds` say what each format stores without loss, so that an
// image it would change is refused when the graph is built instead of being
// converted by libvips behind the user's back (a u16 image saved as JPEG
// would come back 8-bit, an RGBA one without its alpha).
#include "tessera/io/formats.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "format_writer.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/params.hpp"
#include "vips_common.hpp"

namespace tessera {
namespace {

using io::SaveSettings;
using namespace vipsio;

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// ---- the keys of each format, read once the graph has checked them
// against the save spec (type, range, choices) and refused the keys of
// other formats (save.cpp)

void configure_quality(const Params& p, SaveSettings& s) { s.quality = int(p.integer("quality")); }
void configure_nothing(const Params&, SaveSettings&) {}

// The OME formats' size_z and size_t (pixel_size.hpp).
io::PlaneSizes plane_sizes(const Params& p, const ImageInfo& info) {
    return io::check_plane_sizes(int(p.integer("size_z", 1)), int(p.integer("size_t", 1)), info.bands);
}

// OME-TIFF's own keys (ome_tiff.hpp): an 8-bit RGB image is one channel.
io::OmeOptions ome_options(const Params& p, const ImageInfo& info) {
    io::OmeOptions o;
    o.planes = plane_sizes(p, info);
    const int channels = io::ome_interleaved_rgb(info, o.planes) ? 1 : o.planes.channels(info.bands);
    o.channel_names = io::check_channel_names(p.strings("channel_names", {}), channels);
    if (const std::string size = p.string("pixel_size", ""); !size.empty()) {
        const io::PixelSize px = io::parse_pixel_size(size);
        o.pixel_x = px.x, o.pixel_y = px.y, o.pixel_z = px.z, o.unit = px.symbol;
    }
    o.description = p.string("description", "");
    return o;
}

// The level key of the TIFF family (0: the codec's default): deflate's
// and zstd's only. Strips are libvips's tiffsave, whose level (8.14) is
// zstd's alone; the tiled writer's libdeflate has deflate's 1-12.
int compression_level(const Params& p, io::Compression c, bool strips) {
    if (!p.has("level")) return 0;
    const int level = int(p.integer("level"));
    if (c != io::Compression::deflate && c != io::Compression::zstd)
        throw ParamError("level", std::string("applies to deflate and zstd compression, not ") +
                                      io::compression_name(c) + "; remove it");
    if (strips && c == io::Compression::deflate)
        throw ParamError("level", "sets deflate's effort in tiled TIFFs only (strips are written by libvips, whose "
                                  "deflate has no level); add \"tile\": true or remove it");
    const int most = c == io::Compression::zstd ? 22 : 12;
    if (level > most)
        throw ParamError("level", std::to_string(level) + " is over " + io::compression_name(c) + "'s " +
                                      std::to_string(most) + "; use 1 to " + std::to_string(most));
    return level;
}

// TIFF and COG. A COG is a TIFF with its own layout: tiled, with overviews
// unless told otherwise, 512-pixel tiles and deflate (GDAL's COG defaults,
// but for LZW, which libtiff would encode on one thread here). An OME-TIFF
// is tiled, with its pyramid unless told otherwise.
void configure_tiff_family(const Params& p, SaveSettings& s, bool cog, bool ome = false) {
    const std::string comp = p.string("compression", cog ? "deflate" : "none");
    s.compression = io::parse_compression(comp);
    const bool tile = p.boolean("tile", cog || ome);
    if (cog && !tile) throw ParamError("tile", "a COG is always tiled; remove \"tile\": false");
    if (ome && !tile) throw ParamError("tile", "an OME-TIFF is always tiled; remove \"tile\": false");
    const bool pyramid = p.boolean("pyramid", cog || ome);
    const std::string big = p.string("bigtiff");
    // libtiff can only address 4 GB without BigTIFF.
    s.bigtiff =
        big == "yes" || (big == "auto" && s.info.bytes() >= (std::uint64_t(4) << 30) - (std::uint64_t(64) << 20));
    for (auto [key, dim] : {std::pair{"tile_width", &s.tile_w}, std::pair{"tile_height", &s.tile_h}}) {
        *dim = int(p.integer(key, s.format->default_tile));
        if (*dim % 16 != 0)
            throw ParamError(key, std::to_string(*dim) +
                                      " is not a multiple of 16, which TIFF tiles must be; "
                                      "use e.g. " +
                                      std::to_string((*dim + 15) / 16 * 16));
    }
    // kept for compression jpeg and unused otherwise, so a pipeline may
    // switch compressions without editing it
    s.quality = int(p.integer("quality"));
    const bool predictor = p.boolean("predictor", false);
    s.level = compression_level(p, s.compression, !tile && !pyramid);
    if (!tile && !pyramid) {  // strips, through libvips
        if (predictor) throw ParamError("predictor", "is written by the tiled TIFF writer only; add \"tile\": true");
        return;
    }
    io::TiffOptions t;
    t.tile_w = s.tile_w;
    t.tile_h = s.tile_h;
    t.codec.compression = s.compression;
    t.codec.quality = s.quality;
    t.codec.level = s.level;
    t.pyramid = pyramid;
    t.cog = cog;
    t.codec.predictor = predictor;
    if (predictor && t.codec.compression != io::Compression::deflate && t.codec.compression != io::Compression::zstd &&
        t.codec.compression != io::Compression::lzw)
        throw ParamError("predictor", std::string("applies to deflate, zstd and lzw compression, not ") +
                                          io::compression_name(t.codec.compression) + "; remove it");
    t.band_width = int(p.integer("band_width"));
    t.bigtiff = big == "yes"  ? io::TiffOptions::BigTiff::yes
                : big == "no" ? io::TiffOptions::BigTiff::no
                              : io::TiffOptions::BigTiff::automatic;
    if (ome) t.ome = ome_options(p, s.info);
    io::check_tiff_options(s.info, t);
    s.tiled = t;
}
void configure_tiff(const Params& p, SaveSettings& s) { configure_tiff_family(p, s, false); }
void configure_ome_tiff(const Params& p, SaveSettings& s) { configure_tiff_family(p, s, false, true); }
void configure_cog(const Params& p, SaveSettings& s) { configure_tiff_family(p, s, true); }

// Deep Zoom: the tile keys have no default_value in the spec (giving one is
// an error for other formats), so the layout's defaults are set here, as
// vips dzsave's: google 256-pixel tiles, iiif 512, neither overlapping, jpg
// tiles; google skips tiles within 5 of the background.
void configure_dz(const Params& p, SaveSettings& s) {
    using L = io::DzOptions::Layout;
    using C = io::DzOptions::Container;
    s.quality = int(p.integer("quality"));
    io::DzOptions d;
    const std::string layout = p.string("layout", "dz");
    d.layout = layout == "google" ? L::google : layout == "iiif" ? L::iiif : layout == "iiif3" ? L::iiif3 : L::dz;
    const bool google = d.layout == L::google, iiif = d.layout == L::iiif || d.layout == L::iiif3;
    d.tile_size = int(p.integer("tile_size", google ? 256 : iiif ? 512 : s.format->default_tile));
    d.overlap = int(p.integer("overlap", d.google_like() ? 0 : 1));
    d.suffix = p.string("suffix", d.google_like() ? "jpg" : "jpeg");
    d.quality = s.quality;
    d.skip_blanks = int(p.integer("skip_blanks", google ? 5 : -1));
    if (p.has("id") && !iiif)
        throw ParamError("id", "names a IIIF image; it applies to layout iiif or iiif3 only, not " + layout);
    d.id = p.string("id", d.id);
    // the container: the key, else the extension (.zip, .szi), as vips
    const std::string ext = lower(std::filesystem::path(s.path).extension().string());
    const C by_ext = ext == ".zip" ? C::zip : ext == ".szi" ? C::szi : C::fs;
    const std::string container = p.string("container", by_ext == C::zip ? "zip" : by_ext == C::szi ? "szi" : "fs");
    d.container = container == "zip" ? C::zip : container == "szi" ? C::szi : C::fs;
    if (by_ext != C::fs && d.container != by_ext)
        throw ParamError("container", "is " + container + " but the output is named '" + ext +
                                          "'; name it NAME.dzi (with container), or leave container out");
    d.band_width = int(p.integer("band_width"));
    io::check_dz_options(s.info, d);
    s.dz = d;
}

// OME-Zarr: the TIFF family's tile keys (so the commands' --tile-size and
// --compression reach it unchanged), with a pyramid unless told otherwise.
void configure_ome_zarr(const Params& p, SaveSettings& s) {
    io::OmeZarrOptions z;
    const std::string compression = p.string("compression", "blosc");
    z.codec = io::zarr_codec_for(compression);
    if (p.has("level")) {
        // numcodecs' ranges: blosc's clevel and zlib's level 1-9 (0 is
        // "store"), zstd's 1-22
        const int level = int(p.integer("level"));
        const int most = z.codec.kind == io::ZarrCodec::Kind::zstd ? 22 : 9;
        if (z.codec.kind == io::ZarrCodec::Kind::none)
            throw ParamError("level", "applies to a compressed store, not compression none; remove it");
        if (level > most)
            throw ParamError("level", std::to_string(level) + " is over " + compression + "'s " + std::to_string(most) +
                                          " in Zarr; use 1 to " + std::to_string(most));
        z.codec.level = level;
    }
    if (!p.boolean("tile", true)) throw ParamError("tile", "OME-Zarr chunks are always tiles; remove \"tile\": false");
    z.pyramid = p.boolean("pyramid", true);
    z.tile_w = int(p.integer("tile_width", s.format->default_tile));
    z.tile_h = int(p.integer("tile_height", s.format->default_tile));
    z.band_width = int(p.integer("band_width"));
    if (const std::string size = p.string("pixel_size", ""); !size.empty()) z.pixel_size = io::parse_pixel_size(size);
    z.planes = plane_sizes(p, s.info);
    z.channel_names = io::check_channel_names(p.strings("channel_names", {}), z.planes.channels(s.info.bands));
    io::check_ome_zarr_options(s.info, z);
    s.tile_w = z.tile_w;
    s.tile_h = z.tile_h;
    s.zarr = z;
}

// ---- sinks

std::unique_ptr<Sink> tiff_sink(const SaveSettings& s) {
    return s.tiled ? io::make_tiff_sink(s.path, *s.tiled) : io::make_vips_save_sink(s);
}
std::unique_ptr<Sink> dz_sink(const SaveSettings& s) { return io::make_dz_sink(s.path, *s.dz); }
std::unique_ptr<Sink> ome_zarr_sink(const SaveSettings& s) { return io::make_ome_zarr_sink(s.path, *s.zarr); }

// ---- libvips' savers' options

void png_options(VipsOperation* op, const VipsImage* in, const SaveSettings&) {
    // libvips picks the bit depth from the interpretation; a u16 image
    // tagged multiband would silently drop to 8 bits.
    if (in->BandFmt == VIPS_FORMAT_USHORT) set_if_present(op, "bitdepth", 16);
}
void quality_options(VipsOperation* op, const VipsImage*, const SaveSettings& s) { set_if_present(op, "Q", s.quality); }
VipsForeignTiffCompression vips_compression(io::Compression c) {
    switch (c) {
        case io::Compression::none: return VIPS_FOREIGN_TIFF_COMPRESSION_NONE;
        case io::Compression::deflate: return VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE;
        case io::Compression::lzw: return VIPS_FOREIGN_TIFF_COMPRESSION_LZW;
        case io::Compression::jpeg: return VIPS_FOREIGN_TIFF_COMPRESSION_JPEG;
        case io::Compression::zstd: return VIPS_FOREIGN_TIFF_COMPRESSION_ZSTD;
    }
    return VIPS_FOREIGN_TIFF_COMPRESSION_NONE;
}
// A TIFF in strips (tiled ones go to the streaming writer).
void tiff_options(VipsOperation* op, const VipsImage*, const SaveSettings& s) {
    set_if_present(op, "compression", vips_compression(s.compression));
    if (s.compression == io::Compression::jpeg) set_if_present(op, "Q", s.quality);
    if (s.level > 0) set_if_present(op, "level", s.level);
    set_if_present(op, "tile", false);
    set_if_present(op, "tile_width", s.tile_w);
    set_if_present(op, "tile_height", s.tile_h);
    set_if_present(op, "bigtiff", s.bigtiff);
    set_if_present(op, "pyramid", false);
}

const io::FormatWriter kTiffWriter{.configure = configure_tiff,
                                   .make_sink = tiff_sink,
                                   .vips_saver = "tiffsave",
                                   .vips_options = tiff_options};
const io::FormatWriter kCogWriter{.configure = configure_cog, .make_sink = tiff_sink};
const io::FormatWriter kOmeTiffWriter{.configure = configure_ome_tiff, .make_sink = tiff_sink};
const io::FormatWriter kDzWriter{.configure = configure_dz, .make_sink = dz_sink};
const io::FormatWriter kOmeZarrWriter{.configure = configure_ome_zarr, .make_sink = ome_zarr_sink, .folder = true};
const io::FormatWriter kPngWriter{.configure = configure_nothing,
                                  .make_sink = io::make_vips_save_sink,
                                  .vips_saver = "pngsave",
                                  .vips_options = png_options};
const io::FormatWriter kJpegWriter{.configure = configure_quality,
                                   .make_sink = io::make_vips_save_sink,
                                   .vips_saver = "jpegsave",
                                   .vips_options = quality_options};
const io::FormatWriter kWebpWriter{.configure = configure_quality,
                                   .make_sink = io::make_vips_save_sink,
                                   .vips_saver = "webpsave",
                                   .vips_options = quality_options};
// (libvips' vipssave writes nothing to a name that does not end in .v)
const io::FormatWriter kVipsWriter{.configure = configure_nothing,
                                   .make_sink = io::make_vips_save_sink,
                                   .vips_saver = "vipssave",
                                   .temp_suffix = ".v"};

// The table. The order is the order of every list shown (and the first
// entry claiming an extension is the one it names). Built on first use, so
// that a registry made during static initialisation finds it.
const std::vector<OutputFormat>& table() {
    const std::vector<std::string> kTiffKeys{"compression", "level",   "quality", "tile",      "tile_width",
                                             "tile_height", "bigtiff", "pyramid", "predictor", "band_width"};
    const std::vector<int> kOneToFour{1, 2, 3, 4};
    std::vector<std::string> kOmeTiffKeys = kTiffKeys;
    kOmeTiffKeys.insert(kOmeTiffKeys.end(), {"channel_names", "pixel_size", "size_z", "size_t", "description"});
    static const std::vector<OutputFormat> formats{
        {.name = "tiff",
         .aliases = {"tif", "gtiff"},
         .extensions = {".tif", ".tiff"},
         .summary = "tiled TIFF, pyramid",
         .doc = "TIFF, a GeoTIFF when the image is georeferenced; tiled (or with pyramid: every 2x smaller level) by "
                "the streaming writer, which shards; else strips through libvips, assembled whole",
         .keys = kTiffKeys,
         .default_tile = 256,
         .streaming = true,
         .shards = true,
         .georeferenced = true,
         .writer = &kTiffWriter},
        {.name = "cog",
         .written_as = {".tif", ".tiff"},
         .doc = "Cloud Optimized GeoTIFF as GDAL's validator wants it: tiled 512, deflate, overviews, every "
                "directory first, then the tiles smallest level first; streaming, shards",
         .keys = kTiffKeys,
         .default_tile = 512,
         .streaming = true,
         .shards = true,
         .georeferenced = true,
         .writer = &kCogWriter},
        {.name = "ome-tiff",
         .aliases = {"ome", "ometiff", "ome-tif"},
         .extensions = {".ome.tif", ".ome.tiff"},
         .summary = "OME-TIFF pyramid",
         .doc = "OME-TIFF (OME 2016-06): a main IFD per channel (8-bit RGB: one interleaved) and focal plane and "
                "time point (size_z, size_t), each with its 2x smaller levels as SubIFDs, OME-XML with channel names "
                "and pixel size, as Bio-Formats, QuPath and raw2ometiff use; tiled, pyramid unless told otherwise; "
                "streaming, shards",
         .keys = kOmeTiffKeys,
         .default_tile = 256,
         .streaming = true,
         .shards = true,
         .georeferenced = true,
         .writer = &kOmeTiffWriter},
        {.name = "dz",
         .aliases = {"dzi"},
         .extensions = {".dzi", ".zip", ".szi"},
         .summary = "Deep Zoom",
         .doc = "Deep Zoom (NAME.dzi + NAME_files/), google (NAME/Z/Y/X) or IIIF level-0 (NAME/info.json + regions) "
                "tile pyramid, in a folder or a zip (.zip, .szi), byte-identical to vips dzsave; streaming, shards "
                "(zipped: rank 0 alone)",
         .keys = {"quality", "tile_size", "overlap", "suffix", "layout", "band_width", "container", "skip_blanks",
                  "id"},
         .holds = {.formats = {Format::u8}, .bands = kOneToFour},
         .default_tile = 254,  // vips dzsave's (google: 256)
         .streaming = true,
         .shards = true,
         .writer = &kDzWriter},
        {.name = "ome-zarr",
         .aliases = {"zarr", "ngff"},
         .extensions = {".zarr", ".ome.zarr"},
         .summary = "OME-Zarr",
         .doc = "OME-Zarr (NGFF 0.4 on Zarr v2), a folder: axes c, y, x (t, c, z, y, x with size_t and size_z), a "
                "level per 2x shrink down to one chunk (0, 1, ...), chunks (channels, tile, tile) compressed with "
                "blosc (lz4, shuffle; default), blosc-zstd, zstd, deflate or none; pixel_size and channel_names in "
                "its metadata; streaming, shards",
         .keys = {"compression", "level", "tile", "tile_width", "tile_height", "pyramid", "band_width", "pixel_size",
                  "channel_names", "size_z", "size_t"},
         .default_tile = 256,
         .streaming = true,
         .shards = true,
         .writer = &kOmeZarrWriter},
        {.name = "png",
         .extensions = {".png"},
         .doc = "PNG through libvips' pngsave (8 or 16 bit), assembled whole",
         .holds = {.formats = {Format::u8, Format::u16}, .bands = kOneToFour},
         .writer = &kPngWriter},
        {.name = "jpeg",
         .aliases = {"jpg"},
         .extensions = {".jpg", ".jpeg"},
         .doc = "JPEG through libvips' jpegsave, assembled whole",
         .keys = {"quality"},
         .holds = {.formats = {Format::u8}, .bands = {1, 3}, .max_side = 65535},
         .writer = &kJpegWriter},
        {.name = "webp",
         .extensions = {".webp"},
         .doc = "WebP through libvips' webpsave (one band is stored as RGB), assembled whole",
         .keys = {"quality"},
         .holds = {.formats = {Format::u8}, .bands = kOneToFour, .max_side = 16383},
         .writer = &kWebpWriter},
        {.name = "v",
         .aliases = {"vips"},
         .extensions = {".v"},
         .doc = "libvips' own format (any bands and sample format, uncompressed), assembled whole",
         .writer = &kVipsWriter},
    };
    return formats;
}

std::string formats_text(const std::vector<Format>& formats) {
    std::vector<std::string> names;
    for (Format f : formats) names.emplace_back(format_name(f));
    return or_list(names);
}

std::string bands_text(const std::vector<int>& bands) {
    const bool run = bands.size() > 2 && bands.back() - bands.front() + 1 == int(bands.size());
    if (run) return std::to_string(bands.front()) + " to " + std::to_string(bands.back());
    std::vector<std::string> names;
    for (int b : bands) names.push_back(std::to_string(b));
    return or_list(names);
}

std::string slash_list(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& e : v) s += (s.empty() ? "" : "/") + e;
    return s;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string json_strings(const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + json_string(v[i]);
    return s + "]";
}

}  // namespace

std::string FormatHolds::refusal(const std::string& format, const ImageInfo& info) const {
    if (!formats.empty() && std::find(formats.begin(), formats.end(), info.format) == formats.end())
        return format + " holds " + formats_text(formats) + " samples, and this image's are " +
               std::string(format_name(info.format));
    if (!bands.empty() && std::find(bands.begin(), bands.end(), info.bands) == bands.end())
        return format + " holds " + bands_text(bands) + " bands, and this image has " + std::to_string(info.bands);
    if (max_side > 0 && (info.width > max_side || info.height > max_side))
        return format + " images are at most " + std::to_string(max_side) + "x" + std::to_string(max_side) +
               " pixels, and this one is " + std::to_string(info.width) + "x" + std::to_string(info.height);
    return {};
}

std::string FormatHolds::text() const {
    std::vector<std::string> parts;
    if (!formats.empty()) parts.push_back(formats_text(formats) + " samples");
    if (!bands.empty()) parts.push_back(bands_text(bands) + " bands");
    if (max_side > 0) parts.push_back("at most " + std::to_string(max_side) + "x" + std::to_string(max_side));
    if (parts.empty()) return "any image";
    std::string s;
    for (const std::string& p : parts) s += (s.empty() ? "" : "; ") + p;
    return s;
}

bool OutputFormat::takes(std::string_view key) const { return contains(keys, key); }

std::span<const OutputFormat> output_formats() { return table(); }

const OutputFormat* find_output_format(std::string_view name) {
    const std::string n = lower(name);
    for (const OutputFormat& f : table())
        if (f.name == n || contains(f.aliases, n)) return &f;
    return nullptr;
}

namespace {
// The longest extension an entry claims that `path`'s file name ends with
// (after at least one other character), and the first entry claiming it.
std::pair<const OutputFormat*, std::string> claimed_extension(const std::string& path) {
    const std::string name = lower(std::filesystem::path(path).filename().string());
    std::pair<const OutputFormat*, std::string> best{nullptr, ""};
    for (const OutputFormat& f : table())
        for (const std::string& e : f.extensions)
            if (name.size() > e.size() && name.ends_with(e) && e.size() > best.second.size()) best = {&f, e};
    return best;
}
}  // namespace

const OutputFormat* format_of_extension(const std::string& path) { return claimed_extension(path).first; }

std::string format_extension(const std::string& path) {
    auto [f, e] = claimed_extension(path);
    return f ? e : std::filesystem::path(path).extension().string();
}

const OutputFormat& output_format_for(const std::string& path, const std::string& name) {
    const OutputFormat* by_ext = format_of_extension(path);
    const std::string ext = format_extension(path);
    if (!name.empty()) {
        const OutputFormat* f = find_output_format(name);
        if (!f) throw Error("--format " + name + ": no format has this name; use " + supported_format_names());
        // an extension no format claims is the user's choice; one that names
        // another format would be a file whose name lies about its bytes
        if (by_ext && by_ext != f && !contains(f->written_as, ext)) {
            std::vector<std::string> names = f->extensions;
            names.insert(names.end(), f->written_as.begin(), f->written_as.end());
            throw IoError(path, "has the extension '" + ext + "', which names " + by_ext->name + ", but --format " +
                                    name + " asks for " + f->name + "; name the output " +
                                    (names.empty() ? std::string("without that extension") : or_list(names)) +
                                    ", or leave --format out");
        }
        return *f;
    }
    if (!by_ext)
        throw IoError(path, (ext.empty() ? std::string("has no extension") : "has the extension '" + ext + "'") +
                                ", which names no format this command writes; use " + supported_extensions() +
                                ", or name the format with --format (" + supported_format_names() + ")");
    return *by_ext;
}

std::string supported_extensions() {
    std::vector<std::string> items;
    for (const OutputFormat& f : table())
        if (!f.extensions.empty())
            items.push_back(slash_list(f.extensions) + (f.summary.empty() ? "" : " (" + f.summary + ")"));
    return or_list(items);
}

std::string supported_format_names() {
    std::vector<std::string> items;
    for (const OutputFormat& f : table()) {
        std::string aliases;
        for (const std::string& a : f.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
        items.push_back(f.name + (aliases.empty() ? "" : " (" + aliases + ")"));
    }
    return or_list(items);
}

std::string describe_output_formats(bool json) {
    std::string out = json ? "[\n" : "";
    for (std::size_t i = 0; i < table().size(); ++i) {
        const OutputFormat& f = table()[i];
        if (json) {
            std::vector<std::string> formats;
            for (Format s : f.holds.formats) formats.emplace_back(format_name(s));
            std::string bands = "[";
            for (std::size_t k = 0; k < f.holds.bands.size(); ++k)
                bands += (k ? ", " : "") + std::to_string(f.holds.bands[k]);
            out += "  {\"name\": " + json_string(f.name) + ", \"aliases\": " + json_strings(f.aliases) +
                   ", \"extensions\": " + json_strings(f.extensions) +
                   ", \"written_as\": " + json_strings(f.written_as) + ",\n   \"doc\": " + json_string(f.doc) +
                   ",\n   \"keys\": " + json_strings(f.keys) +
                   ",\n   \"holds\": {\"formats\": " + json_strings(formats) + ", \"bands\": " + bands +
                   "], \"max_side\": " + std::to_string(f.holds.max_side) +
                   "},\n   \"streaming\": " + (f.streaming ? "true" : "false") +
                   ", \"shards\": " + (f.shards ? "true" : "false") +
                   ", \"georeferenced\": " + (f.georeferenced ? "true" : "false") + "}" +
                   (i + 1 < table().size() ? "," : "") + "\n";
            continue;
        }
        std::string names = or_list(f.extensions);
        if (!f.written_as.empty())
            names += (names.empty() ? "" : "; ") + std::string("by name only, as ") + or_list(f.written_as);
        out += f.name + (f.aliases.empty() ? "" : " (also " + or_list(f.aliases) + ")") + ": " + names + "  -- " +
               f.doc + "\n";
        out += "    holds: " + f.holds.text() + "\n";
        std::string keys;
        for (const std::string& k : f.keys) keys += (keys.empty() ? "" : ", ") + k;
        out += "    keys: " + (keys.empty() ? std::string("none") : keys) + "\n";
        out += std::string("    writer: ") + (f.streaming ? "streaming" : "whole image through libvips") +
               (f.shards ? "; shards under MPI" : "; rank 0 alone under MPI") +
               (f.georeferenced ? "; keeps a georeference" : "") + "\n";
    }
    return out + (json ? "]\n" : "");
}

std::vector<std::string> channel_names_list(const std::string& comma_separated) {
    std::vector<std::string> names;
    auto trim = [](std::string t) {
        const auto b = t.find_first_not_of(" \t"), e = t.find_last_not_of(" \t");
        return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
    };
    if (trim(comma_separated).empty()) return names;
    std::size_t start = 0;
    for (;;) {
        const auto comma = comma_separated.find(',', start);
        names.push_back(
            trim(comma_separated.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos) return names;
        start = comma + 1;
    }
}

}  // namespace tessera
