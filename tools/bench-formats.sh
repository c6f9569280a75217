#!/usr/bin/env bash
# The viewers' formats figure: one stitch written as each streaming format,
# interleaved run by run in one session, medians of RUNS: wall, CPU-seconds
# and peak RSS (/usr/bin/time), and each format's wall against the pyramid
# TIFF's at the same compression (the zip against the Deep Zoom folder).
#   JPEG Q85:  pyramid TIFF, OME-TIFF, Deep Zoom folder, Deep Zoom zip
#   zstd (LEVEL, default 3: numcodecs' default, so the seed fits in the
#   session; the TIFF's own default is 9): pyramid TIFF, OME-TIFF, OME-Zarr
# The datasets are the kit's scanned mosaics (make_scans): mid (120 JPEG
# scans 3200x2200 -> 24000x20000) and seed (2000 -> 95000x80000).
# Every run writes a new output (the last one is removed and synced
# outside the timing: replacing a store or folder of tens of thousands of
# files costs its own seconds).
#
# usage: tools/bench-formats.sh [RUNS=3] [SCALES="mid seed"]
# env:   DATA (default /tmp/tessera-bench), OUT (where outputs go; default
#        DATA/formats-out: seed's zstd outputs are about 20 GB each),
#        LEVEL (zstd level), JOBS (a subset of the job names below),
#        TESSERA (the binary). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
scales=${2:-"mid seed"}
data=${DATA:-/tmp/tessera-bench}
out=${OUT:-$data/formats-out}
level=${LEVEL:-3}
jobs=${JOBS:-"tiff-jpeg ome-jpeg dz dz-zip tiff-zstd ome-zstd zarr-zstd"}
tessera=${TESSERA:-$PWD/build/tools/tessera}
[ -x "$tessera" ] || cmake --build build
mkdir -p "$out"
log=$(mktemp -d)
trap 'rm -rf "$log" "$out"/slide*' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
canvas() { case $1 in mid) echo "24000 20000" ;; seed) echo "95000 80000" ;; esac; }

# A job's output name and its format options.
target() {
    case $1 in
    tiff-*) echo "$out/slide.tif" ;;
    ome-*) echo "$out/slide.ome.tif" ;;
    dz) echo "$out/slide.dzi" ;;
    dz-zip) echo "$out/slide.zip" ;;
    zarr-*) echo "$out/slide.ome.zarr" ;;
    esac
}
options() {
    case $1 in
    *-jpeg) echo "--tile-size 256 --compression jpeg --quality 85 --pyramid" ;;
    dz | dz-zip) echo "--quality 85" ;;
    *-zstd) echo "--tile-size 256 --compression zstd --level $level --pyramid" ;;
    esac
}
# The job each is compared with.
peer() {
    case $1 in
    ome-jpeg | dz) echo tiff-jpeg ;;
    dz-zip) echo dz ;;
    ome-zstd | zarr-zstd) echo tiff-zstd ;;
    *) echo "" ;;
    esac
}
fresh() {
    rm -rf "$out"/slide*
    sync
}

for s in $scales; do
    csv=$data/$s/positions.csv
    [ -f "$csv" ] || { echo "no $s dataset at $csv (the kit's make_scans; see tools/bench-stitch.sh)"; exit 2; }
    read -r cw ch <<<"$(canvas "$s")"
    echo "== $s: $(($(wc -l <"$csv") - 1)) scans -> ${cw}x${ch}, $runs runs interleaved"
    for j in $jobs; do : >"$log/$s.$j"; done
    for i in $(seq 1 "$runs"); do
        for j in $jobs; do
            fresh
            # shellcheck disable=SC2046
            /usr/bin/time -f "%e %U %S %M" -o "$log/time" "$tessera" stitch "$csv" --canvas "$cw" "$ch" \
                $(options "$j") -q -o "$(target "$j")"
            read -r wall user sys rss <"$log/time"
            bytes=$(du -sb "$out"/slide* | awk '{n += $1} END {print n}')
            echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}') $rss $bytes" >>"$log/$s.$j"
            echo "run $i $j: $wall s wall, $user + $sys CPU-s, $((rss / 1024)) MB, $((bytes / 1048576)) MiB out"
        done
    done
    fresh
    echo "| $s | wall s | CPU-s | peak RSS MB | output MiB | wall / peer |"
    echo "|---|---|---|---|---|---|"
    for j in $jobs; do
        w=$(cut -d' ' -f1 "$log/$s.$j" | median)
        c=$(cut -d' ' -f2 "$log/$s.$j" | median)
        m=$(cut -d' ' -f3 "$log/$s.$j" | median)
        b=$(cut -d' ' -f4 "$log/$s.$j" | median)
        echo "$w" >"$log/$s.$j.wall"
        p=$(peer "$j")
        r="—"
        if [ -n "$p" ] && [ -f "$log/$s.$p.wall" ]; then
            r="$(awk -v a="$w" -v b="$(cat "$log/$s.$p.wall")" 'BEGIN {printf "%.2f", a / b}') vs $p"
        fi
        echo "| $j | $w | $c | $((m / 1024)) | $((b / 1048576)) | $r |"
    done
done
