"""OME-Zarr writer: layout, alignment checks, completeness, overwrite, NGFF validity."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import zarr

from bigseg.errors import InputError, OutputExistsError
from bigseg.io import create_image, create_labels, is_complete
from bigseg.tiling import Roi

ome_v04 = pytest.importorskip("ome_zarr_models.v04")
ome_v05 = pytest.importorskip("ome_zarr_models.v05")


def _write_all(writer, data, method="mean"):
    writer.write(Roi((0, 0, 0), writer.shape), data)
    for level in range(1, writer.n_levels):
        for roi in writer.pyramid_rois(level):
            writer.build_pyramid_block(level, roi, method)


@pytest.mark.parametrize(("version", "shard"), [("0.5", (16, 16, 16)), ("0.5", None), ("0.4", None)])
def test_image_and_labels_validate_as_ngff(tmp_path, version, shard):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, (20, 40, 36)).astype(np.uint16)
    url = tmp_path / "out.zarr"
    img = create_image(
        url, shape=data.shape, dtype="uint16", voxel_size=(1.0, 0.5, 0.5), chunk_shape=(8, 8, 8),
        shard_shape=shard, n_levels=2, ngff_version=version,
    )
    _write_all(img, data)
    lab = create_labels(img, "nuclei")
    _write_all(lab, (data > 500).astype(np.uint32), "nearest")
    assert not is_complete(url)
    assert "multiscales" not in str(dict(zarr.open_group(url, mode="r").attrs))
    lab.finalize()
    img.finalize({"run": "t"})
    assert is_complete(url) and is_complete(lab.url)

    group = zarr.open_group(url, mode="r")
    models = ome_v05 if version == "0.5" else ome_v04
    models.Image.from_zarr(group)
    models.ImageLabel.from_zarr(group["labels/nuclei"])
    models.Labels.from_zarr(group["labels"])
    assert group.metadata.zarr_format == (3 if version == "0.5" else 2)
    assert dict(group.attrs)["bigseg"] == {"complete": True, "run": "t"}
    # level 1: z voxel 1.0 is not > 2 * 0.5, so z is halved too; ceil-divided shapes
    assert group["1"].shape == (10, 20, 18)
    np.testing.assert_array_equal(group["labels/nuclei/1"][:], (data > 500)[::2, ::2, ::2])
    expected_mean = data[:2, :2, :2].astype(float).mean()
    assert abs(float(group["1"][0, 0, 0]) - expected_mean) <= 0.5


def test_writer_pickles_and_reads_back(tmp_path):
    img = create_image(tmp_path / "a.zarr", shape=(8, 8, 8), dtype="float32", voxel_size=(1, 1, 1), chunk_shape=4)
    clone = pickle.loads(pickle.dumps(img))
    assert clone == img
    block = np.full((4, 4, 4), 2.5, np.float32)
    clone.write(Roi((4, 4, 4), (4, 4, 4)), block)
    np.testing.assert_array_equal(img.read(Roi((4, 4, 4), (4, 4, 4))), block)
    assert img.read(Roi((0, 0, 0), (4, 4, 4))).sum() == 0


def test_channel_image_keeps_channels_at_every_level(tmp_path):
    img = create_image(
        tmp_path / "bcd.zarr", shape=(3, 8, 16, 16), channel_names=["b", "c", "d"], dtype="float32",
        voxel_size=(4.0, 1.0, 1.0), chunk_shape=(8, 8, 8), n_levels=2,
    )
    # anisotropic: z (4 µm) > 2 * xy (1 µm), so z keeps its size
    assert img.level_shapes == ((3, 8, 16, 16), (3, 8, 8, 8))
    _write_all(img, np.ones((3, 8, 16, 16), np.float32))
    img.finalize()
    ome_v05.Image.from_zarr(zarr.open_group(img.url, mode="r"))
    assert img.voxel_sizes[1] == (4.0, 2.0, 2.0)


@pytest.mark.parametrize(
    "roi",
    [Roi((0, 0, 8), (16, 16, 8)), Roi((0, 0, 0), (16, 16, 24)), Roi((0, 0, 0), (8, 16, 16))],
)
def test_misaligned_write_to_shard_raises(tmp_path, roi):
    img = create_image(
        tmp_path / "s.zarr", shape=(20, 32, 32), dtype="uint8", voxel_size=(1, 1, 1),
        chunk_shape=8, shard_shape=16,
    )
    with pytest.raises(InputError, match=r"not aligned to the write unit \(16, 16, 16\)"):
        img.write(roi, np.zeros(roi.shape, np.uint8))


def test_write_ending_at_array_edge_is_aligned(tmp_path):
    img = create_image(tmp_path / "e.zarr", shape=(20, 20, 20), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=8)
    img.write(Roi((16, 16, 16), (4, 4, 4)), np.ones((4, 4, 4), np.uint8))
    assert img.read(Roi((0, 0, 0), (20, 20, 20))).sum() == 64


def test_float_into_integer_image_raises(tmp_path):
    img = create_image(tmp_path / "i.zarr", shape=(4, 4, 4), dtype="uint16", voxel_size=(1, 1, 1), chunk_shape=4)
    with pytest.raises(InputError, match="cannot write float64 data into the uint16 image"):
        img.write(Roi((0, 0, 0), (4, 4, 4)), np.zeros((4, 4, 4)))


def test_overwrite_protection(tmp_path):
    url = tmp_path / "o.zarr"
    kwargs = dict(shape=(4, 4, 4), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=4)
    create_image(url, **kwargs)
    with pytest.raises(OutputExistsError, match=r"o\.zarr.*overwrite=True \(CLI: --overwrite\)"):
        create_image(url, **kwargs)
    img = create_image(url, overwrite=True, **{**kwargs, "shape": (6, 6, 6)})
    assert zarr.open_array(url / "0", mode="r").shape == (6, 6, 6) == img.shape


def test_overwrite_refuses_a_folder_that_is_not_zarr(tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a zarr folder"):
        create_image(folder, shape=(4, 4, 4), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=4, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_is_complete_false_for_missing_and_partial(tmp_path):
    assert not is_complete(tmp_path / "nothing.zarr")
    img = create_image(tmp_path / "p.zarr", shape=(4, 4, 4), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=4)
    img.write(Roi((0, 0, 0), (4, 4, 4)), np.ones((4, 4, 4), np.uint8))
    assert not is_complete(img.url)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(shard_shape=(12, 8, 8)), r"`shard_shape` \(12, 8, 8\) must be a multiple of `chunk_shape`"),
        (dict(shard_shape=16, ngff_version="0.4"), "needs ngff_version='0.5'"),
        (dict(voxel_size=(1, 0, 1)), r"`voxel_size` must be 3 finite numbers > 0"),
        (dict(ngff_version="0.6"), "must be '0.5' or '0.4'"),
        (dict(channel_names=["a"]), "must have 4 values"),
    ],
)
def test_create_image_rejects_bad_arguments(tmp_path, kwargs, match):
    base = dict(shape=(16, 16, 16), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=8)
    with pytest.raises(InputError, match=match):
        create_image(tmp_path / "bad.zarr", **{**base, **kwargs})


def test_create_keeps_named_entries_and_records_attrs(tmp_path):
    """What a resumable run needs: its lock survives creation, its fingerprint survives finalize."""
    import json

    out = tmp_path / "out.zarr"
    out.mkdir()
    (out / ".bigseg-lock").write_text("{}")
    attrs = {"fingerprint": {"input": {"shape": [8, 8, 8]}}}
    writer = create_image(out, shape=(8, 8, 8), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=4,
                          attrs=attrs, keep=(".bigseg-lock",))
    assert (out / ".bigseg-lock").read_text() == "{}"
    meta = json.loads((out / "zarr.json").read_text())["attributes"]["bigseg"]
    assert meta == {"fingerprint": {"input": {"shape": [8, 8, 8]}}, "complete": False}
    again = create_image(out, shape=(8, 8, 8), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=4, reopen=True)
    assert again == writer
    writer.finalize({"labels": []})
    meta = json.loads((out / "zarr.json").read_text())["attributes"]["bigseg"]
    assert meta["complete"] is True and meta["fingerprint"] == attrs["fingerprint"]
