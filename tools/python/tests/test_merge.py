"""tessera.merge against rasterio.merge.merge (Debian's rasterio) on the
real rasters: the four Landsat quadrants give RGB.byte.tif exactly, and
bounds, res, nodata, method, tap and dtype variants give rasterio's arrays
and transforms; with dst_path the merge is streamed to a GeoTIFF or COG."""
import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
import rasterio.merge  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.io import MemoryFile  # noqa: E402

import tessera  # noqa: E402
from conftest import COGEO, RASTERIO_DATA  # noqa: E402

QUADS = [str(RASTERIO_DATA / f"rgb{i}.tif") for i in range(1, 5)]
COGS = [str(COGEO / "cog1.tif"), str(COGEO / "cog2.tif")]


def both(paths, **kw):
    want, wt = rasterio.merge.merge(paths, **kw)
    got, gt = tessera.merge(paths, **kw)
    return want, wt, got, gt


def test_quadrants_merge_to_rgb_byte_exactly():
    got, transform = tessera.merge(QUADS)
    with rasterio.open(RASTERIO_DATA / "RGB.byte.tif") as src:
        want = src.read()
        assert transform == src.transform
    assert isinstance(transform, Affine)
    assert got.shape == want.shape == (3, 718, 791) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    r, rt = rasterio.merge.merge(QUADS)
    np.testing.assert_array_equal(got, r)
    assert transform == rt


@pytest.mark.parametrize("kw", [
    {"bounds": (102000, 2826000, 300000, 2900000)},
    {"res": 600},
    {"res": (450, 310)},
    {"nodata": 255},
    {"method": "last"},
    {"method": "min"},
    {"method": "max"},
    {"dtype": "uint16", "method": "sum"},
    {"indexes": [3, 1]},
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()).replace(" ", ""))
def test_variants_equal_rasterio(kw):
    want, wt, got, gt = both(QUADS, **kw)
    assert gt == wt
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def neighbours_agree(want, got):
    """The share of pixels equal to rasterio's at the same place or one
    pixel away: nearest-neighbour picks of rasterio 1.3 and 1.4 (which the
    engine follows) differ by one source pixel where inputs are resampled."""
    ok = np.zeros(want.shape[1:], bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ok |= (np.roll(want, (dy, dx), axis=(1, 2)) == got).all(axis=0)
    return ok.mean()


@pytest.mark.parametrize("paths,kw", [(QUADS, {"res": 470, "target_aligned_pixels": True}), (COGS, {})],
                         ids=["quadrants-res470-tap", "cogs-two-resolutions"])
def test_resampled_inputs_match_rasterio_within_a_pixel(paths, kw):
    want, wt, got, gt = both(paths, **kw)
    assert gt == wt
    assert got.shape == want.shape and got.dtype == want.dtype
    # the parts read without resampling are identical, the rest rasterio 1.3's within one source pixel
    assert (got == want).all(axis=0).mean() > 0.6
    assert neighbours_agree(want, got) > 0.999


def test_open_datasets_and_memory_files_stream_to_a_cog(tmp_path):
    # in-memory COGs (/vsimem/), as a Sentinel-2 pipeline makes them, read at once
    mems = [MemoryFile(open(p, "rb").read()) for p in COGS]
    datasets = [m.open() for m in mems]
    out = tmp_path / "merged.tif"
    assert tessera.merge(datasets, dst_path=out, dst_kwds={"driver": "COG", "compress": "deflate"}) is None
    want, wt = tessera.merge(COGS)
    assert wt == rasterio.merge.merge(COGS)[1]
    with rasterio.open(out) as src:
        assert src.transform == wt
        assert src.crs == datasets[0].crs
        assert src.overviews(1)  # a COG has its overviews
        np.testing.assert_array_equal(src.read(), want)
    for d in datasets:
        d.close()
    # Images as datasets, and rasterio 1.4's name for them
    got, gt = tessera.merge(sources=[tessera.gdal_load(p) for p in QUADS])
    assert gt == rasterio.merge.merge(QUADS)[1]


def test_refusals():
    with pytest.raises(tessera.ParamError, match="requires a specified resolution"):
        tessera.merge(QUADS, target_aligned_pixels=True)
    with pytest.raises(tessera.ParamError, match="method"):
        tessera.merge(QUADS, method="median")
    with pytest.raises(tessera.ParamError, match="dst_kwds"):
        tessera.merge(QUADS, dst_path="/tmp/never.tif", dst_kwds={"photometric": "rgb"})


def test_vsimem_outputs_are_readable_at_once():
    # the seed's failure: a COG written to memory that could not be read
    # back; here the save is complete when it returns, in GDAL's /vsimem/
    want, wt = tessera.merge(QUADS)
    tessera.merge(QUADS, dst_path="/vsimem/tessera-merged.tif", dst_kwds={"driver": "COG"})
    with rasterio.open("/vsimem/tessera-merged.tif") as src:
        assert src.transform == wt and src.overviews(1)
        np.testing.assert_array_equal(src.read(), want)
    np.testing.assert_array_equal(tessera.gdal_load("/vsimem/tessera-merged.tif").numpy().transpose(2, 0, 1), want)
    from osgeo import gdal
    gdal.Unlink("/vsimem/tessera-merged.tif")


@pytest.mark.parametrize("method", ["first", "max"])
def test_downsampled_cogs_equal_rasterio_reading_full_resolution(method):
    # rasterio's reads at a coarser res let GDAL take a COG's overview; the
    # engine reads full resolution: with the overviews closed (GDAL's
    # OVERVIEW_LEVEL=NONE) rasterio's result is the engine's, exactly
    datasets = [rasterio.open(p, OVERVIEW_LEVEL="NONE") for p in COGS]
    want, wt = rasterio.merge.merge(datasets, res=900, method=method)
    got, gt = tessera.merge(COGS, res=900, method=method)
    assert gt == wt
    np.testing.assert_array_equal(got, want)
    for d in datasets:
        d.close()
