#!/usr/bin/env bash
# The mosaic figures of issue 7: registration accuracy from the nominal grid
# positions, registration time next to the stitch's, and the whole mosaic
# (registration + feathered blend) next to the stitch, medians of RUNS.
#
# usage: tools/bench-mosaic.sh [RUNS] [SCALES...]     (default: 3 mid seed)
# env:   DATA  the team's datasets (default /tmp/tessera-bench; each scale
#              needs positions.csv, nominal.csv and tiles/ from the shared
#              kit's make_scans)
#        OUT   where outputs go (default /tmp/tessera-mosaic-bench)
#
# Each run: `tessera stitch` of the true positions, `tessera mosaic
# --emit-json` of the nominal ones (registration alone: it reads the
# windows and prints the pipeline), and the whole `tessera mosaic`, all with
# the stitch benchmark's output options (JPEG Q85 pyramid, 256 tiles).
# Registration fixes positions only up to a common shift, which it places
# at a mean correction of zero from the nominal grid: accuracy is given both
# as it is and after the most common offset is taken out.
# Not part of the test suite: at seed scale it takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
scales=("$@")
[ ${#scales[@]} -gt 0 ] || scales=(mid seed)
DATA=${DATA:-/tmp/tessera-bench}
OUT=${OUT:-/tmp/tessera-mosaic-bench}
TESSERA=${TESSERA:-$PWD/build/tools/tessera}
[ -x "$TESSERA" ] || cmake --build build
mkdir -p "$OUT"
opts=(--tile-size 256 --compression jpeg --quality 85 --pyramid -q)
geometry() { case $1 in mid) echo "24000 20000" ;; seed) echo "95000 80000" ;; *) echo "?" ;; esac; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# "wall user rss" of a command, from /usr/bin/time
# (the command's own output goes to $OUT/stdout.txt and $OUT/stderr.txt)
timed() { /usr/bin/time -f "%e %U %M" -o "$OUT/time.txt" "$@" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"; cat "$OUT/time.txt"; }

for s in "${scales[@]}"; do
    d=$DATA/$s
    for f in positions.csv nominal.csv; do [ -f "$d/$f" ] || { echo "$d/$f is missing: make it with make_scans"; exit 2; }; done
    read -r cw ch <<<"$(geometry "$s")"
    : >"$OUT/$s.times"
    for ((r = 1; r <= runs; r++)); do
        read -r sw su sm <<<"$(timed "$TESSERA" stitch "$d/positions.csv" --canvas "$cw" "$ch" -o "$OUT/stitch.tif" "${opts[@]}")"
        read -r rw ru rm <<<"$(timed "$TESSERA" mosaic "$d/nominal.csv" --canvas "$cw" "$ch" -o "$OUT/unused.tif" \
            "${opts[@]}" --emit-json --positions-out "$OUT/$s.solved.csv")"
        read -r mw mu mm <<<"$(timed "$TESSERA" mosaic "$d/nominal.csv" --canvas "$cw" "$ch" -o "$OUT/mosaic.tif" "${opts[@]}" --stats)"
        # the registration step's own time, as the command reports it
        rs=$(sed -n 's/^registration: .*; \([0-9.]*\) s, .*/\1/p' "$OUT/stderr.txt")
        echo "$sw $su $sm $rw $ru $rm $mw $mu $mm $rs" | tee -a "$OUT/$s.times"
    done
    col() { awk -v c="$1" '{print $c}' "$OUT/$s.times" | median; }
    echo "== $s: medians of $runs (wall s, user s, peak RSS KB)"
    echo "stitch (true positions):        $(col 1) s  $(col 2) s  $(col 3) KB"
    echo "registration alone (nominal):   $(col 4) s  $(col 5) s  $(col 6) KB  -> $(awk -v a="$(col 4)" -v b="$(col 1)" 'BEGIN {printf "%.0f", 100 * a / b}')% of the stitch's wall time"
    echo "mosaic (register + feather):    $(col 7) s  $(col 8) s  $(col 9) KB (registration step inside it: $(col 10) s)"
    echo "== $s: solved positions against positions.csv"
    awk -F, 'NR == FNR { if (FNR > 1) { n = split($1, p, "/"); t[p[n]] = $2 "," $3 }; next }
             FNR > 1 { n = split($1, p, "/"); split(t[p[n]], q, ","); dx = $2 - q[1]; dy = $3 - q[2];
                       k = dx "," dy; c[k]++; d[FNR] = k; tot++ }
             END { best = ""; for (k in c) if (best == "" || c[k] > c[best]) best = k; split(best, b, ",");
                   for (i in d) { split(d[i], e, ","); if (e[1] * e[1] <= 1 && e[2] * e[2] <= 1) w++;
                                  if ((e[1] - b[1]) ^ 2 <= 1 && (e[2] - b[2]) ^ 2 <= 1) v++; if (d[i] == best) x++ }
                   printf "%d tiles: %d within 1 px; common offset (%s): %d within 1 px of it, %d exactly\n", tot, w, best, v, x }' \
        "$d/positions.csv" "$OUT/$s.solved.csv"
    if [ "$s" = mid ]; then
        echo "== $s: --blend none against the stitch of the true positions (mean |difference|, grey levels)"
        "$TESSERA" mosaic "$d/nominal.csv" --canvas "$cw" "$ch" -o "$OUT/none.tif" --blend none -q
        "$TESSERA" stitch "$d/positions.csv" --canvas "$cw" "$ch" -o "$OUT/true.tif" -q
        vips subtract "$OUT/none.tif" "$OUT/true.tif" "$OUT/d.v" && vips abs "$OUT/d.v" "$OUT/a.v"
        echo "as solved: $(vips avg "$OUT/a.v")"
        read -r ox oy <<<"$(awk -F, 'NR == FNR { if (FNR > 1) t[$1] = $2 "," $3; next } FNR > 1 { split(t[$1], q, ","); print $2 - q[1], $3 - q[2]; exit }' \
            <(sed 's#.*/tiles/#tiles/#' "$d/positions.csv") <(sed 's#.*/tiles/#tiles/#' "$OUT/$s.solved.csv"))"
        if [ "$ox" != 0 ] || [ "$oy" != 0 ]; then
            # the solved mosaic moved back by the common offset (for offsets >= 0)
            vips extract_area "$OUT/none.tif" "$OUT/o.v" "$ox" "$oy" $((cw - ox)) $((ch - oy))
            vips extract_area "$OUT/true.tif" "$OUT/t.v" 0 0 $((cw - ox)) $((ch - oy))
            vips subtract "$OUT/o.v" "$OUT/t.v" "$OUT/d.v" && vips abs "$OUT/d.v" "$OUT/a.v"
            echo "after the common offset ($ox, $oy): $(vips avg "$OUT/a.v")"
        fi
        rm -f "$OUT"/{d,a,o,t}.v
    fi
done
