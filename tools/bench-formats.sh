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
# Every run writes a new output. Removing tens of thousands of files makes
# the next runs that create many (Deep Zoom folder, OME-Zarr) spend seconds
# more in the kernel on this machine's ext4 (online discard): a 10 000-file
# Deep Zoom run took 1.4 system-s with no removal before it and 7.7-8.5
# after one, even 60 s after it and a sync; at seed (157 000 files) 32
# system-s became 147. So every run's output is kept (in its own folder)
# until the scale's end, but for the zstd ones at seed (about 20 GB each),
# which are removed after their run (one file, or the last job of a round).
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
trap 'rm -rf "$log" "${out:?}"/*' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
canvas() { case $1 in mid) echo "24000 20000" ;; seed) echo "95000 80000" ;; esac; }

# A job's output name and its format options.
target() {
    case $1 in
    tiff-*) echo "slide.tif" ;;
    ome-*) echo "slide.ome.tif" ;;
    dz) echo "slide.dzi" ;;
    dz-zip) echo "slide.zip" ;;
    zarr-*) echo "slide.ome.zarr" ;;
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
    rm -rf "${out:?}"/*
    sync
}

for s in $scales; do
    csv=$data/$s/positions.csv
    [ -f "$csv" ] || { echo "no $s dataset at $csv (the kit's make_scans; see tools/bench-stitch.sh)"; exit 2; }
    read -r cw ch <<<"$(canvas "$s")"
    echo "== $s: $(($(wc -l <"$csv") - 1)) scans -> ${cw}x${ch}, $runs runs interleaved"
    for j in $jobs; do : >"$log/$s.$j"; done
    fresh
    for i in $(seq 1 "$runs"); do
        for j in $jobs; do
            d=$out/$i/$j  # (each run and job its own folder: see the header)
            mkdir -p "$d"
            sync
            # shellcheck disable=SC2046
            /usr/bin/time -f "%e %U %S %M" -o "$log/time" "$tessera" stitch "$csv" --canvas "$cw" "$ch" \
                $(options "$j") -q -o "$d/$(target "$j")"
            read -r wall user sys rss <"$log/time"
            bytes=$(du -sb "$d"/slide* | awk '{n += $1} END {printf "%.0f", n}')
            case $j in *-zstd) [ "$s" = mid ] || rm -rf "${d:?}" ;; esac
            echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}') $rss $bytes" >>"$log/$s.$j"
            echo "run $i $j: $wall s wall, $user user + $sys system CPU-s, $((rss / 1024)) MB, $((bytes / 1048576)) MiB out"
        done
    done
    fresh
    echo "| $s | wall s | CPU-s | peak RSS MB | output MiB | wall / peer |"
    echo "|---|---|---|---|---|---|"
    for j in $jobs; do cut -d' ' -f1 "$log/$s.$j" | median >"$log/$s.$j.wall"; done
    for j in $jobs; do
        w=$(cat "$log/$s.$j.wall")
        c=$(cut -d' ' -f2 "$log/$s.$j" | median)
        m=$(cut -d' ' -f3 "$log/$s.$j" | median)
        b=$(cut -d' ' -f4 "$log/$s.$j" | median)
        p=$(peer "$j")
        r="—"
        if [ -n "$p" ] && [ -f "$log/$s.$p.wall" ]; then
            r="$(awk -v a="$w" -v b="$(cat "$log/$s.$p.wall")" 'BEGIN {printf "%.2f", a / b}') vs $p"
        fi
        echo "| $j | $w | $c | $((m / 1024)) | $((b / 1048576)) | $r |"
    done
done
