#!/usr/bin/python3
"""The rasterio peer of the merge benchmark: rasterio.merge.merge of the
inputs (method 'first'), written as a tiled deflate GeoTIFF like tessera's.
usage: rasterio_merge.py OUT IN..."""
import sys

import rasterio
from rasterio.merge import merge

out, files = sys.argv[1], sys.argv[2:]
srcs = [rasterio.open(f) for f in files]
arr, transform = merge(srcs, method="first")
profile = srcs[0].profile
profile.update(driver="GTiff", width=arr.shape[2], height=arr.shape[1], transform=transform, tiled=True,
               blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")
with rasterio.open(out, "w", **profile) as dst:
    dst.write(arr)
