"""Labels without a copy of the image: into the input OME-Zarr, or a labels-only OME-Zarr naming its image."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import zarr

from bigseg.errors import InputError
from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.testing import balls_volume, write_image

from tests.pipeline.conftest import lattice_centres

KW = dict(scheduler="sync", predictor="classical", diameter_um=10.0, block_shape=(32, 32, 32))


def _file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def small_input(tmp_path):
    shape = (48, 64, 64)
    image, _ = balls_volume(shape, lattice_centres(shape, 13, 1.5, seed=3), 5.0, noise=0.03, seed=4)
    path = tmp_path / "in.ome.zarr"
    write_image(path, image, chunk_shape=(32, 32, 32))
    return path


def test_into_input_changes_only_the_labels_group(small_input, tmp_path) -> None:
    before = _file_hashes(small_input)
    result = segment(str(small_input), output_mode="into-input", **KW)
    after = _file_hashes(small_input)
    assert {k: v for k, v in after.items() if k in before} == before  # image arrays and metadata: same bytes
    assert all(k.startswith("labels/") for k in set(after) - set(before))
    assert not any(".bigseg" in k for k in after)  # scratch and maps removed
    reference = segment(str(small_input), str(tmp_path / "copy.zarr"), **KW)
    got = open_volume(f"{small_input}/labels/nuclei").read_level(0)
    assert result.n_objects == reference.n_objects > 0
    assert np.array_equal(got, open_volume(f"{reference.output}/labels/nuclei").read_level(0))
    attrs = json.loads((small_input / "labels" / "nuclei" / "zarr.json").read_text())["attributes"]["ome"]
    assert attrs["image-label"]["source"]["image"] == "../../"


def test_ome_zarr_reader_finds_image_and_labels_together(small_input) -> None:
    pytest.importorskip("ome_zarr", reason="ome-zarr (dev dependency) reads the result as a viewer would")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    segment(str(small_input), output_mode="into-input", **KW)
    nodes = list(Reader(parse_url(str(small_input)))())
    image = [n for n in nodes if n.load(Multiscales) and not n.load(Label)]
    labels = [n for n in nodes if n.load(Label)]
    assert image and labels
    assert tuple(image[0].data[0].shape) == tuple(labels[0].data[0].shape) == (48, 64, 64)
    assert int(np.asarray(labels[0].data[0]).max()) > 0


def test_into_input_refuses_a_read_only_input(small_input) -> None:
    pytest.importorskip("aiohttp")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(small_input.parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{small_input.name}"
        with pytest.raises(InputError, match="cannot write labels into the input .* read-only.*labels-only"):
            segment(url, output_mode="into-input", **KW)
    finally:
        server.shutdown()


def test_into_input_refuses_what_is_not_an_ome_zarr_image(tmp_path) -> None:
    arr = zarr.create_array(str(tmp_path / "plain.zarr"), shape=(16, 16, 16), chunks=(16, 16, 16), dtype="uint8")
    arr[:] = 1
    with pytest.raises(InputError, match="needs an OME-Zarr 0.4 or 0.5 image.*plain zarr array"):
        segment(str(tmp_path / "plain.zarr"), output_mode="into-input", voxel_size=(1, 1, 1), **KW)
    with pytest.raises(InputError, match="give no output"):
        segment(str(tmp_path / "plain.zarr"), str(tmp_path / "o.zarr"), output_mode="into-input", **KW)


def test_labels_only_output_names_its_source_image(small_input, tmp_path) -> None:
    out = tmp_path / "labels-only.zarr"
    result = segment(str(small_input), str(out), output_mode="labels-only", **KW)
    names = sorted(os.listdir(out))
    assert "0" not in names and "labels" in names  # no image arrays
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["bigseg"]["complete"] is True
    assert root.attrs["bigseg"]["source_image"] == str(small_input)
    meta = dict(root["labels/nuclei"].attrs)["ome"]
    source = meta["image-label"]["source"]["image"]
    assert (out / "labels" / "nuclei" / source).resolve() == small_input.resolve()
    copy = segment(str(small_input), str(tmp_path / "copy.zarr"), **KW)
    assert np.array_equal(open_volume(result.labels_url).read_level(0), open_volume(copy.labels_url).read_level(0))
