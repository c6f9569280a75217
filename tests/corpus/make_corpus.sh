#!/bin/sh
# Regenerates the hostile-input corpus of issue 5 (tests/corpus_test.cpp
# reads it): broken, mislabelled and malicious images in images/, broken
# pipelines in pipelines/. Valid images come from the libvips command line;
# the malicious bytes (headers claiming absurd sizes, tiles, geotransforms)
# are written by the Python below. Every file is small; what it claims is
# not. Run from anywhere: tests/corpus/make_corpus.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
export VIPS_WARNING=0
I=$here/images
P=$here/pipelines
rm -rf "$I" "$P"
mkdir -p "$I" "$P" "$I/folder.png"
touch "$I/folder.png/.keep"  # git keeps no empty folders

# Valid images to cut short: 120x80, bigger than one strip or tile.
vips zone "$t/z.v" 120 80
vips linear "$t/z.v" "$t/g.v" 127 128 --uchar
vips bandjoin "$t/g.v $t/g.v $t/g.v" "$t/rgb.v"
vips jpegsave "$t/rgb.v" "$t/ok.jpg" --Q 40 --strip
vips pngsave "$t/rgb.v" "$t/ok.png"
vips tiffsave "$t/rgb.v" "$t/ok.tif" --compression deflate
vips webpsave "$t/rgb.v" "$t/ok.webp" --Q 40
half() { head -c $(($(wc -c <"$1") / 2)) "$1" >"$2"; }
half "$t/ok.jpg" "$I/truncated.jpg"
half "$t/ok.png" "$I/truncated.png"
half "$t/ok.tif" "$I/truncated.tif"  # libtiff writes the directory last: it is cut off
half "$t/ok.webp" "$I/truncated.webp"
: >"$I/empty.jpg"
: >"$I/empty.png"
: >"$I/empty.tif"
vips pngsave "$t/rgb.v" "$I/png-named.jpg"
vips jpegsave "$t/g.v" "$I/jpeg-named.tif" --Q 40 --strip
cp "$t/ok.jpg" "$t/base.jpg"

python3 - "$I" "$t/base.jpg" <<'PY'
import math, struct, sys, zlib
out, base_jpg = sys.argv[1], sys.argv[2]

def write(name, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(data)

# --- PNG: a valid header claiming w x h RGBA over an empty image stream.
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def png_bomb(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
write("bomb.png", png_bomb(65535, 65535))

# --- JPEG: a valid small file whose frame header says 65500 x 65500.
jpg = bytearray(open(base_jpg, "rb").read())
sof = jpg.find(b"\xff\xc0")
struct.pack_into(">HH", jpg, sof + 5, 65500, 65500)
write("bomb.jpg", bytes(jpg))

# --- TIFF: little-endian, the directory right after the header, then the
# values that do not fit an entry, then the pixel data.
SHORT, LONG, DOUBLE = 3, 4, 12
def tiff(entries, data=b""):
    entries = sorted(entries)
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    extra = b""
    packed = []
    for tag, kind, values in entries:
        fmt = {SHORT: "H", LONG: "I", DOUBLE: "d"}[kind]
        raw = struct.pack("<%d%s" % (len(values), fmt), *values)
        packed.append((tag, kind, len(values), raw))
        if len(raw) > 4:
            extra += raw + b"\0" * (len(raw) % 2)
    data_at = extra_at + len(extra)
    ifd = struct.pack("<H", len(entries))
    extra_pos = extra_at
    for tag, kind, count, raw in packed:
        if len(raw) > 4:
            ifd += struct.pack("<HHII", tag, kind, count, extra_pos)
            extra_pos += len(raw) + len(raw) % 2
        else:
            ifd += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0")
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + extra, data_at

def tiled(w, h, tw, th, tiles, data_len, offset_shift=0, more=()):
    # grey 8-bit, uncompressed; `tiles` offsets all pointing at the data
    def build(data_at):
        return tiff([(256, LONG, [w]), (257, LONG, [h]), (258, SHORT, [8]), (259, SHORT, [1]),
                     (262, SHORT, [1]), (277, SHORT, [1]), (284, SHORT, [1]),
                     (322, LONG, [tw]), (323, LONG, [th]),
                     (324, LONG, [data_at + offset_shift] * tiles), (325, LONG, [data_len] * tiles)] + list(more))
    head, data_at = build(0)
    head, data_at2 = build(data_at)
    assert data_at == data_at2
    return head + bytes(range(256)) * (data_len // 256)

write("tile-zero.tif", tiled(64, 64, 0, 0, 1, 256))
write("tile-huge.tif", tiled(64, 64, 0x7FFFFFF0, 0x7FFFFFF0, 1, 256))
# a million pixels a side with one tile listed
write("dimensions-huge.tif", tiled(1000000, 1000000, 16, 16, 1, 256))
# a sound directory whose tiles lie past the end of the file
write("tiles-past-end.tif", tiled(64, 64, 16, 16, 16, 256, offset_shift=1 << 20))

def stripped(w, h, rows, compression, data, more=()):
    def build(data_at):
        return tiff([(256, LONG, [w]), (257, LONG, [h]), (258, SHORT, [8]), (259, SHORT, [compression]),
                     (262, SHORT, [1]), (273, LONG, [data_at]), (277, SHORT, [1]), (278, LONG, [rows]),
                     (279, LONG, [len(data)]), (284, SHORT, [1])] + list(more))
    head, data_at = build(0)
    head, _ = build(data_at)
    return head + data
# one deflate strip said to hold 60000 x 60000 pixels (3.6 GB decoded)
write("strip-bomb.tif", stripped(60000, 60000, 60000, 8, zlib.compress(b"\0" * 4096)))

# --- GeoTIFFs whose geotransform is broken: zero pixel size, NaN, infinite.
def geotiff(name, scale, tiepoint):
    geokeys = [1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32631]
    write(name, stripped(16, 16, 16, 1, bytes(range(256)),
                         more=[(33550, DOUBLE, scale), (33922, DOUBLE, tiepoint), (34735, SHORT, geokeys)]))
geotiff("geo-zero-scale.tif", [0.0, 0.0, 0.0], [0, 0, 0, 500000.0, 4000000.0, 0])
geotiff("geo-nan.tif", [math.nan, 10.0, 0.0], [0, 0, 0, 500000.0, math.nan, 0])
geotiff("geo-inf.tif", [10.0, 10.0, 0.0], [0, 0, 0, math.inf, 4000000.0, 0])
PY

# --- Pipelines: each broken in one way (the test says which node and key).
p() { printf '%s\n' "$2" >"$P/$1"; }
p malformed.json '{"version": 1, "nodes": [{"id": "a", "op": "black" "width": 4}]}'
p truncated.json '{"version": 1, "nodes": [{"id": "a", "op": "black", "width": 4'
p not-object.json '[{"id": "a", "op": "black"}]'
p unknown-op.json '{"version": 1, "nodes": [{"id": "blur1", "op": "no_such_op", "inputs": []}]}'
p unknown-param.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": 4, "colour": 1}]}'
p wrong-type.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": [4]}]}'
p out-of-range.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": 4}, {"id": "half", "op": "shrink", "inputs": ["canvas"], "hshrink": 0, "vshrink": 2}]}'
p too-big.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 10000000, "height": 10000000, "bands": 1024, "format": "f64"}]}'
p int-overflow.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 99999999999999999999, "height": 4}]}'
p cycle.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": 4}, {"id": "a", "op": "insert", "inputs": ["canvas", "b"], "at": [[0, 0]]}, {"id": "b", "op": "insert", "inputs": ["canvas", "a"], "at": [[0, 0]]}]}'
p unknown-input.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": 4}, {"id": "put", "op": "insert", "inputs": ["canvas", "ghost"], "at": [[0, 0]]}]}'
p duplicate-id.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": 4}, {"id": "canvas", "op": "black", "width": 8, "height": 8}]}'
p number-overflow.json '{"version": 1, "nodes": [{"id": "canvas", "op": "black", "width": 4, "height": 4, "value": [1e999]}]}'
p bad-image.json '{"version": 1, "nodes": [{"id": "tile7", "op": "load", "path": "../images/truncated.tif"}]}'

ls -l "$I" "$P" | awk '$5 > 16384 {print "corpus file too large:", $0; bad=1} END {exit bad}'
echo "corpus: $(find "$I" "$P" -type f | wc -l) files in $here"
