#!/bin/sh
# Fresh Debian machine to a working tessera: installs missing packages,
# builds into ./build, and stitches the example tiles end to end.
set -e
cd "$(dirname "$0")/.."
. tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_MPI=ON
cmake --build build
# Run the example on a copy, so the outputs land in the build tree.
rm -rf build/example && cp -r examples/stitch build/example
./build/tools/tessera run build/example/stitch.json --stats
echo "example output: $(pwd)/build/example/stitched.tif (tiled TIFF) and $(pwd)/build/example/thumbnail.png"
./build/tools/tessera info build/example/stitched.tif
