"""Errors: Python exceptions of the tessera.Error family naming the key,
node, op or file, from the same specs as pipelines'."""
import numpy as np
import pytest

import tessera


def test_hierarchy():
    for cls in (tessera.ParamError, tessera.GraphError, tessera.IoError, tessera.Cancelled):
        assert issubclass(cls, tessera.Error)
    assert issubclass(tessera.ParamError, ValueError)
    assert issubclass(tessera.IoError, OSError)


def test_range_and_choice_name_the_key():
    with pytest.raises(tessera.ParamError) as e:
        tessera.black(0, 10)
    assert e.value.key == "width" and e.value.op == "black"
    assert "key 'width'" in str(e.value) and "[1, " in str(e.value)
    with pytest.raises(tessera.ParamError) as e:
        tessera.black(10, 10, format="u7")
    assert e.value.key == "format"
    with pytest.raises(tessera.ParamError) as e:
        tessera.black(10, 10).save("/tmp/never.tif", compression="zip")
    assert e.value.key == "compression"


def test_unknown_key_and_wrong_type():
    with pytest.raises(tessera.ParamError) as e:
        tessera.black(10, 10, colour=3)
    assert e.value.key == "colour" and "black takes width, height" in str(e.value)
    with pytest.raises(tessera.ParamError) as e:
        tessera.black("ten", 10)
    assert e.value.key == "width" and "expected an integer" in str(e.value)
    with pytest.raises(tessera.ParamError) as e:
        tessera.black(10, 10, 3)
    assert "by position" in str(e.value)
    # fractional positions where insert takes whole pixels: the graph says what to do
    base = tessera.black(10, 10)
    with pytest.raises(tessera.ParamError, match="mosaic") as e:
        tessera.insert(base, base, at=[[1.5, 2]])
    assert e.value.key == "at"


def test_inputs_are_graph_errors():
    base = tessera.black(10, 10)
    with pytest.raises(tessera.GraphError) as e:
        tessera.ops.extract_area(base, base, left=0, top=0, width=1, height=1)
    assert not isinstance(e.value, tessera.ParamError)
    assert e.value.key == "inputs"
    with pytest.raises(tessera.ParamError) as e:
        base.extract_area(5, 5, 10, 10)
    assert e.value.node == "extract_area0"


def test_missing_file_is_an_io_error():
    with pytest.raises(tessera.IoError) as e:
        tessera.load("/no/such/file.tif")
    assert e.value.path == "/no/such/file.tif"
    with pytest.raises(tessera.Error, match="no/such"):
        tessera.gdal_load("/no/such/file.tif")


def test_windows_outside_and_bad_pipelines():
    img = tessera.black(50, 40)
    with pytest.raises(tessera.GraphError, match=r"not inside the image \(50x40\)"):
        img.read(40, 0, 20, 10)
    with pytest.raises(tessera.Error, match="node 'x'"):
        tessera.Pipeline.from_json('{"version": 1, "nodes": [{"id": "x", "op": "black", "width": 0, "height": 1}]}')
    with pytest.raises(tessera.ParamError, match="memory image 12345"):
        tessera.Pipeline.from_json('{"version": 1, "nodes": [{"id": "m", "op": "memory", "handle": 12345}]}')


def test_a_file_that_fails_while_computing_is_an_io_error(tmp_path):
    # the header is read when the graph is built; the pixels only when a
    # window is computed, by which time the file has lost its second half
    src = tessera.from_array(np.arange(256 * 256, dtype=np.uint16).reshape(256, 256, 1))
    path = tmp_path / "a.tif"
    src.save(str(path), compression="none", tile=False)
    img = tessera.load(str(path))
    assert img.read(0, 0, 8, 8)[0, 1, 0] == 1
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(tessera.IoError) as e:
        img.numpy()
    assert e.value.path == str(path)
    assert e.value.node is not None and e.value.op == "load"
