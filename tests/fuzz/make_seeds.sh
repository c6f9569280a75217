#!/bin/sh
# Regenerates the fuzz seed corpora in tests/fuzz/corpus/<target>/: small
# valid files of each format the loaders read (libvips and GDAL command-line
# tools) and pipelines (valid and broken). Every file stays under a few KB.
# Crashing inputs that fuzzing found are kept beside them as crash-*; this
# script leaves those alone. Run from anywhere: tests/fuzz/make_seeds.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
c=$here/corpus
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
export VIPS_WARNING=0
for d in load_jpeg load_png load_tiff load_webp gdal_load pipeline; do
    mkdir -p "$c/$d"
    find "$c/$d" -type f ! -name 'crash-*' -delete
done

# Base images: a zone plate (grey), three bands of it shifted (colour), 16-bit
# and float versions, and one wider than the fuzz window (256).
vips zone "$t/z.v" 40 28
vips linear "$t/z.v" "$t/g.v" 127 128 --uchar
vips flip "$t/g.v" "$t/gf.v" horizontal
vips flip "$t/g.v" "$t/gv.v" vertical
vips bandjoin "$t/g.v $t/gf.v $t/gv.v" "$t/rgb.v"
vips bandjoin "$t/rgb.v $t/g.v" "$t/rgba.v"
vips linear "$t/z.v" "$t/g16.v" 30000 32768 --uchar=false
vips cast "$t/g16.v" "$t/u16.v" ushort
vips cast "$t/z.v" "$t/f32.v" float
vips zone "$t/zw.v" 300 20
vips linear "$t/zw.v" "$t/wide.v" 127 128 --uchar

j=$c/load_jpeg
vips jpegsave "$t/g.v" "$j/grey.jpg" --Q 50 --strip
vips jpegsave "$t/rgb.v" "$j/rgb.jpg" --Q 50 --strip
vips jpegsave "$t/rgb.v" "$j/rgb-444.jpg" --Q 50 --strip --subsample-mode off
vips jpegsave "$t/rgb.v" "$j/progressive.jpg" --Q 50 --strip --interlace
vips jpegsave "$t/rgb.v" "$j/restart.jpg" --Q 50 --strip --restart-interval 1
vips jpegsave "$t/rgb.v" "$j/optimized.jpg" --Q 50 --strip --optimize-coding
vips jpegsave "$t/wide.v" "$j/wide.jpg" --Q 30 --strip
vips colourspace "$t/rgb.v" "$t/cmyk.v" cmyk 2>/dev/null &&
    vips jpegsave "$t/cmyk.v" "$j/cmyk.jpg" --Q 50 --strip || true  # libvips path, not streamed

p=$c/load_png
vips pngsave "$t/g.v" "$p/grey.png"
vips pngsave "$t/rgb.v" "$p/rgb.png"
vips pngsave "$t/rgba.v" "$p/rgba.png"
vips pngsave "$t/u16.v" "$p/grey16.png"
vips pngsave "$t/rgb.v" "$p/interlaced.png" --interlace
vips pngsave "$t/rgb.v" "$p/palette.png" --palette
vips pngsave "$t/g.v" "$p/bitdepth1.png" --bitdepth 1
vips pngsave "$t/wide.v" "$p/wide.png"

f=$c/load_tiff
vips tiffsave "$t/g.v" "$f/strip.tif"
vips tiffsave "$t/rgb.v" "$f/deflate.tif" --compression deflate
vips tiffsave "$t/rgb.v" "$f/lzw-predictor.tif" --compression lzw --predictor horizontal
vips tiffsave "$t/rgb.v" "$f/tiled-jpeg.tif" --tile --tile-width 16 --tile-height 16 --compression jpeg --Q 50
vips tiffsave "$t/u16.v" "$f/tiled16.tif" --tile --tile-width 16 --tile-height 16 --compression deflate
vips tiffsave "$t/f32.v" "$f/float.tif" --compression deflate --predictor float
vips tiffsave "$t/g.v" "$f/pyramid.tif" --tile --tile-width 16 --tile-height 16 --pyramid --compression deflate
vips tiffsave "$t/g.v" "$f/packbits.tif" --compression packbits
vips tiffsave "$t/wide.v" "$f/wide.tif" --compression deflate --tile --tile-width 64 --tile-height 16

w=$c/load_webp
vips webpsave "$t/rgb.v" "$w/lossy.webp" --Q 50
vips webpsave "$t/rgb.v" "$w/lossless.webp" --lossless
vips webpsave "$t/rgba.v" "$w/alpha.webp" --Q 50
vips webpsave "$t/g.v" "$w/grey.webp" --Q 50

# GeoTIFFs (and a few other GDAL rasters) with a georeference.
geo="-a_srs EPSG:32631 -a_ullr 500000 4000000 500400 3999720 -q"
G=$c/gdal_load
vips tiffsave "$t/g.v" "$t/g.tif"
vips tiffsave "$t/rgb.v" "$t/rgb.tif"
vips tiffsave "$t/u16.v" "$t/u16.tif"
vips tiffsave "$t/f32.v" "$t/f32.tif"
gdal_translate $geo "$t/g.tif" "$G/byte.tif"
gdal_translate $geo -a_nodata 0 -co TILED=YES -co BLOCKXSIZE=16 -co BLOCKYSIZE=16 -co COMPRESS=DEFLATE "$t/rgb.tif" "$G/tiled-nodata.tif"
gdal_translate $geo -co COMPRESS=LZW -co PREDICTOR=2 "$t/u16.tif" "$G/uint16-lzw.tif"
gdal_translate $geo -a_nodata -9999 -co COMPRESS=DEFLATE -co PREDICTOR=3 "$t/f32.tif" "$G/float32.tif"
gdal_translate $geo -co PHOTOMETRIC=RGB -co ALPHA=YES "$t/rgb.tif" "$t/rgb-tmp.tif"
gdal_translate -q -b 1 -b 2 -b 3 -b 1 -co ALPHA=YES -co COMPRESS=DEFLATE "$t/rgb-tmp.tif" "$G/alpha.tif"
gdal_translate $geo -co INTERLEAVE=BAND -co COMPRESS=DEFLATE "$t/rgb.tif" "$G/band-interleaved.tif"
gdal_translate $geo -of AAIGrid "$t/g.tif" "$t/grid.asc" && cp "$t/grid.asc" "$G/grid.asc"
gdal_translate -q -of GTiff -a_srs EPSG:4326 -a_ullr 2 49 3 48 -co COMPRESS=DEFLATE --config GDAL_TIFF_INTERNAL_MASK YES \
    -mask 1 "$t/g.tif" "$G/internal-mask.tif"

# Pipelines: valid ones over every op, and broken ones (for the structure).
P=$c/pipeline
cat >"$P/black.json" <<'J'
{"version": 1, "nodes": [{"id": "a", "op": "black", "width": 40, "height": 30, "bands": 3, "value": [1, 2, 3]}]}
J
cat >"$P/insert-embed.json" <<'J'
{"version": 1,
 "execution": {"tile": [32, 32], "threads": 1, "memory_mb": 0, "cache_mb": 16},
 "nodes": [
  {"id": "base", "op": "black", "width": 100, "height": 80, "bands": 1},
  {"id": "img", "op": "load", "path": "a.pgm"},
  {"id": "big", "op": "embed", "inputs": ["img"], "x": 5, "y": -1, "width": 20, "height": 10, "extend": "copy"},
  {"id": "ins", "op": "insert", "inputs": ["base", "img", "big"], "at": [[1, 2], [90, 75]]},
  {"id": "cut", "op": "extract_area", "inputs": ["ins"], "left": 3, "top": 4, "width": 50, "height": 40, "cache": true},
  {"id": "small", "op": "shrink", "inputs": ["cut"], "hshrink": 2, "vshrink": 3},
  {"id": "wide", "op": "cast", "inputs": ["small"], "format": "f32"},
  {"id": "grid", "op": "arrayjoin", "inputs": ["small", "cut"], "across": 2, "shim": 1, "halign": "centre", "background": [7]},
  {"id": "out", "op": "save", "inputs": ["grid"], "path": "out.png"}]}
J
cat >"$P/merge.json" <<'J'
{"version": 1, "nodes": [
  {"id": "a", "op": "gdal_load", "path": "geo.tif"},
  {"id": "b", "op": "gdal_load", "path": "geo.tif", "mask": true, "bands": [1]},
  {"id": "m", "op": "merge", "inputs": ["a", "a"], "method": "max", "nodata": 0, "res": [0.05], "resampling": "bilinear"},
  {"id": "n", "op": "merge", "inputs": ["b", "b"], "method": "sum", "bounds": [1.9, 47.9, 3.1, 49.05], "tap": true, "dtype": "float32", "resampling": "cubic"}]}
J
cat >"$P/formats.json" <<'J'
{"version": 1, "nodes": [
  {"id": "a", "op": "black", "width": 17, "height": 9, "bands": 2, "format": "i16", "value": [-3, 4]},
  {"id": "b", "op": "cast", "inputs": ["a"], "format": "u8"},
  {"id": "c", "op": "embed", "inputs": ["b"], "x": -4, "y": 3, "width": 30, "height": 20, "extend": "mirror"}]}
J
printf '{"version": 1, "nodes": [{"id": "a", "op": "black", "width": 4' >"$P/truncated.json"
printf '{"version": 1, "nodes": [{"id": "a", "op": "nosuchop"}]}' >"$P/unknown-op.json"
printf '{"version": 1, "nodes": [{"id": "a", "op": "black", "width": "wide", "height": 2}]}' >"$P/wrong-type.json"
printf '{"version": 1, "nodes": [{"id": "a", "op": "black", "width": 2147483647, "height": 2147483647, "bands": 1000, "format": "f64"}]}' >"$P/overflow.json"
printf '{"version": 1, "nodes": [{"id": "a", "op": "cast", "inputs": ["b"], "format": "u8"}, {"id": "b", "op": "cast", "inputs": ["a"], "format": "u8"}]}' >"$P/cycle.json"
printf '{"version": 2}' >"$P/version.json"
printf '[1, 2, {"nodes": null}]' >"$P/not-object.json"
ls -l "$c"/* | awk '$5 > 8192 {print "seed too large:", $0; bad=1} END {exit bad}'
echo "seeds: $(find "$c" -type f | wc -l) files in $c"
