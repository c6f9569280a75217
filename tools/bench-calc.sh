#!/usr/bin/env bash
# The NDVI benchmark of the ops issue: NDVI = (B08 - B04) / (B08 + B04) of
# two SIZExSIZE uint16 bands (tiled uncompressed GeoTIFFs, so both tools read
# them block by block; nodata 0 in a corner wedge) to a float32 tiled TIFF,
# by `tessera run` (gdal_load x2 -> calc -> save) and by gdal_calc.py
# (numpy, on /usr/bin/python3; its --NoDataValue rule is calc's nodata),
# interleaved run by run, wall time and peak RSS (/usr/bin/time), median of
# RUNS (gdal_calc.py's divisor is kept above 0, as it computes nodata pixels
# as 0 * result + nodata, NaN where the result is 0 / 0). Before timing, the two outputs are compared (largest |difference|:
# both divide in double and store float32, so 0).
#
# usage: tools/bench-calc.sh [RUNS=3] [SIZE=20000] [THREADS=0 (all)]
# env:   DATA (default /tmp/tessera-calc-bench), TESSERA (the binary)
# Disk: 2 x SIZE^2 x 2 bytes of input, 2 x SIZE^2 x 4 of outputs (20000:
# 1.6 GB + 3.2 GB). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
size=${2:-20000}
threads=${3:-0}
data=${DATA:-/tmp/tessera-calc-bench}
tessera=${TESSERA:-$PWD/build/tools/tessera}
py=/usr/bin/python3
gdal_calc=$(command -v gdal_calc.py || true)
[ -x "$tessera" ] || cmake --build build --target tessera
mkdir -p "$data"
b04="$data/B04-$size.tif"
b08="$data/B08-$size.tif"
if [ ! -f "$b08" ]; then
    # reflectance-like bands, written a strip of rows at a time
    "$py" - "$size" "$b04" "$b08" <<'PY'
import sys
import numpy as np
from osgeo import gdal, osr
size = int(sys.argv[1])
srs = osr.SpatialReference(); srs.ImportFromEPSG(32632)
for path, band in ((sys.argv[2], 4), (sys.argv[3], 8)):
    ds = gdal.GetDriverByName("GTiff").Create(path, size, size, 1, gdal.GDT_UInt16,
                                              ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=YES"])
    ds.SetGeoTransform((300000, 10, 0, 5000040, 0, -10))
    ds.SetProjection(srs.ExportToWkt())
    b = ds.GetRasterBand(1)
    b.SetNoDataValue(0)
    x = np.arange(size, dtype=np.int64)
    for y0 in range(0, size, 1024):
        y = np.arange(y0, min(size, y0 + 1024), dtype=np.int64)[:, None]
        v = (300 + (x * 7 + y * 3) % 1900) if band == 4 else (200 + (x * 13 + y * 29) % 5800)
        v = np.where(x + (size - y) < size // 5, 0, v)
        b.WriteArray(v.astype(np.uint16), 0, y0)
    ds = None
PY
fi
cat >"$data/ndvi.json" <<JSON
{"version": 1,
 "nodes": [
   {"id": "red", "op": "gdal_load", "path": "$b04"},
   {"id": "nir", "op": "gdal_load", "path": "$b08"},
   {"id": "ndvi", "op": "calc", "inputs": ["red", "nir"], "names": "B04 B08",
    "expression": "(B08 - B04) / (B08 + B04)", "nodata": -2},
   {"id": "out", "op": "save", "inputs": ["ndvi"], "path": "$data/tessera.tif", "tile": true}]}
JSON

run_tool() {  # tool -> "seconds maxrss_kb"
    local cmd
    case $1 in
        tessera) cmd="$tessera run $data/ndvi.json -q --threads $threads" ;;
        gdal_calc) cmd="$py $gdal_calc --quiet --overwrite -A $b04 -B $b08 --calc='(1.0*B - A) / maximum(1.0*B + A, 1)' \
--NoDataValue=-2 --type=Float32 --co TILED=YES --co BIGTIFF=YES --outfile=$data/gdal.tif" ;;
    esac
    rm -f "$data/$1.tif" "$data/gdal.tif"
    sync
    /usr/bin/time -f "%e %M" -o "$data/time.txt" sh -c "$cmd" >/dev/null
    cat "$data/time.txt"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

tools=(tessera)
[ -n "$gdal_calc" ] && tools+=(gdal_calc) || echo "gdal_calc.py not installed: tessera alone"
echo "== NDVI of two ${size}x${size} u16 bands; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$gdal_calc" ]; then
    echo "== pixel check: tessera calc vs gdal_calc.py"
    run_tool tessera >/dev/null
    mv "$data/tessera.tif" "$data/tessera-check.tif"
    run_tool gdal_calc >/dev/null
    "$py" - "$data/tessera-check.tif" "$data/gdal.tif" <<'PY'
import sys
import numpy as np
from osgeo import gdal
a, b = (gdal.Open(p) for p in sys.argv[1:3])
worst = 0.0
for y0 in range(0, a.RasterYSize, 2048):
    h = min(2048, a.RasterYSize - y0)
    d = np.abs(a.ReadAsArray(0, y0, a.RasterXSize, h).astype(np.float64) - b.ReadAsArray(0, y0, b.RasterXSize, h))
    worst = max(worst, float(np.nanmax(d)))
print(f"sizes {a.RasterXSize}x{a.RasterYSize} / {b.RasterXSize}x{b.RasterYSize}; max |diff| {worst}")
PY
    rm -f "$data/tessera-check.tif"
fi
printf "%-10s %10s %12s\n" tool "wall s" "peak RSS MB"
declare -A secs=() rss=()
for ((i = 0; i < runs; i++)); do
    for t in "${tools[@]}"; do
        read -r s m <<<"$(run_tool "$t")"
        secs[$t]+="$s "
        rss[$t]+="$m "
    done
done
for t in "${tools[@]}"; do
    s=$(tr ' ' '\n' <<<"${secs[$t]}" | grep . | median)
    m=$(tr ' ' '\n' <<<"${rss[$t]}" | grep . | median)
    printf "%-10s %10.2f %12.0f   (runs: %s)\n" "$t" "$s" "$(echo "$m / 1024" | bc -l)" "${secs[$t]}"
done
rm -f "$data/tessera.tif" "$data/gdal.tif"
