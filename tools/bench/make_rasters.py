#!/usr/bin/python3
"""Makes the merge benchmark's inputs: N x N uint16 GeoTIFFs of SIZE x SIZE
pixels on one 10 m UTM 32N grid, neighbours overlapping by OVERLAP pixels
(10 % by default), nodata 0, tiled and deflate-compressed like a product
tile. Pixel values are smooth fields plus deterministic noise, different per
file, so 'first' and 'last' merges differ in the overlaps.

usage: make_rasters.py OUTDIR [N=4] [SIZE=5000] [OVERLAP=500]
Files: OUTDIR/r_ROW_COL.tif. Existing files of the same size are kept.
"""
import os
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4
size = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
overlap = int(sys.argv[4]) if len(sys.argv) > 4 else size // 10
os.makedirs(out, exist_ok=True)
srs = osr.SpatialReference()
srs.ImportFromEPSG(32632)
step = size - overlap
y, x = np.mgrid[0:size, 0:size].astype(np.float32)
for r in range(n):
    for c in range(n):
        path = os.path.join(out, "r_%d_%d.tif" % (r, c))
        if os.path.exists(path):
            ds = gdal.Open(path)
            if ds.RasterXSize == size:
                continue
        rng = np.random.default_rng(r * 131 + c)
        field = 1500 + 900 * np.sin((x + c * step) / 700.0) * np.cos((y + r * step) / 900.0)
        a = (field + rng.integers(0, 200, (size, size)) + 37 * (r * n + c)).astype(np.uint16)
        a[:, :7] = 0  # a nodata margin, as a product tile's edge
        ds = gdal.GetDriverByName("GTiff").Create(
            path, size, size, 1, gdal.GDT_UInt16, ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2"])
        ds.SetGeoTransform((600000 + c * step * 10, 10, 0, 5300000 - r * step * 10, 0, -10))
        ds.SetProjection(srs.ExportToWkt())
        b = ds.GetRasterBand(1)
        b.SetNoDataValue(0)
        b.WriteArray(a)
        ds = None
        print(path, flush=True)
