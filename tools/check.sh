#!/bin/sh
# The whole test suite: installs missing packages, builds, runs ctest.
#   tools/check.sh             Release build in ./build, every test
#   tools/check.sh --sanitize  the same suite under AddressSanitizer +
#                              UndefinedBehaviorSanitizer (./build-asan), then
#                              the io concurrency test under ThreadSanitizer
#                              (./build-tsan)
#   tools/check.sh --fuzz      the libFuzzer targets (tests/fuzz) built with
#                              clang in ./build-fuzz, each run for
#                              TESSERA_FUZZ_SECONDS (default 60) from a copy
#                              of its seed corpus; fails on any crash,
#                              sanitizer report, hang or OOM (the input is
#                              left in build-fuzz/ci/<target>/)
set -e
cd "$(dirname "$0")/.."
mode=${1:-}
[ "$mode" = --fuzz ] && TESSERA_EXTRA_PACKAGES="clang-14 libclang-rt-14-dev"
. tools/deps.sh
case "$mode" in
"")
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_MPI=ON
    cmake --build build
    ctest --test-dir build --output-on-failure -j2 --timeout 300
    ;;
--sanitize)
    # Leak reports are off: libvips and GLib keep process-lifetime
    # allocations that LeakSanitizer would list at exit.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    # The Python package is left out here: the interpreter is not
    # instrumented, so an ASan-built extension cannot load into it (ASan's
    # runtime must come first); the Release suite runs its tests.
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTESSERA_BUILD_EXAMPLES=ON -DTESSERA_MPI=ON \
        -DTESSERA_PYTHON=OFF \
        "-DCMAKE_CXX_FLAGS=-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    cmake --build build-asan
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 -E install-and-find-package
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        "-DCMAKE_CXX_FLAGS=-O1 -fsanitize=thread -fno-omit-frame-pointer"
    cmake --build build-tsan --target tessera_tests
    # libtbb is not built with TSan, so the TBB pipeline's hand-offs are
    # invisible to it: this test drives the shared io state (decoders, open
    # file caches) from plain std::threads instead.
    ctest --test-dir build-tsan --output-on-failure -j2 --timeout 600 -R "^concurrency: sources"
    ;;
--fuzz)
    # The libraries get coverage instrumentation and ASan + UBSan from
    # TESSERA_FUZZ; only the fuzz targets are built.
    cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
        -DTESSERA_FUZZ=ON -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_EXAMPLES=OFF -DTESSERA_INSTALL=OFF
    cmake --build build-fuzz --target fuzz_targets
    seconds=${TESSERA_FUZZ_SECONDS:-60}
    # Leaks are not findings here (libvips and GLib keep process-lifetime
    # allocations); crashes, UB, hangs over 10 s and 2 GB of RSS are.
    export ASAN_OPTIONS=detect_leaks=0
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    failed=""
    for t in pipeline load_jpeg load_png load_tiff load_webp gdal_load; do
        run=build-fuzz/ci/$t
        rm -rf "$run"
        mkdir -p "$run/corpus"
        cp tests/fuzz/corpus/$t/* "$run/corpus/"  # the checked-in seeds stay as they are
        dict=""
        [ -f tests/fuzz/$t.dict ] && dict=-dict=tests/fuzz/$t.dict
        if TMPDIR=$PWD/$run build-fuzz/tests/fuzz/fuzz_$t $dict -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$run/" \
            "$run/corpus" >"$run/log.txt" 2>&1; then
            echo "fuzz_$t: $(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log.txt") runs in ${seconds} s, no crash"
        else
            tail -n 60 "$run/log.txt"
            echo "fuzz_$t: FAILED; the input is in $run/ (log: $run/log.txt); once fixed, add it to" \
                "tests/fuzz/corpus/$t/ as crash-<what> (tests/corpus_test.cpp replays those)"
            failed="$failed $t"
        fi
    done
    [ -z "$failed" ] || { echo "fuzzing found crashes in:$failed" >&2; exit 1; }
    ;;
*)
    echo "usage: tools/check.sh [--sanitize | --fuzz]" >&2
    exit 2
    ;;
esac
