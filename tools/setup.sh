#!/bin/sh
# Fresh Debian machine to a working tessera: installs missing packages,
# builds into ./build, and stitches the example tiles end to end.
set -e
cd "$(dirname "$0")/.."
. tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_MPI=ON
cmake --build build
# The Python package, for Debian's /usr/bin/python3 (its site-packages; the
# python3 on PATH may be another interpreter): /usr/bin/python3 -c "import tessera"
if [ -d build/tools/python/tessera ]; then
    cmake --install build --component python
    /usr/bin/python3 -c "import tessera; print('python package: tessera for /usr/bin/python3 in', tessera.__path__[0])"
fi
# Run the example on a copy, so the outputs land in the build tree.
rm -rf build/example && cp -r examples/stitch build/example
./build/tools/tessera run build/example/stitch.json --stats
echo "example output: $(pwd)/build/example/stitched.tif (tiled TIFF) and $(pwd)/build/example/thumbnail.png"
./build/tools/tessera info build/example/stitched.tif
