#!/usr/bin/env bash
# Reproduces the stitch figures of the issue's closing note: tessera against
# libvips on the team's scanned-mosaic datasets, in one run, medians of RUNS.
#
# usage: tools/bench-stitch.sh [RUNS] [SCALES...]     (default: 3 mid seed)
# env:   BENCH_KIT  the shared benchmark kit (default: ../shared/bench)
#        DATA       where datasets are made and kept (default: /tmp/tessera-bench)
#        VIPS_SEED_RUNS  libvips runs at seed scale (default 1: ~10 min each)
#
# For each scale it runs the kit's stitch-bench.sh (which first checks that
# tessera and libvips agree pixel for pixel on a small dataset) with the
# libvips insert loop, then the libvips composite mode at mid scale, then
# tessera alone with --threads 1 and the 2000 inputs under ulimit -n 256.
# Not part of the test suite: it takes tens of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
scales=("$@")
[ ${#scales[@]} -gt 0 ] || scales=(mid seed)
kit=${BENCH_KIT:-../shared/bench}
export DATA=${DATA:-/tmp/tessera-bench}
export TESSERA=${TESSERA:-$PWD/build/tools/tessera}
[ -x "$TESSERA" ] || cmake --build build
[ -x "$kit/stitch-bench.sh" ] || { echo "no benchmark kit at $kit (set BENCH_KIT)"; exit 2; }

geometry() { case $1 in mid) echo "24000 20000" ;; seed) echo "95000 80000" ;; grid) echo "24000 20000" ;; small) echo "4000 2600" ;; esac; }

for s in "${scales[@]}"; do
    echo "== $s: tessera vs libvips insert loop"
    if [ "$s" = seed ]; then
        VIPS_RUNS=${VIPS_SEED_RUNS:-1} "$kit/stitch-bench.sh" "$s" "$runs"
    else
        "$kit/stitch-bench.sh" "$s" "$runs"
    fi
    if [ "$s" = mid ]; then
        echo "== $s: tessera vs libvips composite"
        VIPS_MODE=composite "$kit/stitch-bench.sh" "$s" "$runs" | tail -2
    fi
    read -r cw ch <<<"$(geometry "$s")"
    echo "== $s: tessera, 1 thread and 2 threads (seconds, peak RSS KB)"
    for t in 1 2; do
        /usr/bin/time -f "threads=$t %e s %M KB" "$TESSERA" stitch "$DATA/$s/positions.csv" --canvas "$cw" "$ch" \
            -o "$DATA/tess_threads.tif" --tile-size 256 --compression jpeg --quality 85 --pyramid -q --threads "$t" --stats
    done
done

if [ -f "$DATA/seed/positions.csv" ]; then
    echo "== seed: 2000 inputs under ulimit -n 256"
    (ulimit -n 256 && /usr/bin/time -f "%e s %M KB" "$TESSERA" stitch "$DATA/seed/positions.csv" --canvas 95000 80000 \
        -o "$DATA/tess_ulimit.tif" --tile-size 256 --compression jpeg --quality 85 --pyramid -q) && echo "ulimit -n 256: ok"
    echo "== seed: the output opens as a pyramid"
    vipsheader "$DATA/tess_ulimit.tif"
    openslide-show-properties "$DATA/tess_ulimit.tif" | grep -E "level-count|level\[[0-9]+\].width" || true
fi
