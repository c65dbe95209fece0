"""Resuming on stores other than a local disk: a real S3 API (moto's server on 127.0.0.1),
a store that refuses writes (read-only output) and one that runs out of space mid-run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import fsspec
from bigseg.errors import BlockFailedError, InputError
from bigseg.io import is_complete, open_volume
from bigseg.pipeline._executor import KILL_AT_ENV
from bigseg.pipeline._records import RecordStore

from .test_resume import BLOCK, data_files, reference, run, source  # noqa: F401  (fixtures)


class _FailingMemoryFS(MemoryFileSystem):
    """An in-memory store whose writes can be made to fail (one class per failure kind)."""

    fail_on: str | None = None  # writes to paths containing this fail
    error: OSError = OSError()

    def pipe_file(self, path, value, *args, **kwargs):
        if self.fail_on is not None and self.fail_on in str(path):
            raise self.error
        return super().pipe_file(path, value, *args, **kwargs)

    def _open(self, path, mode="rb", *args, **kwargs):
        if "w" in mode or "a" in mode:
            if self.fail_on is not None and self.fail_on in str(path):
                raise self.error
        return super()._open(path, mode, *args, **kwargs)

    def makedirs(self, path, exist_ok=False):
        if self.fail_on is not None and self.fail_on in str(path):
            raise self.error
        return super().makedirs(path, exist_ok=exist_ok)


class FullDiskFS(_FailingMemoryFS):
    protocol = ("fulldisk",)
    error = OSError(errno.ENOSPC, "No space left on device")


class ReadOnlyFS(_FailingMemoryFS):
    protocol = ("readonly",)
    fail_on = "readonly://"
    error = PermissionError(errno.EACCES, "Permission denied")


fsspec.register_implementation("fulldisk", FullDiskFS, clobber=True)
fsspec.register_implementation("readonly", ReadOnlyFS, clobber=True)


def _keys(prefix: str) -> list[str]:
    return [k for k in MemoryFileSystem.store if k.startswith(prefix)]


def test_read_only_output_is_refused_before_any_work(source, monkeypatch):  # noqa: F811
    import bigseg.pipeline._segment as seg

    def no_work(*args, **kwargs):
        raise AssertionError("work started on a read-only output")

    monkeypatch.setattr(seg, "make_plan", no_work)
    with pytest.raises(InputError, match=r"output 'readonly://ro/out.zarr' is not writable .*Permission denied"):
        run(source, "readonly://ro/out.zarr")
    assert _keys("readonly://ro") == []


def test_full_disk_during_a_write_leaves_the_block_not_done(source, reference, monkeypatch):  # noqa: F811
    out = "fulldisk://disk/out.zarr"
    monkeypatch.setattr(FullDiskFS, "fail_on", "/labels/nuclei/0/c/1/")  # level-0 labels of the blocks with z = 1
    with pytest.raises(BlockFailedError, match=r"relabel failed on block \(1, 0, 0\) \(write ROI offset \(16, 0, 0\), "
                                               r"shape \(16, 16, 16\)\) after 2 tries: OSError: .*No space left"):
        run(source, out)
    records = RecordStore(f"{out}/.bigseg-work/records")
    assert records.done("relabel") == set(range(6))  # blocks 0..5 (z = 0) are done, block 6 is not
    assert not is_complete(out)
    monkeypatch.setattr(FullDiskFS, "fail_on", None)  # space freed
    result = run(source, out)
    assert result.skipped["relabel"] == (6, 12) and result.skipped["flood"] == (12, 12)
    for level in (0, 1):
        np.testing.assert_array_equal(
            open_volume(f"{out}/labels/nuclei", level=level).read_level(level),
            open_volume(str(reference / "labels" / "nuclei"), level=level).read_level(level),
        )
    table = reference / "labels" / "nuclei.parquet"
    for part in (p for p in table.rglob("*") if p.is_file()):
        with fsspec.open(f"{out}/labels/nuclei.parquet/{part.relative_to(table)}", "rb") as f:
            assert f.read() == part.read_bytes()


# ---------------------------------------------------------------- S3

SECRET = "bigseg-test-secret-0123456789"


@pytest.fixture(scope="module")
def s3():
    """A real S3 API on 127.0.0.1 (moto's server mode), with one bucket."""
    pytest.importorskip("s3fs", reason="s3fs is needed for s3:// URLs (pip install bigseg[dev])")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 tests (dev extra)")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {"key": "bigseg-test-key", "secret": SECRET,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    import boto3
    import s3fs

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                 region_name="us-east-1").create_bucket(Bucket="bigseg-test")
    fs = s3fs.S3FileSystem(**options)
    yield fs, options
    server.stop()


def _s3_cli(src, out, options, env=None):
    cmd = [sys.executable, "-m", "bigseg", "segment", src, out, "--predictor", "classical", "--diameter", "8",
           "--block-shape", *map(str, BLOCK), "--scheduler", "sync", "--no-progress",
           "--storage-options", json.dumps(options)]
    # Credentials only on the command line: none in the environment, so a leak can only come from bigseg.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(cmd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=300,
                          start_new_session=True)


@pytest.mark.slow
def test_s3_segment_kill_resume_identical(s3, source, reference):  # noqa: F811
    fs, options = s3
    fs.put(str(source), "bigseg-test/in.ome.zarr", recursive=True)
    src, out = "s3://bigseg-test/in.ome.zarr", "s3://bigseg-test/out.zarr"
    killed = _s3_cli(src, out, options, env={KILL_AT_ENV: "flood:7:written"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert fs.exists("bigseg-test/out.zarr/.bigseg-work/records/done/flood/6")
    resumed = _s3_cli(src, out, options)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed: predict 12/12 blocks skipped, flood 7/12 blocks skipped" in resumed.stdout
    local = data_files(reference)
    remote = {k: fs.cat_file(f"bigseg-test/out.zarr/{k}") for k in local}
    assert remote == local
    assert sorted(f for f in fs.find("bigseg-test/out.zarr") if "/labels/nuclei/" in f and "/c/" in f) == sorted(
        f"bigseg-test/out.zarr/{k}" for k in local if "/c/" in k)  # no chunk more than the reference
    assert not fs.exists("bigseg-test/out.zarr/.bigseg-work") and not fs.exists("bigseg-test/out.zarr/.bigseg-lock")
    again = _s3_cli(src, out, options)
    assert again.returncode == 0 and "already complete" in again.stdout
    for path in fs.find("bigseg-test/out.zarr"):
        if path.endswith(".json"):
            text = fs.cat_file(path).decode()
            assert SECRET not in text and "bigseg-test-key" not in text and "endpoint_url" not in text, path


def test_s3_records_are_seen_by_another_process_at_once(s3):
    """No rename on S3 (records are single PUTs) and listings are never served from this process's cache."""
    fs, options = s3
    reader = RecordStore("s3://bigseg-test/rec", options)
    assert reader.done("predict") == set()  # fills s3fs's listing cache with an empty folder
    code = ("from bigseg.pipeline._records import RecordStore; import json, sys; "
            "RecordStore('s3://bigseg-test/rec', json.loads(sys.argv[1])).mark_done('predict', 3, 17)")
    subprocess.run([sys.executable, "-c", code, json.dumps(options)], check=True, timeout=120)
    assert reader.done("predict") == {3}
    assert dict(reader.results("predict", [3])) == {3: 17}


def test_s3_zarr_input_written_anew_is_another_input(s3, source):  # noqa: F811
    """On S3 the ETag is the MD5 of the bytes: an OME-Zarr exported again with the same metadata keeps it,
    so the fingerprint names the modification time as well (whole seconds)."""
    import time

    from bigseg.config import load_config
    from bigseg.pipeline._resume import differences, segment_fingerprint

    fs, options = s3
    fs.put(str(source), "bigseg-test/anew.ome.zarr", recursive=True)
    url = "s3://bigseg-test/anew.ome.zarr"
    cfg = load_config(environ={}, predictor="classical", diameter_um=8.0, block_shape=BLOCK)

    def fingerprint():
        fs.invalidate_cache()
        return segment_fingerprint(cfg, open_volume(url, storage_options=options), url)

    before = fingerprint()
    assert set(before["input"]["metadata"]) == {"zarr.json", "0/zarr.json", "1/zarr.json"}
    assert fingerprint() == before  # untouched: the same input
    time.sleep(1.05 - time.time() % 1)  # into the next second: S3 keeps times in whole seconds
    meta = fs.cat_file("bigseg-test/anew.ome.zarr/0/zarr.json")
    fs.pipe_file("bigseg-test/anew.ome.zarr/0/zarr.json", meta)  # the same bytes, written anew
    after = fingerprint()
    assert after["input"]["metadata"]["0/zarr.json"][2] == before["input"]["metadata"]["0/zarr.json"][2]  # ETag
    assert [d.split(":")[0] for d in differences(before, after)] == ["input.metadata.0/zarr.json"]
