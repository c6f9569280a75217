#!/usr/bin/env bash
# The sharding figures of the MPI issue: the same job as 1 process x 2
# threads and as `mpirun -np 2` x 1 thread (the same 2 cores), interleaved
# run by run, medians of RUNS; every sharded output is first checked
# byte-identical to the single-process one.
#   stitch: the kit's mid dataset (120 JPEG tiles 3200x2200 -> 24000x20000),
#           JPEG Q85 pyramid TIFF, 256-pixel tiles
#   dzi:    the same mid stitch as a Deep Zoom pyramid (JPEG Q75 tiles of 254,
#           overlap 1: about 10000 files, which every rank writes itself)
#   zarr:   the same mid stitch as OME-Zarr (zstd chunks of 256, every level;
#           about 9900 chunk files, which every rank writes itself), and
#   tiffzstd: the same as a zstd pyramid TIFF, to compare it with
#   ometiff: the same as a zstd OME-TIFF pyramid (SubIFDs, planar: the
#           writer rank assembles it, as the pyramid TIFF's)
#   merge:  the merge benchmark's 2x2 subset (4 uint16 5000^2 GeoTIFFs ->
#           9500^2), deflate GeoTIFF and COG
# Prints wall time and peak RSS (largest process, /usr/bin/time) per run,
# the medians and their ratio, and each rank's line from the last sharded
# run (tiles, busy time, time in the sink, bytes sent per tile).
#
# usage: tools/bench-mpi.sh [RUNS=5] [JOBS="stitch dzi merge cog"]
# env:   DATA (default /tmp/tessera-bench), MERGE_DATA (default
#        /tmp/tessera-merge-bench), BENCH_KIT (default ../shared/bench),
#        TESSERA (the binary). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
jobs=${2:-"stitch dzi merge cog"}
kit=${BENCH_KIT:-../shared/bench}
data=${DATA:-/tmp/tessera-bench}
merge_data=${MERGE_DATA:-/tmp/tessera-merge-bench}
tessera=${TESSERA:-$PWD/build/tools/tessera}
[ -x "$tessera" ] || cmake --build build
command -v mpirun >/dev/null || { echo "no mpirun (apt-get install openmpi-bin)"; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Each timed run writes a new output, as a first run does: replacing an old
# store or Deep Zoom folder removes its ~10 000 files on the committing
# rank, a serial tail that the last round's OME-Zarr figure had measured
# (rank 0 2-4 s after rank 1's end). sync: the previous run's dirty pages
# are not written back during this one.
fresh() {
    rm -rf "$1" "${1%.dzi}_files"
    sync
}

args_for() {
    case $1 in
    stitch | dzi | zarr | tiffzstd | ometiff)
        [ -f "$data/mid/positions.csv" ] || DATA=$data "$kit/stitch-bench.sh" mid 0 >/dev/null 2>&1 || true
        [ -f "$data/mid/positions.csv" ] || { echo "no mid dataset in $data (run the kit's make_scans)" >&2; exit 2; }
        if [ "$1" = zarr ] || [ "$1" = tiffzstd ] || [ "$1" = ometiff ]; then
            echo "stitch $data/mid/positions.csv --canvas 24000 20000 --tile-size 256 --compression zstd --pyramid"
        elif [ "$1" = stitch ]; then
            echo "stitch $data/mid/positions.csv --canvas 24000 20000 --tile-size 256 --compression jpeg --quality 85 --pyramid"
        else
            echo "stitch $data/mid/positions.csv --canvas 24000 20000"
        fi
        ;;
    merge | cog)
        [ -f "$merge_data/in/r_1_1.tif" ] || /usr/bin/python3 tools/bench/make_rasters.py "$merge_data/in" 4 5000 500 >/dev/null
        local f=""
        [ "$1" = cog ] && f="--format cog"
        echo "merge $merge_data/in/r_0_0.tif $merge_data/in/r_0_1.tif $merge_data/in/r_1_0.tif $merge_data/in/r_1_1.tif $f"
        ;;
    esac
}

for job in $jobs; do
    args=$(args_for "$job")
    ext=tif
    [ "$job" = dzi ] && ext=dzi
    [ "$job" = ometiff ] && ext=ome.tif && mkdir -p "$out/1" "$out/2"
    # (a store's .zattrs and an OME-TIFF's OME-XML name it: the two runs'
    # outputs have one name)
    [ "$job" = zarr ] && ext=ome.zarr && mkdir -p "$out/1" "$out/2"
    o1=$out/one.$ext o2=$out/two.$ext
    [ "$job" = zarr ] || [ "$job" = ometiff ] && o1=$out/1/slide.$ext o2=$out/2/slide.$ext
    echo "== $job: $args"
    "$tessera" $args -q --threads 2 -o "$o1"
    mpirun --oversubscribe -np 2 "$tessera" $args -q --threads 1 -o "$o2" 2>"$out/ranks.txt"
    if [ "$job" = zarr ]; then
        diff -r -q "$o1" "$o2" || { echo "$job: the sharded output differs from one process's"; exit 1; }
        echo "outputs byte-identical ($(find "$o1" -type f | wc -l) files)"
    elif [ "$job" = dzi ]; then
        cmp "$out/one.dzi" "$out/two.dzi" && diff -r -q "$out/one_files" "$out/two_files" ||
            { echo "$job: the sharded output differs from one process's"; exit 1; }
        echo "outputs byte-identical ($(find "$out/one_files" -type f | wc -l) files)"
    else
        cmp "$o1" "$o2" || { echo "$job: the sharded output differs from one process's"; exit 1; }
        echo "outputs byte-identical ($(stat -c %s "$o1") bytes)"
    fi
    : >"$out/t1"
    : >"$out/t2"
    for i in $(seq 1 "$runs"); do
        fresh "$o1"
        /usr/bin/time -f "%e %M" -o "$out/time" "$tessera" $args -q --threads 2 -o "$o1"
        read -r s1 m1 <"$out/time"
        fresh "$o2"
        /usr/bin/time -f "%e %M" -o "$out/time" mpirun --oversubscribe -np 2 "$tessera" $args -q --threads 1 \
            -o "$o2" 2>"$out/ranks.txt"
        read -r s2 m2 <"$out/time"
        echo "run $i: 1 process x 2 threads $s1 s ${m1} KB | 2 ranks x 1 thread $s2 s ${m2} KB"
        echo "$s1" >>"$out/t1"
        echo "$s2" >>"$out/t2"
    done
    a=$(median <"$out/t1")
    b=$(median <"$out/t2")
    echo "median: 1x2 $a s, 2x1 $b s, ratio 2x1/1x2 $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')"
    grep "rank" "$out/ranks.txt" || true
done
