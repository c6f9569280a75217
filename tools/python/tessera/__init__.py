"""Tessera from Python: lazy images, numpy in and out, the jobs, and a
``rasterio.merge`` that does not hold the output in memory.

Images are lazy: ``tessera.load(path)``, ``tessera.gdal_load(path)``,
``tessera.black(w, h, bands=3)``, ``tessera.from_array(a)`` and every op of
the engine's registry (``tessera.ops``; also as methods, ``img.shrink(2, 2)``)
build a graph and read headers only. Pixels are computed when asked for:
``img.numpy()``, ``img.read(x, y, w, h)`` or ``img[y0:y1, x0:x1]`` (only that
window, on every core, into an array that owns the engine's buffer), or
``img.save(path, **options)``. The op functions are generated at import
from the engine's op specs, so their keyword arguments are checked by the
same specs as pipelines' (``tessera.ParamError`` naming the key).

The engine runs with the GIL released; Ctrl-C (KeyboardInterrupt) and a
``progress`` callable returning False stop it, with nothing left at the
target. Built for /usr/bin/python3 (Debian's, with its numpy).
"""

import os as _os

from . import _tessera as _t

__all__ = [
    "Error", "ParamError", "GraphError", "IoError", "Cancelled",
    "Image", "Pipeline", "ops", "op_specs", "from_array", "run", "stitch", "mosaic", "merge",
]


# ---- errors -----------------------------------------------------------------

class Error(Exception):
    """Base of every error Tessera raises. Attributes (None when unknown):
    ``key`` (the parameter), ``node`` (the node's id), ``op``, ``path``."""

    key = node = op = path = None


class GraphError(Error):
    """An error tied to a graph node: its inputs, its id, or a parameter."""


class ParamError(GraphError, ValueError):
    """A parameter value the op's spec or the op refuses; ``key`` names it."""


class IoError(Error, OSError):
    """A file that cannot be read or written; ``path`` names it."""


class Cancelled(Error):
    """The run was cancelled (a progress callable returned False)."""


_t._set_error_types(Error, ParamError, GraphError, IoError, Cancelled)


# ---- images -----------------------------------------------------------------

def _index(s, n, axis):
    """A slice or an int of one axis as (start, stop, step, squeeze)."""
    if isinstance(s, slice):
        start, stop, step = s.indices(n)
        return start, max(stop, start), step, False
    i = int(s)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"{axis} index {s} is out of range for size {n}")
    return i, i + 1, 1, True


class Image:
    """A lazy image: a node of an engine graph. Its header is known at once
    (``width``, ``height``, ``bands``, ``format``/``dtype``, ``georef``); its
    pixels are computed only for the windows read or the file saved.
    Immutable and safe to share between threads."""

    __slots__ = ("_i",)

    def __init__(self, handle):
        self._i = handle

    width = property(lambda self: self._i.width, doc="Width in pixels.")
    height = property(lambda self: self._i.height, doc="Height in pixels.")
    bands = property(lambda self: self._i.bands, doc="Number of bands.")
    format = property(lambda self: self._i.format, doc="Sample format: u8, u16, i16, u32, i32, f32 or f64.")
    dtype = property(lambda self: self._i.dtype, doc="The numpy dtype of the samples.")
    shape = property(lambda self: (self._i.height, self._i.width, self._i.bands),
                     doc="(height, width, bands): the shape of numpy().")
    interpretation = property(lambda self: self._i.interpretation, doc="How the bands are meant to be seen.")
    op = property(lambda self: self._i.op, doc="The op of this image's node.")
    node_id = property(lambda self: self._i.node_id, doc="The id of this image's node in its graph.")

    @property
    def georef(self):
        """The georeference (None without one): a dict with ``transform``
        (GDAL's 6 numbers: x0, dx, rx, y0, ry, dy), ``crs_wkt``, ``nodata``
        (one per band, None where a band has none) and ``alpha_band``."""
        return self._i.georef

    @property
    def transform(self):
        """The georeference's transform as an ``affine.Affine`` (a GDAL
        6-tuple without the affine package); None without a georeference."""
        g = self._i.georef
        return None if g is None else _affine(g["transform"])

    def read(self, x, y, w, h, threads=0):
        """The pixels of the window (x, y, w, h) as an ndarray (h, w, bands)
        of the image's dtype. Only that window is computed, on ``threads``
        workers (0: the graph's setting, every core by default); the array
        owns the engine's buffer (no copy after computing)."""
        return self._i._read(int(x), int(y), int(w), int(h), int(threads))

    def numpy(self, threads=0):
        """The whole image as an ndarray (height, width, bands): see read()."""
        return self.read(0, 0, self.width, self.height, threads)

    def __array__(self, dtype=None, copy=None):
        """numpy.asarray(img): the whole image, as numpy() computes it."""
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __getitem__(self, key):
        """``img[y0:y1, x0:x1]`` (or ``img[y, x]``, ``img[y0:y1, x0:x1, band]``):
        the window computed as read() does; steps and the band index are
        then applied to that array (views, no copy)."""
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 3:
            raise IndexError("index an Image as img[rows, columns] or img[rows, columns, bands]")
        key = key + (slice(None),) * (2 - len(key)) if len(key) < 2 else key
        y0, y1, ys, ysq = _index(key[0], self.height, "row")
        x0, x1, xs, xsq = _index(key[1], self.width, "column")
        if ys < 0 or xs < 0:
            raise IndexError("negative steps are not supported; read the window and reverse the array")
        if y1 <= y0 or x1 <= x0:
            import numpy as np
            return np.empty((max(y1 - y0, 0), max(x1 - x0, 0), self.bands), self.dtype)
        a = self.read(x0, y0, x1 - x0, y1 - y0)
        a = a[::ys, ::xs]
        if len(key) == 3:
            a = a[:, :, key[2]]
        if xsq:
            a = a[:, 0]
        if ysq:
            a = a[0]
        return a

    def save(self, path, progress=None, **options):
        """Writes the image to ``path`` with the save op (its options as
        keywords, checked by its spec: format, compression, tile, pyramid,
        quality, ...; ``tessera.op_specs()['save']``). ``progress``: a
        callable taking a dict (tiles_done, tiles_total, pixels_done,
        pixel_bytes, seconds); returning False cancels (tessera.Cancelled).
        Streams: what is held is bounded by the tiles in flight. Nothing is
        left at ``path`` on failure, cancel or Ctrl-C. Returns the run's
        statistics."""
        return self._i._save(_os.fspath(path), options, progress)

    def with_execution(self, tile=None, threads=None, cache_mb=None, memory_mb=None):
        """The same image with other execution settings (tile size, threads,
        cache and memory budgets): never other pixels."""
        kw = {k: v for k, v in (("tile", tile), ("threads", threads), ("cache_mb", cache_mb),
                                ("memory_mb", memory_mb)) if v is not None}
        return Image(self._i._with_execution(kw))

    def to_json(self, indent=2):
        """This image's graph (its ancestors, this node last) as pipeline JSON."""
        return self._i.to_json(indent)

    def __repr__(self):
        return repr(self._i)


def _affine(t):
    try:
        from affine import Affine
    except ImportError:
        return tuple(t)
    return Affine.from_gdal(*t)


def _gdal_transform(t):
    """GDAL's 6 numbers from an affine.Affine or a sequence of them."""
    if hasattr(t, "to_gdal"):
        return tuple(t.to_gdal())
    t = tuple(t)
    if len(t) != 6:
        raise ParamError("georef: give the transform as an affine.Affine or GDAL's 6 numbers")
    return t


def _wkt(crs):
    """WKT of a CRS given as WKT, as anything with to_wkt() (a rasterio
    CRS) or as what GDAL's SetFromUserInput reads ("EPSG:32618")."""
    if hasattr(crs, "to_wkt"):
        return crs.to_wkt()
    crs = str(crs)
    try:
        from osgeo import osr
    except ImportError:
        return crs
    srs = osr.SpatialReference()
    if srs.SetFromUserInput(crs) != 0:
        raise ParamError(f"georef['crs']: GDAL cannot read {crs!r} as a CRS")
    return srs.ExportToWkt()


def from_array(array, georef=None):
    """A source image over a numpy array (height, width[, bands]) of uint8,
    uint16, int16, uint32, int32, float32 or float64, not copied: the graph
    keeps the array alive; do not change it while images built on it are
    read. Rows must hold their pixels contiguously (any row stride).
    ``georef``: None, an ``affine.Affine`` (or GDAL 6-tuple), or a dict with
    ``transform``, ``crs`` (WKT, "EPSG:N", or anything with ``to_wkt()``,
    e.g. a rasterio CRS), ``nodata`` (one value or one per band). Such a node's
    JSON is valid only in this process."""
    g = None
    if georef is not None:
        if isinstance(georef, dict):
            g = dict(georef)
            if "transform" in g:
                g["transform"] = _gdal_transform(g["transform"])
            crs = g.pop("crs", None)
            if crs is not None:
                g["crs_wkt"] = _wkt(crs)
        else:
            g = {"transform": _gdal_transform(georef)}
    return Image(_t.from_array(array, g))


# ---- ops, generated from the registry's specs -------------------------------

def op_specs():
    """Every op of the engine: {name: spec}, each spec a dict with doc,
    min_inputs, max_inputs (-1: any), sink and params (name, type, required,
    default, default_text, allowed, choices, doc)."""
    return {s["name"]: s for s in _t.op_specs()}


def _docstring(spec):
    ins = spec["min_inputs"], spec["max_inputs"]
    inputs = ("no inputs" if ins == (0, 0) else
              f"{ins[0]} input image(s)" if ins[0] == ins[1] else
              f"at least {ins[0]} input image(s)" if ins[1] < 0 else
              f"{ins[0]} to {ins[1]} input images")
    required = [p["name"] for p in spec["params"] if p["required"]]
    lines = [f"{spec['name']}({'*images, ' if ins[1] != 0 else ''}{', '.join(required + ['**params'])})", "",
             spec["doc"][:1].upper() + spec["doc"][1:] + ".", "",
             f"Takes {inputs} (Images, or lists of them) and returns a lazy Image.",
             "Positional values after the images fill the required parameters in order.", "", "Parameters:"]
    for p in spec["params"]:
        extra = "required" if p["required"] else f"default {p['default_text'] or 'none'}"
        if p["allowed"]:
            extra += f"; {p['allowed']}"
        lines.append(f"    {p['name']} ({p['type']}, {extra}): {p['doc']}")
    return "\n".join(lines)


def _make_op(spec):
    name = spec["name"]
    required = [p["name"] for p in spec["params"] if p["required"]]

    def op(*args, **params):
        inputs, values = [], []
        for a in args:
            if isinstance(a, Image):
                inputs.append(a._i)
            elif isinstance(a, (list, tuple)) and a and all(isinstance(x, Image) for x in a):
                inputs.extend(x._i for x in a)
            else:
                values.append(a)
        free = [k for k in required if k not in params]
        if len(values) > len(free):
            raise ParamError(f"{name}: {len(values)} positional value(s) but only the required parameters "
                             f"{', '.join(free) or '(none left)'} can be given by position; name the others")
        for k, v in zip(free, values):
            params[k] = _os.fspath(v) if hasattr(v, "__fspath__") else v
        return Image(_t.apply(name, inputs, params))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = _docstring(spec)
    return op


class _Ops:
    """Every op of the engine's registry as a function (sinks excepted:
    use Image.save), generated from the specs at import."""

    def __init__(self, specs):
        for s in specs:
            # memory is from_array's source (its handle names an array)
            if not s["sink"] and s["name"] != "memory":
                setattr(self, s["name"], _make_op(s))

    def __iter__(self):
        return iter(sorted(k for k in vars(self)))

    def __repr__(self):
        return "<tessera.ops: " + ", ".join(self) + ">"


ops = _Ops(_t.op_specs())
_JOBS = ("merge", "mosaic", "stitch", "run")  # defined below


def _method(fn):
    def method(self, *args, **params):
        return fn(self, *args, **params)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


for _spec in _t.op_specs():
    if _spec["sink"] or _spec["name"] == "memory":
        continue
    _fn = getattr(ops, _spec["name"])
    # top level: every op whose name is free (tessera.merge is the
    # rasterio-style function, tessera.mosaic the job: their ops are
    # tessera.ops.merge and tessera.ops.mosaic)
    if _spec["name"] not in globals() and _spec["name"] not in _JOBS:
        globals()[_spec["name"]] = _fn
        __all__.append(_spec["name"])
    # methods: the ops that take an input, the image first
    if _spec["min_inputs"] >= 1 and not hasattr(Image, _spec["name"]):
        setattr(Image, _spec["name"], _method(_fn))
del _spec, _fn


# ---- pipelines and jobs -----------------------------------------------------

class Pipeline:
    """A whole graph as a pipeline file holds it (sinks included)."""

    __slots__ = ("_p",)

    def __init__(self, handle):
        self._p = handle

    @staticmethod
    def from_json(text, base_dir=""):
        """The pipeline of JSON text (or a dict); relative paths resolved
        against ``base_dir`` when given."""
        if isinstance(text, dict):
            import json
            text = json.dumps(text)
        return Pipeline(_t.Pipeline.from_json(text, _os.fspath(base_dir)))

    @staticmethod
    def load(path):
        """The pipeline of a JSON file (relative paths against its folder)."""
        return Pipeline(_t.Pipeline.load(_os.fspath(path)))

    def to_json(self, indent=2):
        """The pipeline as JSON text that from_json reads back to the same graph."""
        return self._p.to_json(indent)

    @property
    def ids(self):
        """The nodes' ids, in order."""
        return self._p.ids

    def __getitem__(self, node_id):
        """The lazy Image of the node with this id."""
        return Image(self._p[node_id])

    def run(self, progress=None, threads=0):
        """Runs every sink (save) of the pipeline; see Image.save for
        ``progress`` and cancelling. Returns the run's statistics."""
        return self._p.run(progress, threads)


def run(pipeline, progress=None, threads=0):
    """Runs a pipeline: a Pipeline, a path to a JSON file, JSON text or a
    dict. See Image.save for ``progress`` and cancelling."""
    if not isinstance(pipeline, Pipeline):
        if isinstance(pipeline, dict) or (isinstance(pipeline, str) and pipeline.lstrip().startswith("{")):
            pipeline = Pipeline.from_json(pipeline)
        else:
            pipeline = Pipeline.load(pipeline)
    return pipeline.run(progress, threads)


def stitch(positions, output=None, progress=None, **options):
    """The stitch job (``tessera stitch``): the tiles of a positions CSV
    (file,x,y) or Fiji TileConfiguration.txt placed on a canvas. With
    ``output``: written there (its extension or ``format`` picks the
    writer), returning the run's statistics. Without: the lazy Image of the
    stitched canvas (read windows of it without writing it). Options as the
    command line's: canvas=(w, h), format, tile_size, compression, quality,
    pyramid, bigtiff, background, overlap, suffix, layout, flatfield,
    darkfield, estimate_flatfield, flatfield_out, gain_compensation,
    threads."""
    r = _t.stitch(_os.fspath(positions), "" if output is None else _os.fspath(output), progress=progress, **options)
    return Image(r) if output is None else r


def mosaic(positions, output=None, progress=None, **options):
    """The mosaic job (``tessera mosaic``): registration of the tiles, then
    a feathered mosaic at the solved positions. As stitch(), with blend,
    blend_width, register, stage_error, min_score, register_band and
    integer_positions too."""
    r = _t.mosaic(_os.fspath(positions), "" if output is None else _os.fspath(output), progress=progress, **options)
    return Image(r) if output is None else r


from ._merge import merge  # noqa: E402  (needs the names above)
