#!/usr/bin/env bash
# The figures of issue 14: registration of acquisitions as microscopes and
# slide scanners hand them over, against the stitch of the same tiles at
# their true positions. Per case, medians of RUNS:
#   - the stitch of the true positions (wall, CPU, peak RSS);
#   - registration alone: `tessera mosaic --emit-json` of the nominal
#     positions (it registers, writes the solved positions and prints the
#     pipeline; nothing is rendered), same output options, its wall time
#     as a share of the stitch's and its peak RSS next to the stitch's;
#   - the registration step's own time as the command reports it, and how
#     its tiles were placed (pairs / smaller groups / stage model);
#   - accuracy: ../shared/bench/score_positions.py TRUTH SOLVED (RMS and
#     max error after the common shift, which registration cannot know).
# Output options: a pyramid TIFF of 256 tiles, JPEG Q85 for 8-bit tiles,
# deflate for 16-bit ones (JPEG cannot hold 16 bits).
#
# usage: tools/bench-acquisition.sh [RUNS] CASE...      (RUNS default 3)
#   scans:NAME             the team's scanned-slide dataset $DATA/NAME (from
#                          the shared kit's make_scans: tiles/, positions.csv
#                          = truth, nominal.csv = grid; NAME mid or seed)
#   acq:NAME[:K=V,K=V...]  a generated acquisition $ACQ/NAME, made first with
#                          ../shared/bench/make_acquisition K=V ... if it is
#                          not there (nominal: TileConfiguration.txt, truth:
#                          truth.csv, canvas: canvas.txt)
#   real:DIR:ARGS...       a real set without truth (mosaic's input and
#                          options as ARGS, split on spaces; '%' for a space
#                          inside one): registration only, with --stats, its
#                          pairs in $OUT/NAME.pairs.csv
# env:   DATA   the team's datasets (default /tmp/tessera-bench; its bin/ has
#               make_acquisition, else ../shared/bench/build.sh makes it)
#        ACQ    generated acquisitions (default $DATA/acq)
#        OUT    outputs (default /tmp/tessera-acquisition-bench); the table
#               goes to $OUT/table.md
#        SCAN_ARGS  mosaic options for scans: cases (default --stage-error 20:
#               those scans have integer jitter up to 16 px)
#        ACQ_ARGS   mosaic options for acq: cases (default none: the defaults)
# e.g.   tools/bench-acquisition.sh 3 scans:mid scans:seed \
#            acq:ov6-b16:cols=6,rows=5,tile=1024x768,overlap=6,bits=16
# README's table (issue 14): the scans with SCAN_ARGS=--stage-error 34 (3 runs
# of mid, 1 of seed), acquisitions acq:ov{3,6,10}-b{8,16} of
# cols=6,rows=5,tile=1024x768,overlap=O,bits=B and
# acq:big:cols=20,rows=25,tile=1024x1024,overlap=8,bits=16 (about 25 min to
# generate on a loaded 2-core machine, 1 GB of TIFF; the issue's 40x50 of
# 2048x2048 would be 16.7 GB and hours).
# Not part of the test suite: at seed scale it takes several minutes a run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
[ $# -gt 0 ] || { sed -n '/^# usage/,/^# Not part/p' "$0"; exit 2; }
DATA=${DATA:-/tmp/tessera-bench}
ACQ=${ACQ:-$DATA/acq}
OUT=${OUT:-/tmp/tessera-acquisition-bench}
SCAN_ARGS=${SCAN_ARGS---stage-error 20}
ACQ_ARGS=${ACQ_ARGS-}
TESSERA=${TESSERA:-$PWD/build/tools/tessera}
SHARED=$(cd .. && pwd)/shared
SCORE=$SHARED/bench/score_positions.py
[ -x "$TESSERA" ] || cmake --build build --target tessera
mkdir -p "$OUT" "$ACQ"
GEN=$DATA/bin/make_acquisition
table=$OUT/table.md
[ -f "$table" ] || {
    echo "| case | tiles | tile | bits | stitch s (CPU s) | stitch RSS MB | registration s (CPU s) | share | registration RSS MB | step s | placed pairs/groups/model | RMS px | max px |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$table"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# "wall user rss" of a command, from /usr/bin/time; the command's own output
# goes to $OUT/stdout.txt and $OUT/stderr.txt
timed() { /usr/bin/time -f "%e %U %M" -o "$OUT/time.txt" "$@" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt" || {
    echo "failed: $*" >&2; tail -5 "$OUT/stderr.txt" >&2; return 1; }; cat "$OUT/time.txt"; }
# the registration report line's figures: "step_seconds pairs groups model"
reg_line() { sed -n 's/^registration: .*tiles placed: \([0-9]*\) by their pairs, \([0-9]*\) as smaller groups and \([0-9]*\) by the stage model alone;.*; \([0-9.]*\) s, .*/\4 \1 \2 \3/p' "$1"; }

bench() {  # name nominal truth canvas_w canvas_h bits tiles tilesize [mosaic args...]
    local name=$1 nominal=$2 truth=$3 cw=$4 ch=$5 bits=$6 ntiles=$7 tsize=$8
    shift 8
    local opts=(--tile-size 256 --pyramid -q)
    if [ "$bits" = 8 ]; then opts+=(--compression jpeg --quality 85); else opts+=(--compression deflate); fi
    local times=$OUT/$name.times
    : >"$times"
    for ((r = 1; r <= runs; r++)); do
        read -r sw su sm <<<"$(timed "$TESSERA" stitch "$truth" --canvas "$cw" "$ch" -o "$OUT/stitch.tif" "${opts[@]}")"
        read -r rw ru rm <<<"$(timed "$TESSERA" mosaic "$nominal" --canvas "$cw" "$ch" -o "$OUT/unused.tif" "${opts[@]}" \
            --stats --emit-json --positions-out "$OUT/$name.solved.csv" --pairs-out "$OUT/$name.pairs.csv" "$@")"
        read -r st bp bg bm <<<"$(reg_line "$OUT/stderr.txt")"
        echo "$sw $su $sm $rw $ru $rm $st $bp $bg $bm" | tee -a "$times"
    done
    grep '^registration:' "$OUT/stderr.txt" >"$OUT/$name.registration.txt" || true
    col() { awk -v c="$1" '{print $c}' "$times" | median; }
    local score rms mx
    score=$(python3 "$SCORE" "$truth" "$OUT/$name.solved.csv" || true)
    rms=$(sed -n 's/.*rms \([0-9.]*\) px.*/\1/p' <<<"$score")
    mx=$(sed -n 's/.*max \([0-9.]*\) px.*/\1/p' <<<"$score")
    echo "== $name: medians of $runs (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "stitch of the truth:      $(col 1) s wall, $(col 2) s CPU, $(($(col 3) / 1024)) MB"
    echo "registration (nominal):   $(col 4) s wall, $(col 5) s CPU, $(($(col 6) / 1024)) MB -> $(awk -v a="$(col 4)" -v b="$(col 1)" 'BEGIN {printf "%.0f", 100 * a / b}')% of the stitch's wall time"
    echo "  $(cat "$OUT/$name.registration.txt")"
    echo "accuracy: $score"
    printf '| %s | %s | %s | %s | %s (%s) | %d | %s (%s) | %s%% | %d | %s | %s/%s/%s | %s | %s |\n' \
        "$name" "$ntiles" "$tsize" "$bits" "$(col 1)" "$(col 2)" "$(($(col 3) / 1024))" "$(col 4)" "$(col 5)" \
        "$(awk -v a="$(col 4)" -v b="$(col 1)" 'BEGIN {printf "%.0f", 100 * a / b}')" "$(($(col 6) / 1024))" \
        "$(col 7)" "$(col 8)" "$(col 9)" "$(col 10)" "$rms" "$mx" >>"$table"
}

for c in "$@"; do
    IFS=: read -r kind name rest <<<"$c"
    case $kind in
    scans)
        d=$DATA/$name
        for f in positions.csv nominal.csv; do [ -f "$d/$f" ] || { echo "$d/$f is missing: make it with make_scans"; exit 2; }; done
        case $name in mid) geo="24000 20000" ;; seed) geo="95000 80000" ;; *) echo "scans:$name: canvas unknown (mid or seed)"; exit 2 ;; esac
        read -r cw ch <<<"$geo"
        n=$(($(wc -l <"$d/nominal.csv") - 1))
        ts=$(vipsheader -f width "$d/$(sed -n 2p "$d/nominal.csv" | cut -d, -f1)")x$(vipsheader -f height "$d/$(sed -n 2p "$d/nominal.csv" | cut -d, -f1)")
        # shellcheck disable=SC2086
        bench "$name" "$d/nominal.csv" "$d/positions.csv" "$cw" "$ch" 8 "$n" "$ts" $SCAN_ARGS
        ;;
    acq)
        d=$ACQ/$name
        if [ ! -f "$d/truth.csv" ]; then
            [ -x "$GEN" ] || sh "$SHARED/bench/build.sh" "$DATA/bin"
            echo "== generating $d: ${rest//,/ }"
            # shellcheck disable=SC2086
            /usr/bin/time -f "generated in %e s" "$GEN" "$d" ${rest//,/ } >/dev/null
        fi
        read -r cw ch <"$d/canvas.txt"
        n=$(($(wc -l <"$d/truth.csv") - 1))
        t1=$(ls "$d"/tiles/tile_0001.*)
        case $(vipsheader -f format "$t1") in *UCHAR*) bits=8 ;; *) bits=16 ;; esac
        # shellcheck disable=SC2086
        bench "$name" "$d/TileConfiguration.txt" "$d/truth.csv" "$cw" "$ch" "$bits" "$n" \
            "$(vipsheader -f width "$t1")x$(vipsheader -f height "$t1")" $ACQ_ARGS
        ;;
    real)
        read -ra args <<<"$rest"
        args=("${args[@]//%/ }")
        echo "== real $name: ${args[*]}"
        (cd "$name" && "$TESSERA" mosaic "${args[@]}" -o "$OUT/real.tif" --stats --emit-json \
            --pairs-out "$OUT/$(basename "$name").pairs.csv" --positions-out "$OUT/$(basename "$name").solved.csv" \
            >/dev/null 2>"$OUT/stderr.txt") || true
        grep -v '^ *{' "$OUT/stderr.txt" | head -20
        ;;
    *) echo "$c: a case is scans:NAME, acq:NAME[:K=V,...] or real:DIR:ARGS"; exit 2 ;;
    esac
done
echo "== table: $table"
cat "$table"
