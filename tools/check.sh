#!/bin/sh
# The whole test suite: installs missing packages, builds, runs ctest.
#   tools/check.sh             Release build in ./build, every test
#   tools/check.sh --sanitize  the same suite under AddressSanitizer +
#                              UndefinedBehaviorSanitizer (./build-asan), then
#                              the io concurrency test under ThreadSanitizer
#                              (./build-tsan)
set -e
cd "$(dirname "$0")/.."
. tools/deps.sh
mode=${1:-}
case "$mode" in
"")
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
    cmake --build build
    ctest --test-dir build --output-on-failure -j2 --timeout 300
    ;;
--sanitize)
    # Leak reports are off: libvips and GLib keep process-lifetime
    # allocations that LeakSanitizer would list at exit.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTESSERA_BUILD_EXAMPLES=ON \
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
*)
    echo "usage: tools/check.sh [--sanitize]" >&2
    exit 2
    ;;
esac
