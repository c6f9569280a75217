"""tessera.merge: rasterio.merge.merge's signature and meanings (rasterio
1.4), computed by the engine's merge op a tile at a time.

Differences from the rasterio installed here (Debian's 1.3.x), which the
tests compare against: 1.4 names the first argument ``sources`` (1.3:
``datasets``; both are taken here), deprecates ``precision`` and adds
``mem_limit``, ``use_highest_res`` and ``masked`` (not taken here: they
tune or change how rasterio holds its output in memory; this merge holds
no output-sized buffer when writing). ``method`` callables are rasterio's
extension point; here only the named methods exist. Inputs at a coarser
resolution than the output's are read at full resolution (rasterio's reads
let GDAL pick a COG's overview instead); where inputs are resampled, the
nearest picks are 1.4's, which differ from 1.3's by up to one source pixel.
"""

import os

from . import Image, ParamError, _affine, _t, ops

_METHODS = ("first", "last", "min", "max", "sum", "count")
# rasterio's creation-option names (dst_kwds, as rasterio.open takes them)
# as the save op's keys
_BOOL = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def _save_options(dst_path, dst_kwds):
    opts = {"tile": True, "compression": "deflate"}
    for k, v in (dst_kwds or {}).items():
        key = k.lower()
        if key == "driver":
            d = str(v).lower()
            if d not in ("gtiff", "cog"):
                raise ParamError(f"dst_kwds['driver']: {v!r}: tessera.merge writes GTiff or COG")
            if d == "cog":
                opts["format"] = "cog"
                opts.pop("tile", None)
        elif key in ("compress", "compression"):
            opts["compression"] = str(v).lower()
        elif key == "tiled":
            opts["tile"] = v if isinstance(v, bool) else _BOOL.get(str(v).lower(), True)
        elif key in ("blockxsize", "blockysize"):
            opts["tile_width" if key == "blockxsize" else "tile_height"] = int(v)
        elif key == "blocksize":
            opts["tile_width"] = opts["tile_height"] = int(v)
        elif key == "predictor":
            opts["predictor"] = v if isinstance(v, bool) else str(v).lower() in ("2", "3", "yes", "true")
        elif key == "bigtiff":
            b = str(v).lower()
            opts["bigtiff"] = {"if_needed": "auto", "if_safer": "auto", "yes": "yes", "no": "no"}.get(b, b)
        elif key in ("quality", "jpeg_quality"):
            opts["quality"] = int(v)
        elif key in ("count", "width", "height", "dtype", "crs", "transform", "nodata"):
            pass  # the merge sets them, as rasterio's does
        else:
            raise ParamError(f"dst_kwds[{k!r}]: not a creation option tessera.merge writes; it takes driver, "
                             "compress, tiled, blockxsize, blockysize, blocksize, predictor, bigtiff, quality")
    if opts.get("format") == "cog":
        opts.pop("tile", None)
    return opts


def _source(d, indexes):
    """A dataset as a lazy Image: a tessera Image as it is, else its path
    (a rasterio dataset's ``.name``, a /vsimem/ MemoryFile's included)."""
    if isinstance(d, Image):
        if indexes is not None:
            raise ParamError("indexes: with tessera Images as datasets, select bands before the merge "
                             "(gdal_load(path, bands=[...]))")
        return d
    path = d if isinstance(d, (str, os.PathLike)) else getattr(d, "name", None)
    if path is None:
        raise ParamError(f"datasets: {d!r} is neither a path, a dataset with a .name nor a tessera Image")
    kw = {} if indexes is None else {"bands": list(indexes)}
    return ops.gdal_load(os.fspath(path), **kw)


def merge(datasets=None, bounds=None, res=None, nodata=None, dtype=None, precision=None, indexes=None,
          output_count=None, resampling="nearest", method="first", target_aligned_pixels=False,
          dst_path=None, dst_kwds=None, progress=None, sources=None):
    """Merges georeferenced rasters onto one grid, as ``rasterio.merge.merge``.

    datasets: paths, open rasterio datasets (their ``.name`` is opened:
    files, ``/vsimem/`` MemoryFiles, COGs) or tessera Images, in merge
    order; all of one CRS and band count. bounds: (west, south, east,
    north) of the output (default: the union of the inputs'). res: the
    output resolution, one number or (x, y) (default: the first input's).
    nodata: the output's nodata, its initial value and what counts as
    empty (default: the first input's). dtype: the output dtype (default:
    the first input's). indexes: the bands to use, from 1. resampling:
    nearest, bilinear or cubic (a rasterio ``Resampling`` or its name), for
    inputs at another resolution. method: first, last, min, max, sum or
    count. target_aligned_pixels: widen the bounds to multiples of res
    (needs res). precision and output_count are accepted and ignored, as
    rasterio 1.4 does.

    Without ``dst_path``: returns ``(array, transform)`` like rasterio, the
    array (bands, rows, cols) (a transposed view of the engine's buffer,
    not copied) and the transform an ``affine.Affine`` (GDAL's 6-tuple
    without the affine package). With ``dst_path``: the merge is streamed
    to that GeoTIFF (``dst_kwds``: rasterio creation options, e.g.
    driver="COG", compress, blockxsize), holding nothing the size of the
    output; returns None. ``progress`` as in Image.save.
    """
    if sources is not None:
        if datasets is not None:
            raise ParamError("give datasets or sources (rasterio 1.4's name), not both")
        datasets = sources
    if datasets is None or len(datasets) == 0:
        raise ParamError("datasets: give at least one raster to merge")
    if callable(method):
        raise ParamError("method: callables are not supported; use first, last, min, max, sum or count")
    if method not in _METHODS:
        raise ParamError(f"method: {method!r} is not one of {', '.join(_METHODS)}")
    if target_aligned_pixels and res is None:
        raise ParamError("target_aligned_pixels requires a specified resolution (res)")
    if isinstance(indexes, int):
        indexes = [indexes]
    images = [_source(d, indexes) for d in datasets]
    params = {"method": method, "tap": bool(target_aligned_pixels),
              "resampling": getattr(resampling, "name", resampling)}
    if nodata is not None:
        params["nodata"] = float(nodata)
    if res is not None:
        params["res"] = [float(r) for r in (res if isinstance(res, (tuple, list)) else (res,))]
    if bounds is not None:
        params["bounds"] = [float(b) for b in bounds]
    if dtype is not None:
        import numpy as np
        params["dtype"] = np.dtype(dtype).name
    merged = Image(_t.apply("merge", [i._i for i in images], params))
    if dst_path is not None:
        merged.save(os.fspath(dst_path), progress=progress, **_save_options(dst_path, dst_kwds))
        return None
    # the whole output in one array: pulled in 512^2 tiles, which cost less
    # per pixel than 256^2 ones (the bits are the same for any tile size)
    array = merged.with_execution(tile=(512, 512)).numpy().transpose(2, 0, 1)
    return array, _affine(merged.georef["transform"])
