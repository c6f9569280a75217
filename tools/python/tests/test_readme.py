"""The README's Python examples run as written (in a temporary folder,
the repository's and ../shared's paths pointed at where they are)."""
import re
import subprocess
import sys

import pytest

from conftest import SHARED, SOURCE


def examples():
    text = (SOURCE / "README.md").read_text()
    section = text[text.index("## From Python"):]
    section = section[:section.index("\n## ", 3)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_there_are_three():
    assert len(examples()) == 3


@pytest.mark.parametrize("i", range(3), ids=["lazy-mosaic-window", "sentinel2-merge", "array-to-cog"])
def test_example_runs(i, tmp_path):
    code = examples()[i].replace('"examples/', f'"{SOURCE}/examples/').replace('"../shared/', f'"{SHARED}/')
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    if i == 0:
        assert r.stdout.split() == ["95000", "80000", "(256,", "256,", "3)", "uint8"]
    if i == 1:
        import rasterio
        with rasterio.open(tmp_path / "merged_cog.tif") as src:
            assert src.count == 3 and src.overviews(1)
        out = r.stdout.split()
        assert out[0] == "(3," and out[-1] == "600.0"  # 3 bands at the asked resolution
    if i == 2:
        import numpy as np
        import rasterio
        with rasterio.open(tmp_path / "array_cog.tif") as src:
            assert src.crs.to_epsg() == 32618 and src.transform.c == 500000
            a = (np.arange(3000 * 2000, dtype=np.uint32) % 4096).astype(np.uint16).reshape(2000, 3000)
            np.testing.assert_array_equal(src.read(1), a)
            assert src.overviews(1)
