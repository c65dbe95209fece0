"""fsspec URLs: memory:// (write and read) and http:// served from 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
import uuid

import fsspec
import numpy as np
import pytest

from bigseg.errors import OutputExistsError, VolumeNotFoundError
from bigseg.io import create_image, create_labels, is_complete, open_volume
from bigseg.tiling import Roi


@pytest.fixture
def memory_root():
    root = f"memory://bigseg-test-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root[len("memory://") :]):
        fs.rm(root[len("memory://") :], recursive=True)


def _write(url, data, **kwargs):
    img = create_image(url, shape=data.shape, dtype=data.dtype, voxel_size=(2.0, 1.0, 1.0), chunk_shape=8, **kwargs)
    img.write(Roi((0, 0, 0), data.shape), data)
    for roi in img.pyramid_rois(1) if img.n_levels > 1 else []:
        img.build_pyramid_block(1, roi, "mean")
    return img


def test_memory_url_round_trip(memory_root):
    data = np.random.default_rng(11).random((10, 16, 16)).astype(np.float32)
    url = f"{memory_root}/img.zarr"
    img = _write(url, data, n_levels=2, shard_shape=16)
    lab = create_labels(img, "cells")
    lab.write(Roi((0, 0, 0), data.shape), (data > 0.5).astype(np.uint32))
    assert not is_complete(url)
    lab.finalize()
    img.finalize()
    assert is_complete(url) and is_complete(lab.url)
    vol = open_volume(url, storage_options={"skip_instance_cache": True})  # options reach fsspec
    assert vol.storage_options == {"skip_instance_cache": True}
    assert vol.shape == (10, 16, 16) and vol.voxel_size == (2.0, 1.0, 1.0) and vol.n_levels == 2
    np.testing.assert_array_equal(vol.read(vol.roi), data)
    np.testing.assert_array_equal(open_volume(lab.url).read(vol.roi), data > 0.5)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        _write(url, data)
    _write(url, data[:8], overwrite=True).finalize()
    assert open_volume(url).shape == (8, 16, 16)


def test_memory_url_missing(memory_root):
    with pytest.raises(VolumeNotFoundError, match="absent.zarr"):
        open_volume(f"{memory_root}/absent.zarr")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture
def http_root(tmp_path):
    pytest.importorskip("aiohttp")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_http_url_read(http_root, version):
    folder, base = http_root
    data = np.random.default_rng(12).integers(0, 255, (10, 16, 16)).astype(np.uint8)
    _write(folder / "img.zarr", data, n_levels=2, ngff_version=version).finalize()
    vol = open_volume(f"{base}/img.zarr", level=1)
    assert vol.shape == (5, 8, 8) and vol.voxel_size == (4.0, 2.0, 2.0) and vol.ngff_version == version
    full = vol.with_level(0)
    np.testing.assert_array_equal(full.read(Roi((1, 2, 3), (8, 8, 8))), data[1:9, 2:10, 3:11])
    with pytest.raises(VolumeNotFoundError, match="missing.zarr"):
        open_volume(f"{base}/missing.zarr")
