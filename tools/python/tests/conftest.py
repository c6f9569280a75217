"""Shared fixtures for the tessera package's tests (run by ctest, one entry
per file, with PYTHONPATH at the package in the build tree)."""
import os
import pathlib

import numpy as np
import pytest

SOURCE = pathlib.Path(os.environ.get("TESSERA_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[3]))


def _shared():
    """../shared beside the checkout (a worktree under wt/ has it two up)."""
    if os.environ.get("TESSERA_SHARED_DIR"):
        return pathlib.Path(os.environ["TESSERA_SHARED_DIR"])
    for up in (SOURCE.parent, SOURCE.parent.parent):
        if (up / "shared" / "data").is_dir():
            return (up / "shared").resolve()
    return (SOURCE.parent / "shared").resolve()


SHARED = _shared()
RASTERIO_DATA = SHARED / "data" / "real" / "rasterio"
COGEO = SHARED / "data" / "real" / "cogeo"


def pattern(h, w, bands=3, dtype=np.uint8, seed=0):
    """A deterministic image whose shifts and swaps show."""
    y, x, b = np.mgrid[0:h, 0:w, 0:bands]
    v = (x * 7 + y * 13 + b * 101 + seed * 31 + (x * y) % 17) % 251
    return v.astype(dtype)


@pytest.fixture
def tif(tmp_path):
    """Writes an array as an uncompressed TIFF with tifffile and returns its path."""
    import tifffile

    def write(a, name="in.tif"):
        p = tmp_path / name
        tifffile.imwrite(p, a, photometric="rgb" if a.ndim == 3 and a.shape[2] == 3 else "minisblack")
        return str(p)

    return write
