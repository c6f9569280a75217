// Level geometry and tile order of the one-pass pyramid writers, internal to
// io/: the pyramid TIFF/COG writer (tiff_pyramid.cpp) and the Deep Zoom
// writer (dzsave.cpp) share them, and only the level sizes' rounding and the
// last level differ (as vips_tiffsave's and vips_dzsave's do).
//
// Order. A writer that can place tiles anywhere asks for level 0 in vertical
// bands of band() tiles (a power of two, so that every band-local level's
// tiles lie inside one band), top to bottom within a band: what must be live
// at once (the inputs' decode windows, the pyramid's tiles being assembled)
// is then one band wide, whatever the image's width. Within a band row its lanes (quarters)
// are interleaved, so that tiles computed at once are far apart and rarely
// wait on the same input. Fixed lanes: the order, hence a file's bytes,
// never depends on the thread count.
//
// Shares (sharded runs, shard.hpp). A unit is one band's tile rows
// [k R, (k + 1) R), contiguous in the band order; R is the tallest power of
// two up to a band's height that still gives every rank at least 8 units to
// balance with. A share is a run of whole units, so every block of levels
// 1..log2(R) lies inside one rank's share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tessera::io {

// One level of a pyramid: its size in pixels and its tile grid.
struct LevelGrid {
    int width = 0, height = 0;
    int tiles_x = 0, tiles_y = 0;
};

// How a level's size follows from the one above's.
enum class Halving {
    down,  // rounded down (vips_tiffsave's pyramid: 5 -> 2); ends too at a level under 2 pixels on a side
    up,    // rounded up (vips_dzsave: 5 -> 3)
};

// The levels, level 0 (width x height) first, each the one above halved,
// down to the first that fits in fit_w x fit_h (tiffsave: one tile; dzsave:
// 1 x 1 pixel, or one tile for the google layout). Tiles are tile_w x tile_h.
std::vector<LevelGrid> pyramid_levels(int width, int height, int tile_w, int tile_h, Halving halving, int fit_w,
                                      int fit_h);

class BandLayout {
public:
    // Bands about band_width pixels wide: the most tiles of tile_w that fit,
    // rounded down to a power of two, at least 2.
    BandLayout(int tile_w, int band_width);

    // Level-0 tiles per band.
    int band() const { return band_; }
    // The order of a cols x rows tile grid, as indices (row * cols + col).
    std::vector<std::uint32_t> order(int cols, int rows) const;
    // R, the unit's height in tile rows, for a run over `ranks`.
    int unit_rows(int cols, int rows, int ranks) const;
    // The units' first positions in order() (Sink's share starts).
    std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const;

private:
    int band_ = 2;
};

}  // namespace tessera::io
