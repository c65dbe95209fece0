"""Outputs carry the NGFF metadata viewers need: ome-zarr-py links the labels to their image."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import zarr

from bigseg.io import create_image, create_labels
from bigseg.io._ngff import LABEL_COLORS_MAX, image_label_attrs, multiscales_attrs, ngff_body
from bigseg.pipeline import segment
from bigseg.testing import balls_volume, write_image

reader = pytest.importorskip("ome_zarr.reader", reason="ome-zarr (dev extra) is needed to read outputs as viewers do")
ome_io = pytest.importorskip("ome_zarr.io")
ome_format = pytest.importorskip("ome_zarr.format")


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    centres = np.array([(8, 16, 16), (8, 16, 44), (22, 44, 20), (22, 40, 48)])
    image, _ = balls_volume((32, 64, 64), centres, 5.0, seed=3)
    path = tmp_path_factory.mktemp("ngff") / "in.zarr"
    write_image(path, image, n_levels=2)
    return path


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_reader_finds_parent_image_without_warning(src, tmp_path, version, caplog):
    out = tmp_path / f"out{version}.zarr"
    result = segment(str(src), str(out), scheduler="sync", predictor="classical", diameter_um=10.0,
                     block_shape=(16, 32, 32), ngff_version=version)
    assert result.n_objects == 4
    caplog.set_level(logging.DEBUG, logger="ome_zarr")
    # Read as the format it is (without fmt, ome-zarr-py warns on any 0.4 data that it expected 0.5).
    fmt = ome_format.format_from_version(version)
    nodes = list(reader.Reader(ome_io.parse_url(str(out / "labels" / "nuclei"), fmt=fmt))())
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    # The parent image comes first (hidden; then its labels group), the label image last.
    parent, label = nodes[0], nodes[-1]
    assert any(isinstance(s, reader.Multiscales) for s in parent.specs) and not parent.visible
    assert any(isinstance(s, reader.Label) for s in label.specs)
    assert parent.zarr.path.rstrip("/").endswith(f"out{version}.zarr")
    np.testing.assert_array_equal(np.asarray(parent.data[0]), np.asarray(zarr.open_array(str(out / "0"))))
    # Colours for a handful of nuclei: background transparent, one opaque colour per ID.
    colors = label.metadata["color"]
    assert colors[0] == [0, 0, 0, 0] and set(colors) == set(range(result.n_objects + 1))
    body, _ = ngff_body(dict(zarr.open_group(str(out / "labels" / "nuclei"), mode="r").attrs))
    assert body["image-label"]["version"] == version
    assert body["image-label"]["source"] == {"image": "../../"}


def test_colors_only_for_a_small_palette():
    assert len(image_label_attrs("0.5", n_labels=3)["colors"]) == 4
    assert len(image_label_attrs("0.4", n_labels=LABEL_COLORS_MAX)["colors"]) == LABEL_COLORS_MAX + 1
    assert "colors" not in image_label_attrs("0.5", n_labels=LABEL_COLORS_MAX + 1)
    assert "colors" not in image_label_attrs("0.5", n_labels=5_000_000)
    assert "colors" not in image_label_attrs("0.5")
    rgba = [tuple(c["rgba"]) for c in image_label_attrs("0.5", n_labels=20)["colors"][1:]]
    assert len(set(rgba)) == 20


def test_levels_have_scale_then_centre_translation():
    ms = multiscales_attrs(paths=["0", "1", "2"], voxel_sizes=[(2.0, 0.5, 0.5), (2.0, 1.0, 1.0), (4.0, 2.0, 2.0)],
                           has_channel=True, name="x", version="0.5")
    assert [a.get("unit") for a in ms["axes"]] == [None, "micrometer", "micrometer", "micrometer"]
    t0, t1, t2 = (d["coordinateTransformations"] for d in ms["datasets"])
    assert t0 == [{"type": "scale", "scale": [1.0, 2.0, 0.5, 0.5]}]
    # Level 1 averages 1 x 2 x 2 level-0 voxels: its centre is half a level-0 voxel in (y, x).
    assert t1 == [{"type": "scale", "scale": [1.0, 2.0, 1.0, 1.0]},
                  {"type": "translation", "translation": [0.0, 0.0, 0.25, 0.25]}]
    assert t2[1] == {"type": "translation", "translation": [0.0, 1.0, 0.75, 0.75]}


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_writer_output_validates_with_translations(tmp_path, version):
    models = pytest.importorskip(f"ome_zarr_models.v0{version[-1]}")
    img = create_image(tmp_path / "img.zarr", shape=(8, 32, 32), dtype="uint16", voxel_size=(1.0, 0.5, 0.5),
                       chunk_shape=(8, 16, 16), n_levels=3, ngff_version=version)
    labels = create_labels(img, "cells")
    labels.finalize(n_labels=2_000_000)
    img.finalize()
    group = zarr.open_group(str(tmp_path / "img.zarr"), mode="r")
    models.Image.from_zarr(group)
    label = models.ImageLabel.from_zarr(group["labels/cells"])
    assert label is not None
    body, _ = ngff_body(dict(group["labels/cells"].attrs))
    assert "colors" not in body["image-label"]
