// TIFF conformance of every TIFF-family writer (the pyramid TIFF and COG
// writer, GeoTIFF through it and through libvips + GDAL, OME-TIFF): for 1 to
// 5 bands of u8, u16 and f32, every directory (SubIFDs included) opens in
// libtiff without a warning (a warning fails the test: TIFFSetWarningHandler),
// and says consistently what its samples are: Photometric (min-is-black for
// one sample, RGB or YCbCr for three colour ones), ExtraSamples for every
// sample beyond those (libtiff's and GDAL's "Sum of Photometric type-related
// color channels and ExtraSamples doesn't match SamplesPerPixel" otherwise),
// SampleFormat and BitsPerSample of the type, PlanarConfig contig. GDAL opens
// them all without a warning too. And the real case it was found on: the
// merge of the two real COGs (3-band u16 min-is-black, ExtraSamples) writes
// a GeoTIFF with two unspecified ExtraSamples.
#include <doctest/doctest.h>

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tiffio.h>

#include "geo_fixture.hpp"
#include "support.hpp"

using namespace tessera;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

std::string g_warnings;
extern "C" void collect_warning(const char* module, const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    g_warnings += (module ? std::string(module) + ": " : std::string()) + buf + "\n";
}

// The GeoTIFF and GDAL tags, known to any GeoTIFF reader (GDAL registers
// them so): libtiff would otherwise warn of unknown tags, which says nothing
// about the file.
TIFFFieldInfo kGeoFields[] = {
    {33550, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("ModelPixelScaleTag")},
    {33922, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("ModelTiepointTag")},
    {34264, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("ModelTransformationTag")},
    {34735, -1, -1, TIFF_SHORT, FIELD_CUSTOM, 1, 1, const_cast<char*>("GeoKeyDirectoryTag")},
    {34736, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("GeoDoubleParamsTag")},
    {34737, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, const_cast<char*>("GeoAsciiParamsTag")},
    {42112, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, const_cast<char*>("GDALMetadata")},
    {42113, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, const_cast<char*>("GDALNoDataValue")},
};
TIFFExtendProc g_parent = nullptr;
extern "C" void geo_extender(TIFF* tif) {
    if (g_parent) g_parent(tif);
    for (TIFFFieldInfo& f : kGeoFields)
        if (!TIFFFindField(tif, f.field_tag, TIFF_ANY)) TIFFMergeFieldInfo(tif, &f, 1);
}

// Warnings are collected (and fail the checks) while one lives.
struct StrictLibtiff {
    TIFFErrorHandler old_warning, old_error;
    StrictLibtiff() {
        static const bool extended = [] {
            g_parent = TIFFSetTagExtender(geo_extender);
            return true;
        }();
        (void)extended;
        g_warnings.clear();
        old_warning = TIFFSetWarningHandler(collect_warning);
        old_error = TIFFSetErrorHandler(collect_warning);
    }
    ~StrictLibtiff() {
        TIFFSetWarningHandler(old_warning);
        TIFFSetErrorHandler(old_error);
    }
};

struct Expect {
    int bands = 1;
    Format format = Format::u8;
    bool colour = false;  // RGB photometric expected (else min-is-black)
    bool planar = false;  // OME-TIFF: one band per IFD
};

// One directory's tags against what the image is; reads its first tile or
// strip (decoding warns too).
void check_directory(TIFF* tif, const Expect& e, const std::string& where) {
    CAPTURE(where);
    uint16_t spp = 0, bps = 0, fmt = SAMPLEFORMAT_UINT, photometric = 0, planar = 0, nextra = 0;
    uint16_t* extra = nullptr;
    REQUIRE(TIFFGetField(tif, TIFFTAG_SAMPLESPERPIXEL, &spp));
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    REQUIRE(TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric));
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    CHECK(spp == (e.planar ? 1 : e.bands));
    CHECK(bps == 8 * format_size(e.format));
    CHECK(fmt == (format_is_float(e.format) ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT));
    CHECK(planar == PLANARCONFIG_CONTIG);
    const bool rgb = photometric == PHOTOMETRIC_RGB || photometric == PHOTOMETRIC_YCBCR;
    CHECK(rgb == (e.colour && !e.planar));
    if (!rgb) CHECK(photometric == PHOTOMETRIC_MINISBLACK);
    CHECK(nextra == spp - (rgb ? 3 : 1));
    std::vector<std::uint8_t> buf(TIFFIsTiled(tif) ? std::size_t(TIFFTileSize(tif)) : std::size_t(TIFFStripSize(tif)));
    CHECK((TIFFIsTiled(tif) ? TIFFReadEncodedTile(tif, 0, buf.data(), tmsize_t(buf.size()))
                            : TIFFReadEncodedStrip(tif, 0, buf.data(), tmsize_t(buf.size()))) > 0);
}

// Every directory of the file, main chain and SubIFDs; how many.
int check_file(const fs::path& file, const Expect& e) {
    CAPTURE(file);
    StrictLibtiff strict;
    TIFF* tif = TIFFOpen(file.c_str(), "r");
    REQUIRE(tif);
    int n = 0;
    for (tdir_t d = 0;; ++d) {
        REQUIRE(TIFFSetDirectory(tif, d));
        check_directory(tif, e, "IFD " + std::to_string(d));
        ++n;
        uint16_t nsub = 0;
        toff_t* subs = nullptr;
        if (TIFFGetField(tif, TIFFTAG_SUBIFD, &nsub, &subs)) {
            const std::vector<toff_t> offsets(subs, subs + nsub);
            for (std::size_t k = 0; k < offsets.size(); ++k) {
                REQUIRE(TIFFSetSubDirectory(tif, offsets[k]));
                check_directory(tif, e, "IFD " + std::to_string(d) + " SubIFD " + std::to_string(k));
                ++n;
            }
            REQUIRE(TIFFSetDirectory(tif, d));
        }
        if (TIFFLastDirectory(tif)) break;
    }
    TIFFClose(tif);
    CHECK(g_warnings == "");
    return n;
}

VipsBandFormat vips_format(Format f) {
    return f == Format::u8 ? VIPS_FORMAT_UCHAR : f == Format::u16 ? VIPS_FORMAT_USHORT : VIPS_FORMAT_FLOAT;
}

// GDAL opens every file without a warning (one process for all).
void check_gdal_quiet(const tt::TempDir& dir, const std::vector<fs::path>& files) {
    std::ofstream py(dir / "gdal_open.py");
    py << "import sys\nfrom osgeo import gdal\nmsgs = []\n"
          "gdal.PushErrorHandler(lambda c, n, m: msgs.append(m))\n"
          "for f in sys.argv[1:]:\n"
          "    ds = gdal.Open(f)\n"
          "    if ds is None: msgs.append('cannot open ' + f)\n"
          "    else: ds.GetRasterBand(1).Checksum()\n"
          "print('\\n'.join(msgs) if msgs else 'quiet')\n";
    py.close();
    std::string cmd = "/usr/bin/python3 " + (dir / "gdal_open.py").string();
    for (const fs::path& f : files) cmd += " " + f.string();
    std::string out;
    REQUIRE(tt::run_command(cmd, &out) == 0);
    CHECK(out == "quiet\n");
}

}  // namespace

TEST_CASE("tiff conformance: every TIFF writer for 1 to 5 bands of u8 u16 and f32 opens without a libtiff warning") {
    tt::TempDir dir;
    std::vector<fs::path> written;
    int files = 0;
    for (Format format : {Format::u8, Format::u16, Format::f32})
        for (int bands = 1; bands <= 5; ++bands)
            for (bool colour : {false, true}) {
                if (colour && bands < 3) continue;
                VImage im = tt::pattern(70, 40, bands, VIPS_FORMAT_UCHAR, bands);
                if (format != Format::u8) im = (im * 3).cast(vips_format(format));
                im = im.copy(
                    VImage::option()->set("interpretation", colour ? (format == Format::u16 ? VIPS_INTERPRETATION_RGB16
                                                                                            : VIPS_INTERPRETATION_sRGB)
                                                                   : VIPS_INTERPRETATION_MULTIBAND));
                const std::string stem =
                    std::string(format_name(format)) + "-" + std::to_string(bands) + (colour ? "-rgb" : "");
                // the same samples georeferenced (GDAL reads the VRT)
                geo::Raster r;
                r.width = 70;
                r.height = 40;
                r.bands = bands;
                r.format = format;
                r.srs = "EPSG:32618";
                r.transform = {425085, 30, 0, 5215515, 0, -30};
                r.value = [](int x, int y, int b) { return double((x * 3 + y * 5 + b * 7) % 200); };
                const std::string vrt = geo::write_vrt(dir.path, stem + "-geo", r);
                Graph g(standard_registry());
                const NodeId in = tt::load_image(g, dir, im, stem + ".v");
                const NodeId gin = g.add("gdal_load", {}, {{"path", vrt}});
                struct Out {
                    std::string name;
                    NodeId from;
                    Params p;
                };
                const Params pyramid{{"tile", true},
                                     {"pyramid", true},
                                     {"tile_width", std::int64_t(32)},
                                     {"tile_height", std::int64_t(32)},
                                     {"compression", std::string("deflate")}};
                std::vector<Out> outs{
                    {"pyr.tif", in, pyramid},
                    {"strips.tif", in, {}},
                    {"cog.tif",
                     in,
                     {{"format", std::string("cog")},
                      {"tile_width", std::int64_t(32)},
                      {"tile_height", std::int64_t(32)}}},
                    {"geo-tiled.tif", gin, pyramid},
                    {"geo-strips.tif", gin, {}},
                    {"ome.tif",
                     in,
                     {{"format", std::string("ome-tiff")},
                      {"tile_width", std::int64_t(32)},
                      {"tile_height", std::int64_t(32)}}},
                };
                if (format == Format::u8 && (bands == 1 || (bands == 3 && colour)))
                    outs.push_back({"jpeg.tif",
                                    in,
                                    {{"tile", true},
                                     {"pyramid", true},
                                     {"compression", std::string("jpeg")},
                                     {"tile_width", std::int64_t(32)},
                                     {"tile_height", std::int64_t(32)}}});
                for (Out& o : outs) {
                    o.p.set("path", (dir / (stem + "-" + o.name)).string());
                    g.add("save", {o.from}, o.p);
                }
                Evaluator(g).run_sinks();
                for (const Out& o : outs) {
                    const fs::path file = dir / (stem + "-" + o.name);
                    // colour as tessera reads the image (libvips guesses
                    // sRGB for 3 and 4 bands of u8 and u16; GDAL's are
                    // multiband); libvips' tiffsave (strips) writes RGB for
                    // any 3 or more bands, consistently (ExtraSamples for
                    // the rest); OME-TIFF is planar but for 8-bit RGB
                    const ImageInfo& info = g.info(o.from);
                    const bool strips = o.name.find("strips") != std::string::npos;
                    const bool rgb = bands >= 3 && (strips || info.interpretation != Interpretation::multiband);
                    const bool rgb8 = format == Format::u8 && bands == 3 && info.interpretation == Interpretation::srgb;
                    Expect e{bands, format, rgb, o.name == "ome.tif" && !rgb8};
                    const int dirs = check_file(file, e);
                    CHECK(dirs >= 1);
                    written.push_back(file);
                    ++files;
                }
            }
    CHECK(files >= 100);
    check_gdal_quiet(dir, written);
}

TEST_CASE("tiff conformance: the merge of the two real COGs keeps their ExtraSamples") {
    tt::TempDir dir;
    const fs::path cogeo = tt::shared_dir() / "data" / "real" / "cogeo";
    for (const std::string fmt : {"tiff", "cog"}) {
        const fs::path out = dir / ("merged-" + fmt + ".tif");
        std::string log;
        REQUIRE(tt::run_command(tt::tessera_binary() + " merge " + (cogeo / "cog1.tif").string() + " " +
                                    (cogeo / "cog2.tif").string() + " -q --format " + fmt + " -o " + out.string(),
                                &log) == 0);
        INFO(log);
        check_file(out, Expect{3, Format::u16, false, false});
        StrictLibtiff strict;
        TIFF* tif = TIFFOpen(out.c_str(), "r");
        REQUIRE(tif);
        uint16_t n = 0;
        uint16_t* extra = nullptr;
        REQUIRE(TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &n, &extra));
        REQUIRE(n == 2);
        CHECK(extra[0] == EXTRASAMPLE_UNSPECIFIED);
        CHECK(extra[1] == EXTRASAMPLE_UNSPECIFIED);
        TIFFClose(tif);
        check_gdal_quiet(dir, {out});
    }
}
