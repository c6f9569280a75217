#include "tessera/view.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/io/output_target.hpp"
#include "tessera/io/unzip.hpp"
#include "markup.hpp"

namespace tessera {

namespace fs = std::filesystem;

namespace {

// An element of the descriptor: its name, attributes in order, children.
struct XmlElement {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;
    std::vector<XmlElement> children;
    int line = 0;

    const std::string* attribute(const std::string& key) const {
        for (const auto& [k, v] : attributes)
            if (k == key) return &v;
        return nullptr;
    }
};

// A strict reader of the XML a Deep Zoom descriptor is written in (see the
// header): a document is [BOM] [<?xml ...?>] misc* element misc*, misc
// being white space, comments and processing instructions. Whatever falls
// outside that subset is an error naming the file and line, so a file that
// is not a descriptor is never read as one by accident.
class XmlReader {
public:
    XmlReader(const std::string& text, const std::string& file) : s_(text), file_(file) {}

    XmlElement document() {
        if (s_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
        skip_misc();
        if (starts("<!DOCTYPE")) fail("a DOCTYPE is not part of a Deep Zoom descriptor");
        if (!starts("<") || pos_ + 1 >= s_.size() || !name_start(s_[pos_ + 1]))
            fail("expected an XML element, found " + found());
        XmlElement root = element(0);
        skip_misc();
        if (pos_ != s_.size()) fail("expected the end of the file after </" + root.name + ">, found " + found());
        return root;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw IoError(file_, "is not a Deep Zoom descriptor: line " + std::to_string(line()) + ": " + what);
    }
    int line() const { return 1 + int(std::count(s_.begin(), s_.begin() + std::ptrdiff_t(pos_), '\n')); }
    bool starts(const char* t) const { return s_.compare(pos_, std::char_traits<char>::length(t), t) == 0; }
    std::string found() const {
        if (pos_ >= s_.size()) return "the end of the file";
        std::string near = s_.substr(pos_, 12);
        near = near.substr(0, near.find('\n'));
        return "'" + near + "'";
    }
    static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
    static bool name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':'; }
    static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

    void skip_space() {
        while (pos_ < s_.size() && space(s_[pos_])) ++pos_;
    }
    // Past `end`, which must come before the end of the file.
    void skip_past(const char* end, const char* what) {
        const std::size_t at = s_.find(end, pos_);
        if (at == std::string::npos) fail(std::string("unterminated ") + what);
        pos_ = at + std::char_traits<char>::length(end);
    }
    // White space, comments and processing instructions (the declaration).
    void skip_misc() {
        for (;;) {
            skip_space();
            if (starts("<!--"))
                skip_past("-->", "comment");
            else if (starts("<?"))
                skip_past("?>", "processing instruction");
            else
                return;
        }
    }
    std::string name() {
        if (pos_ >= s_.size() || !name_start(s_[pos_])) fail("expected a name, found " + found());
        const std::size_t from = pos_;
        while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
        return s_.substr(from, pos_ - from);
    }
    // One of the five predefined entities or a character reference (ASCII:
    // nothing in a descriptor needs more), after its '&'.
    char entity() {
        const std::size_t end = s_.find(';', pos_);
        if (end == std::string::npos || end - pos_ > 8) fail("an '&' that starts no entity");
        const std::string e = s_.substr(pos_, end - pos_);
        pos_ = end + 1;
        static const std::pair<const char*, char> named[] = {
            {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
        for (const auto& [n, c] : named)
            if (e == n) return c;
        if (e.size() > 1 && e[0] == '#') {
            const bool hex = e[1] == 'x';
            const std::string digits = e.substr(hex ? 2 : 1);
            char* stop = nullptr;
            const long v = digits.empty() ? -1 : std::strtol(digits.c_str(), &stop, hex ? 16 : 10);
            if (stop && *stop == '\0' && v > 0 && v < 128) return char(v);
        }
        fail("the entity '&" + e + ";' is not one a Deep Zoom descriptor uses");
    }
    std::string attribute_value() {
        if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
            fail("expected a quoted value, found " + found());
        const char quote = s_[pos_++];
        std::string v;
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated attribute value");
            const char c = s_[pos_++];
            if (c == quote) return v;
            if (c == '<') fail("a '<' inside an attribute value");
            v += c == '&' ? entity() : c;
        }
    }
    // An element at '<', with its attributes and children; `depth` bounds
    // the nesting (a descriptor is two deep) so no file can exhaust the stack.
    XmlElement element(int depth) {
        if (depth > 8) fail("elements nested more than 8 deep");
        XmlElement e;
        e.line = line();
        ++pos_;  // '<'
        e.name = name();
        for (;;) {
            const std::size_t before = pos_;
            skip_space();
            if (starts("/>")) {
                pos_ += 2;
                return e;
            }
            if (starts(">")) {
                ++pos_;
                break;
            }
            if (pos_ == before) fail("expected an attribute, '>' or '/>' in <" + e.name + ">, found " + found());
            std::string key = name();
            skip_space();
            if (!starts("=")) fail("attribute " + key + " of <" + e.name + "> has no '='");
            ++pos_;
            skip_space();
            if (e.attribute(key)) fail("<" + e.name + "> has the attribute " + key + " twice");
            e.attributes.emplace_back(key, attribute_value());
        }
        for (;;) {
            skip_misc();
            if (pos_ >= s_.size()) fail("<" + e.name + "> (line " + std::to_string(e.line) + ") is never closed");
            if (starts("</")) {
                pos_ += 2;
                const std::string end = name();
                if (end != e.name) fail("</" + end + "> closes <" + e.name + "> (line " + std::to_string(e.line) + ")");
                skip_space();
                if (!starts(">")) fail("expected '>' after </" + end + ", found " + found());
                ++pos_;
                return e;
            }
            if (starts("<![CDATA[") || !starts("<")) fail("text inside <" + e.name + ">, found " + found());
            e.children.push_back(element(depth + 1));
        }
    }

    const std::string& s_;
    const std::string& file_;
    std::size_t pos_ = 0;
};

// Text inside a JavaScript string (or comment) in a <script>, where HTML
// entities are not decoded: quotes, backslashes and line breaks escaped as
// JavaScript reads them, and '<' as \x3c so no "</script>" can end the
// script early.
std::string js_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '"': out += "\\\""; break;
            case '\'': out += "\\'"; break;
            case '<': out += "\\x3c"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char hex[8];
                    std::snprintf(hex, sizeof hex, "\\x%02x", unsigned(c));
                    out += hex;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

}  // namespace

DeepZoomImage read_dzi(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in || fs::is_directory(path)) throw IoError(path, "cannot be read; give the .dzi a Deep Zoom save wrote");
    // a descriptor is a few hundred bytes (a sparse image's DisplayRects
    // some more): a file of megabytes is something else
    constexpr std::size_t kMax = 1 << 20;
    std::string xml(kMax + 1, '\0');
    in.read(xml.data(), std::streamsize(xml.size()));
    xml.resize(std::size_t(in.gcount()));
    if (xml.size() > kMax) throw IoError(path, "is not a Deep Zoom descriptor: it is larger than 1 MiB");
    const XmlElement root = XmlReader(xml, path).document();

    const std::string* ns = root.attribute("xmlns");
    if (root.name != "Image" || !ns ||
        (*ns != "http://schemas.microsoft.com/deepzoom/2008" && *ns != "http://schemas.microsoft.com/deepzoom/2009"))
        throw IoError(path, "is not a Deep Zoom descriptor: its root element is <" + root.name +
                                (ns ? " xmlns=\"" + *ns + "\"" : std::string()) +
                                ">, not <Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\">");
    const XmlElement* size = nullptr;
    for (const XmlElement& c : root.children)
        if (c.name == "Size") {
            if (size) throw IoError(path, "is not a Deep Zoom descriptor: it has two Size elements");
            size = &c;
        }
    auto attr = [&](const XmlElement* e, const std::string& key) {
        const std::string* v = e ? e->attribute(key) : nullptr;
        if (!v) throw IoError(path, "is not a Deep Zoom descriptor: it has no " + key + " attribute");
        return *v;
    };
    // whole numbers, at most 2^53 (nothing larger is a size), digits only
    auto whole = [&](const std::string& v, std::int64_t least) {
        if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos ||
            std::stoll(v) < least)
            throw IoError(path, "has a size or tile field that is not a whole number ('" + v + "')");
        return std::stoll(v);
    };
    DeepZoomImage d;
    d.xmlns = *ns;
    d.format = attr(&root, "Format");
    d.overlap = whole(attr(&root, "Overlap"), 0);
    d.tile_size = whole(attr(&root, "TileSize"), 1);
    d.width = whole(attr(size, "Width"), 1);
    d.height = whole(attr(size, "Height"), 1);
    // written into the page's script: a word, nothing else
    if (d.format.empty() || d.format.find_first_not_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos)
        throw IoError(path, "names the tile format '" + d.format + "', which is not jpeg, png or webp");
    return d;
}

fs::path find_openseadragon() {
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("TESSERA_OPENSEADRAGON_DIR")) candidates.emplace_back(env);
    candidates.emplace_back(TESSERA_OPENSEADRAGON_BUILD_DIR);
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path().parent_path() / TESSERA_OPENSEADRAGON_INSTALL_DIR);
    for (const fs::path& c : candidates)
        if (fs::exists(c / "openseadragon.min.js", ec)) return c;
    std::string why;
    std::ifstream missing(fs::path(TESSERA_OPENSEADRAGON_BUILD_DIR) / "MISSING.txt");
    std::getline(missing, why);
    throw Error("tessera view needs OpenSeadragon, which this build does not have" +
                (why.empty() ? std::string() : " (" + why + ")") +
                "; or set TESSERA_OPENSEADRAGON_DIR to a folder holding openseadragon.min.js and images/");
}

namespace {

std::string lower_ext(const fs::path& p) {
    std::string e = p.extension().string();
    for (char& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
    return e;
}

std::string slurp_small(const fs::path& file, const char* what) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw IoError(file.string(), std::string("cannot be read; give the ") + what + " a pyramid save wrote");
    constexpr std::size_t kMax = 1 << 20;  // a descriptor is a few hundred bytes
    std::string text(kMax + 1, '\0');
    in.read(text.data(), std::streamsize(text.size()));
    text.resize(std::size_t(in.gcount()));
    if (text.size() > kMax) throw IoError(file.string(), std::string("is not a ") + what + ": it is larger than 1 MiB");
    return text;
}

// The side of a PNG's image (IHDR, right after the signature): a google
// pyramid's tile size, from its blank.png.
int png_width(const fs::path& file) {
    const std::string b = slurp_small(file, "blank.png");
    if (b.size() < 24 || b.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || b.compare(12, 4, "IHDR") != 0)
        throw IoError(file.string(), "is not a PNG; a google pyramid's blank.png is its background tile");
    const auto* u = reinterpret_cast<const unsigned char*>(b.data()) + 16;
    return int((std::uint32_t(u[0]) << 24) | (std::uint32_t(u[1]) << 16) | (std::uint32_t(u[2]) << 8) | u[3]);
}

// What OpenSeadragon is given, as a JavaScript expression, for the pyramid
// at `root` (a .dzi, or a google or IIIF folder), its tiles at `url`
// (relative to the page).
std::string tile_source(const fs::path& root, const std::string& url) {
    auto num = [](std::int64_t v) { return std::to_string(v); };
    if (!fs::is_directory(root)) {
        const DeepZoomImage d = read_dzi(root.string());
        return "{Image: {xmlns: \"" + d.xmlns + "\", Url: \"" + js_escape(url) + "\",\n    Format: \"" + d.format +
               "\", Overlap: \"" + num(d.overlap) + "\", TileSize: \"" + num(d.tile_size) +
               "\",\n    Size: {Width: \"" + num(d.width) + "\", Height: \"" + num(d.height) + "\"}}}";
    }
    if (fs::exists(root / "info.json")) {
        // IIIF level 0: its info.json as written, parsed by the page (so a
        // file that is not JSON is an error there, never script), with its
        // id (where vips dzsave and tessera name the server the tiles will
        // be on, https://example.com/iiif/NAME by default) pointed at the
        // tiles beside the page
        const std::string json = slurp_small(root / "info.json", "IIIF info.json");
        if (json.find("http://iiif.io/api/image") == std::string::npos)
            throw IoError((root / "info.json").string(), "is not a IIIF image's info.json (no IIIF context in it)");
        return "(function () {\n    var info = JSON.parse(\"" + js_escape(json) + "\");\n    info[\"@id\"] = \"" +
               js_escape(url.substr(0, url.size() - 1)) +
               "\";\n    if (\"id\" in info) info.id = info[\"@id\"];\n    return info;\n  })()";
    }
    if (fs::exists(root / "blank.png")) {
        // google: Z/Y/X tiles; level z is 2^z tiles square, so the whole is
        // the tile size times 2^(deepest z), and OpenSeadragon's levels are
        // the z's (maxLevel pinned). Skipped blank tiles are simply absent.
        const int T = png_width(root / "blank.png");
        int top = -1;
        std::string ext;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root, ec)) {
            const std::string n = e.path().filename().string();
            if (!e.is_directory() || n.empty() || n.size() > 2 ||
                n.find_first_not_of("0123456789") != std::string::npos)
                continue;
            top = std::max(top, std::stoi(n));
            if (ext.empty())
                for (const auto& f : fs::recursive_directory_iterator(e.path(), ec))
                    if (f.is_regular_file()) {
                        ext = f.path().extension().string();
                        break;
                    }
        }
        if (top < 0 || ext.empty() || T < 1 || T > 8192 ||
            ext.find_first_not_of(".abcdefghijklmnopqrstuvwxyz") != std::string::npos)
            throw IoError(root.string(), "is not a google pyramid: no Z/Y/X.EXT tiles beside blank.png");
        const std::int64_t side = std::int64_t(T) << top;
        return "{width: " + num(side) + ", height: " + num(side) + ", tileSize: " + num(T) +
               ", tileOverlap: 0, minLevel: 0, maxLevel: " + num(top) +
               ",\n    getTileUrl: function (z, x, y) { return \"" + js_escape(url) +
               "\" + z + \"/\" + y + \"/\" + x + \"" + ext + "\"; }}";
    }
    throw IoError(root.string(), "is not a pyramid: give a .dzi, a .zip or .szi, or a google or IIIF folder (with "
                                 "blank.png or info.json)");
}

// The pyramid inside an unpacked archive: NAME/NAME.dzi, or the folder NAME/
// (google, IIIF), as a Deep Zoom save (and vips dzsave) zips them.
fs::path pyramid_in(const fs::path& unpacked, const std::string& archive) {
    std::error_code ec;
    for (const auto& top : fs::directory_iterator(unpacked, ec)) {
        if (!top.is_directory()) continue;
        for (const auto& e : fs::directory_iterator(top.path(), ec))
            if (e.is_regular_file() && lower_ext(e.path()) == ".dzi") return e.path();
        if (fs::exists(top.path() / "info.json") || fs::exists(top.path() / "blank.png")) return top.path();
    }
    throw IoError(archive, "holds no pyramid: no NAME/NAME.dzi, NAME/info.json or NAME/blank.png in it");
}

}  // namespace

std::string write_view_page(const std::string& input, const ViewOptions& options) {
    fs::path src = fs::path(input).lexically_normal();
    if (src.filename().empty()) src = src.parent_path();  // a folder given as NAME/
    if (src.filename() == "info.json") src = src.parent_path();
    const std::string ext = lower_ext(src);
    const bool zipped = ext == ".zip" || ext == ".szi";
    const bool folder = fs::is_directory(src);
    if (!zipped && !folder) read_dzi(src.string());  // a file that is not a .dzi is refused first, saying why
    const std::string stem = folder ? src.filename().string() : src.stem().string();
    const std::string out = options.output.empty() ? (src.parent_path() / (stem + ".html")).string() : options.output;
    fs::path page(out);
    fs::path page_dir = page.parent_path().empty() ? fs::path(".") : page.parent_path();
    const fs::path osd = options.openseadragon.empty() ? find_openseadragon() : fs::path(options.openseadragon);
    if (!fs::exists(osd / "openseadragon.min.js"))
        throw IoError(osd.string(), "holds no openseadragon.min.js; give the folder of an OpenSeadragon release");

    // A browser cannot read tiles inside an archive: a zipped pyramid is
    // unpacked beside the page first, into NAME_unzipped/ (replaced whole,
    // through a temporary folder).
    fs::path root = src;
    if (zipped) {
        const std::string folder = stem + "_unzipped";
        OutputTarget t((page_dir / folder).string(), OutputTarget::Kind::folder);
        fs::create_directories(fs::path(t.temp()) / folder);
        unzip_to(src.string(), (fs::path(t.temp()) / folder).string());
        pyramid_in(fs::path(t.temp()) / folder, input);  // refused before anything is replaced
        t.commit({folder});
        root = pyramid_in(page_dir / folder, input);
    }
    // the tiles' folder: NAME_files beside a .dzi, else the folder itself
    fs::path tiles = root;
    if (!fs::is_directory(root)) {
        tiles = root.parent_path() / (root.stem().string() + "_files");
        if (!fs::is_directory(tiles))
            throw IoError(root.string(), "has no tile folder '" + tiles.string() + "' beside it");
    }
    const std::string url = fs::relative(fs::absolute(tiles), fs::absolute(page_dir)).generic_string() + "/";
    const std::string source = tile_source(root, url);

    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + xml_escape(stem) +
        "</title>\n<style>html, body { margin: 0; height: 100%; background: #202020; } "
        "#view { width: 100%; height: 100%; }</style>\n"
        "<script src=\"openseadragon/openseadragon.min.js\"></script>\n</head>\n<body>\n"
        "<div id=\"view\"></div>\n<script>\n"
        "// written by tessera view from " +
        js_escape(src.filename().string()) +
        "\n"
        "OpenSeadragon({\n  id: \"view\",\n  prefixUrl: \"openseadragon/images/\",\n  showNavigator: true,\n"
        "  tileSources: " +
        source + "\n});\n</script>\n</body>\n</html>\n";

    // OpenSeadragon beside the page, then the page (under a temporary name,
    // renamed when complete)
    std::error_code ec;
    fs::create_directories(page_dir / "openseadragon", ec);
    fs::copy(osd, page_dir / "openseadragon", fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(out, "cannot copy OpenSeadragon beside it: " + ec.message());
    write_output_file(page.string(), html, "the page");
    return out;
}

}  // namespace tessera
