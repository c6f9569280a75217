// OME-Zarr (NGFF 0.4 on Zarr v2) output and the zarr_load source (issue
// 21), checked by readers nobody here wrote: zarr-python (Debian's
// python3-zarr 2.13) opens every level with the right shape, dtype, chunks
// and pixels (level 0 = the input, each level below = the 2x2 rounded mean
// of the one above, computed in numpy); GDAL's Zarr driver (GDAL 3.6.2
// here; the driver is in GDAL since 3.4) reads level 0; the NGFF keys are
// checked by hand (python3-jsonschema is not installed, so the NGFF 0.4
// schema in ../shared/data/schemas is not applied). zarr_load reads what
// zarr-python wrote (blosc, zstd, zlib, none; 2-D and 3-D; '.' and '/'
// separators) and this writer's own stores at any level.
#include <doctest/doctest.h>

#include <deque>
#include <fstream>

#include "support.hpp"
#include "tessera/io/formats.hpp"

namespace fs = std::filesystem;
using tessera::Buffer;
using tessera::channel_names_list;
using tessera::Evaluator;
using tessera::Graph;
using tessera::io_stats;
using tessera::NodeId;
using tessera::Params;
using tessera::standard_registry;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const char* kPython = "/usr/bin/python3";

// Runs a Python script (written into dir) with args; its output in *out.
int python(const tt::TempDir& dir, const std::string& name, const std::string& script, const std::string& args,
           std::string* out) {
    std::ofstream(dir / name) << script;
    return tt::run_command(std::string(kPython) + " " + (dir / name).string() + " " + args + " 2>&1", out);
}

// The input as raw samples (interleaved, native order), for numpy.
void save_raw(const vips::VImage& im, const fs::path& file) {
    std::size_t n = 0;
    void* p = im.write_to_memory(&n);
    std::ofstream(file, std::ios::binary).write(static_cast<const char*>(p), std::streamsize(n));
    g_free(p);
}

// zarr-python opens the store: every level's shape (C, H >> L, W >> L
// rounded down, to one chunk), dtype, chunks; level 0 equals the raw
// input, level L + 1 the rounded 2x2 mean of level L; the NGFF keys.
const char* kCheckStore = R"PY(
import json, sys
import numpy as np, zarr
store, raw, w, h, c, dtype, tile, unit, sx, sy, names = sys.argv[1:12]
w, h, c, tile, sx, sy = int(w), int(h), int(c), int(tile), float(sx), float(sy)
g = zarr.open_group(store, mode="r")
a = json.load(open(store + "/.zattrs"))
ms = a["multiscales"][0]
assert ms["version"] == "0.4", ms
assert [x["name"] for x in ms["axes"]] == ["c", "y", "x"], ms["axes"]
assert [x["type"] for x in ms["axes"]] == ["channel", "space", "space"], ms["axes"]
for ax in ms["axes"][1:]:
    assert ax.get("unit", "") == unit, ax
levels = []
W, H = w, h
while True:
    levels.append((W, H))
    if (W <= tile and H <= tile) or W < 2 or H < 2:
        break
    W, H = W // 2, H // 2
assert [d["path"] for d in ms["datasets"]] == [str(i) for i in range(len(levels))], ms["datasets"]
for i, d in enumerate(ms["datasets"]):
    t = d["coordinateTransformations"]
    assert t == [{"type": "scale", "scale": [1, sy * 2**i, sx * 2**i]}], t
om = a["omero"]
assert len(om["channels"]) == c
want = names.split(",") if names != "-" else ["Channel %d" % i for i in range(c)]
assert [ch["label"] for ch in om["channels"]] == want, om["channels"]
hi = {"uint8": 255, "uint16": 65535, "float32": 1}[dtype]
for ch in om["channels"]:
    assert ch["window"] == {"min": 0, "max": hi, "start": 0, "end": hi}, ch
ref = np.fromfile(raw, dtype=dtype).reshape(h, w, c).transpose(2, 0, 1)
assert sorted(k for k in g.array_keys()) == sorted(str(i) for i in range(len(levels)))
prev = None
for i, (W, H) in enumerate(levels):
    z = g[str(i)]
    assert z.shape == (c, H, W), (i, z.shape)
    assert z.dtype == np.dtype(dtype), z.dtype
    assert z.chunks == (c, tile, tile), z.chunks
    assert z.fill_value == 0 and z.order == "C"
    px = z[:]
    if i == 0:
        want = ref
    else:
        q = prev[:, : 2 * H, : 2 * W]
        if dtype == "float32":
            s = q[:, 0::2, 0::2].astype(np.float64) + q[:, 1::2, 0::2] + q[:, 0::2, 1::2] + q[:, 1::2, 1::2]
            want = (s / 4).astype(np.float32)
        else:
            s = q[:, 0::2, 0::2].astype(np.int64) + q[:, 1::2, 0::2] + q[:, 0::2, 1::2] + q[:, 1::2, 1::2]
            want = ((s + 2) >> 2).astype(dtype)
    if not np.array_equal(px, want):
        bad = np.argwhere(px != want)[0]
        sys.exit("level %d differs at %s: %s, want %s" % (i, bad, px[tuple(bad)], want[tuple(bad)]))
    prev = px
    # an edge chunk is whole, its part outside the level 0
    last = z.store[str(i) + "/0/%d/%d" % ((H - 1) // tile, (W - 1) // tile)]
    blob = z.compressor.decode(last) if z.compressor else last
    assert len(blob) == c * tile * tile * np.dtype(dtype).itemsize
    edge = np.frombuffer(blob, dtype=dtype).reshape(c, tile, tile)
    assert not edge[:, H - (H - 1) // tile * tile:, :].any() and not edge[:, :, W - (W - 1) // tile * tile:].any()
print("OK", len(levels), "levels", z.compressor)
)PY";

struct Kind {
    VipsBandFormat vips;
    const char* numpy;
    int bands;
};

// Saves `im` as NAME.ome.zarr with `p`; returns the store's path.
fs::path save_store(const tt::TempDir& dir, const vips::VImage& im, const std::string& name, Params p,
                    int threads = 2) {
    Graph g(standard_registry());
    NodeId in = tt::load_image(g, dir, im, name + ".v");
    const fs::path out = dir / (name + ".ome.zarr");
    p.set("path", out.string());
    g.execution.threads = threads;
    g.add("save", {in}, p);
    Evaluator(g).run_sinks();
    return out;
}

}  // namespace

TEST_CASE("ome-zarr: zarr-python reads every level with its shape dtype chunks and pixels - every codec") {
    // odd sizes (levels halve rounding down, edge chunks padded), bands
    // narrower than the image, 8/16-bit and float, 1 to 4 bands, each codec
    const struct {
        int w, h;
        Kind k;
        int tile, band_width;
        std::string compression, pixel_size, unit, sx, sy, names;
        int level = 0;  // 0: the codec's default
    } cases[] = {
        {1001, 603, {VIPS_FORMAT_UCHAR, "uint8", 3}, 256, 600, "", "0.325 um", "micrometer", "0.325", "0.325", "-"},
        {777,
         1203,
         {VIPS_FORMAT_USHORT, "uint16", 1},
         128,
         300,
         "zstd",
         "0.5,0.52 nm",
         "nanometer",
         "0.5",
         "0.52",
         "DAPI"},
        {300, 211, {VIPS_FORMAT_FLOAT, "float32", 2}, 64, 16384, "deflate", "", "", "1", "1", "a b,c\"d"},
        {515, 257, {VIPS_FORMAT_USHORT, "uint16", 4}, 96, 200, "blosc-zstd", "", "", "1", "1", "-"},
        {130, 70, {VIPS_FORMAT_UCHAR, "uint8", 1}, 32, 64, "none", "2 mm", "millimeter", "2", "2", "-"},
        {300, 200, {VIPS_FORMAT_UCHAR, "uint8", 3}, 64, 16384, "zstd", "", "", "1", "1", "-", 19},
        {300, 200, {VIPS_FORMAT_UCHAR, "uint8", 3}, 64, 16384, "", "", "", "1", "1", "-", 9},
    };
    for (const auto& c : cases) {
        CAPTURE(c.w);
        CAPTURE(c.compression);
        tt::TempDir dir;
        vips::VImage im = tt::pattern(c.w, c.h, c.k.bands, VIPS_FORMAT_UCHAR, c.w);
        if (c.k.vips == VIPS_FORMAT_USHORT) im = (im * 257 + 3).cast(VIPS_FORMAT_USHORT);
        if (c.k.vips == VIPS_FORMAT_FLOAT) im = (im / 255.0).cast(VIPS_FORMAT_FLOAT);
        Params p{{"tile_width", std::int64_t(c.tile)},
                 {"tile_height", std::int64_t(c.tile)},
                 {"band_width", std::int64_t(c.band_width)}};
        if (!c.compression.empty()) p.set("compression", c.compression);
        if (c.level > 0) p.set("level", std::int64_t(c.level));
        if (!c.pixel_size.empty()) p.set("pixel_size", c.pixel_size);
        if (c.names != "-") p.set("channel_names", channel_names_list(c.names));  // "a b,c\"d": [a b, c"d]
        const fs::path store = save_store(dir, im, "s", p);
        save_raw(im, dir / "in.raw");
        std::string out;
        const std::string args = store.string() + " " + (dir / "in.raw").string() + " " + std::to_string(c.w) + " " +
                                 std::to_string(c.h) + " " + std::to_string(c.k.bands) + " " + c.k.numpy + " " +
                                 std::to_string(c.tile) + " '" + c.unit + "' " + c.sx + " " + c.sy + " '" +
                                 (c.names == "a b,c\"d" ? std::string("a b,c\"d") : c.names) + "'";
        CHECK_MESSAGE(python(dir, "check.py", kCheckStore, args, &out) == 0, out);
        CHECK(has(out, "OK"));
        // the level is the codec's, in its numcodecs config: zstd's default
        // is numcodecs' 3, blosc's clevel 5
        const std::string zarray = tt::slurp(store / "0" / ".zarray");
        CAPTURE(zarray);
        if (c.compression == "zstd") CHECK(has(zarray, "\"level\": " + std::to_string(c.level > 0 ? c.level : 3)));
        if (c.compression.empty() || c.compression == "blosc-zstd")
            CHECK(has(zarray, "\"clevel\": " + std::to_string(c.level > 0 ? c.level : 5)));
        // nothing else beside the store: no temporary left
        int entries = 0;
        for (auto& e : fs::directory_iterator(dir.path)) entries += e.path().filename().string()[0] == '.';
        CHECK(entries == 0);
    }
}

TEST_CASE("ome-zarr: thread count and band width never change a chunk file") {
    tt::TempDir dir;
    vips::VImage im = tt::pattern(700, 500, 3, VIPS_FORMAT_UCHAR, 5);
    const fs::path a = save_store(dir, im, "a", {{"band_width", std::int64_t(16384)}}, 1);
    const fs::path b = save_store(dir, im, "b", {{"band_width", std::int64_t(256)}}, 3);
    int files = 0;
    for (auto& e : fs::recursive_directory_iterator(a)) {
        if (!e.is_regular_file()) continue;
        const fs::path rel = fs::relative(e.path(), a);
        CAPTURE(rel);
        if (rel == ".zattrs") continue;  // names the store (a, b)
        CHECK(tt::slurp(e.path()) == tt::slurp(b / rel));
        ++files;
    }
    CHECK(files == 3 * 2 + 2 * 1 + 1 + 1 + 3);  // chunks of 3 levels (3x2, 2x1, 1) + .zgroup + 3 .zarray
}

// GDAL 3.6's classic raster API shows a 3-D array's 2-D slices as
// subdatasets, ZARR:"ARRAY":/:INDEX (here the channel index).
TEST_CASE("ome-zarr: gdalinfo and GDAL's Zarr driver read level 0") {
    tt::TempDir dir;
    vips::VImage im = tt::pattern(520, 300, 1, VIPS_FORMAT_UCHAR, 9);
    im = (im * 200).cast(VIPS_FORMAT_USHORT);
    const fs::path store = save_store(dir, im, "g", {{"pixel_size", std::string("0.25 um")}});
    std::string out;
    const std::string slice = "ZARR:\"" + (store / "0").string() + "\":/:0";
    REQUIRE(tt::run_command("gdalinfo '" + slice + "' 2>&1", &out) == 0);
    CAPTURE(out);
    CHECK(has(out, "Driver: Zarr/Zarr"));
    CHECK(has(out, "Size is 520, 300"));
    CHECK(has(out, "Band 1 Block=256x256 Type=UInt16"));
    // and its pixels are the input's (python3-gdal)
    save_raw(im, dir / "in.raw");
    const std::string script = R"PY(
import sys
import numpy as np
from osgeo import gdal
d = gdal.Open(sys.argv[1])
a = d.ReadAsArray()
ref = np.fromfile(sys.argv[2], dtype="uint16").reshape(300, 520)
assert a.shape == ref.shape, a.shape
assert np.array_equal(a, ref)
print("OK")
)PY";
    CHECK_MESSAGE(python(dir, "gdal.py", script, "'" + slice + "' " + (dir / "in.raw").string(), &out) == 0, out);
}

TEST_CASE("ome-zarr: a failing run leaves no store and an old one untouched") {
    tt::TempDir dir;
    // a source that fails half-way: a zarr-python array with a damaged chunk
    std::string out;
    const std::string script = R"PY(
import sys, zarr, numpy as np
z = zarr.open(sys.argv[1], mode="w", shape=(600, 500), chunks=(100, 100), dtype="uint8")
z[:] = (np.arange(600 * 500) % 251).reshape(600, 500).astype("uint8")
open(sys.argv[1] + "/4.3", "wb").write(b"not a blosc chunk at all")
print("OK")
)PY";
    REQUIRE_MESSAGE(python(dir, "bad.py", script, (dir / "bad.zarr").string(), &out) == 0, out);
    const fs::path target = dir / "out.ome.zarr";
    auto run = [&](const fs::path& store) {
        Graph g(standard_registry());
        NodeId in = g.add("zarr_load", {}, {{"path", store.string()}});
        g.add("save", {in},
              {{"path", target.string()}, {"tile_width", std::int64_t(64)}, {"tile_height", std::int64_t(64)}});
        Evaluator(g).run_sinks();
    };
    const std::string e = tt::error_of([&] { run(dir / "bad.zarr"); });
    CHECK(has(e, "4.3"));
    CHECK(has(e, "blosc"));
    CHECK_FALSE(fs::exists(target));
    // a good run, then a failing one over it: the old store stays whole
    fs::remove(dir / "bad.zarr" / "4.3");  // a missing chunk is fill_value: fine
    run(dir / "bad.zarr");
    REQUIRE(fs::exists(target / "0" / ".zarray"));
    const std::string before = tt::slurp(target / "0" / "0" / "3" / "3");
    std::ofstream(dir / "bad.zarr" / "4.3", std::ios::binary) << "still not blosc";
    CHECK(has(tt::error_of([&] { run(dir / "bad.zarr"); }), "4.3"));
    CHECK(tt::slurp(target / "0" / "0" / "3" / "3") == before);
    CHECK(fs::exists(target / ".zattrs"));
    for (auto& entry : fs::directory_iterator(dir.path)) {
        CAPTURE(entry.path());
        CHECK(entry.path().filename().string()[0] != '.');  // no temporary folder left
    }
}

TEST_CASE("zarr_load: zarr-python arrays - blosc zstd zlib none - 2-D and 3-D and a plane of 5-D - any tile grid") {
    tt::TempDir dir;
    // the arrays and their samples as raw files, written by zarr-python
    const std::string script = R"PY(
import sys, zarr, numpy as np, numcodecs
d = sys.argv[1]
rng = np.random.default_rng(7)
a = rng.integers(0, 65535, size=(3, 190, 230), dtype=np.uint16)
a.transpose(1, 2, 0).tofile(d + "/c3.raw")
zarr.array(a, chunks=(2, 64, 50), compressor=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1), store=d + "/blosc.zarr")
zarr.array(a, chunks=(3, 70, 70), compressor=numcodecs.Zstd(level=3), store=d + "/zstd.zarr", dimension_separator="/")
b = rng.integers(0, 255, size=(101, 77), dtype=np.uint8)
b.tofile(d + "/c1.raw")
zarr.array(b, chunks=(32, 32), compressor=numcodecs.Zlib(level=6), store=d + "/zlib.zarr")
f = rng.random(size=(64, 80), dtype=np.float32)
f.tofile(d + "/f.raw")
z = zarr.array(f, chunks=(30, 30), compressor=None, store=d + "/none.zarr", fill_value=0.5)
import os
os.remove(d + "/none.zarr/1.1")  # a missing chunk reads as fill_value
f[30:60, 30:60] = 0.5
f.tofile(d + "/f.raw")
# a TCZYX image as bioformats2raw lays it out (NGFF axes t, c, z, y, x),
# chunks holding several planes and channels, so a plane starts inside one
s = rng.integers(0, 65535, size=(2, 3, 5, 70, 90), dtype=np.uint16)
s[1, :, 4].transpose(1, 2, 0).tofile(d + "/t1z4.raw")
g = zarr.open_group(d + "/tczyx.zarr", mode="w")
g.array("0", s, chunks=(1, 2, 3, 32, 32), compressor=numcodecs.Zstd(level=1), dimension_separator="/")
axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}] + \
       [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
g.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
    {"type": "scale", "scale": [1, 1, 2, 0.5, 0.5]}]}]}]
print("OK")
)PY";
    std::string out;
    REQUIRE_MESSAGE(python(dir, "make.py", script, dir.path.string(), &out) == 0, out);
    std::deque<std::string> kept;  // a memory image wraps these bytes (copy_memory does not copy it)
    auto raw = [&](const std::string& name, int w, int h, int bands, VipsBandFormat f) {
        const std::string& bytes = kept.emplace_back(tt::slurp(dir / name));
        return vips::VImage::new_from_memory(const_cast<char*>(bytes.data()), bytes.size(), w, h, bands, f);
    };
    for (const char* store : {"blosc.zarr", "zstd.zarr"}) {
        CAPTURE(store);
        Graph g(standard_registry());
        NodeId n = g.add("zarr_load", {}, {{"path", (dir / store).string()}});
        CHECK(g.info(n).bands == 3);
        CHECK(g.info(n).format == tessera::Format::u16);
        tt::check_pixels(g, n, raw("c3.raw", 230, 190, 3, VIPS_FORMAT_USHORT));
    }
    {
        Graph g(standard_registry());
        NodeId n = g.add("zarr_load", {}, {{"path", (dir / "zlib.zarr").string()}});
        tt::check_pixels(g, n, raw("c1.raw", 77, 101, 1, VIPS_FORMAT_UCHAR));
        NodeId m = g.add("zarr_load", {}, {{"path", (dir / "none.zarr").string()}});
        tt::check_pixels(g, m, raw("f.raw", 80, 64, 1, VIPS_FORMAT_FLOAT));
        NodeId s = g.add("zarr_load", {},
                         {{"path", (dir / "tczyx.zarr").string()}, {"z", std::int64_t(4)}, {"t", std::int64_t(1)}});
        CHECK(g.info(s).bands == 3);
        tt::check_pixels(g, s, raw("t1z4.raw", 90, 70, 3, VIPS_FORMAT_USHORT));
        const std::string e = tt::error_of([&] {
            g.add("zarr_load", {}, {{"path", (dir / "tczyx.zarr").string()}, {"z", std::int64_t(5)}});
        });
        CHECK_MESSAGE(has(e, "key 'z': 5 is past"), e);
        CHECK_MESSAGE(has(e, "5 focal planes; give 0 to 4"), e);
    }
}

TEST_CASE("zarr_load: our own store at every level feeds a pipeline") {
    tt::TempDir dir;
    vips::VImage im = tt::pattern(600, 400, 3, VIPS_FORMAT_UCHAR, 3);
    const fs::path store =
        save_store(dir, im, "own", {{"tile_width", std::int64_t(128)}, {"tile_height", std::int64_t(128)}});
    Graph g(standard_registry());
    NodeId l0 = g.add("zarr_load", {}, {{"path", store.string()}});
    tt::check_pixels(g, l0, im);
    // level 1 is the pyramid TIFF's level 1 (the same 2x2 rule, rounded down)
    NodeId l1 = g.add("zarr_load", {}, {{"path", store.string()}, {"level", std::int64_t(1)}});
    CHECK(g.info(l1).width == 300);
    CHECK(g.info(l1).height == 200);
    im.tiffsave((dir / "p.tif").c_str(), vips::VImage::option()->set("pyramid", true)->set("tile", true));
    vips::VImage p1 = vips::VImage::new_from_file((dir / "p.tif").c_str(), vips::VImage::option()->set("page", 1));
    tt::check_pixels(g, l1, p1);
    const std::string e = tt::error_of([&] {
        g.add("zarr_load", {}, {{"path", store.string()}, {"level", std::int64_t(4)}});
    });
    CHECK_MESSAGE(has(e, "has 4 levels (0 to 3)"), e);
}

// size_z and size_t: 12 bands as 2 channels x 3 focal planes x 2 time
// points (band c + 2 (z + 3 t)) are a (t, c, z, y, x) array at every level,
// a chunk per plane; zarr-python sees each plane's pixels where the band
// order puts them, level 1 the 2x2 mean of each plane; zarr_load reads
// one plane back by its z and t. z alone gives (c, z, y, x).
const char* kCheckPlanes = R"PY(
import json, sys
import numpy as np, zarr
store, raw, w, h, B, T, C, Z, tile, axes = sys.argv[1:11]
w, h, B, T, C, Z, tile = map(int, (w, h, B, T, C, Z, tile))
g = zarr.open_group(store, mode="r")
ms = json.load(open(store + "/.zattrs"))["multiscales"][0]
names = [x["name"] for x in ms["axes"]]
assert "".join(names) == axes, names
assert [x["type"] for x in ms["axes"]] == [{"t": "time", "c": "channel"}.get(n, "space") for n in names], ms["axes"]
units = {x["name"]: x.get("unit") for x in ms["axes"]}
assert units.get("z", "micrometer") == "micrometer" and units["x"] == "micrometer" and units.get("t") is None, units
want_scale = {"t": 1, "c": 1, "z": 2.5, "y": 0.5, "x": 0.5}
for i, d in enumerate(ms["datasets"]):
    sc = d["coordinateTransformations"][0]["scale"]
    assert sc == [want_scale[n] * (2**i if n in "yx" else 1) for n in names], (i, sc)
assert len(json.load(open(store + "/.zattrs"))["omero"]["channels"]) == C
# the input's bands, as (T, C, Z, H, W)
ref = np.fromfile(raw, dtype="uint16").reshape(h, w, T, Z, C).transpose(2, 4, 3, 0, 1)
def shaped(a):  # the axes written, as (T, C, Z, H, W)
    if "t" not in axes: a = a[None]
    if "z" not in axes: a = a[:, :, None]
    return a
l0 = g["0"]
want_chunks = tuple({"t": 1, "c": C, "z": 1, "y": tile, "x": tile}[n] for n in names)
assert l0.chunks == want_chunks, l0.chunks
px0 = shaped(l0[:])
assert px0.shape == (T, C, Z, h, w), px0.shape
assert np.array_equal(px0, ref), "level 0 differs"
q = ref[..., : h // 2 * 2, : w // 2 * 2].astype(np.int64)
mean = ((q[..., 0::2, 0::2] + q[..., 1::2, 0::2] + q[..., 0::2, 1::2] + q[..., 1::2, 1::2] + 2) >> 2).astype("uint16")
assert np.array_equal(shaped(g["1"][:]), mean), "level 1 differs"
print("OK", axes, l0.shape)
)PY";

TEST_CASE("ome-zarr: size_z and size_t make t c z y x arrays that zarr-python and zarr_load read by plane") {
    tt::TempDir dir;
    struct Case {
        int t, z;
        const char* axes;
    };
    for (const Case k : {Case{2, 3, "tczyx"}, Case{1, 3, "czyx"}, Case{2, 1, "tcyx"}}) {
        const int C = 2, B = C * k.z * k.t;
        const std::string axes = k.axes;
        CAPTURE(axes);
        vips::VImage im = (tt::pattern(150, 110, B, VIPS_FORMAT_UCHAR, B) * 250).cast(VIPS_FORMAT_USHORT);
        const std::string name = std::string("planes_") + k.axes;
        const fs::path store = save_store(dir, im, name,
                                          {{"tile_width", std::int64_t(64)},
                                           {"tile_height", std::int64_t(64)},
                                           {"compression", std::string("zstd")},
                                           {"size_z", std::int64_t(k.z)},
                                           {"size_t", std::int64_t(k.t)},
                                           {"pixel_size", std::string("0.5,0.5,2.5 um")},
                                           {"channel_names", std::vector<std::string>{"DAPI", "GFP"}}});
        save_raw(im, dir / (name + ".raw"));
        std::string out;
        const std::string args = store.string() + " " + (dir / (name + ".raw")).string() + " 150 110 " +
                                 std::to_string(B) + " " + std::to_string(k.t) + " " + std::to_string(C) + " " +
                                 std::to_string(k.z) + " 64 " + k.axes;
        CHECK_MESSAGE(python(dir, "planes.py", kCheckPlanes, args, &out) == 0, out);
        CHECK(has(out, "OK"));
        // zarr_load reads plane (z, t) back: bands 2 (z + Z t) and the next
        Graph g(standard_registry());
        const int z = k.z - 1, t = k.t - 1;
        NodeId l = g.add("zarr_load", {}, {{"path", store.string()}, {"z", std::int64_t(z)}, {"t", std::int64_t(t)}});
        const int b0 = C * (z + k.z * t);
        tt::check_pixels(g, l, im.extract_band(b0, vips::VImage::option()->set("n", C)));
        if (k.z == 1) {
            const std::string e = tt::error_of([&] {
                g.add("zarr_load", {}, {{"path", store.string()}, {"z", std::int64_t(1)}});
            });
            CHECK_MESSAGE(has(e, "has no z axis"), e);
        }
        const std::string e = tt::error_of([&] {
            g.add("zarr_load", {}, {{"path", store.string()}, {"t", std::int64_t(k.t)}});
        });
        CHECK_MESSAGE(has(e, k.t > 1 ? "key 't': " + std::to_string(k.t) + " is past" : "has no time axis"), e);
    }
}

TEST_CASE("ome-zarr: options and stores it cannot take are refused naming the key") {
    tt::TempDir dir;
    Graph g(standard_registry());
    NodeId in = tt::load_image(g, dir, tt::pattern(64, 64, 3));
    auto save = [&](Params p) {
        p.set("path", (dir / "x.ome.zarr").string());
        return tt::error_of([&] { g.add("save", {in}, p); });
    };
    CHECK(has(save({{"tile_width", std::int64_t(65)}}), "key 'tile_width': 65 is odd"));
    CHECK(has(save({{"compression", std::string("lzw")}}), "'lzw' is no Zarr codec"));
    CHECK(has(save({{"pixel_size", std::string("0.3")}}), "has no unit"));
    CHECK(has(save({{"pixel_size", std::string("-1 um")}}), "is not a size above 0"));
    CHECK(has(save({{"pixel_size", std::string("1 parsecs")}}), "unknown unit 'parsecs'"));
    CHECK(
        has(save({{"channel_names", std::vector<std::string>{"a", "b"}}}), "gives 2 names for an image of 3 channels"));
    CHECK(has(save({{"tile", false}}), "always tiles"));
    CHECK(has(save({{"level", std::int64_t(10)}}), "key 'level': 10 is over blosc's 9 in Zarr; use 1 to 9"));
    CHECK(has(save({{"compression", std::string("deflate")}, {"level", std::int64_t(12)}}), "over deflate's 9"));
    CHECK(has(save({{"compression", std::string("none")}, {"level", std::int64_t(1)}}), "not compression none"));
    CHECK(save({{"compression", std::string("zstd")}, {"level", std::int64_t(22)}}) == "(no error)");
    CHECK(save({{"compression", std::string("blosc-zstd")}, {"pixel_size", std::string("0.3,0.4 µm")}}) ==
          "(no error)");
    CHECK(has(save({{"size_z", std::int64_t(2)}}), "key 'size_z': the image's 3 bands do not split into 2 focal"));
    CHECK(has(save({{"size_t", std::int64_t(0)}}), "size_t"));
    CHECK(has(save({{"size_t", std::int64_t(3)}, {"channel_names", std::vector<std::string>{"a", "b", "c"}}}),
              "gives 3 names for an image of 1 channels"));
    // zarr_load
    auto load = [&](const fs::path& p) {
        return tt::error_of([&] { g.add("zarr_load", {}, {{"path", p.string()}}); });
    };
    fs::create_directories(dir / "v3.zarr");
    std::ofstream(dir / "v3.zarr" / "zarr.json") << "{}";
    CHECK(has(load(dir / "v3.zarr"), "Zarr v3"));
    CHECK(has(load(dir / "nothing"), "is not a folder"));
    fs::create_directories(dir / "f.zarr");
    std::ofstream(dir / "f.zarr" / ".zarray")
        << R"({"zarr_format": 2, "shape": [4, 4], "chunks": [2, 2], "dtype": "<u2", "order": "F", "compressor": null, "filters": null, "fill_value": 0})";
    CHECK(has(load(dir / "f.zarr"), "order 'F'"));
    std::ofstream(dir / "f.zarr" / ".zarray")
        << R"({"zarr_format": 2, "shape": [2, 3, 4, 4], "chunks": [1, 1, 2, 2], "dtype": "<u2", "order": "C", "compressor": null, "filters": null, "fill_value": 0})";
    CHECK(has(load(dir / "f.zarr"), "has 2 planes along axis 0"));
    std::ofstream(dir / "f.zarr" / ".zarray")
        << R"({"zarr_format": 2, "shape": [4, 4], "chunks": [2, 2], "dtype": ">u2", "order": "C", "compressor": null, "filters": null, "fill_value": 0})";
    CHECK(has(load(dir / "f.zarr"), "dtype '>u2'"));
    std::ofstream(dir / "f.zarr" / ".zarray")
        << R"({"zarr_format": 2, "shape": [4, 4], "chunks": [2, 2], "dtype": "<u2", "order": "C", "compressor": {"id": "lzma"}, "filters": null, "fill_value": 0})";
    CHECK(has(load(dir / "f.zarr"), "'lzma'"));
}

// The NGFF 0.4 JSON schemas (../shared/data/schemas/ngff-0.4, image and
// strict_image) applied to the .zattrs by a small draft 2020-12 validator of
// the keywords those two schemas use (python3-jsonschema is not installed
// here); it must also refuse a .zattrs broken on purpose, so that it is seen
// to check something.
TEST_CASE("ome-zarr: .zattrs validates against the NGFF 0.4 image and strict_image schemas - with t and z too") {
    tt::TempDir dir;
    const fs::path store = save_store(dir, tt::pattern(300, 200, 3), "v",
                                      {{"tile_width", std::int64_t(64)},
                                       {"tile_height", std::int64_t(64)},
                                       {"pixel_size", std::string("0.5 um")}});
    const std::string script = R"PY(
import json, sys, copy
schemas = sys.argv[1]
docs = {}
for n in ("image.schema", "strict_image.schema"):
    s = json.load(open(schemas + "/" + n))
    docs[s["$id"]] = s
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}
def is_type(v, t):
    if t == "number": return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "integer": return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])
def ok(v, s, root):
    if "$ref" in s:
        r = s["$ref"]
        if r.startswith("#/"):
            t = root
            for p in r[2:].split("/"): t = t[p]
            if not ok(v, t, root): return False
        else:
            if not ok(v, docs[r], docs[r]): return False
    for k in s:
        if k not in ("$ref", "$schema", "$id", "$defs", "title", "description", "type", "enum", "not", "properties",
                     "required", "items", "minItems", "maxItems", "uniqueItems", "contains", "minContains",
                     "maxContains", "oneOf", "allOf"):
            raise SystemExit("validator: unknown keyword " + k)
    if "type" in s and not is_type(v, s["type"]): return False
    if "enum" in s and v not in s["enum"]: return False
    if "not" in s and ok(v, s["not"], root): return False
    if "allOf" in s and not all(ok(v, x, root) for x in s["allOf"]): return False
    if "oneOf" in s and sum(ok(v, x, root) for x in s["oneOf"]) != 1: return False
    if isinstance(v, dict):
        if any(r not in v for r in s.get("required", [])): return False
        for k, sub in s.get("properties", {}).items():
            if k in v and not ok(v[k], sub, root): return False
    if isinstance(v, list):
        if len(v) < s.get("minItems", 0) or len(v) > s.get("maxItems", 1 << 30): return False
        if s.get("uniqueItems") and len({json.dumps(x, sort_keys=True) for x in v}) != len(v): return False
        if "items" in s and not all(ok(x, s["items"], root) for x in v): return False
        if "contains" in s:
            n = sum(ok(x, s["contains"], root) for x in v)
            if n < s.get("minContains", 1) or n > s.get("maxContains", 1 << 30): return False
    return True
for f in sys.argv[3:]:  # a (t, c, z, y, x) store's
    z = json.load(open(f))
    for sid in docs:
        assert ok(z, docs[sid], docs[sid]), "fails " + sid + ": " + f
a = json.load(open(sys.argv[2]))
for sid in docs:
    assert ok(a, docs[sid], docs[sid]), "fails " + sid
bad = copy.deepcopy(a); bad["multiscales"][0]["axes"][1]["type"] = "channel"; bad["multiscales"][0]["axes"][2]["type"] = "time"
assert not ok(bad, docs["https://ngff.openmicroscopy.org/0.4/schemas/image.schema"], docs["https://ngff.openmicroscopy.org/0.4/schemas/image.schema"])
bad = copy.deepcopy(a); del bad["multiscales"][0]["metadata"]
s = docs["https://ngff.openmicroscopy.org/0.4/schemas/strict_image.schema"]
assert not ok(bad, s, s)
bad = copy.deepcopy(a); bad["multiscales"][0]["datasets"][0]["coordinateTransformations"] = [{"type": "scale"}]
assert not ok(bad, s, s)
print("OK")
)PY";
    std::string out;
    const fs::path schemas = tt::shared_dir() / "data" / "schemas" / "ngff-0.4";
    if (!fs::exists(schemas / "image.schema")) {
        MESSAGE("no NGFF schemas in " << schemas.string() << " (../shared beside the checkout): not validated");
        return;
    }
    const fs::path stack = save_store(dir, tt::pattern(100, 80, 12), "stack",
                                      {{"size_z", std::int64_t(3)},
                                       {"size_t", std::int64_t(2)},
                                       {"pixel_size", std::string("0.5,0.5,2 um")}});
    CHECK_MESSAGE(python(dir, "schema.py", script,
                         schemas.string() + " " + (store / ".zattrs").string() + " " + (stack / ".zattrs").string(),
                         &out) == 0,
                  out);
    CHECK(has(out, "OK"));
}

TEST_CASE("zarr_load: a chunk shared by several tiles is decoded once - any tile grid and threads") {
    tt::TempDir dir;
    // 600x400 in chunks of 128: 5 x 4 = 20 chunk files (each holds the 3 channels)
    const vips::VImage im = tt::pattern(600, 400, 3, VIPS_FORMAT_UCHAR, 9);
    const fs::path store =
        save_store(dir, im, "c", {{"tile_width", std::int64_t(128)}, {"tile_height", std::int64_t(128)}});
    // the io statistics' "zarr: N chunks decoded (M served from the cache)"
    auto counts = [] {
        const std::string s = io_stats();
        const auto at = s.find("zarr: ");
        REQUIRE(at != std::string::npos);
        const long decoded = std::stol(s.substr(at + 6));
        const auto open = s.find('(', at);
        return std::pair{decoded, std::stol(s.substr(open + 1))};
    };
    Buffer want = tt::from_vips(im);
    // tiles of 64 and 96 meet each chunk 4 times or more; 128 once (read
    // past the cache); 256 covers whole chunks only
    for (const int tile : {64, 96, 128, 256})
        for (const int threads : {1, 2}) {
            CAPTURE(tile);
            CAPTURE(threads);
            Graph g(standard_registry());
            const NodeId n = g.add("zarr_load", {}, {{"path", store.string()}});
            const auto [d0, h0] = counts();
            const Buffer got = tt::render(g, n, tile, threads);
            const auto [d1, h1] = counts();
            CHECK(tt::max_abs_diff(got, want) == 0);
            CHECK(d1 - d0 == 20);  // every chunk once
            if (tile == 128 || tile == 256) CHECK(h1 - h0 == 0);
            if (tile == 64) CHECK(h1 - h0 > 20);  // the other tiles of each chunk were served from the cache
        }
}
