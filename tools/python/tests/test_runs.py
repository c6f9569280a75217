"""Sinks and jobs: save, pipelines, progress and cancel, Ctrl-C in a
subprocess, other Python threads running while the engine does."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import tessera
from conftest import SOURCE, pattern


def test_save_and_progress(tmp_path):
    a = pattern(600, 700, 3, seed=4)
    seen = []
    out = tmp_path / "a.tif"
    stats = tessera.from_array(a).save(out, progress=seen.append, tile=True, compression="deflate")
    assert stats["tiles"] > 1
    np.testing.assert_array_equal(tessera.load(out).numpy(), a)
    assert seen and seen[-1]["tiles_done"] == seen[-1]["tiles_total"] == stats["tiles"]
    assert set(seen[0]) == {"tiles_done", "tiles_total", "pixels_done", "pixel_bytes", "seconds"}


def test_progress_false_cancels_and_leaves_nothing(tmp_path):
    out = tmp_path / "c.tif"
    img = tessera.black(4000, 4000, bands=3)
    with pytest.raises(tessera.Cancelled):
        img.save(out, progress=lambda p: p["tiles_done"] < 3, tile=True)
    assert os.listdir(tmp_path) == []


def test_progress_exception_propagates_and_leaves_nothing(tmp_path):
    def boom(p):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        tessera.black(3000, 3000).save(tmp_path / "e.tif", progress=boom, tile=True)
    assert os.listdir(tmp_path) == []


def test_a_run_inside_a_progress_callback_and_runs_on_many_threads(tmp_path):
    # each Python thread's runs go to an engine thread kept for it, so a run
    # started from a progress callback (on that engine thread) gets one of
    # its own and does not wait for itself
    inner = []

    def progress(p):
        if not inner:
            inner.append(tessera.black(64, 48, value=9).save(tmp_path / "inner.tif"))
        return True

    tessera.black(500, 400).save(tmp_path / "outer.tif", progress=progress, tile=True)
    assert inner and inner[0]["tiles"] >= 1
    assert tessera.load(tmp_path / "inner.tif").numpy().max() == 9
    errors = []

    def runs(k):
        try:
            for i in range(10):
                tessera.black(40 + k, 30 + i, value=k).save(tmp_path / f"t{k}_{i}.tif")
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    ts = [threading.Thread(target=runs, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in ts)
    assert tessera.load(tmp_path / "t3_9.tif").shape == (39, 43, 1)


def test_pipeline_round_trip_and_run(tmp_path):
    text = json.dumps({"version": 1, "nodes": [
        {"id": "c", "op": "black", "width": 300, "height": 200, "bands": 3, "value": [5, 6, 7]},
        {"id": "x", "op": "extract_area", "inputs": ["c"], "left": 10, "top": 10, "width": 100, "height": 50},
        {"id": "out", "op": "save", "inputs": ["x"], "path": "x.tif", "tile": True}]})
    p = tessera.Pipeline.from_json(text, base_dir=tmp_path)
    assert p.ids == ["c", "x", "out"]
    assert tessera.Pipeline.from_json(p.to_json()).to_json() == p.to_json()
    np.testing.assert_array_equal(p["x"].numpy(), np.broadcast_to(np.array([5, 6, 7], np.uint8), (50, 100, 3)))
    stats = tessera.run(p)
    assert stats["tiles"] >= 1
    assert tessera.load(tmp_path / "x.tif").shape == (50, 100, 3)
    # an image's own graph as JSON, read back to the same pixels
    img = tessera.black(20, 10, value=3).embed(2, 2, 30, 20)
    back = tessera.Pipeline.from_json(img.to_json())
    np.testing.assert_array_equal(back[img.node_id].numpy(), img.numpy())


def test_other_threads_run_while_the_engine_does(tmp_path):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    img = tessera.black(6000, 6000, bands=3).shrink(1, 1)
    t.start()
    t0 = time.perf_counter()
    img.save(tmp_path / "big.tif", tile=True, compression="deflate")
    t1 = time.perf_counter()
    stop.set()
    t.join()
    during = [x for x in ticks if t0 < x < t1]
    # the ticker ran through the save (the GIL was released), not only before and after
    assert t1 - t0 > 0.05
    assert len(during) >= (t1 - t0) / 0.005 * 0.3


CHILD = textwrap.dedent("""
    import sys, tessera
    img = tessera.black(40000, 40000, bands=3)
    print("started", flush=True)
    try:
        img.save(sys.argv[1], tile=True, compression="deflate", pyramid=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(3)
    print("finished", flush=True)
""")


def test_ctrl_c_cancels_and_leaves_nothing(tmp_path):
    out = tmp_path / "k.tif"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ))
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    rest, _ = child.communicate(timeout=60)
    assert child.returncode == 3, rest
    assert "interrupted" in rest
    assert os.listdir(tmp_path) == []


def test_jobs_with_progress(tmp_path):
    positions = SOURCE / "examples" / "stitch" / "positions.csv"
    seen = []
    stats = tessera.stitch(positions, tmp_path / "s.tif", progress=seen.append, pyramid=True, compression="jpeg")
    assert stats["tiles"] > 0 and seen[-1]["tiles_done"] == stats["tiles"]
    assert tessera.load(tmp_path / "s.tif").bands == 3
    with pytest.raises(tessera.ParamError) as e:
        tessera.stitch(positions, tmp_path / "t.tif", colour=1)
    assert e.value.key == "colour"
    with pytest.raises(tessera.Cancelled):
        tessera.stitch(positions, tmp_path / "u.tif", progress=lambda p: False)
    assert sorted(os.listdir(tmp_path)) == ["s.tif"]


def test_mosaic_job_lazy_and_written_agree(tmp_path):
    from conftest import SHARED
    config = SHARED / "data" / "real" / "lscm_3x4_10pct" / "TileConfiguration.txt"
    if not config.exists():
        pytest.skip(f"{config} is not there")
    lazy = tessera.mosaic(config, blend_width=32)
    assert lazy.op == "mosaic" and lazy.bands == 3
    out = tmp_path / "m.tif"
    tessera.mosaic(config, out, blend_width=32, compression="deflate")
    written = tessera.load(out)
    assert written.shape == lazy.shape
    np.testing.assert_array_equal(lazy[1000:1300, 1500:2000], written[1000:1300, 1500:2000])


def test_channel_names_is_a_list_of_strings(tmp_path):
    # a list (or tuple) of names, each as given: a name may hold a comma
    import tifffile

    a = pattern(64, 48, 3, seed=2).astype(np.uint16)
    out = tmp_path / "c.ome.tif"
    tessera.from_array(a).save(out, channel_names=("DAPI", "a, b", "Cy5"), compression="deflate")
    with tifffile.TiffFile(out) as t:
        assert t.series[0].shape == (3, 64, 48)
        assert "Name=\"a, b\"" in t.pages[0].description
    with pytest.raises(Exception, match="channel_names.*a list of strings"):
        tessera.from_array(a).save(tmp_path / "d.ome.tif", channel_names=["a", 2, "c"])
    # a lone str is one name, not a sequence of characters
    with pytest.raises(Exception, match=r"gives 1 name for an image of 3 channels"):
        tessera.from_array(a).save(tmp_path / "e.ome.tif", channel_names="abc")
