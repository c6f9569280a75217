#!/bin/sh
# Installs the Debian packages Tessera needs that are not installed yet.
# Sourced by setup.sh and check.sh; safe to run again (does nothing then).
TESSERA_PACKAGES="build-essential cmake ninja-build pkg-config
  libvips-dev libvips-tools libgdal-dev gdal-bin python3-gdal
  libboost-graph-dev libtbb-dev doctest-dev nlohmann-json3-dev libcli11-dev
  libtiff-tools libtiff-dev libjpeg-dev libdeflate-dev libzstd-dev libkissfft-dev libmuparser-dev openslide-tools time python3-rasterio
  libblosc-dev libminizip-dev pybind11-dev python3-dev python3-numpy python3-pytest
  python3-tifffile python3-zarr python3-numcodecs libxml2-utils libjpeg-turbo-progs
  chromium graphviz libopenmpi-dev openmpi-bin ${TESSERA_EXTRA_PACKAGES:-}"
# libmuparser-dev: calc's expressions; libblosc-dev: OME-Zarr chunks; libminizip-dev: zipped Deep Zoom;
# pybind11-dev/python3-dev/numpy/pytest: the Python package and its tests;
# tifffile, zarr, numcodecs, xmllint: readers nobody here wrote, checking
# the OME-TIFF and OME-Zarr outputs in the tests.
# libjpeg-turbo-progs: tjbench, the codec's own speed (tools/bench-limit.sh).
# chromium: the browser test of `tessera view`; graphviz: `tessera dot --svg`;
# OpenMPI: sharded runs under mpirun/srun (the build turns them on with
# -DTESSERA_MPI=ON) and their tests.
missing=""
for p in $TESSERA_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm fetches OpenSeadragon for `tessera view` at build time; any npm will
# do (e.g. the one NodeSource's nodejs brings, which Debian's npm package
# would conflict with), so the package is only asked for without one.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
