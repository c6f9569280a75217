// The position files of tools/include/tessera/positions.hpp: the CSV,
// Fiji's TileConfiguration.txt, and grids named by a file pattern.
//
// TileConfiguration as Fiji's Stitching plugin reads and writes it: the
// "dim = N" line (Fiji writes it, the reader does not insist on the
// spaces), '#' comments, and "name; series; (x, y)", the name taken as is
// (spaces and brackets included), relative to the file's folder; numbers as
// Java prints doubles ("921.0", "1.5E-4"), so any decimal notation is read.
// Fiji writes the registered result as NAME.registered.txt beside the input.
#include "tessera/positions.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tessera/core/error.hpp"
#include "tessera/io/output_target.hpp"
#include "tessera/graphs/graph.hpp"

namespace tessera {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r\n");
    auto e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A finite number in any decimal notation ("12", "-3.25", "1.5E-4", "+7");
// NaN, infinities and anything after the number are refused.
double parse_coord(const std::string& text, const std::string& where) {
    std::string s = trim(text);
    const char* b = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);
    const char* e = s.data() + s.size();
    double v = 0;
    auto [end, ec] = std::from_chars(b, e, v);
    if (s.empty() || ec != std::errc() || end != e || !std::isfinite(v))
        throw Error(where + ": '" + s + "' is not a coordinate (a finite number of pixels, e.g. 921 or 920.75)");
    return v;
}

// Whole values as integers ("921"), others with up to 3 decimals: 1/1000 px
// is far below any registration's accuracy, and whole positions (nominal
// grids, integer stitches) stay byte for byte what they were.
std::string format_coord(double v, bool fiji) {
    char buf[64];
    if (v == std::floor(v) && std::abs(v) < 9e15) {
        std::snprintf(buf, sizeof buf, fiji ? "%.1f" : "%.0f", v == 0 ? 0.0 : v);
        return buf;
    }
    std::snprintf(buf, sizeof buf, "%.3f", v);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s += fiji ? "0" : "";
    if (s.back() == '.') s.pop_back();
    if (s == "-0" || s == "-0.0") s = s.substr(1);
    return s;
}

std::string relative_to(const std::string& file, const fs::path& dir) {
    return fs::path(file).lexically_relative(dir).generic_string();
}

// Writes `text` to `path` whole or not at all (io's OutputTarget).
void write_atomically(const std::string& path, const std::string& text, const std::string& what) {
    write_output_file(path, text, "the " + what);
}

fs::path folder_of(const std::string& path) { return fs::absolute(fs::path(path)).parent_path(); }

}  // namespace

std::vector<Placement> read_positions_csv(const std::string& path) {
    refuse_special_file(path, "a positions file");
    std::ifstream in(path);
    if (!in) throw IoError(path, "cannot open the positions CSV; check the path");
    fs::path dir = folder_of(path);
    std::string line;
    if (!std::getline(in, line) || trim(line) != "file,x,y") throw IoError(path, "line 1 must be the header file,x,y");
    std::vector<Placement> rows;
    for (int n = 2; std::getline(in, line); ++n) {
        if (trim(line).empty()) continue;
        std::stringstream ss(line);
        std::string f, x, y, extra;
        std::getline(ss, f, ',');
        std::getline(ss, x, ',');
        std::getline(ss, y, ',');
        std::string where = path + " line " + std::to_string(n);
        if (std::getline(ss, extra, ',') || trim(f).empty() || trim(y).empty())
            throw Error(where + ": expected three fields file,x,y");
        Placement p;
        p.file = (dir / trim(f)).lexically_normal().string();
        p.at = {parse_coord(x, where), parse_coord(y, where)};
        p.line = n;
        rows.push_back(p);
    }
    if (rows.empty()) throw IoError(path, "lists no tiles");
    return rows;
}

void write_positions_csv(const std::string& path, const std::vector<Placement>& rows) {
    fs::path dir = folder_of(path);
    std::string text = "file,x,y\n";
    for (const Placement& r : rows)
        text +=
            relative_to(r.file, dir) + "," + format_coord(r.at[0], false) + "," + format_coord(r.at[1], false) + "\n";
    write_atomically(path, text, "positions CSV");
}

std::vector<Placement> read_tile_configuration(const std::string& path) {
    refuse_special_file(path, "a positions file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path, "cannot open the TileConfiguration; check the path");
    fs::path dir = folder_of(path);
    std::vector<Placement> rows;
    std::string raw;
    for (int n = 1; std::getline(in, raw); ++n) {
        if (n == 1 && raw.rfind("\xEF\xBB\xBF", 0) == 0) raw = raw.substr(3);  // a BOM from Windows editors
        const std::string line = trim(raw);
        const std::string where = path + " line " + std::to_string(n);
        if (line.empty() || line[0] == '#') continue;
        if (line.rfind("dim", 0) == 0 && line.find(';') == std::string::npos) {
            const auto eq = line.find('=');
            const std::string value = eq == std::string::npos ? "" : trim(line.substr(eq + 1));
            if (trim(line.substr(0, eq)) != "dim" || value.empty()) throw Error(where + ": expected 'dim = 2'");
            if (value != "2")
                throw Error(where + ": dim = " + value +
                            ": only 2-D tile configurations are read (stitch a 3-D stack plane by plane, with a "
                            "2-D TileConfiguration per plane)");
            continue;
        }
        // name; series; (x, y): the coordinates after the last ';', the
        // series between it and the one before, the name before that (so a
        // name may hold anything but the separators of its own line)
        const auto last = line.rfind(';');
        if (last == std::string::npos)
            throw Error(where + ": expected 'file; ; (x, y)' (Fiji's TileConfiguration), got '" + line + "'");
        const auto mid = last == 0 ? std::string::npos : line.rfind(';', last - 1);
        const std::string file = trim(line.substr(0, mid == std::string::npos ? last : mid));
        const std::string series = mid == std::string::npos ? "" : trim(line.substr(mid + 1, last - mid - 1));
        std::string coords = trim(line.substr(last + 1));
        if (file.empty()) throw Error(where + ": the line names no file");
        if (coords.size() < 2 || coords.front() != '(' || coords.back() != ')')
            throw Error(where + ": expected the position as '(x, y)', got '" + coords + "'");
        coords = coords.substr(1, coords.size() - 2);
        std::vector<std::string> v;
        std::stringstream ss(coords);
        for (std::string part; std::getline(ss, part, ',');) v.push_back(part);
        if (v.size() == 3)
            throw Error(where + ": '" + file + "' has 3-D coordinates (" + coords +
                        "); only 2-D tile configurations are read");
        if (v.size() != 2) throw Error(where + ": expected two coordinates (x, y), got '(" + coords + ")'");
        Placement p;
        p.file = (dir / file).lexically_normal().string();
        p.at = {parse_coord(v[0], where), parse_coord(v[1], where)};
        p.line = n;
        if (!series.empty()) {
            int s = -1;
            auto [end, ec] = std::from_chars(series.data(), series.data() + series.size(), s);
            if (ec != std::errc() || end != series.data() + series.size() || s < 0)
                throw Error(where + ": the series field '" + series +
                            "' is not a number (leave it empty for a file "
                            "of one image)");
            p.page = s;
        }
        rows.push_back(p);
    }
    if (rows.empty()) throw IoError(path, "lists no tiles (expected lines 'file; ; (x, y)')");
    return rows;
}

void write_tile_configuration(const std::string& path, const std::vector<Placement>& rows) {
    fs::path dir = folder_of(path);
    std::string text =
        "# Define the number of dimensions we are working on\ndim = 2\n\n# Define the image coordinates\n";
    for (const Placement& r : rows)
        text += relative_to(r.file, dir) + "; " + (r.page > 0 ? std::to_string(r.page) : "") + "; (" +
                format_coord(r.at[0], true) + ", " + format_coord(r.at[1], true) + ")\n";
    write_atomically(path, text, "TileConfiguration");
}

bool is_tile_configuration(const std::string& path) {
    if (fs::path(path).extension() == ".txt") return true;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        line = trim(line);
        if (line.rfind("\xEF\xBB\xBF", 0) == 0) line = trim(line.substr(3));
        if (line.empty() || line[0] == '#') continue;
        return line.rfind("dim", 0) == 0;
    }
    return false;
}

namespace {

// The first line that is neither blank nor a comment, trimmed ("" if none).
std::string first_content_line(const std::string& path) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        line = trim(line);
        if (line.rfind("\xEF\xBB\xBF", 0) == 0) line = trim(line.substr(3));
        if (!line.empty() && line[0] != '#') return line;
    }
    return "";
}

// The value of "key: value" in one of a MIST line's ';'-separated fields.
std::string mist_field(const std::vector<std::string>& fields, const std::string& key, const std::string& where) {
    for (const std::string& f : fields) {
        const std::string t = trim(f);
        if (t.rfind(key + ":", 0) == 0) return trim(t.substr(key.size() + 1));
    }
    throw Error(where + ": no '" + key +
                ":' field (MIST's global positions lines read 'file: NAME; corr: C; "
                "position: (X, Y); grid: (COL, ROW);')");
}

}  // namespace

bool is_mist_positions(const std::string& path) { return first_content_line(path).rfind("file:", 0) == 0; }

std::vector<Placement> read_mist_positions(const std::string& path) {
    refuse_special_file(path, "a positions file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path, "cannot open the MIST positions file; check the path");
    fs::path dir = folder_of(path);
    std::vector<Placement> rows;
    std::string raw;
    for (int n = 1; std::getline(in, raw); ++n) {
        if (n == 1 && raw.rfind("\xEF\xBB\xBF", 0) == 0) raw = raw.substr(3);
        const std::string line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        const std::string where = path + " line " + std::to_string(n);
        std::vector<std::string> fields;
        std::stringstream ss(line);
        for (std::string f; std::getline(ss, f, ';');) fields.push_back(f);
        const std::string file = mist_field(fields, "file", where);
        std::string xy = mist_field(fields, "position", where);
        if (file.empty()) throw Error(where + ": the line names no file");
        if (xy.size() < 2 || xy.front() != '(' || xy.back() != ')')
            throw Error(where + ": expected the position as '(x, y)', got '" + xy + "'");
        xy = xy.substr(1, xy.size() - 2);
        const auto comma = xy.find(',');
        if (comma == std::string::npos || xy.find(',', comma + 1) != std::string::npos)
            throw Error(where + ": expected two coordinates (x, y), got '(" + xy + ")'");
        Placement p;
        p.file = (dir / file).lexically_normal().string();
        p.at = {parse_coord(xy.substr(0, comma), where), parse_coord(xy.substr(comma + 1), where)};
        p.line = n;
        rows.push_back(p);
    }
    if (rows.empty()) throw IoError(path, "lists no tiles (expected lines 'file: NAME; ...; position: (X, Y); ...')");
    return rows;
}

std::vector<Placement> read_positions(const std::string& path) {
    refuse_special_file(path, "a positions file");
    if (is_mist_positions(path)) return read_mist_positions(path);
    return is_tile_configuration(path) ? read_tile_configuration(path) : read_positions_csv(path);
}

void write_positions(const std::string& path, const std::vector<Placement>& rows) {
    if (fs::path(path).extension() == ".txt")
        write_tile_configuration(path, rows);
    else
        write_positions_csv(path, rows);
}

namespace {

// The counters of a pattern: which letters it uses. Throws naming the
// pattern for an unknown letter or an unclosed brace.
struct PatternUse {
    bool i = false, r = false, c = false;
};
PatternUse pattern_use(const std::string& pattern) {
    PatternUse u;
    for (std::size_t k = 0; k < pattern.size(); ++k) {
        if (pattern[k] == '}')
            throw Error("file pattern '" + pattern +
                        "': a '}' without its '{' (braces are the only special characters)");
        if (pattern[k] != '{') continue;
        const auto close = pattern.find('}', k);
        if (close == std::string::npos) throw Error("file pattern '" + pattern + "': a '{' is not closed");
        const std::string f = pattern.substr(k + 1, close - k - 1);
        if (f.empty() || f.find_first_not_of(f[0]) != std::string::npos ||
            std::string("ircxy").find(f[0]) == std::string::npos)
            throw Error("file pattern '" + pattern + "': {" + f +
                        "} is not a counter; use {iii} (acquisition index), {rrr} (row) or {ccc} (column), one letter "
                        "per digit ({yyy} and {xxx}, Fiji's row and column, work too)");
        (f[0] == 'i' ? u.i : f[0] == 'r' || f[0] == 'y' ? u.r : u.c) = true;
        k = close;
    }
    return u;
}

// Column and row of the k-th tile of the acquisition.
std::array<int, 2> grid_cell(const GridOptions& o, int k) {
    if (o.order == "row") return {k % o.cols, k / o.cols};
    if (o.order == "snake") {
        const int r = k / o.cols;
        return {r % 2 ? o.cols - 1 - k % o.cols : k % o.cols, r};
    }
    if (o.order == "column") return {k / o.rows, k % o.rows};
    const int c = k / o.rows;  // column-snake
    return {c, c % 2 ? o.rows - 1 - k % o.rows : k % o.rows};
}

}  // namespace

std::string grid_file(const std::string& pattern, int index, int row, int col) {
    std::string out;
    for (std::size_t k = 0; k < pattern.size(); ++k) {
        const auto close = pattern[k] == '{' ? pattern.find('}', k) : std::string::npos;
        if (close == std::string::npos) {
            out += pattern[k];
            continue;
        }
        const std::size_t digits = close - k - 1;
        const char letter = pattern[k + 1];
        std::string n = std::to_string(letter == 'i' ? index : letter == 'r' || letter == 'y' ? row : col);
        if (n.size() < digits) n.insert(0, digits - n.size(), '0');
        out += n;
        k = close;
    }
    return out;
}

std::array<int, 2> parse_grid(const std::string& text) {
    const auto x = text.find_first_of("xX");
    int v[2] = {0, 0};
    bool ok = x != std::string::npos;
    for (int k = 0; ok && k < 2; ++k) {
        const std::string s = k == 0 ? text.substr(0, x) : text.substr(x + 1);
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v[k]);
        ok = !s.empty() && ec == std::errc() && end == s.data() + s.size() && v[k] >= 1 && v[k] <= 100000;
    }
    if (!ok) throw Error("--grid '" + text + "': expected COLSxROWS, e.g. 4x3 (columns first, each 1 or more)");
    return {v[0], v[1]};
}

std::vector<Placement> grid_positions(const std::string& pattern, const GridOptions& o, const OpRegistry& registry) {
    const PatternUse use = pattern_use(pattern);
    if (o.cols < 1 || o.rows < 1) throw Error("--grid: the grid needs 1 or more columns and rows");
    if (!(o.overlap >= 0 && o.overlap < 100))
        throw Error("--overlap " + std::to_string(o.overlap) + ": a grid's overlap is a percentage in [0, 100)");
    if (o.order != "row" && o.order != "column" && o.order != "snake" && o.order != "column-snake")
        throw Error("--order '" + o.order + "': use row, column, snake or column-snake");
    if (!use.i && !((use.r || o.rows == 1) && (use.c || o.cols == 1)))
        throw Error("file pattern '" + pattern +
                    "' gives every tile the same name; put {iii} (acquisition index) or "
                    "{rrr} and {ccc} (row, column) in it, e.g. 'tile_{iiii}.tif'");
    // Fiji numbers files from 1 by default, MIST and most row/column names
    // from 0: without --first-index, 0 if that first tile is there, else 1.
    int first = o.first_index;
    if (first < 0) first = fs::exists(grid_file(pattern, 0, 0, 0)) ? 0 : 1;
    std::vector<Placement> out;
    const int n = o.cols * o.rows;
    std::array<double, 2> step{0, 0};
    for (int k = 0; k < n; ++k) {
        const auto [c, r] = grid_cell(o, k);
        Placement p;
        p.file = fs::absolute(grid_file(pattern, first + k, first + r, first + c)).lexically_normal().string();
        if (!fs::exists(p.file)) {
            std::string also;
            if (k == 0 && o.first_index < 0)
                also = " (nor the one numbered from 0: " + grid_file(pattern, 0, 0, 0) + ")";
            throw IoError(p.file, "file pattern '" + pattern + "': tile " + std::to_string(k) + " of the " + o.order +
                                      " order (index " + std::to_string(first + k) + ", row " +
                                      std::to_string(first + r) + ", column " + std::to_string(first + c) +
                                      ") is missing" + also + "; check the pattern, --grid, --order and --first-index");
        }
        if (k == 0) {
            Graph g(registry);
            const ImageInfo& info = g.info(g.add("load", {}, {{"path", p.file}}));
            step = {info.width * (1 - o.overlap / 100), info.height * (1 - o.overlap / 100)};
        }
        p.at = {c * step[0], r * step[1]};
        out.push_back(p);
    }
    return out;
}

}  // namespace tessera
