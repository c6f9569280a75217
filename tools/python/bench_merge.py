#!/usr/bin/python3
"""Figures for the Python package (issue 19), not part of the suite.

1. The merge benchmark's workload (tools/bench/make_rasters.py: N x N uint16
   SIZE^2 GeoTIFFs, 10 % overlap) from Python, each case in a fresh process,
   interleaved run by run, wall time and peak RSS (wait4), medians of RUNS:
     tessera-stream   tessera.merge(files, dst_path=OUT)          (tiled deflate GeoTIFF)
     rasterio-stream  rasterio.merge.merge(files, dst_path=OUT)   (same creation options)
     rasterio-memory  rasterio.merge.merge(files) -> (array, transform)
     tessera-memory   tessera.merge(files) -> (array, transform)
   The output's size is printed beside, to read the in-memory peaks against.
2. 1000 random 256x256 windows of the lazy stitch of a positions CSV (the
   bench's mid set by default; not stitched first): latency p50 / p99.
   pyvips is not in this Debian (no python3-pyvips), so there is no peer.

usage: PYTHONPATH=build/tools/python /usr/bin/python3 tools/python/bench_merge.py
           [--grid N] [--size S] [--runs R] [--data DIR] [--positions CSV] [--windows K]
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# the script's folder holds the package's sources, not the built module
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

CASES = {
    "tessera-stream": "import tessera; tessera.merge(FILES, dst_path=OUT, dst_kwds={'compress': 'deflate'})",
    "rasterio-stream": ("import rasterio.merge; rasterio.merge.merge(FILES, dst_path=OUT, dst_kwds={'tiled': True, "
                        "'blockxsize': 256, 'blockysize': 256, 'compress': 'deflate', 'BIGTIFF': 'IF_SAFER'})"),
    "rasterio-memory": "import rasterio.merge; a, t = rasterio.merge.merge(FILES); print(a.nbytes)",
    "tessera-memory": "import tessera; a, t = tessera.merge(FILES); print(a.nbytes)",
}


def run_case(code, files, out):
    if os.path.exists(out):
        os.remove(out)
    src = f"FILES = {files!r}; OUT = {out!r}\n" + code
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", src], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    stdout = p.stdout.read()
    if status != 0:
        raise SystemExit(f"{code} failed ({status}): {stdout}")
    return wall, usage.ru_maxrss / 1024.0, stdout.strip()


def bench_merge(args):
    data = args.data
    subprocess.check_call([sys.executable, os.path.join(ROOT, "tools", "bench", "make_rasters.py"), data + "/in",
                           str(args.grid), str(args.size), str(args.size // 10)], stdout=subprocess.DEVNULL)
    files = [f"{data}/in/r_{r}_{c}.tif" for r in range(args.grid) for c in range(args.grid)]
    results = {k: [] for k in CASES}
    nbytes = None
    for _ in range(args.runs):
        for name, code in CASES.items():
            wall, rss, out = run_case(code, files, f"{data}/{name}.tif")
            results[name].append((wall, rss))
            if out:
                nbytes = int(out)
    print(f"merge of {len(files)} uint16 {args.size}^2 GeoTIFFs; output {nbytes / 2**20:.0f} MB in memory; "
          f"medians of {args.runs}")
    for name, rs in results.items():
        print(f"  {name:16s} {statistics.median(r[0] for r in rs):7.2f} s  {statistics.median(r[1] for r in rs):7.0f} MB")


def bench_windows(args):
    import tessera
    t0 = time.perf_counter()
    slide = tessera.stitch(args.positions)
    print(f"lazy stitch of {args.positions}: {slide.width}x{slide.height}, graph built in "
          f"{time.perf_counter() - t0:.2f} s")
    rng = random.Random(1)
    lat = []
    for _ in range(args.windows):
        x, y = rng.randrange(slide.width - 256), rng.randrange(slide.height - 256)
        t = time.perf_counter()
        slide[y:y + 256, x:x + 256]
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    print(f"  {args.windows} random 256x256 windows: p50 {lat[len(lat) // 2]:.1f} ms, "
          f"p99 {lat[int(len(lat) * 0.99)]:.1f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=4)
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default="/tmp/tessera-merge-bench")
    ap.add_argument("--positions", default="/tmp/tessera-bench/mid/positions.csv")
    ap.add_argument("--windows", type=int, default=1000)
    ap.add_argument("--skip-merge", action="store_true")
    ap.add_argument("--skip-windows", action="store_true")
    a = ap.parse_args()
    if not a.skip_merge:
        bench_merge(a)
    if not a.skip_windows:
        bench_windows(a)
