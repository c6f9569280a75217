// The output format table (tessera/io/formats.hpp): every claimed extension
// writes the format the file's magic bytes say, lookups by name, alias and
// extension, the lists in errors come from the table, --format overrides
// the extension and a conflict names both, images a format would change are
// refused naming the file, what a format claims to hold it holds, and the
// table's sharding flag is what its writer does.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "support.hpp"
#include "tessera/io/formats.hpp"

using namespace tessera;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// What a file's first bytes say it is (the libvips / tiffinfo view of it).
std::string magic(const fs::path& p) {
    const std::string b = tt::slurp(p).substr(0, 16);
    if (b.rfind("II*\0", 0) == 0 || b.rfind("MM\0*", 0) == 0 || b.rfind("II+\0", 0) == 0) return "tiff";
    if (b.rfind("\x89PNG\r\n\x1a\n", 0) == 0) return "png";
    if (b.rfind("\xff\xd8\xff", 0) == 0) return "jpeg";
    if (b.size() >= 12 && b.rfind("RIFF", 0) == 0 && b.substr(8, 4) == "WEBP") return "webp";
    if (b.rfind("\xb6\xa6\xf2\x08", 0) == 0 || b.rfind("\x08\xf2\xa6\xb6", 0) == 0) return "v";
    if (has(tt::slurp(p), "xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"")) return "dz";
    if (fs::is_directory(p) && has(tt::slurp(p / ".zattrs"), "\"multiscales\"")) return "ome-zarr";
    return "unknown";
}

// The format a file written as `format` must look like: a COG is TIFF bytes.
std::string magic_of(const OutputFormat& f) { return f.name == "cog" || f.name == "ome-tiff" ? "tiff" : f.name; }

// The oracle reads the files back with any libvips loader: tessera blocks
// libvips's untrusted ones process-wide, and a format tessera writes need
// not be one its own load reads (PPM would be: ppmload is untrusted).
struct OracleReadsAll {
    OracleReadsAll() { allow_untrusted_loaders(true); }
    ~OracleReadsAll() { allow_untrusted_loaders(false); }
};

NodeId image(Graph& g, const tt::TempDir& dir, const VImage& im, const std::string& name = "in.v") {
    return tt::load_image(g, dir, im, name);
}

// Two 40x30 tiles side by side, as a positions CSV (stitch's input).
void two_tiles(const tt::TempDir& dir, VipsBandFormat format = VIPS_FORMAT_UCHAR, int bands = 3) {
    std::ofstream csv(dir / "positions.csv");
    csv << "file,x,y\n";
    for (int i = 0; i < 2; ++i) {
        VImage t = tt::pattern(40, 30, bands, VIPS_FORMAT_UCHAR, i + 1);
        if (format != VIPS_FORMAT_UCHAR) t = (t * 200).cast(format);
        tt::save(t, dir / ("t" + std::to_string(i) + ".v"));
        csv << "t" << i << ".v," << i * 40 << ",0\n";
    }
}

std::string stitch(const tt::TempDir& dir, const std::string& args, std::string* log) {
    tt::run_command(tt::tessera_binary() + " stitch " + (dir / "positions.csv").string() + " -q " + args + " 2>&1",
                    log);
    return *log;
}

}  // namespace

TEST_CASE("formats: every claimed extension writes the format the file's magic bytes say") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage rgb = tt::pattern(70, 50, 3);
    const NodeId in = image(g, dir, rgb);
    std::set<std::string> seen;
    for (const OutputFormat& f : output_formats()) {
        for (const std::string& ext : f.extensions) {
            for (const std::string& name : {"out" + ext, "upper" + ext}) {
                std::string path = (dir / name).string();
                if (name.rfind("upper", 0) == 0)  // the extension in capitals names the same format
                    for (std::size_t i = path.size() - ext.size(); i < path.size(); ++i)
                        path[i] = char(std::toupper(static_cast<unsigned char>(path[i])));
                CAPTURE(path);
                REQUIRE(format_of_extension(path) == &f);
                g.add("save", {in}, {{"path", path}});
                seen.insert(path);
            }
        }
    }
    Evaluator(g).run_sinks();
    OracleReadsAll oracle;
    for (const std::string& path : seen) {
        CAPTURE(path);
        const OutputFormat& f = *format_of_extension(path);
        CHECK(magic(path) == magic_of(f));
        // and libvips reads it back at its size (a .dzi is read by tiles)
        if (f.name == "dz") {
            const fs::path t(path);
            CHECK(fs::exists(t.parent_path() / (t.stem().string() + "_files") / "0" / "0_0.jpeg"));
            continue;
        }
        if (f.name == "ome-zarr") {  // (read back by zarr-python: tests/io_ome_zarr_test.cpp)
            CHECK(fs::exists(fs::path(path) / "0" / "0" / "0" / "0"));
            continue;
        }
        VImage back = VImage::new_from_file(path.c_str());
        CHECK(back.width() == 70);
        CHECK(back.height() == 50);
    }
    // every format with an extension was tried
    std::set<std::string> names;
    for (const std::string& p : seen) names.insert(format_of_extension(p)->name);
    for (const OutputFormat& f : output_formats()) CHECK((f.extensions.empty() || names.count(f.name) == 1));
}

TEST_CASE("formats: names and aliases in any case and the longest claimed extension") {
    for (const OutputFormat& f : output_formats()) {
        CHECK(find_output_format(f.name) == &f);
        for (const std::string& a : f.aliases) CHECK(find_output_format(a) == &f);
        std::string up = f.name;
        for (char& c : up) c = char(std::toupper(static_cast<unsigned char>(c)));
        CHECK(find_output_format(up) == &f);
    }
    CHECK(find_output_format("gif") == nullptr);
    CHECK(find_output_format("gtiff")->name == "tiff");
    CHECK(format_of_extension("a/b.JPEG")->name == "jpeg");
    CHECK(format_of_extension("x.v.png")->name == "png");  // the name's end counts, not its first dot
    CHECK(format_of_extension("dir.png/x") == nullptr);    // the file name, not a folder
    CHECK(format_of_extension("/tmp/.tif") == nullptr);    // a hidden file named only an extension
    CHECK(format_of_extension("x.xyz") == nullptr);
    CHECK(format_extension("x.XYZ") == ".XYZ");
    CHECK(format_extension("x.TIFF") == ".tiff");
    CHECK(format_extension("noext").empty());
    // no two formats claim the same extension, and every claim is lower case
    // with its dot: the first claim would win silently
    std::map<std::string, std::string> owner;
    for (const OutputFormat& f : output_formats())
        for (const std::string& e : f.extensions) {
            CAPTURE(e);
            CHECK(owner.emplace(e, f.name).second);
            CHECK(e[0] == '.');
            for (char c : e) CHECK(c == char(std::tolower(static_cast<unsigned char>(c))));
        }
}

TEST_CASE("formats: an extension no format claims is refused listing the table") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const NodeId in = image(g, dir, tt::pattern(20, 20, 3));
    const std::string save_error = tt::error_of([&] { g.add("save", {in}, {{"path", (dir / "out.xyz").string()}}); });
    const std::string cli_error = tt::error_of([&] { output_format_for((dir / "out.xyz").string()); });
    for (const std::string& e : {save_error, cli_error}) {
        CAPTURE(e);
        CHECK(has(e, "'.xyz'"));
        for (const OutputFormat& f : output_formats()) {
            CHECK(has(e, f.name));
            for (const std::string& x : f.extensions) CHECK(has(e, x));
        }
    }
    CHECK(has(save_error, "key 'path'"));
    CHECK(has(cli_error, (dir / "out.xyz").string()));
    CHECK(has(tt::error_of([&] { output_format_for("noext"); }), "has no extension"));
    // the command line says the same, and writes nothing
    two_tiles(dir);
    std::string log;
    stitch(dir, "-o " + (dir / "s.xyz").string(), &log);
    CHECK(has(log, "'.xyz', which names no format"));
    CHECK(has(log, supported_extensions()));
    CHECK_FALSE(fs::exists(dir / "s.xyz"));
}

TEST_CASE("formats: --format overrides the extension and a conflict names both") {
    tt::TempDir dir;
    two_tiles(dir);
    std::string log;
    // a COG under .tif: TIFF bytes with overviews (a plain .tif has none)
    stitch(dir, "-o " + (dir / "c.tif").string() + " --format cog --tile-size 16", &log);
    CAPTURE(log);
    REQUIRE(fs::exists(dir / "c.tif"));
    CHECK(magic(dir / "c.tif") == "tiff");
    CHECK(VImage::new_from_file((dir / "c.tif").c_str()).get_int("n-pages") > 1);
    stitch(dir, "-o " + (dir / "t.tif").string() + " --tile-size 16", &log);
    CHECK(VImage::new_from_file((dir / "t.tif").c_str()).get_int("n-pages") == 1);
    // a name no format claims takes the format asked for
    stitch(dir, "-o " + (dir / "p.dat").string() + " --format PNG", &log);
    CHECK(magic(dir / "p.dat") == "png");
    VImage want = tt::vips_insert_loop(dir / "positions.csv", 80, 30);
    CHECK(VImage::new_from_file((dir / "p.dat").c_str(), VImage::option()->set("access", "sequential"))
              .subtract(want)
              .abs()
              .max() == 0);
    // an extension that names another format is refused, naming both
    for (const auto& [out, fmt] : std::vector<std::pair<std::string, std::string>>{
             {"x.jpg", "tiff"}, {"x.tif", "png"}, {"x.png", "cog"}, {"x.dzi", "jpeg"}}) {
        CAPTURE(out);
        const fs::path p = dir / out;
        stitch(dir, "-o " + p.string() + " --format " + fmt, &log);
        CAPTURE(log);
        CHECK(has(log, "'" + p.string() + "': has the extension '" + p.extension().string() + "', which names " +
                           format_of_extension(p.string())->name + ", but --format " + fmt + " asks for " + fmt));
        CHECK_FALSE(fs::exists(p));
    }
    stitch(dir, "-o " + (dir / "g.tif").string() + " --format gif", &log);
    CHECK(has(log, "--format gif: no format has this name; use " + supported_format_names()));
    // mosaic takes the same option
    tt::run_command(tt::tessera_binary() + " mosaic " + (dir / "positions.csv").string() + " --no-register -q -o " +
                        (dir / "m.webp").string() + " --format jpeg 2>&1",
                    &log);
    CHECK(has(log, "which names webp, but --format jpeg asks for jpeg"));
    tt::run_command(tt::tessera_binary() + " mosaic " + (dir / "positions.csv").string() + " --no-register -q -o " +
                        (dir / "m.v").string() + " --format v 2>&1",
                    &log);
    CHECK(magic(dir / "m.v") == "v");
}

TEST_CASE("formats: merge picks GeoTIFF or COG through the table and refuses the others") {
    tt::TempDir dir;
    const fs::path rgb = tt::shared_dir() / "data" / "real" / "rasterio" / "rgb1.tif";
    const std::string merge = tt::tessera_binary() + " merge " + rgb.string() + " -q --tile-size 64";
    std::string log;
    for (const auto& [out, fmt, pages] : std::vector<std::tuple<std::string, std::string, bool>>{
             {"a.tif", "", false}, {"b.TIFF", "gtiff", false}, {"c.tif", "cog", true}}) {
        CAPTURE(out);
        REQUIRE(
            tt::run_command(merge + " -o " + (dir / out).string() + (fmt.empty() ? "" : " --format " + fmt) + " 2>&1",
                            &log) == 0);
        CHECK(magic(dir / out) == "tiff");
        CHECK((VImage::new_from_file((dir / out).c_str()).get_int("n-pages") > 1) == pages);
    }
    CHECK(tt::run_command(merge + " -o " + (dir / "d.png").string() + " 2>&1", &log) == 1);
    CHECK(has(log, "has the extension '.png', but merge writes a GeoTIFF (--format tiff, cog or ome-tiff)"));
    CHECK(tt::run_command(merge + " -o " + (dir / "e.tif").string() + " --format png 2>&1", &log) == 1);
    CHECK(has(log, "--format png is not a format merge writes; use tiff, cog or ome-tiff"));
    CHECK(tt::run_command(merge + " -o " + (dir / "f.png").string() + " --format cog 2>&1", &log) == 1);
    CHECK(has(log, "which names png, but --format cog asks for cog"));
    CHECK_FALSE(fs::exists(dir / "d.png"));
    CHECK_FALSE(fs::exists(dir / "e.tif"));
    CHECK_FALSE(fs::exists(dir / "f.png"));
}

TEST_CASE("formats: an image a format would change is refused naming the file and what holds it") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const NodeId u16 = image(g, dir, (tt::pattern(20, 20, 3) * 250).cast(VIPS_FORMAT_USHORT), "u16.v");
    const NodeId rgba = image(g, dir, tt::pattern(20, 20, 4), "rgba.v");
    const NodeId f32 = image(g, dir, tt::pattern(20, 20, 1).cast(VIPS_FORMAT_FLOAT), "f32.v");
    const NodeId five = image(g, dir, tt::pattern(20, 20, 5), "five.v");
    auto refusal = [&](NodeId n, const std::string& name) {
        const std::string path = (dir / name).string();
        const std::string e = tt::error_of([&] { g.add("save", {n}, {{"path", path}}); });
        CHECK(has(e, "key 'format'"));
        CHECK(has(e, "'" + path + "'"));
        return e;
    };
    std::string e = refusal(u16, "a.jpg");
    CHECK(has(e, "jpeg holds u8 samples, and this image's are u16; cast it to u8 first (the cast op)"));
    CHECK(has(e, ".tif"));
    CHECK(has(e, ".png"));  // PNG holds 16 bits
    CHECK_FALSE(has(e, ".webp"));
    e = refusal(rgba, "b.jpeg");
    CHECK(has(e, "jpeg holds 1 or 3 bands, and this image has 4; pick the bands it holds first"));
    CHECK(has(e, ".png"));
    e = refusal(f32, "c.png");
    CHECK(has(e, "png holds u8 or u16 samples, and this image's are f32"));
    e = refusal(u16, "d.webp");
    CHECK(has(e, "webp holds u8 samples"));
    e = refusal(five, "e.png");
    CHECK(has(e, "png holds 1 to 4 bands, and this image has 5"));
    CHECK(has(e, ".tif"));
    CHECK(has(e, ".v"));
    // the command line: a 16-bit stitch to .jpg names the file, writes nothing
    tt::TempDir s;
    two_tiles(s, VIPS_FORMAT_USHORT);
    std::string log;
    stitch(s, "-o " + (s / "out.jpg").string(), &log);
    CHECK(has(log, (s / "out.jpg").string() + "': jpeg holds u8 samples, and this image's are u16"));
    CHECK_FALSE(fs::exists(s / "out.jpg"));
}

TEST_CASE("formats: what each format says it holds comes back unchanged") {
    tt::TempDir dir;
    // For each format with an extension, every sample format and band count
    // it declares it holds is saved and read back: same size, bands and
    // sample format (and pixels, for the lossless ones; a webp of one band
    // comes back as RGB with equal channels, as its doc says).
    const std::vector<std::pair<Format, VipsBandFormat>> kinds{{Format::u8, VIPS_FORMAT_UCHAR},
                                                               {Format::u16, VIPS_FORMAT_USHORT},
                                                               {Format::f32, VIPS_FORMAT_FLOAT}};
    int tried = 0;
    for (const OutputFormat& f : output_formats()) {
        if (f.extensions.empty() || f.name == "dz") continue;  // dz: tests/dzsave_test.cpp
        if (f.name == "ome-zarr") continue;                    // tests/io_ome_zarr_test.cpp (libvips reads no Zarr)
        for (const auto& [kind, vf] : kinds) {
            if (!f.holds.formats.empty() &&
                std::find(f.holds.formats.begin(), f.holds.formats.end(), kind) == f.holds.formats.end())
                continue;
            for (int bands : {1, 2, 3, 4}) {
                if (!f.holds.bands.empty() &&
                    std::find(f.holds.bands.begin(), f.holds.bands.end(), bands) == f.holds.bands.end())
                    continue;
                VImage im = tt::pattern(33, 21, bands, VIPS_FORMAT_UCHAR, bands);
                if (vf != VIPS_FORMAT_UCHAR) im = (im * 251).cast(vf);
                Graph g(standard_registry());
                const NodeId n = image(g, dir, im);
                const fs::path out =
                    dir / ("o" + std::to_string(bands) + std::string(format_name(kind)) + f.extensions[0]);
                CAPTURE(out);
                g.add("save", {n}, {{"path", out.string()}});
                Evaluator(g).run_sinks();
                OracleReadsAll oracle;
                VImage back = VImage::new_from_file(out.c_str());
                if (f.name == "ome-tiff" && back.bands() == 1)  // a plane per band: libvips reads one page each
                    for (int k = 1; k < bands; ++k)
                        back = back.bandjoin(VImage::new_from_file(out.c_str(), VImage::option()->set("page", k)));
                CHECK(back.width() == 33);
                CHECK(back.height() == 21);
                CHECK(back.format() == vf);
                const bool rgb_only = f.name == "webp";
                CHECK(back.bands() == (rgb_only && bands < 3 ? bands + 2 : bands));
                const bool lossless = f.name != "jpeg" && f.name != "webp";
                if (lossless) CHECK(back.subtract(im).abs().max() == 0);
                ++tried;
            }
        }
    }
    CHECK(tried >= 20);
}

TEST_CASE("formats: a key another format reads is refused naming the formats that read it") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const NodeId in = image(g, dir, tt::pattern(20, 20, 3));
    auto build = [&](const std::string& name, Params p) {
        p.set("path", (dir / name).string());
        return tt::error_of([&] { g.add("save", {in}, p); });
    };
    std::string e = build("a.png", {{"tile_size", std::int64_t(256)}});
    CHECK(has(e, "key 'tile_size': applies to dz output only, not to png; remove it or save to a .dzi"));
    e = build("a.jpg", {{"compression", std::string("lzw")}});
    CAPTURE(e);
    CHECK(has(e, "key 'compression': applies to tiff, cog, ome-tiff or ome-zarr output only, not to jpeg; remove it or "
                 "save to a .tif, .ome.tif or .zarr"));
    e = build("a.dzi", {{"predictor", true}});
    CHECK(has(e, "key 'predictor'"));
    e = build("a.v", {{"quality", std::int64_t(90)}});
    CHECK(has(e, "key 'quality': applies to tiff, cog, ome-tiff, dz, jpeg or webp output only, not to v"));
    // every key of the save spec is read by some format (else none could
    // take it), and every format's keys are the spec's
    const OpSpec* spec = standard_registry().find("save");
    REQUIRE(spec);
    std::set<std::string> keys;
    for (const ParamSpec& p : spec->params) keys.insert(p.name);
    std::set<std::string> read{"path", "format"};
    for (const OutputFormat& f : output_formats())
        for (const std::string& k : f.keys) {
            CAPTURE(k);
            CHECK(keys.count(k) == 1);
            read.insert(k);
        }
    CHECK(read == keys);
    // values that ask for nothing may be stated for any format
    CHECK(build("ok.png", {{"compression", std::string("none")},
                           {"tile", false},
                           {"tile_width", std::int64_t(256)},
                           {"quality", std::int64_t(75)},
                           {"bigtiff", std::string("auto")},
                           {"predictor", false}}) == "(no error)");
}

// The level key: libvips tiffsave's level, GDAL's ZLEVEL/ZSTD_LEVEL. Its
// default is the codec's own (the bytes of an unset level are those of 6
// for deflate and 9 for zstd), another level changes the bytes and never the
// pixels, and a level for a codec that has none is refused.
TEST_CASE("formats: level sets deflate and zstd effort and is refused where it means nothing") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const VImage im = tt::pattern(300, 200, 3);
    const NodeId in = image(g, dir, im);
    int n = 0;
    // (each in its own folder under one name: an OME-TIFF's XML names its file)
    auto write = [&](const std::string& ext, Params p) {
        const fs::path out = dir / std::to_string(n++) / ("w" + ext);
        fs::create_directories(out.parent_path());
        p.set("path", out.string());
        g.add("save", {in}, p);
        return out;
    };
    const Params tiled{{"tile", true}, {"tile_width", std::int64_t(64)}, {"tile_height", std::int64_t(64)}};
    auto with = [](Params p, std::initializer_list<std::pair<const char*, ParamValue>> kv) {
        for (auto& [k, v] : kv) p.set(k, v);
        return p;
    };
    const std::string zstd = "zstd", deflate = "deflate";
    const fs::path zstd_default = write(".tif", with(tiled, {{"compression", zstd}}));
    const fs::path zstd_9 = write(".tif", with(tiled, {{"compression", zstd}, {"level", std::int64_t(9)}}));
    const fs::path zstd_1 = write(".tif", with(tiled, {{"compression", zstd}, {"level", std::int64_t(1)}}));
    const fs::path zstd_19 = write(".tif", with(tiled, {{"compression", zstd}, {"level", std::int64_t(19)}}));
    const fs::path deflate_default = write(".tif", with(tiled, {{"compression", deflate}}));
    const fs::path deflate_6 = write(".tif", with(tiled, {{"compression", deflate}, {"level", std::int64_t(6)}}));
    const fs::path deflate_12 = write(".tif", with(tiled, {{"compression", deflate}, {"level", std::int64_t(12)}}));
    const fs::path deflate_1 = write(".tif", with(tiled, {{"compression", deflate}, {"level", std::int64_t(1)}}));
    const fs::path ome_1 = write(".ome.tif", {{"compression", zstd}, {"level", std::int64_t(1)}});
    const fs::path ome_9 = write(".ome.tif", {{"compression", zstd}});
    const fs::path strips_1 = write(".tif", {{"compression", zstd}, {"level", std::int64_t(1)}});
    const fs::path strips_9 = write(".tif", {{"compression", zstd}, {"level", std::int64_t(19)}});
    Evaluator(g).run_sinks();
    CHECK(tt::slurp(zstd_default) == tt::slurp(zstd_9));
    CHECK(tt::slurp(deflate_default) == tt::slurp(deflate_6));
    for (const auto& [a, b] :
         {std::pair{zstd_1, zstd_9}, std::pair{zstd_19, zstd_9}, std::pair{deflate_1, deflate_6},
          std::pair{deflate_12, deflate_6}, std::pair{ome_1, ome_9}, std::pair{strips_1, strips_9}}) {
        CAPTURE(a);
        CHECK(tt::slurp(a) != tt::slurp(b));
    }
    for (const fs::path& f : {zstd_1, zstd_19, deflate_1, deflate_12, ome_1, strips_1, strips_9}) {
        CAPTURE(f);
        CHECK(VImage::new_from_file(f.c_str()).subtract(im).abs().max() == 0);
    }
    auto refused = [&](const std::string& ext, Params p) {
        p.set("path", (dir / ("x" + ext)).string());
        return tt::error_of([&] { g.add("save", {in}, p); });
    };
    CHECK(has(refused(".tif", with(tiled, {{"compression", std::string("jpeg")}, {"level", std::int64_t(3)}})),
              "key 'level': applies to deflate and zstd compression, not jpeg; remove it"));
    CHECK(has(refused(".tif", {{"compression", std::string("lzw")}, {"level", std::int64_t(3)}}),
              "key 'level': applies to deflate and zstd compression, not lzw"));
    CHECK(has(refused(".tif", {{"level", std::int64_t(3)}}), "not none"));
    CHECK(has(refused(".tif", with(tiled, {{"compression", deflate}, {"level", std::int64_t(13)}})),
              "key 'level': 13 is over deflate's 12; use 1 to 12"));
    CHECK(has(refused(".tif", {{"compression", deflate}, {"level", std::int64_t(5)}}),
              "key 'level': sets deflate's effort in tiled TIFFs only"));
    CHECK(has(refused(".tif", {{"compression", zstd}, {"level", std::int64_t(23)}}), "key 'level'"));
    CHECK(
        has(refused(".dzi", {{"level", std::int64_t(3)}}), "key 'level': applies to tiff, cog, ome-tiff or ome-zarr"));
    CHECK(has(refused(".jpg", {{"level", std::int64_t(3)}}), "key 'level'"));
}

TEST_CASE("formats: the table's shards flag is what its writer does") {
    tt::TempDir dir;
    Graph g(standard_registry());
    const NodeId in =
        g.add("black", {}, {{"width", std::int64_t(4096)}, {"height", std::int64_t(4096)}, {"bands", std::int64_t(3)}});
    for (const OutputFormat& f : output_formats()) {
        CAPTURE(f.name);
        Params p{{"path", (dir / ("s." + f.name)).string()}, {"format", f.name}};
        if (f.takes("tile")) p.set("tile", true);  // TIFF shards when tiled
        const NodeId s = g.add("save", {in}, p);
        std::unique_ptr<Sink> sink = g.node(s).op->make_sink();
        REQUIRE(sink);
        const auto* sharded = dynamic_cast<const ShardedSink*>(sink.get());
        CHECK((sharded && !sharded->share_starts(16, 16, 2).empty()) == f.shards);
    }
}

TEST_CASE("formats: tessera formats lists the table as text and JSON") {
    std::string text, json;
    REQUIRE(tt::run_command(tt::tessera_binary() + " formats", &text) == 0);
    REQUIRE(tt::run_command(tt::tessera_binary() + " formats --json", &json) == 0);
    for (const OutputFormat& f : output_formats()) {
        CAPTURE(f.name);
        CHECK(has(text, f.name + (f.aliases.empty() ? ": " : " (also ")));
        CHECK(has(text, "holds: " + f.holds.text()));
        CHECK(has(json, "{\"name\": \"" + f.name + "\""));
        for (const std::string& e : f.extensions) {
            CHECK(has(text, e));
            CHECK(has(json, "\"" + e + "\""));
        }
    }
    CHECK(has(text, "jpeg (also jpg): .jpg or .jpeg"));
    CHECK(has(text, "holds: u8 samples; 1 or 3 bands; at most 65535x65535"));
    CHECK(has(json, "\"shards\": true"));
    CHECK(json.rfind("[", 0) == 0);
}
