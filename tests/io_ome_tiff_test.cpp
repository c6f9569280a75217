// OME-TIFF pyramids (io/ome_tiff.cpp, tiff_pyramid.cpp's OME mode), checked
// by readers nobody here wrote: python3-tifffile (Debian's) must see one
// series with the right shape, dtype, channels, levels and physical size and
// the input's pixels at level 0 (level 1 the 2x2 mean, as libvips' shrink
// computes it); libvips' tiffload reads every level through subifd; tiffinfo
// lists a main IFD per channel with its SubIFDs; and xmllint validates the
// OME-XML against the OME 2016-06 schema (../shared/data/schemas).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support.hpp"

using namespace tessera;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// tifffile's view of an OME-TIFF, as key -> value lines; level0/level1
// compare its first two levels, as (Y, X, C), with raw files of the
// expected samples (not for JPEG, zstd and LZW, which Debian's tifffile decodes
// only with imagecodecs, not packaged); the OME-XML is written to `xml`.
const char* kTifffileScript = R"PY(
import sys, numpy as np, tifffile, xml.etree.ElementTree as ET
path, raw0, raw1, xml = sys.argv[1:5]
with tifffile.TiffFile(path) as t:
    print("series=%d" % len(t.series))
    print("is_ome=%s" % t.is_ome)
    print("bigtiff=%s" % t.is_bigtiff)
    s = t.series[0]
    print("axes=%s" % s.axes)
    print("shape=%s" % "x".join(map(str, s.shape)))
    print("dtype=%s" % s.dtype)
    print("levels=%d" % len(s.levels))
    print("level_shapes=%s" % ";".join("x".join(map(str, l.shape)) for l in s.levels))
    open(xml, "w").write(t.pages[0].description)
    root = ET.fromstring(t.ome_metadata)
    ns = {"o": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}
    px = root.find(".//o:Pixels", ns)
    print("physical=%s,%s %s" % (px.get("PhysicalSizeX"), px.get("PhysicalSizeY"), px.get("PhysicalSizeXUnit")))
    print("channels=%s" % ",".join(c.get("Name") for c in px.findall("o:Channel", ns)))
    d = root.find(".//o:Description", ns)
    print("description=%s" % (d.text if d is not None else ""))
    def yxc(a):
        if s.axes == "CYX": return a.transpose(1, 2, 0)
        if s.axes == "YX": return a[..., None]
        return a
    for k, raw in ((0, raw0), (1, raw1)) if raw0 != "-" else ():
        got = yxc(s.levels[k].asarray())
        want = np.fromfile(raw, dtype=got.dtype).reshape(got.shape)
        print("level%d_equal=%s" % (k, np.array_equal(got, want)))
)PY";

std::map<std::string, std::string> tifffile_view(const tt::TempDir& dir, const fs::path& file,
                                                 const VImage* level0 = nullptr, const VImage* level1 = nullptr) {
    std::ofstream(dir / "view.py") << kTifffileScript;
    if (level0) {
        level0->rawsave((dir / "l0.raw").c_str());
        level1->rawsave((dir / "l1.raw").c_str());
    }
    std::string out;
    const int rc = tt::run_command("/usr/bin/python3 " + (dir / "view.py").string() + " " + file.string() + " " +
                                       (level0 ? (dir / "l0.raw").string() + " " + (dir / "l1.raw").string()
                                               : std::string("- -")) +
                                       " " + (dir / "ome.xml").string(),
                                   &out);
    INFO(out);
    REQUIRE(rc == 0);
    std::map<std::string, std::string> m;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        if (auto eq = line.find('='); eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    return m;
}

// The next level of a pyramid, as vips_tiffsave's pyramid makes it (libvips'
// region shrink, VIPS_REGION_SHRINK_MEAN): each 2x2 of the even part, in
// one pass, integers (a + b + c + d + 2) / 4 rounded down, floats sum / 4.
VImage half(const VImage& im) {
    const int w = im.width() / 2, h = im.height() / 2;
    const VImage padded = im.embed(0, 0, 2 * w + 1, 2 * h + 1);
    auto q = [&](int dx, int dy) { return padded.crop(dx, dy, 2 * w, 2 * h).subsample(2, 2).cast(VIPS_FORMAT_DOUBLE); };
    const VImage sum = q(0, 0) + q(1, 0) + q(0, 1) + q(1, 1);
    return (im.format() == VIPS_FORMAT_FLOAT ? sum / 4 : ((sum + 2) / 4).floor()).cast(im.format());
}

void check_schema(const tt::TempDir& dir) {
    const fs::path xsd = tt::shared_dir() / "data" / "schemas" / "ome-2016-06" / "ome.xsd";
    std::string out;
    const int rc =
        tt::run_command("xmllint --noout --nonet --schema " + xsd.string() + " " + (dir / "ome.xml").string(), &out);
    INFO(out);
    CHECK(rc == 0);
    CHECK(has(out, "validates"));
}

NodeId save_ome(Graph& g, NodeId in, const fs::path& out, Params p) {
    p.set("path", out.string());
    p.set("tile_width", std::int64_t(64));
    p.set("tile_height", std::int64_t(64));
    return g.add("save", {in}, p);
}

}  // namespace

TEST_CASE("ome-tiff: tifffile sees one planar series with its channels levels and pixel size") {
    tt::TempDir dir;
    const VImage im = (tt::pattern(300, 200, 3, VIPS_FORMAT_UCHAR, 2) * 257).cast(VIPS_FORMAT_USHORT);
    Graph g(standard_registry());
    const NodeId in = tt::load_image(g, dir, im);
    const fs::path out = dir / "slide.ome.tif";
    save_ome(g, in, out,
             {{"compression", std::string("deflate")},
              {"predictor", true},
              {"channel_names", std::vector<std::string>{"DAPI", "GFP", "Cy5"}},
              {"pixel_size", std::string("0.5,0.25 um")}});
    Evaluator(g).run_sinks();
    const VImage im1 = half(im);
    auto v = tifffile_view(dir, out, &im, &im1);
    CHECK(v["series"] == "1");
    CHECK(v["is_ome"] == "True");
    CHECK(v["axes"] == "CYX");
    CHECK(v["shape"] == "3x200x300");
    CHECK(v["dtype"] == "uint16");
    // 300x200, 150x100, 75x50, 37x25 (one 64-pixel tile)
    CHECK(v["levels"] == "4");
    CHECK(v["level_shapes"] == "3x200x300;3x100x150;3x50x75;3x25x37");
    CHECK(v["physical"] == "0.5,0.25 µm");
    CHECK(v["channels"] == "DAPI,GFP,Cy5");
    CHECK(v["level0_equal"] == "True");
    CHECK(v["level1_equal"] == "True");
    check_schema(dir);
    // libvips reads every level of every channel through subifd
    const int sizes[][2] = {{300, 200}, {150, 100}, {75, 50}, {37, 25}};
    for (int c = 0; c < 3; ++c)
        for (int L = 0; L < 4; ++L) {
            CAPTURE(c);
            CAPTURE(L);
            VImage lv = VImage::tiffload(out.c_str(), VImage::option()->set("page", c)->set("subifd", L - 1));
            CHECK(lv.width() == sizes[L][0]);
            CHECK(lv.height() == sizes[L][1]);
            CHECK(lv.bands() == 1);
            if (L == 0) CHECK(lv.subtract(im[c]).abs().max() == 0);
            if (L == 1) CHECK(lv.subtract(im1[c]).abs().max() == 0);
        }
    // tiffinfo: a main IFD per channel, each with its three SubIFDs (which
    // it lists too), the reduced levels NewSubfileType 1
    std::string info;
    REQUIRE(tt::run_command("tiffinfo " + out.string(), &info) == 0);
    auto count = [&](const std::string& what) {
        std::size_t n = 0;
        for (std::size_t at = 0; (at = info.find(what, at)) != std::string::npos; ++at) ++n;
        return n;
    };
    CHECK(count("TIFF Directory at offset") == 12);
    CHECK(count("SubIFD Offsets:") == 3);
    CHECK(count("with array of 3 SubIFD chains") == 3);
    CHECK(count("Subfile Type: reduced-resolution image") == 9);
    CHECK(has(info, "Samples/Pixel: 1"));
    CHECK(has(info, "Planar Configuration: single image plane"));
    std::string sub;
    REQUIRE(tt::run_command("tiffdump " + out.string(), &sub) == 0);
    CHECK(has(sub, "SubIFD (330)"));
}

TEST_CASE("ome-tiff: 8-bit RGB is one interleaved plane and JPEG is YCbCr") {
    tt::TempDir dir;
    const VImage im = tt::pattern(200, 150, 3).copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    Graph g(standard_registry());
    const NodeId in = tt::load_image(g, dir, im);
    const fs::path out = dir / "rgb.ome.tiff";
    save_ome(g, in, out, {{"compression", std::string("jpeg")}, {"quality", std::int64_t(95)}});
    save_ome(g, in, dir / "rgb.tif",
             {{"compression", std::string("jpeg")}, {"quality", std::int64_t(95)}, {"pyramid", true}});
    Evaluator(g).run_sinks();
    auto v = tifffile_view(dir, out);
    CHECK(v["series"] == "1");
    CHECK(v["axes"] == "YXS");
    CHECK(v["shape"] == "150x200x3");
    CHECK(v["dtype"] == "uint8");
    CHECK(v["levels"] == "3");  // 200x150, 100x75, 50x37
    CHECK(v["channels"] == "RGB");
    CHECK(v["physical"] == "None,None None");
    check_schema(dir);
    std::string info;
    REQUIRE(tt::run_command("tiffinfo " + out.string(), &info) == 0);
    CHECK(has(info, "YCbCr"));
    CHECK(has(info, "Samples/Pixel: 3"));
    // lossy, but close, and at every level the very pixels of the pyramid
    // TIFF with the same options
    const VImage l0 = VImage::tiffload(out.c_str());
    CHECK(l0.bands() == 3);
    CHECK(l0.subtract(im).abs().avg() < 6.0);
    for (int L = 0; L < 3; ++L) {
        const VImage ome = VImage::tiffload(out.c_str(), VImage::option()->set("subifd", L - 1));
        const VImage tif = VImage::tiffload((dir / "rgb.tif").c_str(), VImage::option()->set("page", L));
        CHECK(ome.width() == tif.width());
        CHECK(ome.subtract(tif).abs().max() == 0);
    }
}

TEST_CASE("ome-tiff: float and 5 channels and BigTIFF and JPEG of planes") {
    tt::TempDir dir;
    {
        const VImage im = tt::pattern(130, 70, 1).cast(VIPS_FORMAT_FLOAT) / 7.0;
        Graph g(standard_registry());
        const NodeId in = tt::load_image(g, dir, im);
        const fs::path out = dir / "f.ome.tif";
        save_ome(g, in, out,
                 {{"compression", std::string("deflate")},
                  {"predictor", true},
                  {"bigtiff", std::string("yes")},
                  {"pixel_size", std::string("2 nm")}});
        save_ome(g, in, dir / "z.ome.tif", {{"compression", std::string("zstd")}, {"predictor", true}});
        Evaluator(g).run_sinks();
        const VImage im1 = half(im);
        auto v = tifffile_view(dir, out, &im, &im1);
        CHECK(v["bigtiff"] == "True");
        CHECK(v["axes"] == "YX");
        CHECK(v["dtype"] == "float32");
        CHECK(v["levels"] == "3");  // 130x70, 65x35, 32x17
        CHECK(v["physical"] == "2,2 nm");
        CHECK(v["channels"] == "C0");
        CHECK(v["level0_equal"] == "True");
        CHECK(v["level1_equal"] == "True");
        check_schema(dir);
        // zstd: libvips reads it back exactly
        for (int L = 0; L < 2; ++L) {
            VImage z = VImage::tiffload((dir / "z.ome.tif").c_str(), VImage::option()->set("subifd", L - 1));
            CHECK(z.subtract(L == 0 ? im : im1).abs().max() == 0);
        }
    }
    {
        // any number of 8-bit channels in JPEG: each plane is one band
        const VImage im = tt::pattern(100, 80, 5, VIPS_FORMAT_UCHAR, 1);
        Graph g(standard_registry());
        const NodeId in = tt::load_image(g, dir, im, "five.v");
        const fs::path out = dir / "five.ome.tif";
        save_ome(g, in, out,
                 {{"compression", std::string("deflate")},
                  {"channel_names", std::vector<std::string>{"a", "b", "c", "d, e", "&<f>"}}});
        save_ome(g, in, dir / "lzw.ome.tif", {{"compression", std::string("lzw")}, {"predictor", true}});
        Evaluator(g).run_sinks();
        const VImage im1 = half(im);
        auto v = tifffile_view(dir, out, &im, &im1);
        CHECK(v["shape"] == "5x80x100");
        CHECK(v["channels"] == "a,b,c,d, e,&<f>");  // (a name may hold a comma)
        CHECK(v["level0_equal"] == "True");
        CHECK(v["level1_equal"] == "True");
        check_schema(dir);
        for (int c = 0; c < 5; ++c)
            CHECK(VImage::tiffload((dir / "lzw.ome.tif").c_str(), VImage::option()->set("page", c))
                      .subtract(im[c])
                      .abs()
                      .max() == 0);
        Graph j(standard_registry());
        save_ome(j, tt::load_image(j, dir, im, "five.v"), dir / "five-jpeg.ome.tif",
                 {{"compression", std::string("jpeg")}});
        Evaluator(j).run_sinks();
        VImage c4 = VImage::tiffload((dir / "five-jpeg.ome.tif").c_str(), VImage::option()->set("page", 4));
        CHECK(c4.bands() == 1);
        CHECK(c4.subtract(im[4]).abs().avg() < 12.0);  // Q75 on a sharp-edged pattern
    }
}

TEST_CASE("ome-tiff: many float channels of an image narrower than a band hold a few tiles and read back") {
    // The soak's case, smaller: 194x285 and 120 float channels (26.5 MB)
    // with 64-pixel tiles. Each level's strip was allocated (and cleared)
    // a band wide, 128 tiles whatever the image's width: 250 MB here and
    // 950 MB at 452 channels, for every strip row. Now as wide as the image.
    tt::TempDir dir;
    const int bands = 120;
    std::vector<double> values;
    for (int b = 0; b < bands; ++b) values.push_back(0.25 * b - 3);
    const VImage im =
        (tt::pattern(194, 285, 1).cast(VIPS_FORMAT_FLOAT) / 9.0)
            .bandjoin(VImage::black(194, 285, VImage::option()->set("bands", bands - 1)).cast(VIPS_FORMAT_FLOAT)) +
        values;
    Graph g(standard_registry());
    const NodeId in = tt::load_image(g, dir, im);
    const fs::path out = dir / "many.ome.tif";
    save_ome(g, in, out, {{"compression", std::string("deflate")}});
    g.execution.threads = 2;
    const RunStats st = Evaluator(g).run_sinks();
    MESSAGE("peak pixel memory " << st.peak_pixel_bytes / 1048576.0 << " MB for a 26.5 MB image");
    CHECK(st.peak_pixel_bytes < std::size_t(26) << 20);
    const VImage im1 = half(im);
    auto v = tifffile_view(dir, out, &im, &im1);
    CHECK(v["axes"] == "CYX");
    CHECK(v["shape"] == "120x285x194");
    CHECK(v["dtype"] == "float32");
    CHECK(v["levels"] == "4");  // 194x285, 97x142, 48x71, 24x35
    CHECK(v["level0_equal"] == "True");
    CHECK(v["level1_equal"] == "True");
}

TEST_CASE("ome-tiff: the same bits for any thread count and evaluator tile size") {
    tt::TempDir dir;
    const VImage im = tt::pattern(333, 211, 2, VIPS_FORMAT_UCHAR, 3);
    std::string first;
    for (auto [tile, threads] : {std::pair{64, 1}, std::pair{48, 3}}) {
        Graph g(standard_registry());
        g.execution.tile_w = g.execution.tile_h = tile;
        g.execution.threads = threads;
        const fs::path out = dir / "same.ome.tif";
        save_ome(g, tt::load_image(g, dir, im), out, {{"compression", std::string("deflate")}});
        Evaluator(g).run_sinks();
        if (first.empty())
            first = tt::slurp(out);
        else
            CHECK(tt::slurp(out) == first);
    }
    CHECK(has(first, "urn:uuid:"));
}

// size_z and size_t: 12 bands as 2 channels x 3 focal planes x 2 time
// points. tifffile sees one TZCYX series (XYCZT read outermost first) whose planes are the bands in
// OME's XYCZT order (band c + 2 (z + 3 t)) at every level; libvips reads
// IFD p as plane p; the OME-XML validates, with SizeC/Z/T, PhysicalSizeZ
// and each TiffData's FirstC/Z/T. An 8-bit RGB image with z is planar.
TEST_CASE("ome-tiff: size_z and size_t split the bands into channels focal planes and time points") {
    tt::TempDir dir;
    const int C = 2, Z = 3, T = 2, B = C * Z * T;
    const VImage im = (tt::pattern(150, 110, B, VIPS_FORMAT_UCHAR, 5) * 250).cast(VIPS_FORMAT_USHORT);
    Graph g(standard_registry());
    const fs::path out = dir / "stack.ome.tif";
    save_ome(g, tt::load_image(g, dir, im), out,
             {{"compression", std::string("deflate")},
              {"size_z", std::int64_t(Z)},
              {"size_t", std::int64_t(T)},
              {"channel_names", std::vector<std::string>{"DAPI", "GFP"}},
              {"pixel_size", std::string("0.5,0.5,2.5 um")}});
    Evaluator(g).run_sinks();
    im.rawsave((dir / "in.raw").c_str());
    const char* script = R"PY(
import sys, numpy as np, tifffile, xml.etree.ElementTree as ET
path, raw, xml = sys.argv[1:4]
with tifffile.TiffFile(path) as t:
    s = t.series[0]
    print("series=%d" % len(t.series))
    print("axes=%s" % s.axes)
    print("shape=%s" % "x".join(map(str, s.shape)))
    print("levels=%d" % len(s.levels))
    open(xml, "w").write(t.pages[0].description)
    root = ET.fromstring(t.ome_metadata)
    ns = {"o": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}
    px = root.find(".//o:Pixels", ns)
    print("sizes=%s,%s,%s" % (px.get("SizeC"), px.get("SizeZ"), px.get("SizeT")))
    print("physical_z=%s %s" % (px.get("PhysicalSizeZ"), px.get("PhysicalSizeZUnit")))
    print("channels=%s" % ",".join(c.get("Name") for c in px.findall("o:Channel", ns)))
    td = px.findall("o:TiffData", ns)[7]
    print("tiffdata7=%s,%s,%s,%s" % (td.get("IFD"), td.get("FirstC"), td.get("FirstZ"), td.get("FirstT")))
    a = s.levels[0].asarray()
    T, Z, C, Y, X = a.shape
    want = np.fromfile(raw, dtype=a.dtype).reshape(Y, X, T, Z, C).transpose(2, 3, 4, 0, 1)
    print("level0_equal=%s" % np.array_equal(a, want))
    q = want[..., : Y // 2 * 2, : X // 2 * 2].astype(np.int64)
    mean = (q[..., 0::2, 0::2] + q[..., 1::2, 0::2] + q[..., 0::2, 1::2] + q[..., 1::2, 1::2] + 2) >> 2
    print("level1_equal=%s" % np.array_equal(s.levels[1].asarray(), mean))
)PY";
    std::ofstream(dir / "planes.py") << script;
    std::string text;
    const int rc = tt::run_command("/usr/bin/python3 " + (dir / "planes.py").string() + " " + out.string() + " " +
                                       (dir / "in.raw").string() + " " + (dir / "ome.xml").string(),
                                   &text);
    INFO(text);
    REQUIRE(rc == 0);
    std::map<std::string, std::string> v;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (auto eq = line.find('='); eq != std::string::npos) v[line.substr(0, eq)] = line.substr(eq + 1);
    CHECK(v["series"] == "1");
    CHECK(v["axes"] == "TZCYX");
    CHECK(v["shape"] == "2x3x2x110x150");
    CHECK(v["levels"] == "3");  // 150x110, 75x55, 37x27 (one 64-pixel tile)
    CHECK(v["sizes"] == "2,3,2");
    CHECK(v["physical_z"] == "2.5 µm");
    CHECK(v["channels"] == "DAPI,GFP");
    CHECK(v["tiffdata7"] == "7,1,0,1");  // 7 = 1 + 2 (0 + 3 x 1)
    CHECK(v["level0_equal"] == "True");
    CHECK(v["level1_equal"] == "True");
    check_schema(dir);
    // libvips: IFD p is band p
    for (int p : {0, 5, 11}) {
        const VImage page = VImage::new_from_file(out.c_str(), VImage::option()->set("page", p));
        CHECK(page.bands() == 1);
        CHECK(page.width() == 150);
        CHECK((page - im[p]).abs().max() == 0);
    }
    // 8-bit sRGB with z: three planar grey planes, not one RGB plane
    Graph g2(standard_registry());
    const fs::path rgb = dir / "rgb.ome.tif";
    save_ome(g2, tt::load_image(g2, dir, tt::pattern(70, 50, 3), "rgb.v"), rgb, {{"size_z", std::int64_t(3)}});
    Evaluator(g2).run_sinks();
    const std::string xml = tt::slurp(rgb);
    CHECK(has(xml, "SizeC=\"1\" SizeZ=\"3\" SizeT=\"1\""));
    CHECK(has(xml, "<TiffData IFD=\"2\" FirstC=\"0\" FirstZ=\"2\" FirstT=\"0\""));
    CHECK_FALSE(has(xml, "Interleaved=\"true\""));
}

TEST_CASE("ome-tiff: keys are checked when the graph is built naming the key") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const NodeId in = tt::load_image(g, dir, tt::pattern(40, 30, 2));
    auto error = [&](Params p, const std::string& name = "e.ome.tif") {
        p.set("path", (dir / name).string());
        return tt::error_of([&] { g.add("save", {in}, p); });
    };
    std::string e = error({{"channel_names", std::vector<std::string>{"a", "b", "c"}}});
    CHECK(has(e, "key 'channel_names': [\"a\", \"b\", \"c\"] gives 3 names for an image of 2 channels"));
    CHECK(has(error({{"channel_names", std::vector<std::string>{"a", " "}}}), "has an empty name"));
    // last round's comma-separated string is one name: the message says to give a list
    CHECK(has(error({{"channel_names", std::string("a,b")}}),
              "gives 1 name for an image of 2 channels (an 8-bit RGB OME-TIFF is one RGB channel); give one name per "
              "channel, as a list of strings ([\"A\", \"B\"], not \"A,B\")"));
    CHECK(has(error({{"pixel_size", std::string("0.5 furlong")}}), "key 'pixel_size': unknown unit 'furlong'"));
    CHECK(has(error({{"pixel_size", std::string("0.5")}}), "'0.5' has no unit"));
    CHECK(has(error({{"pixel_size", std::string("-1 um")}}), "above 0"));
    CHECK(has(error({{"pixel_size", std::string("1,2,3,4 um")}}), "at most three"));
    CHECK(has(error({{"tile", false}}), "an OME-TIFF is always tiled"));
    CHECK(has(error({{"size_t", std::int64_t(3)}}), "key 'size_t': the image's 2 bands do not split into 1 focal "
                                                    "planes x 3 time points"));
    CHECK(has(error({{"size_z", std::int64_t(2)}, {"channel_names", std::vector<std::string>{"a", "b"}}}),
              "gives 2 names for an image of 1 channels"));
    CHECK(has(error({{"size_z", std::int64_t(2)}}, "e.tif"), "key 'size_z': applies to ome-tiff or ome-zarr"));
    CHECK(has(error({{"channel_names", std::vector<std::string>{"a", "b"}}}, "e.tif"),
              "key 'channel_names': applies to ome-tiff or ome-zarr output only, not to tiff"));
    CHECK(error({{"channel_names", std::vector<std::string>{"a", "b"}}, {"pixel_size", std::string("1 micron")}}) ==
          "(no error)");
}

TEST_CASE("ome-tiff: stitch writes it with --channel-names --pixel-size and the tiles it came from") {
    tt::TempDir dir;
    {
        std::ofstream csv(dir / "positions.csv");
        csv << "file,x,y\n";
        for (int i = 0; i < 3; ++i) {
            tt::save((tt::pattern(60, 40, 2, VIPS_FORMAT_UCHAR, i) * 100).cast(VIPS_FORMAT_USHORT),
                     dir / ("t" + std::to_string(i) + ".v"));
            csv << "t" << i << ".v," << i * 50 << "," << i * 5 << "\n";
        }
    }
    const fs::path out = dir / "s.ome.tif";
    std::string log;
    const std::string stitch =
        tt::tessera_binary() + " stitch " + (dir / "positions.csv").string() + " -q --tile-size 32";
    REQUIRE(tt::run_command(stitch + " -o " + out.string() +
                                " --channel-names DAPI,GFP --pixel-size 0.65 um --compression deflate",
                            &log) == 0);
    INFO(log);
    // the oracle: libvips inserting the tiles
    VImage want = VImage::black(160, 50, VImage::option()->set("bands", 2)).cast(VIPS_FORMAT_USHORT);
    for (int i = 0; i < 3; ++i)
        want = want.insert(VImage::new_from_file((dir / ("t" + std::to_string(i) + ".v")).c_str()), i * 50, i * 5);
    const VImage want1 = half(want);
    auto v = tifffile_view(dir, out, &want, &want1);
    CHECK(v["shape"] == "2x50x160");
    CHECK(v["channels"] == "DAPI,GFP");
    CHECK(v["physical"] == "0.65,0.65 µm");
    CHECK(v["description"] == "tessera: 3 tiles from positions.csv");
    CHECK(v["level0_equal"] == "True");
    CHECK(v["level1_equal"] == "True");
    check_schema(dir);
    // the same job as a pipeline, the same file
    std::string json;
    REQUIRE(tt::run_command(stitch + " -o " + out.string() + " --channel-names DAPI,GFP --pixel-size 0.65 um " +
                                "--compression deflate --emit-json > " + (dir / "job.json").string(),
                            &json) == 0);
    const std::string job = tt::slurp(dir / "job.json");
    CHECK(has(job, R"("channel_names": [)"));  // a list, from --channel-names A,B
    CHECK(has(job, R"("GFP")"));
    CHECK(has(job, R"("pixel_size": "0.65 um")"));
    const std::string before = tt::slurp(out);
    fs::remove(out);
    REQUIRE(tt::run_command(tt::tessera_binary() + " run -q " + (dir / "job.json").string(), &log) == 0);
    CHECK(tt::slurp(out) == before);
    // the options are the OME-TIFF's: a .tif refuses them, naming the file
    CHECK(tt::run_command(stitch + " -o " + (dir / "x.tif").string() + " --channel-names a,b", &log) != 0);
    CHECK(has(log, "--channel-names applies to ome-tiff or ome-zarr outputs, not to tiff"));
    CHECK_FALSE(fs::exists(dir / "x.tif"));
}

TEST_CASE("mpi: OME-TIFF on 2 and 3 ranks writes the single-process file byte for byte") {
    if (!mpi_available() || tt::run_command("command -v mpirun >/dev/null") != 0) {
        MESSAGE("skipped: no MPI build or no mpirun");
        return;
    }
    tt::TempDir tmp;
    // 4 planar planes of u16 (2 channels x 2 focal planes), 32-pixel tiles
    // in 256-pixel bands: shares cut inside bands, levels finished by the
    // ranks and by the writer
    tt::save((tt::pattern(1000, 700, 4, VIPS_FORMAT_UCHAR, 4) * 199).cast(VIPS_FORMAT_USHORT), tmp / "in.v");
    // (the same file name in each folder: the OME-XML names the file)
    auto pipeline = [&](const std::string& tag) {
        fs::create_directories(tmp / tag);
        std::ofstream(tmp / ("p-" + tag + ".json")) << R"({"version": 1, "nodes": [
          {"id": "in", "op": "load", "path": "in.v"},
          {"id": "ome", "op": "save", "inputs": ["in"], "path": ")" +
                                                           tag + R"(/out.ome.tif",
           "tile_width": 32, "tile_height": 32, "compression": "deflate", "predictor": true, "band_width": 256,
           "channel_names": ["a", "b"], "size_z": 2}]})";
        return (tmp / ("p-" + tag + ".json")).string();
    };
    REQUIRE(tt::run_command(tt::tessera_binary() + " run -q " + pipeline("one")) == 0);
    const std::string one = tt::slurp(tmp / "one" / "out.ome.tif");
    REQUIRE(one.size() > 100000);
    for (int n : {2, 3}) {
        const std::string tag = std::to_string(n);
        std::string log;
        REQUIRE_MESSAGE(
            tt::run_command("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np " +
                                tag + " " + tt::tessera_binary() + " run -q --threads 1 " + pipeline(tag),
                            &log) == 0,
            log);
        CHECK_MESSAGE(tt::slurp(tmp / tag / "out.ome.tif") == one, n << " ranks");
    }
}
