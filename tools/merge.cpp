#include "tessera/merge.hpp"

#include <cctype>
#include <filesystem>

#include "tessera/core/error.hpp"
#include "tessera/io/formats.hpp"

namespace tessera {

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// One GDAL-style KEY=VALUE creation option, as save parameters.
void apply_creation_option(const std::string& kv, bool cog, Params& save) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
        throw Error("merge: creation option '" + kv + "' is not KEY=VALUE (e.g. --co COMPRESS=ZSTD)");
    const std::string key = upper(kv.substr(0, eq)), value = kv.substr(eq + 1), v = upper(value);
    auto bad = [&](const std::string& want) {
        return Error("merge: creation option " + key + "=" + value + ": use " + want);
    };
    auto integer = [&](int lo, int hi) {
        try {
            std::size_t used = 0;
            int n = std::stoi(value, &used);
            if (used == value.size() && n >= lo && n <= hi) return n;
        } catch (const std::exception&) {}
        throw bad("a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    };
    if (key == "BLOCKSIZE") {
        const int n = integer(16, 8192);
        save.set("tile_width", std::int64_t(n));
        save.set("tile_height", std::int64_t(n));
    } else if (key == "COMPRESS") {
        if (v != "NONE" && v != "DEFLATE" && v != "LZW" && v != "ZSTD" && v != "JPEG")
            throw bad("NONE, DEFLATE, LZW, ZSTD or JPEG");
        std::string c = value;
        for (char& ch : c) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        save.set("compression", c);
    } else if (key == "PREDICTOR") {
        if (v == "YES" || v == "2" || v == "STANDARD")
            save.set("predictor", true);
        else if (v == "NO" || v == "1" || v == "NONE")
            save.set("predictor", false);
        else
            throw bad("YES (horizontal differencing) or NO");
    } else if (key == "QUALITY") {
        save.set("quality", std::int64_t(integer(1, 100)));
    } else if (key == "LEVEL" || key == "ZLEVEL" || key == "ZSTD_LEVEL") {
        save.set("level", std::int64_t(integer(1, 22)));
    } else if (key == "OVERVIEWS") {
        if (v != "AUTO" && v != "NONE") throw bad("AUTO or NONE");
        save.set("pyramid", v == "AUTO");
    } else if (key == "BIGTIFF") {
        if (v == "YES")
            save.set("bigtiff", std::string("yes"));
        else if (v == "NO")
            save.set("bigtiff", std::string("no"));
        else if (v == "IF_NEEDED" || v == "IF_SAFER")
            save.set("bigtiff", std::string("auto"));
        else
            throw bad("YES, NO or IF_NEEDED");
    } else {
        throw Error("merge: unknown creation option '" + key +
                    "'; merge takes BLOCKSIZE, COMPRESS, PREDICTOR, QUALITY, LEVEL (ZLEVEL, ZSTD_LEVEL), OVERVIEWS and "
                    "BIGTIFF" +
                    (cog ? "" : " (the others of GDAL's drivers do not apply)"));
    }
}

// The format merge writes: one that keeps the georeference (the table's
// GeoTIFF and COG), by --format or else by the output's extension; any other
// name is refused before an input is read, rather than written as TIFF
// bytes under a name that says otherwise.
const OutputFormat& merge_format(const MergeOptions& o) {
    std::vector<std::string> names, exts;
    for (const OutputFormat& f : output_formats())
        if (f.georeferenced) {
            names.push_back(f.name);
            for (const std::string& e : f.extensions) exts.push_back(e);
        }
    if (!o.format.empty()) {
        const OutputFormat* f = find_output_format(o.format);
        if (!f || !f->georeferenced)
            throw Error("merge: --format " + o.format + " is not a format merge writes; use " + or_list(names) +
                        " (gtiff is tiff)");
        return output_format_for(o.output, o.format);  // and its extension agrees
    }
    const OutputFormat* f = format_of_extension(o.output);
    if (f && f->georeferenced) return *f;
    const std::string ext = format_extension(o.output);
    throw IoError(o.output, (ext.empty() ? std::string("has no extension") : "has the extension '" + ext + "'") +
                                ", but merge writes a GeoTIFF (--format " + or_list(names) + "): name the output " +
                                or_list(exts));
}

}  // namespace

Graph merge_graph(const MergeOptions& o, const OpRegistry& registry) {
    namespace fs = std::filesystem;
    if (o.inputs.empty()) throw Error("merge: give at least one input raster");
    const OutputFormat& format = merge_format(o);
    const bool cog = format.name == "cog";  // (for a message: GDAL's COG driver takes more options)
    Params save{{"path", fs::absolute(o.output).lexically_normal().string()},
                {"format", format.name},
                {"tile", true},
                {"compression", o.compression}};
    if (o.level > 0) save.set("level", std::int64_t(o.level));
    if (o.tile_size > 0) {
        save.set("tile_width", std::int64_t(o.tile_size));
        save.set("tile_height", std::int64_t(o.tile_size));
    }
    for (const std::string& kv : o.creation_options) apply_creation_option(kv, cog, save);
    if (!o.channel_names.empty())
        save.set("channel_names", channel_names_list(o.channel_names));  // the save refuses them but for OME-TIFF
    if (!o.pixel_size.empty()) save.set("pixel_size", o.pixel_size);
    Graph g(registry);
    // the pull unit follows the output's tiles (the TIFF writer asks for its own)
    g.execution.tile_w = g.execution.tile_h = o.tile_size > 0 ? o.tile_size : format.default_tile;
    std::vector<NodeId> loads;
    for (std::size_t i = 0; i < o.inputs.size(); ++i) {
        // local files absolute (so --emit-json runs from anywhere); GDAL
        // paths (/vsimem/..., SENTINEL2_L1C:...) as given
        std::error_code ec;
        std::string path =
            fs::exists(o.inputs[i], ec) ? fs::absolute(o.inputs[i]).lexically_normal().string() : o.inputs[i];
        loads.push_back(g.add("gdal_load", {}, {{"path", path}}, "in" + std::to_string(i)));
    }
    Params mp{{"method", o.method}, {"tap", o.tap}, {"resampling", o.resampling}};
    if (o.nodata) mp.set("nodata", *o.nodata);
    if (!o.res.empty()) mp.set("res", o.res);
    if (!o.bounds.empty()) mp.set("bounds", o.bounds);
    if (!o.dtype.empty()) mp.set("dtype", o.dtype);
    NodeId merged = g.add("merge", loads, mp, "merge");
    g.add("save", {merged}, save, "save");
    return g;
}

}  // namespace tessera
