#!/usr/bin/env bash
# The merge benchmark of the georeferenced-raster issue: 16 uint16 5000x5000
# GeoTIFFs (4x4 grid, 10 % overlap, nodata 0) and their 2x2 subset, merged by
#   tessera merge (tiled deflate GeoTIFF, and --format cog),
#   rasterio.merge (python3-rasterio, written as a tiled deflate GeoTIFF),
#   gdal_merge.py (-co TILED=YES -co COMPRESS=DEFLATE),
#   gdalbuildvrt + gdal_translate -of COG (deflate),
# interleaved run by run, wall time and peak RSS (/usr/bin/time), median of
# RUNS. Before timing, tessera's and rasterio's 2x2 outputs are compared
# pixel for pixel (both 'first'; they must be equal).
#
# usage: tools/bench-merge.sh [RUNS=3] [GRIDS="2 4"]
# env:   DATA (default /tmp/tessera-merge-bench), TESSERA (the binary)
# Not part of the test suite: ~30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
grids=${2:-"2 4"}
data=${DATA:-/tmp/tessera-merge-bench}
tessera=${TESSERA:-$PWD/build/tools/tessera}
py=/usr/bin/python3
[ -x "$tessera" ] || cmake --build build
$py -c "import rasterio" 2>/dev/null || { echo "python3-rasterio is not installed (apt-get install python3-rasterio)"; exit 2; }
mkdir -p "$data/out"
$py tools/bench/make_rasters.py "$data/in" 4 5000 500 >/dev/null

inputs() {  # the grid's files, row-major
    local g=$1 r c
    for ((r = 0; r < g; r++)); do for ((c = 0; c < g; c++)); do echo "$data/in/r_${r}_${c}.tif"; done; done
}

run_tool() {  # tool grid -> "seconds maxrss_kb"
    local tool=$1 g=$2 out="$data/out/$1-$2.tif" files
    files=$(inputs "$g" | tr '\n' ' ')
    rm -f "$out" "$data/out/$1-$2.vrt"
    local cmd
    case $tool in
        tessera) cmd="$tessera merge $files -o $out -q" ;;
        tessera-cog) cmd="$tessera merge $files -o $out --format cog -q" ;;
        rasterio) cmd="$py tools/bench/rasterio_merge.py $out $files" ;;
        gdal_merge) cmd="$py /usr/bin/gdal_merge.py -q -o $out -co TILED=YES -co COMPRESS=DEFLATE -co BIGTIFF=IF_SAFER -n 0 -a_nodata 0 $files" ;;
        vrt-cog) cmd="sh -c 'gdalbuildvrt -q $data/out/$tool-$g.vrt $files && gdal_translate -q -of COG -co COMPRESS=DEFLATE $data/out/$tool-$g.vrt $out'" ;;
    esac
    sync
    /usr/bin/time -f "%e %M" -o "$data/time.txt" sh -c "$cmd" >/dev/null
    cat "$data/time.txt"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "== pixel check (2x2): tessera merge vs rasterio.merge, method first"
run_tool tessera 2 >/dev/null
run_tool rasterio 2 >/dev/null
$py - "$data/out/tessera-2.tif" "$data/out/rasterio-2.tif" <<'PY'
import sys
import numpy as np
from osgeo import gdal
a, b = (gdal.Open(p) for p in sys.argv[1:3])
assert (a.RasterXSize, a.RasterYSize) == (b.RasterXSize, b.RasterYSize), "sizes differ"
assert a.GetGeoTransform() == b.GetGeoTransform(), "geotransforms differ"
for y in range(0, a.RasterYSize, 1024):
    h = min(1024, a.RasterYSize - y)
    x = a.GetRasterBand(1).ReadAsArray(0, y, a.RasterXSize, h)
    z = b.GetRasterBand(1).ReadAsArray(0, y, a.RasterXSize, h)
    assert (x == z).all(), "pixels differ in rows %d..%d" % (y, y + h)
print("equal: %dx%d" % (a.RasterXSize, a.RasterYSize))
PY

tools=(tessera tessera-cog rasterio gdal_merge vrt-cog)
printf "%-6s %-12s %10s %12s\n" grid tool "wall s" "peak RSS MB"
for g in $grids; do
    declare -A secs=() rss=()
    for ((i = 0; i < runs; i++)); do
        for t in "${tools[@]}"; do
            read -r s m <<<"$(run_tool "$t" "$g")"
            secs[$t]+="$s "
            rss[$t]+="$m "
        done
    done
    for t in "${tools[@]}"; do
        s=$(tr ' ' '\n' <<<"${secs[$t]}" | grep . | median)
        m=$(tr ' ' '\n' <<<"${rss[$t]}" | grep . | median)
        printf "%-6s %-12s %10.2f %12.0f   (runs: %s)\n" "${g}x$g" "$t" "$s" "$(echo "$m / 1024" | bc -l)" "${secs[$t]}"
    done
    unset secs rss
done
