"""Lazy images: headers, windows, numpy out (owning the engine's buffer),
numpy in (from_array, not copied), every op of the registry reachable."""
import gc
import sys
import tracemalloc

import numpy as np
import pytest

import tessera
from conftest import SOURCE, pattern


def test_black_header_and_pixels():
    img = tessera.black(300, 200, bands=3, format="u16", value=[1, 2, 3])
    assert (img.width, img.height, img.bands, img.format) == (300, 200, 3, "u16")
    assert img.dtype == np.uint16 and img.shape == (200, 300, 3)
    assert img.georef is None
    a = img.numpy()
    assert a.shape == (200, 300, 3) and a.dtype == np.uint16
    assert (a == np.array([1, 2, 3], np.uint16)).all()


def test_load_windows_equal_the_file(tif):
    want = pattern(333, 517, 3)
    img = tessera.load(tif(want))
    assert img.shape == want.shape and img.dtype == np.uint8
    np.testing.assert_array_equal(img.numpy(), want)
    np.testing.assert_array_equal(img.read(101, 37, 300, 250), want[37:287, 101:401])
    np.testing.assert_array_equal(img[37:287, 101:401], want[37:287, 101:401])
    np.testing.assert_array_equal(img[-10:, :5], want[-10:, :5])
    np.testing.assert_array_equal(img[5, 7], want[5, 7])
    np.testing.assert_array_equal(img[::3, 10:200:7, 1], want[::3, 10:200:7, 1])
    np.testing.assert_array_equal(np.asarray(img), want)
    # another tile grid and one thread: the same bits
    np.testing.assert_array_equal(img.with_execution(tile=(37, 19), threads=1).numpy(), want)


def test_ops_against_numpy(tif):
    a = pattern(240, 320, 3, seed=1)
    b = pattern(100, 90, 3, seed=2)
    ia, ib = tessera.load(tif(a, "a.tif")), tessera.load(tif(b, "b.tif"))
    canvas = tessera.black(400, 300, bands=3)
    m = tessera.insert(canvas, [ia, ib], at=[[10, 20], [250, 150]])
    want = np.zeros((300, 400, 3), np.uint8)
    want[20:260, 10:330] = a
    want[150:250, 250:340] = b
    np.testing.assert_array_equal(m.numpy(), want)
    # methods are the same ops, the image first
    crop = m.extract_area(5, 6, 100, 50)
    np.testing.assert_array_equal(crop.numpy(), want[6:56, 5:105])
    s = ia.shrink(2, 2)
    # libvips's two passes, each rounded half up: vertical means, then horizontal
    v = (a.reshape(120, 2, 320, 3).astype(np.int64).sum(axis=1) + 1) // 2
    np.testing.assert_array_equal(s.numpy(), (v.reshape(120, 160, 2, 3).sum(axis=2) + 1) // 2)
    c = ia.cast(format="f32")
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c.numpy(), a.astype(np.float32))


def test_stitch_lazy_image_equals_the_file_it_writes(tmp_path):
    positions = SOURCE / "examples" / "stitch" / "positions.csv"
    lazy = tessera.stitch(positions)
    out = tmp_path / "s.tif"
    tessera.stitch(positions, out, compression="deflate")
    written = tessera.load(out)
    assert (lazy.width, lazy.height) == (written.width, written.height)
    np.testing.assert_array_equal(lazy[100:400, 200:700], written[100:400, 200:700])


def test_numpy_owns_the_engine_buffer_without_a_copy():
    img = tessera.black(1024, 1024, bands=4, format="u8", value=9)
    size = 1024 * 1024 * 4
    tracemalloc.start()
    a = img.numpy()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # numpy reports every array it allocates to tracemalloc: a copy would show
    assert peak < size // 10
    assert not a.flags.owndata and a.base is not None
    assert a.flags.c_contiguous and a.flags.writeable
    assert int(a.sum()) == 9 * size
    del a
    gc.collect()


def test_from_array_is_not_copied_and_kept_alive():
    a = pattern(300, 400, 3, dtype=np.uint16, seed=5)
    want = a.copy()
    before = sys.getrefcount(a)
    tracemalloc.start()
    img = tessera.from_array(a)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < a.nbytes // 10  # no copy of the pixels
    assert sys.getrefcount(a) == before + 1  # the graph holds the array
    del a
    gc.collect()
    assert img.dtype == np.uint16 and img.shape == (300, 400, 3)
    np.testing.assert_array_equal(img.numpy(), want)
    # through an op: the new graph holds it too
    crop = img.extract_area(10, 20, 30, 40)
    del img
    gc.collect()
    np.testing.assert_array_equal(crop.numpy(), want[20:60, 10:40])


def test_from_array_shapes_strides_and_georef():
    a = np.arange(50 * 60, dtype=np.float32).reshape(50, 60)
    img = tessera.from_array(a)
    assert img.shape == (50, 60, 1)
    np.testing.assert_array_equal(img.numpy()[:, :, 0], a)
    # rows with a stride of their own (a window of a larger array): still no copy
    big = pattern(100, 200, 3)
    win = big[10:60, 20:120]
    np.testing.assert_array_equal(tessera.from_array(win).numpy(), win)
    with pytest.raises(tessera.ParamError, match="contiguous"):
        tessera.from_array(big[:, ::2])
    with pytest.raises(tessera.ParamError, match="dtype"):
        tessera.from_array(np.zeros((4, 4), np.int64))
    from affine import Affine
    t = Affine(10, 0, 500000, 0, -10, 4200000)
    g = tessera.from_array(a, georef={"transform": t, "crs": "EPSG:32618", "nodata": 0}).georef
    assert g["transform"] == t.to_gdal()
    assert "32618" in g["crs_wkt"] and g["nodata"] == [0.0]
    assert tessera.from_array(a, georef=t).transform == t


def test_every_op_is_reachable_with_its_docstring():
    specs = tessera.op_specs()
    for name, spec in specs.items():
        if spec["sink"] or name == "memory":  # memory: from_array's source
            assert not hasattr(tessera.ops, name)
            continue
        fn = getattr(tessera.ops, name)
        assert fn.__name__ == name
        assert spec["doc"][:20].lower() in fn.__doc__.lower()
        for p in spec["params"]:
            assert p["name"] in fn.__doc__
        if name not in ("merge", "mosaic"):  # the jobs' names at the top level
            assert getattr(tessera, name) is fn
        if spec["min_inputs"] >= 1:
            assert callable(getattr(tessera.Image, name, None))
    # and each op the tests know how to call builds an image of the right size
    base = tessera.black(64, 48, bands=3)
    built = {
        "black": tessera.black(5, 4),
        "insert": tessera.insert(base, base, at=[[3, 4]]),
        "mosaic": tessera.ops.mosaic(base, base, at=[[3.5, 4]]),
        "arrayjoin": tessera.arrayjoin([base, base, base], across=2),
        "extract_area": base.extract_area(1, 2, 10, 20),
        "embed": base.embed(5, 5, 100, 80),
        "cast": base.cast(format="f64"),
        "shrink": base.shrink(2, 3),
        "flatfield": base.flatfield(tessera.black(64, 48, value=1.0, format="f32")),
    }
    sizes = {"black": (5, 4), "insert": (64, 48), "mosaic": (64, 48), "arrayjoin": (128, 96),
             "extract_area": (10, 20), "embed": (100, 80), "cast": (64, 48), "shrink": (32, 16), "flatfield": (64, 48)}
    for name, img in built.items():
        assert (img.width, img.height) == sizes[name], name
        assert img.op == name
        img[0:2, 0:2]


def test_threads_read_the_same_image_at_once(tif):
    import threading
    want = pattern(512, 512, 3, seed=3)
    img = tessera.load(tif(want))
    errors = []

    def reader(k):
        try:
            for i in range(5):
                y, x = (k * 37 + i * 53) % 400, (k * 71 + i * 19) % 400
                np.testing.assert_array_equal(img[y:y + 100, x:x + 100], want[y:y + 100, x:x + 100])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
