#!/usr/bin/env bash
# The gaussblur benchmark of the ops issue: a SIZExSIZE 8-bit image (black
# plus Gaussian noise, a tiled uncompressed TIFF, so both tools read it
# lazily) blurred with sigma 2 (min_ampl 0.2, integer precision: both
# tools' defaults) by `tessera run` (load -> gaussblur -> save) and by
# `vips gaussblur`, both writing a tiled uncompressed BigTIFF (both stream
# it; a .v would be held whole by libvips's writer), interleaved run by
# run, wall time, peak RSS and CPU time (user + system; steadier than the
# wall on a shared machine) from /usr/bin/time, median of RUNS. Before timing, the two outputs are
# compared (largest |difference|: vips runs its u8 vector path, which is
# within a level or two of the exact integer formula tessera computes;
# with VIPS_NOVECTOR=1 they are equal).
#
# usage: tools/bench-blur.sh [RUNS=3] [SIZE=20000] [BANDS=1]
# env:   DATA (default /tmp/tessera-blur-bench), TESSERA (the binary),
#        THREADS (tessera --threads; default all cores, as vips)
# Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
size=${2:-20000}
bands=${3:-1}
data=${DATA:-/tmp/tessera-blur-bench}
threads=${THREADS:-0}
tessera=${TESSERA:-$PWD/build/tools/tessera}
[ -x "$tessera" ] || cmake --build build --target tessera
mkdir -p "$data"
in="$data/in-$size-$bands.tif"
if [ ! -f "$in" ]; then
    # noise around 40 on black: most of the image dark, every pixel different
    vips gaussnoise "$data/noise.v" "$size" "$size" --sigma 20 --mean 40
    if [ "$bands" -gt 1 ]; then
        vips bandjoin "$data/noise.v $data/noise.v $data/noise.v" "$data/noise3.v"
        mv "$data/noise3.v" "$data/noise.v"
    fi
    vips cast "$data/noise.v" "$data/noise8.v" uchar
    vips tiffsave "$data/noise8.v" "$in" --tile --tile-width 256 --tile-height 256 --bigtiff
    rm -f "$data/noise.v" "$data/noise8.v"
fi
cat >"$data/blur.json" <<JSON
{"version": 1,
 "nodes": [
   {"id": "in", "op": "load", "path": "$in"},
   {"id": "blur", "op": "gaussblur", "inputs": ["in"], "sigma": 2},
   {"id": "out", "op": "save", "inputs": ["blur"], "path": "$data/tessera.tif", "tile": true, "bigtiff": "yes"}]}
JSON

run_tool() {  # tool -> "seconds maxrss_kb cpu_seconds"
    local cmd
    case $1 in
        tessera) cmd="$tessera run $data/blur.json -q --threads $threads" ;;
        vips) cmd="vips gaussblur $in $data/vips.tif[tile,tile-width=256,tile-height=256,bigtiff] 2" ;;
    esac
    sync
    /usr/bin/time -f "%e %M %U %S" -o "$data/time.txt" sh -c "$cmd" >/dev/null
    awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$data/time.txt"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "== pixel check: tessera gaussblur vs vips gaussblur, sigma 2 (machine shared: load $(cut -d' ' -f1-3 /proc/loadavg))"
run_tool tessera >/dev/null
run_tool vips >/dev/null
vips subtract "$data/tessera.tif" "$data/vips.tif" "$data/d.v"
vips abs "$data/d.v" "$data/ad.v"
echo "sizes: $(vipsheader "$data/tessera.tif") / $(vipsheader "$data/vips.tif"); max |diff| $(vips max "$data/ad.v")"

tools=(tessera vips)
printf "%-8s %10s %10s %12s\n" tool "wall s" "CPU s" "peak RSS MB"
declare -A secs=() rss=() cpus=()
for ((i = 0; i < runs; i++)); do
    for t in "${tools[@]}"; do
        read -r s m c <<<"$(run_tool "$t")"
        secs[$t]+="$s "
        rss[$t]+="$m "
        cpus[$t]+="$c "
    done
done
for t in "${tools[@]}"; do
    s=$(tr ' ' '\n' <<<"${secs[$t]}" | grep . | median)
    m=$(tr ' ' '\n' <<<"${rss[$t]}" | grep . | median)
    c=$(tr ' ' '\n' <<<"${cpus[$t]}" | grep . | median)
    printf "%-8s %10.2f %10.2f %12.0f   (wall runs: %s)\n" "$t" "$s" "$c" "$(echo "$m / 1024" | bc -l)" "${secs[$t]}"
done
rm -f "$data/tessera.tif" "$data/vips.tif" "$data/d.v" "$data/ad.v"
