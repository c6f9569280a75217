// Where the tiles of a scan go: the position files microscopy users already
// have, and the grid for those who have none.
//
// - The positions CSV: header file,x,y, one tile a row, x,y the tile's
//   top-left in pixels (whole or fractional, any decimal notation).
// - Fiji's TileConfiguration.txt (Grid/Collection stitching, also written by
//   BigStitcher's export, ASHLAR users' converters and many acquisition
//   scripts): an optional "dim = 2" line, "# comments", blank lines and one
//   "file; series; (x, y)" line a tile, the series field empty or a number.
//   Fiji writes its registration result beside the input as
//   TileConfiguration.registered.txt, in the same format.
// - NIST MIST's global positions (img-global-positions-N.txt, MIST's
//   registration result): one "file: NAME; corr: C; position: (X, Y);
//   grid: (COL, ROW);" line a tile, X, Y the whole-pixel top-left; read
//   (not written), so a MIST result can be rendered, or refined by mosaic.
// - A grid with no positions file (Fiji's "Grid: row-by-row / snake by rows"
//   and MIST's grid mode): COLSxROWS tiles at a nominal overlap, their files
//   named by a pattern with {iii} (acquisition index) or {rrr} and {ccc}
//   (row and column; Fiji's {yyy} and {xxx} too), zero-padded to the number
//   of letters.
// Relative tile paths are resolved against the folder of the file naming
// them (the pattern's: against the working directory, like any path).
#pragma once

#include <array>
#include <string>
#include <vector>

namespace tessera {

class OpRegistry;

// One tile: its path (absolute or resolved as above) and its top-left on the
// canvas in pixels, fractional. Insert places it at the nearest whole pixel
// (floor(x + 0.5), so that shifting every position by whole pixels shifts
// the picture by exactly that).
struct Placement {
    std::string file;
    std::array<double, 2> at{0, 0};
    int line = 0;  // in the file it was read from (0: not read from a file)
    int page = 0;  // a TileConfiguration's series number: the page of a multi-page file
};

// The rows of a positions CSV (header file,x,y), in order. Errors name the
// CSV and line (a coordinate that is not a finite number, a missing field).
std::vector<Placement> read_positions_csv(const std::string& path);
// Writes a positions CSV with paths relative to its own folder, so that it
// can be stitched from wherever it is. Whole-pixel positions are written as
// integers, others with up to 3 decimals. Atomic (written beside, renamed).
void write_positions_csv(const std::string& path, const std::vector<Placement>& rows);

// The tiles of a Fiji TileConfiguration.txt, in order. Refused, naming the
// file and line: dim other than 2, 3-D coordinates, a line that is not
// "file; series; (x, y)", a coordinate that is not a finite number.
std::vector<Placement> read_tile_configuration(const std::string& path);
// Writes one as Fiji does (the "dim = 2" header, "file; ; (x, y)", whole
// values as "921.0"), paths relative to its folder, up to 3 decimals.
void write_tile_configuration(const std::string& path, const std::vector<Placement>& rows);

// Whether `path` is a TileConfiguration: it ends in .txt, or its first line
// that is neither blank nor a comment starts with "dim".
bool is_tile_configuration(const std::string& path);
// The tiles of a MIST global positions file, in order (the corr and grid
// fields are not used). Errors name the file and line.
std::vector<Placement> read_mist_positions(const std::string& path);
// Whether its first line that is neither blank nor a comment starts "file:".
bool is_mist_positions(const std::string& path);
// Any of the three formats: MIST's by its first line, else a
// TileConfiguration as above, else the CSV.
std::vector<Placement> read_positions(const std::string& path);
// A TileConfiguration for NAME.txt, else a CSV.
void write_positions(const std::string& path, const std::vector<Placement>& rows);

struct GridOptions {
    int cols = 0, rows = 0;
    double overlap = 0;         // percent of the tile neighbours share, [0, 100)
    std::string order = "row";  // row, column, snake (rows, every other reversed) or column-snake
    int first_index = -1;       // first {i}, row and column number; -1: 0 if that tile's file exists, else 1
};
// A grid's tiles in acquisition order: tile k of the order is at column c,
// row r, its file the pattern with {i...} = first + k, {r...} = first + r,
// {c...} = first + c; its top-left (c * step_x, r * step_y), step = tile
// size * (1 - overlap / 100), fractional, the tile size the first tile's.
// Errors: a bad pattern or grid (naming it), a missing file (naming the
// pattern, the index and the path expected).
std::vector<Placement> grid_positions(const std::string& pattern, const GridOptions& options,
                                      const OpRegistry& registry);
// The file of the tile numbered `index`, at `row` and `col`, by `pattern`.
std::string grid_file(const std::string& pattern, int index, int row, int col);
// "COLSxROWS" as given to --grid; errors say what is expected.
std::array<int, 2> parse_grid(const std::string& text);

}  // namespace tessera
