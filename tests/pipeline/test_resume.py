"""Runs that survive a kill: done records, resume, identical output, fingerprint refusals.

Faults are injected with the ``BIGSEG_KILL_AT=stage:item:moment`` hook, which SIGKILLs the
run's whole process group at that point, so every test is deterministic (no timing).
Here the run is a forked child in its own process group (``scheduler='sync'``, fast);
``test_cluster_kill_and_resume`` kills a ``bigseg segment`` CLI on a LocalCluster.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bigseg.errors import OutputMismatchError
from bigseg.io import is_complete
from bigseg.pipeline import segment
from bigseg.pipeline._executor import KILL_AT_ENV, KILL_MARKER_ENV
from bigseg.testing import balls_volume, tree_digest, write_image

SHAPE = (32, 32, 48)
BLOCK = (16, 16, 16)  # 2 x 2 x 3 = 12 blocks
OPTIONS = dict(predictor="classical", diameter_um=8.0, block_shape=BLOCK)


def run(src, out, **kw):
    kw = {"scheduler": "sync", **OPTIONS, **kw}
    return segment(str(src), str(out), **kw)


def _child(src: str, out: str, kill_at: str, kw: dict) -> None:
    os.setpgid(0, 0)  # the hook kills this group: this child only
    os.environ[KILL_AT_ENV] = kill_at
    run(src, out, **kw)
    os._exit(0)


def run_killed(src, out, kill_at, **kw):
    """Run in a forked child that the hook kills at ``kill_at``; assert it was killed there."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(str(src), str(out), kill_at, kw))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL, f"the run was not killed at {kill_at} (exit code {proc.exitcode})"


def _without_timings(data: bytes) -> bytes:
    """Metadata with the run's stage timings (which differ from run to run) left out."""
    meta = json.loads(data)
    meta.get("attributes", {}).get("bigseg", {}).get("run", {}).pop("timings_s", None)
    return json.dumps(meta, sort_keys=True).encode()


def product_files(out: Path) -> dict[str, bytes]:
    """Every file a finished output holds (labels of all levels, table, image, metadata), byte for byte;
    only the stage timings recorded in the label metadata are left out."""
    return {str(p.relative_to(out)): _without_timings(p.read_bytes()) if p.name == "zarr.json" else p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file()}


def data_files(out: Path) -> dict[str, bytes]:
    """Label chunks of every level and the table (metadata left out: it records the scheduler)."""
    files = product_files(out)
    return {k: v for k, v in files.items() if k.startswith("labels/nuclei/") and "/c/" in k or k.endswith(".parquet")}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    rng = np.random.default_rng(3)
    centres = rng.uniform(4, np.array(SHAPE) - 4, (30, 3))
    image, _ = balls_volume(SHAPE, centres, 4.0, noise=0.03, seed=4)
    path = tmp_path_factory.mktemp("in") / "in.ome.zarr"
    write_image(path, image, chunk_shape=(16, 16, 16), n_levels=2)
    return path


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out.zarr"
    result = run(source, out)
    assert result.n_objects >= 8 and result.grid.n_blocks == 12
    return out


# Mid-stage, at stage boundaries (the last item), between "data written" and "done recorded",
# around every driver-side result, during the table and during the final metadata write.
KILL_POINTS = [
    "tissue:0:saved", "predict:0:written", "predict:7:done", "predict:11:done", "pairs:4:written", "resolve:3:done",
    "offsets:0:saved", "flood:9:written", "flood:11:done", "measure:2:written", "relabel:5:written",
    "pyramid-1:0:done", "table:0:written", "finalize:0:labels", "finalize:0:complete",
]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_kill_anywhere_then_resume_gives_identical_output(source, reference, tmp_path, kill_at):
    out = tmp_path / "out.zarr"
    run_killed(source, out, kill_at)
    if not kill_at.startswith("finalize:0:complete"):
        assert not is_complete(out)
    result = run(source, out)
    assert product_files(out) == product_files(reference)
    assert not (out / ".bigseg-work").exists() and not (out / ".bigseg-lock").exists()
    if kill_at.startswith(("flood", "relabel")):
        assert result.skipped["predict"] == (12, 12)
        assert 0 < result.skipped["flood"][0]


@pytest.mark.parametrize("kill_at, first, then", [
    ("predict-host:5:written", True, False),   # maps of every block, seeds of some: resumed in one stage
    ("predict:7:done", False, True),           # the one-stage form's records, resumed in the GPU form
])
def test_resume_across_the_gpu_split(source, reference, tmp_path, kill_at, first, then):
    """With GPU resources the predict stage runs as two (maps; image copy and seeds) under other
    record names, so neither form takes the other's records for its own."""
    out = tmp_path / "out.zarr"
    run_killed(source, out, kill_at, gpu_resources=first)
    result = run(source, out, gpu_resources=then)
    # every file but the labels' metadata, which records the run's configuration (gpu_resources with it)
    meta = "labels/nuclei/zarr.json"
    assert {k: v for k, v in product_files(out).items() if k != meta} == \
        {k: v for k, v in product_files(reference).items() if k != meta}
    assert ("seeds" in result.timings) == then


def test_kill_twice_then_resume(source, reference, tmp_path):
    out = tmp_path / "out.zarr"
    run_killed(source, out, "predict:5:done")
    run_killed(source, out, "flood:3:written")
    run(source, out)
    assert product_files(out) == product_files(reference)


def test_complete_output_is_a_fast_no_op(source, reference, tmp_path):
    before = tree_digest(reference)
    again = run(source, reference, scheduler="local")  # execution settings are not part of the run
    assert again.already_complete and "nothing to do" in again.summary()
    assert tree_digest(reference) == before


def test_changed_configuration_on_unfinished_output_is_refused(source, tmp_path):
    out = tmp_path / "out.zarr"
    run_killed(source, out, "flood:3:done")
    before = tree_digest(out)
    with pytest.raises(OutputMismatchError, match=r"unfinished run.*seed_distance: recorded None, now 0\.3.*--overwrite"):
        run(source, out, seed_distance=0.3)
    with pytest.raises(OutputMismatchError, match=r"block_shape: recorded \[16, 16, 16\], now \[32, 32, 32\]"):
        run(source, out, block_shape=(32, 32, 32))
    assert tree_digest(out) == before
    assert run(source, out, seed_distance=0.3, overwrite=True).skipped["predict"] == (0, 12)


def test_output_of_another_input_is_refused(source, tmp_path):
    other = tmp_path / "other.zarr"
    image, _ = balls_volume(SHAPE, np.array([(16, 16, 24)]), 5.0)
    write_image(other, image)
    out = tmp_path / "out.zarr"
    run_killed(source, out, "pairs:2:done")
    before = tree_digest(out)
    with pytest.raises(OutputMismatchError, match=r"input\.url: recorded .*in\.ome\.zarr', now .*other\.zarr'"):
        run(other, out)
    assert tree_digest(out) == before


def test_a_tiff_written_anew_is_another_input(tmp_path):
    """Re-exporting the input TIFF at the same path between a kill and the re-run must not resume the old run
    on the new pixels: the fingerprint names the file's size and modification time."""
    import tifffile

    src = tmp_path / "in.tif"
    first, _ = balls_volume(SHAPE, np.array([(16, 16, 24)]), 5.0)
    tifffile.imwrite(src, first)
    out = tmp_path / "out.zarr"
    run_killed(src, out, "pairs:2:done", voxel_size=(1.0, 1.0, 1.0))
    before = tree_digest(out)
    second, _ = balls_volume(SHAPE, np.array([(10, 10, 10), (20, 20, 36)]), 4.0)
    src.unlink()
    tifffile.imwrite(src, second)  # the same shape, dtype and size: only the pixels and the time differ
    with pytest.raises(OutputMismatchError, match=r"input\.file: recorded \[\d+, \d+\], now \[\d+, \d+\].*--overwrite"):
        run(src, out, voxel_size=(1.0, 1.0, 1.0))
    assert tree_digest(out) == before
    assert run(src, out, voxel_size=(1.0, 1.0, 1.0), overwrite=True).n_objects == 2


def test_a_zarr_written_anew_is_another_input(tmp_path):
    """Re-exporting an OME-Zarr input at the same URL (same shape, dtype and voxel size, other pixels)
    between a kill and the re-run must not resume the old run on the new pixels: the fingerprint names
    the identity of the image's metadata documents, which the export writes anew."""
    import shutil

    src = tmp_path / "in.ome.zarr"
    first, _ = balls_volume(SHAPE, np.array([(16, 16, 24)]), 5.0)
    write_image(src, first, chunk_shape=(16, 16, 16), n_levels=2)
    out = tmp_path / "out.zarr"
    run_killed(src, out, "pairs:2:done")
    before = tree_digest(out)
    second, _ = balls_volume(SHAPE, np.array([(10, 10, 10), (20, 20, 36)]), 4.0)
    shutil.rmtree(src)
    write_image(src, second, chunk_shape=(16, 16, 16), n_levels=2)  # only the pixels and the times differ
    with pytest.raises(OutputMismatchError, match=r"unfinished run.*input\.metadata\.0/zarr\.json: "
                                                  r"recorded \[\d+, \d+\], now \[\d+, \d+\].*--overwrite"):
        run(src, out)
    assert tree_digest(out) == before
    assert run(src, out, overwrite=True).n_objects == 2


@pytest.mark.parametrize("zarr_format, document", [(3, "zarr.json"), (2, ".zarray")])
def test_fingerprint_names_a_zarr_array_written_anew(tmp_path, zarr_format, document):
    """A plain zarr array (v3 or v2) created again with ``overwrite=True``, the same bytes of metadata
    included, is another input; opened again untouched, it is the same one."""
    import time

    import zarr

    from bigseg.config import load_config
    from bigseg.io import open_volume
    from bigseg.pipeline._resume import differences, segment_fingerprint

    url = str(tmp_path / "plain.zarr")
    image = np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)
    zarr.create_array(url, data=image, chunks=BLOCK, zarr_format=zarr_format)
    cfg = load_config(environ={}, **OPTIONS)

    def fingerprint():
        return segment_fingerprint(cfg, open_volume(url, voxel_size=(1.0, 1.0, 1.0)), url)

    before = fingerprint()
    assert list(before["input"]["metadata"]) == [document]
    assert fingerprint() == before
    time.sleep(0.02)  # more than a clock tick: file times have that resolution on some kernels
    zarr.create_array(url, data=image[::-1], chunks=BLOCK, zarr_format=zarr_format, overwrite=True)
    assert [d.split(":")[0] for d in differences(before, fingerprint())] == [f"input.metadata.{document}"]


def test_an_output_without_the_input_metadata_identity_is_refused_clearly(source):
    """An output recorded by an older bigseg (no ``input.metadata``) is not continued: the message names
    the field, says why it is '(none)' and gives the ways out."""
    from bigseg.config import load_config
    from bigseg.io import open_volume
    from bigseg.pipeline._resume import OutputState, check_existing, segment_fingerprint

    now = segment_fingerprint(load_config(environ={}, **OPTIONS), open_volume(str(source)), str(source))
    older = {**now, "input": {k: v for k, v in now["input"].items() if k != "metadata"}}
    state = OutputState("bigseg", {"complete": False, "fingerprint": older})
    with pytest.raises(OutputMismatchError, match=r"input\.metadata\.zarr\.json: recorded '\(none\)', now \[.*"
                                                  r"written by an older bigseg.*--overwrite"):
        check_existing(state, now, "out.zarr", overwrite=False)
    assert check_existing(state, now, "out.zarr", overwrite=True) is False


def test_decode_resumes(source, tmp_path):
    from bigseg.pipeline import decode

    out = tmp_path / "out.zarr"
    run(source, out, save_maps=True)
    kw = dict(label_name="t2", scheduler="sync", seed_distance=0.6)
    expected = decode(str(out), **{**kw, "label_name": "t3"})
    proc = multiprocessing.get_context("fork").Process(target=_decode_child, args=(str(out), kw))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL
    assert not is_complete(out / "labels" / "t2")
    again = decode(str(out), **kw)
    assert again.skipped["predict"] == (12, 12) and again.n_objects == expected.n_objects
    for level in ("0", "1"):
        a, b = out / "labels" / "t2" / level, out / "labels" / "t3" / level
        assert product_files(a) == product_files(b)
    assert product_files(out / "labels" / "t2.parquet") == product_files(out / "labels" / "t3.parquet")
    assert decode(str(out), **kw).already_complete


def _decode_child(out: str, kw: dict) -> None:
    from bigseg.pipeline import decode

    os.setpgid(0, 0)
    os.environ[KILL_AT_ENV] = "flood:4:done"
    decode(out, **kw)
    os._exit(0)


def _cli(src, out, *extra, env=None, timeout=300):
    cmd = [sys.executable, "-m", "bigseg", "segment", str(src), str(out), "--predictor", "classical",
           "--diameter", "8", "--block-shape", *map(str, BLOCK), "--no-progress", *extra]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["predict:6:written", "flood:11:done"])
def test_cluster_kill_and_resume(source, reference, tmp_path, kill_at):
    """kill -9 of the driver and every worker of a LocalCluster run, then the same command again."""
    out = tmp_path / "out.zarr"
    args = ("--scheduler", "local", "--n-workers", "2")
    killed = _cli(source, out, *args, env={KILL_AT_ENV: kill_at})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _cli(source, out, *args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed: predict" in resumed.stdout
    assert data_files(out) == data_files(reference)


@pytest.mark.slow
def test_cluster_killed_while_it_closes(source, reference, tmp_path):
    """kill -9 of the driver and the workers as the run's cluster closes (workers then end without
    the interpreter's teardown): the output was complete before, and the same command says so."""
    out = tmp_path / "out.zarr"
    args = ("--scheduler", "local", "--n-workers", "2")
    killed = _cli(source, out, *args, env={KILL_AT_ENV: "cluster:0:close"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    again = _cli(source, out, *args)
    assert again.returncode == 0 and "already complete" in again.stdout, again.stderr[-2000:]
    assert data_files(out) == data_files(reference)


@pytest.mark.slow
def test_worker_killed_mid_block_is_retried_elsewhere(source, reference, tmp_path, monkeypatch):
    """One worker dies after writing half of what a block owes (maps and seeds, no record); Dask reruns it."""
    monkeypatch.setenv(KILL_AT_ENV, "predict:5:written:worker")
    monkeypatch.setenv(KILL_MARKER_ENV, str(tmp_path / "killed"))
    out = tmp_path / "out.zarr"
    run(source, out, scheduler="local", n_workers=2)
    assert (tmp_path / "killed").exists()  # the fault did happen
    assert data_files(out) == data_files(reference)


def test_fingerprint_names_a_changed_model(source, tmp_path):
    import shutil

    from bigseg.config import load_config
    from bigseg.io import open_volume
    from bigseg.pipeline._resume import differences, segment_fingerprint
    from bigseg.predict import resolve_model

    package = tmp_path / "model"
    shutil.copytree(resolve_model("default"), package)
    volume = open_volume(str(source))
    cfg = load_config(environ={}, predictor="model", model=str(package), scheduler="sync")
    before = segment_fingerprint(cfg, volume, str(source))
    card = package / "card.json"
    card.write_text(card.read_text() + "\n")  # same name and path, other content
    after = segment_fingerprint(load_config(environ={}, predictor="model", model=str(package), scheduler="local"),
                                volume, str(source))
    assert [d.split(":")[0] for d in differences(before, after)] == ["model.sha256"]
    assert segment_fingerprint(load_config(environ={}, **OPTIONS), volume, str(source))["model"] is None


def test_a_config_field_an_output_does_not_record_counts_as_unset(source):
    """An output recorded before a configuration field existed (here ``max_upsample``) is continued when
    the field is unset now, and refused, naming it, when it is set."""
    from bigseg.config import load_config
    from bigseg.io import open_volume
    from bigseg.pipeline._resume import OutputState, check_existing, segment_fingerprint

    volume = open_volume(str(source))
    now = segment_fingerprint(load_config(environ={}, **OPTIONS), volume, str(source))
    older = {**now, "config": {k: v for k, v in now["config"].items() if k != "max_upsample"}}
    state = OutputState("bigseg", {"complete": False, "fingerprint": older})
    assert check_existing(state, now, "out.zarr", overwrite=False) is False  # not complete: continued
    capped = segment_fingerprint(load_config(environ={}, **OPTIONS, max_upsample=2), volume, str(source))
    with pytest.raises(OutputMismatchError, match=r"config\.max_upsample: recorded None, now 2\.0"):
        check_existing(state, capped, "out.zarr", overwrite=False)
