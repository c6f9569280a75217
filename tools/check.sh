#!/bin/sh
# The whole test suite: installs missing packages, builds, runs ctest.
set -e
cd "$(dirname "$0")/.."
. tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
ctest --test-dir build --output-on-failure -j2 --timeout 300
