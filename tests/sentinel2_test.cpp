// Sentinel-2-shaped merges, scaled down 10x: two tiles of one UTM zone on
// one pixel grid (a product tile is 10980 px at 10 m with 980 px shared with
// its neighbour; here 1098 px with 98), uint16, nodata 0 with an empty
// orbit-edge wedge, and the 20 m band (549 px) merged onto the 10 m grid.
// Where JP2OpenJPEG is present one tile is also read as a lossless JPEG 2000,
// and where python3-rasterio is installed its merge of the same files is the
// oracle for the 10 m arrays.
#include <doctest/doctest.h>

#include <fstream>

#include "geo_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

constexpr int kTile = 1098, kShift = 1000;  // tile size and grid step, 10 m pixels

// Tile `col` (0 west, 1 east) at resolution `res` (10 or 20 m): reflectance-
// like values, 0 in a wedge at the tile's south-west (no data in the orbit's
// swath edge).
geo::Raster s2_tile(int col, int res) {
    const int scale = res / 10;
    geo::Raster r;
    r.width = r.height = kTile / scale;
    r.format = Format::u16;
    r.srs = "EPSG:32632";
    r.nodata = 0;
    r.transform = {300000.0 + col * kShift * 10, double(res), 0, 5000040, 0, -double(res)};
    r.value = [col, scale](int x, int y, int) {
        const int X = x * scale, Y = y * scale;             // in 10 m pixels of the tile
        if (col == 1 && X + (kTile - Y) < 300) return 0.0;  // the wedge, east tile only
        return double(1000 + col * 3000 + (X * 7 + Y * 3) % 2000 + (scale - 1) * 500);
    };
    return r;
}

Buffer render(Graph& g, NodeId n) { return tt::render(g, n, 256, 2); }

bool have(const std::string& cmd) { return tt::run_command("command -v " + cmd + " >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("sentinel2: two tiles of one zone merge onto their shared grid - first and last in the overlap") {
    tt::TempDir dir;
    std::string west = geo::write_vrt(dir.path, "T32TLP_B04", s2_tile(0, 10));
    std::string east = geo::write_vrt(dir.path, "T32TMP_B04", s2_tile(1, 10));
    Graph g(standard_registry());
    NodeId w = g.add("gdal_load", {}, {{"path", west}}), e = g.add("gdal_load", {}, {{"path", east}});
    NodeId first = g.add("merge", {w, e}, {{"method", std::string("first")}});
    NodeId last = g.add("merge", {w, e}, {{"method", std::string("last")}});
    const ImageInfo& info = g.info(first);
    CHECK(info.width == kShift + kTile);
    CHECK(info.height == kTile);
    CHECK(info.geo->transform == std::array<double, 6>{300000, 10, 0, 5000040, 0, -10});
    Buffer f = render(g, first), l = render(g, last);
    auto west_px = s2_tile(0, 10).value, east_px = s2_tile(1, 10).value;
    // one row through the overlap, one through the east tile's wedge
    for (int y : {10, kTile - 5})
        for (int x = 0; x < info.width; ++x) {
            const bool in_w = x < kTile, in_e = x >= kShift;
            const double vw = in_w ? west_px(x, y, 0) : 0, ve = in_e ? east_px(x - kShift, y, 0) : 0;
            const double want_first = vw != 0 ? vw : ve, want_last = ve != 0 ? ve : vw;
            if (geo::sample(f, x, y) != want_first || geo::sample(l, x, y) != want_last) {
                CAPTURE(x);
                CAPTURE(y);
                CHECK(geo::sample(f, x, y) == want_first);
                CHECK(geo::sample(l, x, y) == want_last);
                break;
            }
        }

    if (!have("/usr/bin/python3") || tt::run_command("/usr/bin/python3 -c 'import rasterio' 2>/dev/null") != 0) {
        MESSAGE("python3-rasterio not installed: comparison with rasterio.merge skipped");
        return;
    }
    // rasterio.merge of the same files, as raw little-endian uint16
    for (const char* method : {"first", "last"}) {
        const fs::path raw = dir / (std::string("rasterio-") + method + ".raw");
        const std::string script = "import sys, rasterio; from rasterio.merge import merge\n"
                                   "a, t = merge([rasterio.open(p) for p in sys.argv[3:]], method=sys.argv[2])\n"
                                   "assert tuple(t)[:6] == (10.0, 0.0, 300000.0, 0.0, -10.0, 5000040.0), t\n"
                                   "open(sys.argv[1], 'wb').write(a.astype('<u2').tobytes())\n";
        std::ofstream(dir / "m.py") << script;
        REQUIRE(tt::run_command("/usr/bin/python3 " + (dir / "m.py").string() + " " + raw.string() + " " + method +
                                " " + west + " " + east + " 2>&1") == 0);
        std::ifstream in(raw, std::ios::binary);
        std::vector<std::uint16_t> want(std::size_t(info.width) * info.height);
        in.read(reinterpret_cast<char*>(want.data()), std::streamsize(want.size() * 2));
        REQUIRE(in.gcount() == std::streamsize(want.size() * 2));
        const Buffer& got = std::string(method) == "first" ? f : l;
        std::size_t differ = 0;
        for (int y = 0; y < info.height; ++y)
            for (int x = 0; x < info.width; ++x)
                differ += geo::sample(got, x, y) != want[std::size_t(y) * info.width + x];
        CAPTURE(method);
        CHECK(differ == 0);
    }
}

TEST_CASE("sentinel2: the 20 m band merged at 10 m is resampled nearest onto the 10 m grid") {
    tt::TempDir dir;
    std::string west = geo::write_vrt(dir.path, "T32TLP_B11", s2_tile(0, 20));
    std::string east = geo::write_vrt(dir.path, "T32TMP_B11", s2_tile(1, 20));
    Graph g(standard_registry());
    NodeId w = g.add("gdal_load", {}, {{"path", west}}), e = g.add("gdal_load", {}, {{"path", east}});
    NodeId m = g.add("merge", {w, e}, {{"res", std::vector<double>{10}}});
    const ImageInfo& info = g.info(m);
    CHECK(info.width == kShift + kTile);
    CHECK(info.height == kTile);
    CHECK(info.geo->transform[1] == 10);
    Buffer out = render(g, m);
    auto west_px = s2_tile(0, 20).value, east_px = s2_tile(1, 20).value;
    std::size_t checked = 0;
    for (int y = 0; y < info.height; y += 7)
        for (int x = 0; x < info.width; x += 3) {
            // each 20 m pixel covers 2x2 output pixels
            const double vw = x < kTile ? west_px(x / 2, y / 2, 0) : 0;
            const double ve = x >= kShift ? east_px((x - kShift) / 2, y / 2, 0) : 0;
            const double want = vw != 0 ? vw : ve;
            ++checked;
            if (geo::sample(out, x, y) != want) {
                CAPTURE(x);
                CAPTURE(y);
                REQUIRE(geo::sample(out, x, y) == want);
            }
        }
    CHECK(checked > 50000);
}

TEST_CASE("sentinel2: a JPEG 2000 tile merges like its GeoTIFF twin") {
    if (!have("gdal_translate") || tt::run_command("gdalinfo --formats | grep -q JP2OpenJPEG") != 0) {
        MESSAGE("gdal_translate or GDAL's JP2OpenJPEG driver missing: JPEG 2000 test skipped");
        return;
    }
    tt::TempDir dir;
    std::string west = geo::write_vrt(dir.path, "T32TLP_B04", s2_tile(0, 10));
    std::string east_vrt = geo::write_vrt(dir.path, "T32TMP_B04", s2_tile(1, 10));
    const std::string jp2 = (dir / "T32TMP_B04.jp2").string();
    REQUIRE(tt::run_command("gdal_translate -q -of JP2OpenJPEG -co REVERSIBLE=YES -co QUALITY=100 " + east_vrt + " " +
                            jp2) == 0);
    Graph g(standard_registry());
    NodeId w = g.add("gdal_load", {}, {{"path", west}});
    NodeId j = g.add("gdal_load", {}, {{"path", jp2}}), v = g.add("gdal_load", {}, {{"path", east_vrt}});
    CHECK(g.info(j).geo->transform == g.info(v).geo->transform);
    CHECK(g.info(j).geo->nodata == g.info(v).geo->nodata);
    NodeId from_jp2 = g.add("merge", {w, j}), from_vrt = g.add("merge", {w, v});
    CHECK(tt::max_abs_diff(render(g, from_jp2), render(g, from_vrt)) == 0);
}
