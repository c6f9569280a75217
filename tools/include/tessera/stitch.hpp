// The scanned-mosaic stitch as a graph: a canvas, every tile of a
// positions CSV placed by one insert node, and a save in the format the
// output's extension (or StitchOptions::format) names in the format table
// (tessera/io/formats.hpp): a tiled (pyramid) TIFF, a Deep Zoom pyramid, ...
// `tessera stitch` is this plus the illumination steps and a run, as
// tessera::stitch and plan_stitch (tessera/jobs.hpp) put them together; C++
// users can call either.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "tessera/graphs/graph.hpp"
#include "tessera/positions.hpp"

namespace tessera {

// Flat-field correction of every tile before it is placed: each tile source
// becomes flatfield(load(tile), F[, D]) (ops/flatfield.cpp). Paths of
// one-band images of the tile size (BaSiC's or ASHLAR's profiles, or
// tessera's --flatfield-out); a /vsimem/ path is read by gdal_load (an
// estimate held in memory). Empty: no correction. `gains`: one per tile,
// each tile divided by its own (estimate_gains in tessera/flatfield.hpp);
// empty: none.
struct Illumination {
    std::string flatfield;
    std::string darkfield;  // needs flatfield
    std::vector<double> gains;
};

struct StitchOptions {
    std::string positions;           // CSV file,x,y or Fiji TileConfiguration; paths relative to its folder
    int canvas_w = 0, canvas_h = 0;  // 0x0: the tiles' bounding box (fit_canvas)
    std::string output;  // .tif/.tiff: tiled TIFF; .dzi: Deep Zoom (or google) pyramid; .png, .jpg, .webp, .v: libvips
                         // (another extension is an error listing these; tessera/io/formats.hpp)
    std::string format;  // a format table name (cog, ...) overriding the extension; empty: the extension's
    int tile_size = 0;   // 0: the output's default (TIFF 256, dz 254, google 256)
    std::string compression;  // TIFF; empty: the format's (none; COG deflate)
    int level = 0;            // TIFF deflate/zstd, OME-Zarr: compression effort; 0: the codec's default
    int quality = 75;
    bool pyramid = false;
    std::string bigtiff = "auto";
    std::vector<double> background{0};
    // .dzi outputs (as vips dzsave); -1: the layout's default (dz 1, google 0)
    int overlap = -1;
    std::string suffix;         // jpeg (jpg), png or webp; empty: the layout's (dz jpeg, others jpg)
    std::string layout = "dz";  // dz, google, iiif or iiif3
    std::string container;      // fs, zip or szi; empty: by the extension (.zip, .szi), else fs
    int skip_blanks = -2;  // tiles within this of the background are not written; -1 none; -2: the layout's (google 5)
    std::string id;        // iiif layouts: the base URL of info.json's id; empty: vips's example.com
    // OME outputs (ome-tiff, ome-zarr): a name per channel ("DAPI,GFP"), the physical pixel
    // size ("0.325 um", "0.5,0.52 µm"); empty: none
    std::string channel_names;
    std::string pixel_size;
    Illumination illumination;  // none by default
    // Illumination estimated from the tiles before the graph is built, by
    // the jobs of tessera/jobs.hpp (stitch, mosaic: tessera/flatfield.hpp's
    // estimates); stitch_graph and mosaic_graph take `illumination` only.
    bool estimate_flatfield = false;  // F from a sample of the tiles (with illumination.darkfield: of I - D)
    std::string flatfield_out;        // the estimate written here too; empty: held in memory (/vsimem/)
    bool gain_compensation = false;   // each tile's exposure gain, from its overlaps at the positions used
};

// The canvas that holds the tiles when none is given: the bounding box of
// the tiles as insert places them (top-left at the nearest whole pixel),
// and the whole-pixel shift that moves its top-left to 0,0 (so negative
// positions work too). Reads every tile's header.
struct CanvasFit {
    int width = 0, height = 0;
    std::array<double, 2> shift{0, 0};  // added to every position
};
// Reads the positions (CSV or TileConfiguration, read_positions) and builds
// the graph (headers of every tile are read, no pixels); a canvas of 0x0 is
// the tiles' bounding box (fit_canvas). Errors name the file and line, or
// the node and key.
Graph stitch_graph(const StitchOptions& options, const OpRegistry& registry);
// The same for tiles already read (or a grid's); with a 0x0 canvas the rows
// are shifted into the fitted canvas, and `fitted` (if given) says how.
Graph stitch_graph(const StitchOptions& options, std::vector<Placement> rows, const OpRegistry& registry,
                   CanvasFit* fitted = nullptr);

// The canvas fitted to the tiles, reading their headers.
CanvasFit fit_canvas(const std::vector<Placement>& rows, const OpRegistry& registry);
// Every tile's width and height, from its header.
std::vector<std::array<int, 2>> tile_sizes(const std::vector<Placement>& rows, const OpRegistry& registry);
// The same from the tiles' sizes (width, height per row). `subpixel`: the
// tiles are placed at their fractional positions (mosaic), so one at x =
// 10.5 covers [10, 10 + w + 1); else at the nearest whole pixel (stitch).
CanvasFit fit_canvas(const std::vector<Placement>& rows, const std::vector<std::array<int, 2>>& sizes,
                     bool subpixel = false);
// The whole pixel insert places a top-left at: floor(x + 0.5), the nearest
// (insert is integer; the mosaic op's fractional placing is its own).
IntPair placed_at(const std::array<double, 2>& at);
// Adds `shift` to every position.
void shift_positions(std::vector<Placement>& rows, const std::array<double, 2>& shift);

// The tile size of the output: the option, else the output's default
// (TIFF 256, COG 512, Deep Zoom 254, google 256).
int stitch_tile_size(const StitchOptions& o);
// The save key --tile-size sets for this output ("tile_size" for Deep Zoom,
// else "tile_width"), whose range it must be in; never throws (a format the
// output cannot be written in is reported when the graph is built).
std::string stitch_tile_key(const StitchOptions& o);

// The parts of the stitch graph other jobs on the same CSVs reuse: a load
// node per tile ("tile0", ...), the canvas under them (first tile's bands
// and format), and the tiled (pyramid) TIFF save of `image`.
// With a flat-field or gains, the nodes returned are the corrected tiles
// ("flat0", ...; the loads stay "tile0", ...), the profiles loaded once
// ("flatfield", "darkfield"); a profile of another size than a tile is an
// error naming both files.
std::vector<NodeId> add_tile_loads(Graph& g, const std::vector<Placement>& rows, const Illumination& illumination = {});
NodeId add_canvas(Graph& g, const StitchOptions& options, const ImageInfo& like);
NodeId add_stitch_save(Graph& g, NodeId image, const StitchOptions& options);

}  // namespace tessera
