// The viewer page from C++ (tessera/view.hpp): the .dzi read as the XML it
// is, strictly, and the page written from its fields. (viewer_test loads
// the CLI's page in a browser.)
#include <doctest/doctest.h>

#include <fstream>

#include "support.hpp"
#include "tessera/tessera.hpp"
#include "tessera/view.hpp"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

// A 300x200 .dzi written by tessera's save, png tiles of 128 without overlap.
fs::path tessera_dzi(const tt::TempDir& tmp) {
    Graph g(standard_registry());
    NodeId im =
        g.add("black", {}, {{"width", std::int64_t(300)}, {"height", std::int64_t(200)}, {"bands", std::int64_t(3)}});
    g.add("save", {im},
          {{"path", (tmp / "slide.dzi").string()},
           {"tile_size", std::int64_t(128)},
           {"overlap", std::int64_t(0)},
           {"suffix", std::string("png")}});
    Evaluator(g).run_sinks();
    return tmp / "slide.dzi";
}

// `text` as a .dzi; the error reading it.
std::string error_reading(const tt::TempDir& tmp, const std::string& text) {
    std::ofstream(tmp / "bad.dzi", std::ios::binary) << text;
    return tt::error_of([&] { read_dzi((tmp / "bad.dzi").string()); });
}

const std::string kHead = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const std::string kImage = "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"";

// Options naming the page (empty: the default) and the OpenSeadragon folder.
ViewOptions view_options(const std::string& page, const fs::path& osd) {
    ViewOptions o;
    o.output = page;
    o.openseadragon = osd.string();
    return o;
}

}  // namespace

TEST_CASE("view: read_dzi reads what libvips dzsave and tessera's save write") {
    tt::TempDir tmp;
    tt::pattern(300, 200).dzsave((tmp / "vips").c_str());
    DeepZoomImage v = read_dzi((tmp / "vips.dzi").string());
    CHECK(v.xmlns == "http://schemas.microsoft.com/deepzoom/2008");
    CHECK(v.format == "jpeg");
    CHECK(v.overlap == 1);
    CHECK(v.tile_size == 254);
    CHECK(v.width == 300);
    CHECK(v.height == 200);
    DeepZoomImage t = read_dzi(tessera_dzi(tmp).string());
    CHECK(t.format == "png");
    CHECK(t.overlap == 0);
    CHECK(t.tile_size == 128);
    CHECK(t.width == 300);
    CHECK(t.height == 200);
    // XML as XML: either quote, any order, comments, references, no declaration, a BOM
    std::ofstream(tmp / "x.dzi")
        << "\xEF\xBB\xBF<!-- made by hand -->\n<Image TileSize='512' Format=\"&#x6a;p&#101;g\" "
           "Overlap = \"2\" xmlns='http://schemas.microsoft.com/deepzoom/2009'><!-- size -->"
           "<Size Width=\"70000\" Height=\"9\"></Size></Image>\n";
    DeepZoomImage x = read_dzi((tmp / "x.dzi").string());
    CHECK(x.format == "jpeg");
    CHECK(x.overlap == 2);
    CHECK(x.tile_size == 512);
    CHECK(x.width == 70000);
    CHECK(x.height == 9);
    CHECK(x.xmlns == "http://schemas.microsoft.com/deepzoom/2009");
}

TEST_CASE("view: write_view_page writes the descriptor's fields and copies OpenSeadragon beside the page") {
    tt::TempDir tmp;
    const fs::path dzi = tessera_dzi(tmp);
    // a stand-in OpenSeadragon: what is copied is what the folder holds
    fs::create_directories(tmp / "osd" / "images");
    std::ofstream(tmp / "osd" / "openseadragon.min.js") << "/* osd */";
    std::ofstream(tmp / "osd" / "images" / "home.png") << "png";
    fs::create_directories(tmp / "pages");
    const std::string page =
        write_view_page(dzi.string(), view_options((tmp / "pages" / "p.html").string(), tmp / "osd"));
    CHECK(page == (tmp / "pages" / "p.html").string());
    const std::string html = tt::slurp(page);
    CHECK(html.find("Url: \"../slide_files/\"") != std::string::npos);
    CHECK(html.find("Format: \"png\", Overlap: \"0\", TileSize: \"128\"") != std::string::npos);
    CHECK(html.find("Size: {Width: \"300\", Height: \"200\"}") != std::string::npos);
    CHECK(html.find("xmlns: \"http://schemas.microsoft.com/deepzoom/2008\"") != std::string::npos);
    CHECK(tt::slurp(tmp / "pages" / "openseadragon" / "openseadragon.min.js") == "/* osd */");
    CHECK(tt::slurp(tmp / "pages" / "openseadragon" / "images" / "home.png") == "png");
    // the page and OpenSeadragon, no temporary left
    CHECK(std::distance(fs::directory_iterator(tmp / "pages"), fs::directory_iterator()) == 2);
    // by default NAME.html beside NAME.dzi
    CHECK(write_view_page(dzi.string(), view_options("", tmp / "osd")) == (tmp / "slide.html").string());
    CHECK(tt::slurp(tmp / "slide.html").find("Url: \"slide_files/\"") != std::string::npos);
    // a name that is markup or script: escaped as the title's HTML and the
    // script's JavaScript (where entities are not decoded)
    fs::create_directories(tmp / "odd");
    fs::copy_file(dzi, tmp / "odd" / "it's <b>&\".dzi");
    fs::create_directories(tmp / "odd" / "it's <b>&\"_files");
    const std::string odd =
        tt::slurp(write_view_page((tmp / "odd" / "it's <b>&\".dzi").string(), view_options("", tmp / "osd")));
    CHECK(odd.find("<title>it&apos;s &lt;b&gt;&amp;&quot;</title>") != std::string::npos);
    CHECK(odd.find("Url: \"it\\'s \\x3cb>&\\\"_files/\"") != std::string::npos);
    CHECK(odd.find("<b>") == std::string::npos);
    // no OpenSeadragon there, no tiles beside the .dzi
    fs::create_directories(tmp / "empty");
    std::string why = tt::error_of([&] { write_view_page(dzi.string(), view_options("", tmp / "empty")); });
    CHECK(why.find((tmp / "empty").string()) != std::string::npos);
    CHECK(why.find("openseadragon.min.js") != std::string::npos);
    fs::copy_file(dzi, tmp / "empty" / "alone.dzi");
    why = tt::error_of([&] { write_view_page((tmp / "empty" / "alone.dzi").string(), view_options("", tmp / "osd")); });
    CHECK(why.find("alone.dzi") != std::string::npos);
    CHECK(why.find("has no tile folder") != std::string::npos);
}

TEST_CASE("view: a descriptor that is not Deep Zoom XML is refused naming the file and line") {
    tt::TempDir tmp;
    const std::string size = "\n  <Size Width=\"300\" Height=\"200\"/>\n</Image>\n";
    const std::string attrs = "\n  Format=\"jpeg\"\n  Overlap=\"1\"\n  TileSize=\"254\"\n  >";
    const std::pair<std::string, std::string> cases[] = {
        {"file,x,y\ntiles/a.jpg,0,0\n", "is not a Deep Zoom descriptor: line 1: expected an XML element"},
        {kHead + kImage + attrs + "\n  <Size Width=\"300\" Height=\"200\"/>\n",
         "line 8: <Image> (line 2) is never closed"},
        {kHead + kImage + attrs + "\n  <Size Width=\"300\" Height=\"200\">\n</Image>\n",
         "line 8: </Image> closes <Size> (line 7)"},
        {kHead + kImage + "\n  Format=\"jpeg\"\n  Overlap=\"1\"\n  >" + size, "it has no TileSize attribute"},
        {kHead + kImage + attrs + "\n  <Size Height=\"200\"/>\n</Image>\n", "it has no Width attribute"},
        {kHead + kImage + "\n  Format=\"jpeg\"\n  Overlap=\"1\"\n  TileSize=\"25x\"\n  >" + size,
         "has a size or tile field that is not a whole number ('25x')"},
        {kHead + kImage + attrs + "\n  <Size Width=\"-300\" Height=\"200\"/>\n</Image>\n",
         "not a whole number ('-300')"},
        {kHead + kImage + "\n  Format=\"../../x\"\n  Overlap=\"1\"\n  TileSize=\"254\"\n  >" + size,
         "names the tile format '../../x'"},
        {kHead + "<Collection xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"/>\n",
         "its root element is <Collection"},
        {kHead + "<Image Format=\"jpeg\" Overlap=\"1\" TileSize=\"254\">" + size, "its root element is <Image>, not"},
        {kHead + kImage + "\n  Format=\"jpeg\"\n  Format=\"png\"" + attrs + size,
         "line 4: <Image> has the attribute Format twice"},
        {kHead + "<!DOCTYPE Image [<!ENTITY a \"b\">]>\n" + kImage + attrs + size, "line 2: a DOCTYPE"},
        {kHead + kImage + attrs + "\n  tiles here" + size, "line 7: text inside <Image>"},
        {kHead + kImage + "\n  Format=\"jp&eg;\"" + attrs + size, "line 3: the entity '&eg;'"},
        {kHead + kImage + "\n  Format=\"jpeg" + size, "a '<' inside an attribute value"},
        {kHead + kImage + attrs + size + "<Image/>\n", "expected the end of the file after </Image>"},
        {kHead + kImage + attrs + size + size, "expected the end of the file"},
    };
    for (const auto& [text, want] : cases) {
        const std::string why = error_reading(tmp, text);
        CAPTURE(text);
        CAPTURE(why);
        CHECK(why.find((tmp / "bad.dzi").string()) != std::string::npos);
        CHECK(why.find(want) != std::string::npos);
    }
    // deep nesting is refused, not recursed into
    std::string deep = kImage + ">";
    for (int i = 0; i < 20; ++i) deep += "<a>";
    CHECK(error_reading(tmp, deep).find("nested more than 8 deep") != std::string::npos);
    CHECK(tt::error_of([&] { read_dzi((tmp / "none.dzi").string()); }).find("none.dzi': cannot be read") !=
          std::string::npos);
}
