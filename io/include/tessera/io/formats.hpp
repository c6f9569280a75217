// The output formats: one table (io/formats.cpp), one entry per format, read
// by the save op (which format a node writes, which of its keys apply, what
// image it takes, which writer) and by every command that takes -o (the
// format an extension names, --format, the lists in their errors and in
// `tessera formats`). io/README.md says how to add one.
//
// A path names a format by the longest extension an entry claims, case
// aside (".ome.tif" would win over ".tif"); the first entry claiming an
// extension is the one it names. A format may also be written under names
// it does not claim (a COG is a .tif), when it is asked for by name.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/format.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera {

namespace io {
struct FormatWriter;  // io/'s: how the entry's keys are read and its sink is made (format_writer.hpp)
}

// The image headers a format holds (checked when the graph is built; the
// error names the file and says what to do): sample formats, bands, size.
struct FormatHolds {
    std::vector<Format> formats = {};  // empty: any
    std::vector<int> bands = {};       // band counts, ascending; empty: any
    int max_side = 0;                  // width and height at most this; 0: no limit
    // Why `info` cannot be written (empty when it can), e.g. "jpeg holds u8
    // samples and this image's are u16".
    std::string refusal(const std::string& format, const ImageInfo& info) const;
    // In words, for listings: "u8; 1 or 3 bands; up to 65535x65535".
    std::string text() const;
};

// (every field has an initialiser, so that entries written with designated
// initialisers may leave any out)
struct OutputFormat {
    std::string name = {};                     // the save op's "format" and --format: "tiff"
    std::vector<std::string> aliases = {};     // also taken as the name, any case: "tif", "gtiff"
    std::vector<std::string> extensions = {};  // claimed, lower case, with the dot; the first is suggested
    std::vector<std::string> written_as = {};  // unclaimed names it may have when asked for by name (cog: .tif)
    std::string summary = {};                  // in the list of extensions: ".tif/.tiff (tiled TIFF, pyramid)"
    std::string doc = {};                      // one line, for `tessera formats`
    std::vector<std::string> keys = {};        // the save keys it reads besides path and format
    FormatHolds holds = {};
    int default_tile = 0;        // its tiles' default size (tile_width or tile_size); 0: untiled
    bool streaming = false;      // written tile by tile as computed, else assembled whole and encoded
    bool shards = false;         // its writer can be split over MPI ranks (tiff: when tiled)
    bool georeferenced = false;  // keeps a georeference (what merge writes)
    const io::FormatWriter* writer = nullptr;

    bool takes(std::string_view key) const;
};

// Every format, in the table's order.
std::span<const OutputFormat> output_formats();

// The format named `name` (its name or an alias, any case); null if none.
const OutputFormat* find_output_format(std::string_view name);

// The format `path`'s extension names (the longest claimed, any case); null
// if none claims it.
const OutputFormat* format_of_extension(const std::string& path);

// The extension of `path` as the table reads it: the longest claimed one,
// else the last dot's (".xyz"), else empty.
std::string format_extension(const std::string& path);

// The format a command's -o `path` is written in: `name` (--format) when
// given, else the path's extension. Throws IoError naming the path when the
// extension names no format (listing the supported ones), or names another
// format than `name` (naming both); Error for a name no format has.
const OutputFormat& output_format_for(const std::string& path, const std::string& name = {});

// ".tif/.tiff (tiled TIFF, pyramid), .dzi (Deep Zoom), .png, ...": the
// claimed extensions, for messages.
std::string supported_extensions();
// "tiff (tif, gtiff), cog, dz (dzi), ...": the names, for messages.
std::string supported_format_names();

// The table for `tessera formats`: text, or JSON (an array of objects).
std::string describe_output_formats(bool json);

// The command line's --channel-names A,B,... as save's channel_names list:
// split at commas, each name trimmed (a pipeline or Python gives a list,
// where a name may hold a comma).
std::vector<std::string> channel_names_list(const std::string& comma_separated);

}  // namespace tessera
