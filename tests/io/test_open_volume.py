"""open_volume on zarr inputs: OME-Zarr 0.4/0.5, bioformats2raw, plain arrays, errors."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import zarr

from bigseg.errors import InputError, VolumeNotFoundError
from bigseg.io import copy_image_block, create_image, create_labels, open_volume
from bigseg.tiling import Roi


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _write_image(url, data, *, version="0.5", shard=None, n_levels=2, voxel_size=(1.0, 0.5, 0.5)):
    img = create_image(
        url, shape=data.shape, dtype=data.dtype, voxel_size=voxel_size, chunk_shape=(8, 8, 8),
        shard_shape=shard, n_levels=n_levels, ngff_version=version,
    )
    unit = img.write_unit(0)
    # block-wise, as the pipeline does: aligned blocks of one write unit
    for z in range(0, data.shape[0], unit[0]):
        for y in range(0, data.shape[1], unit[1]):
            roi = Roi((z, y, 0), (min(unit[0], data.shape[0] - z), min(unit[1], data.shape[1] - y), data.shape[2]))
            img.write(roi, data[roi.to_slices()])
    for level in range(1, n_levels):
        for roi in img.pyramid_rois(level):
            img.build_pyramid_block(level, roi, "mean")
    img.finalize()
    return img


@pytest.fixture
def data():
    return np.random.default_rng(42).integers(0, 4000, (20, 40, 36)).astype(np.uint16)


@pytest.mark.parametrize(("version", "shard"), [("0.5", None), ("0.5", (16, 16, 16)), ("0.4", None)])
def test_round_trip(tmp_path, data, version, shard):
    url = tmp_path / "img.zarr"
    _write_image(url, data, version=version, shard=shard)
    before = _tree_hash(url)
    vol = open_volume(url)
    assert (vol.shape, vol.dtype, vol.voxel_size) == ((20, 40, 36), "uint16", (1.0, 0.5, 0.5))
    assert vol.ngff_version == version and vol.n_levels == 2 and vol.chunk_shape == (8, 8, 8)
    assert vol.level_shapes == ((20, 40, 36), (10, 20, 18))
    np.testing.assert_array_equal(vol.read(vol.roi), data)
    np.testing.assert_array_equal(vol.read(Roi((3, 5, 7), (4, 9, 11))), data[3:7, 5:14, 7:18])
    low = vol.read_level(1)
    assert low.shape == (10, 20, 18) and low.dtype == np.uint16
    assert abs(int(low[0, 0, 0]) - data[:2, :2, :2].mean()) <= 0.5
    assert _tree_hash(url) == before  # reading never modifies the input


def test_level_choice_and_range(tmp_path, data):
    url = tmp_path / "img.zarr"
    _write_image(url, data)
    vol = open_volume(url, level=1)
    assert vol.shape == (10, 20, 18) and vol.voxel_size == (2.0, 1.0, 1.0) and vol.level == 1
    assert vol.with_level(0).shape == (20, 40, 36)
    with pytest.raises(InputError, match=r"`level` must be 0\.\.1: .* has 2 resolution level\(s\), got level=2"):
        open_volume(url, level=2)


def test_volume_pickles_without_open_handles(tmp_path, data):
    url = tmp_path / "img.zarr"
    _write_image(url, data)
    vol = open_volume(url)
    vol.read(Roi((0, 0, 0), (1, 1, 1)))  # opens and caches a handle in this process
    blob = pickle.dumps(vol)
    assert len(blob) < 2000
    np.testing.assert_array_equal(pickle.loads(blob).read(Roi((0, 0, 0), (2, 2, 2))), data[:2, :2, :2])


def test_file_url_and_image_array_path(tmp_path, data):
    url = tmp_path / "img.zarr"
    _write_image(url, data, version="0.4")
    vol = open_volume(f"file://{url}")
    assert vol.source == str(url)
    np.testing.assert_array_equal(vol.read(vol.roi), data)
    # an array inside an OME image takes its voxel size from the parent metadata
    level1 = open_volume(url / "1")
    assert level1.shape == (10, 20, 18) and level1.voxel_size == (2.0, 1.0, 1.0)


def test_explicit_voxel_size_overrides_metadata(tmp_path, data):
    url = tmp_path / "img.zarr"
    _write_image(url, data)
    vol = open_volume(url, voxel_size=(3, 0.3, 0.3))
    assert vol.voxel_size == (3.0, 0.3, 0.3)
    assert vol.level_voxel_sizes[1] == (6.0, 0.6, 0.6)
    with pytest.raises(InputError, match=r"`voxel_size` must be 3 finite numbers > 0 \(z, y, x\) in µm, got \(1, -1, 1\)"):
        open_volume(url, voxel_size=(1, -1, 1))
    with pytest.raises(InputError, match=r"`voxel_size` must be 3 numbers \(z, y, x\) in µm, got 2"):
        open_volume(url, voxel_size=(1, 1))


def _ome_group(url, arrays, axes, scales, *, outer=None, version="0.5", extra=None):
    fmt = 3 if version == "0.5" else 2
    group = zarr.open_group(url, mode="w", zarr_format=fmt)
    datasets = []
    for i, (arr, scale) in enumerate(zip(arrays, scales)):
        group.create_array(str(i), data=arr, chunks=arr.shape)
        datasets.append({"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    ms = {"axes": axes, "datasets": datasets}
    if outer:
        ms["coordinateTransformations"] = [{"type": "scale", "scale": outer}]
    if version == "0.5":
        group.attrs.update({"ome": {"version": "0.5", "multiscales": [ms]}, **(extra or {})})
    else:
        group.attrs.update({"multiscales": [{"version": "0.4", **ms}], **(extra or {})})
    return group


def _space(unit):
    return [{"name": a, "type": "space", "unit": unit} for a in "zyx"]


@pytest.mark.parametrize(
    ("unit", "scale", "outer", "expected"),
    [
        ("nanometer", [500.0, 100.0, 100.0], None, (0.5, 0.1, 0.1)),
        ("millimeter", [0.002, 0.001, 0.001], None, (2.0, 1.0, 1.0)),
        ("micrometer", [1.0, 0.5, 0.5], [2.0, 2.0, 2.0], (2.0, 1.0, 1.0)),
    ],
)
def test_units_and_multiscale_level_transform(tmp_path, unit, scale, outer, expected):
    _ome_group(tmp_path / "u.zarr", [np.zeros((4, 4, 4), np.uint8)], _space(unit), [scale], outer=outer)
    assert open_volume(tmp_path / "u.zarr").voxel_size == pytest.approx(expected, rel=1e-9)


def test_tczyx_with_channels(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 255, (1, 2, 6, 8, 8)).astype(np.uint8)
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}, *_space("micrometer")]
    _ome_group(tmp_path / "c.zarr", [arr], axes, [[1, 1, 2.0, 0.5, 0.5]], version="0.4")
    with pytest.raises(InputError, match=r"shape \(1, 2, 6, 8, 8\) \(axes 'tczyx'\); pass channel=0\.\.1 \(CLI: --channel\)"):
        open_volume(tmp_path / "c.zarr")
    vol = open_volume(tmp_path / "c.zarr", channel=1)
    assert vol.shape == (6, 8, 8) and vol.voxel_size == (2.0, 0.5, 0.5) and vol.channel == 1
    np.testing.assert_array_equal(vol.read(vol.roi), arr[0, 1])
    with pytest.raises(InputError, match=r"`channel` must be 0\.\.1"):
        open_volume(tmp_path / "c.zarr", channel=2)


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_bioformats2raw_layout(tmp_path, version):
    root = tmp_path / "b2r.zarr"
    arr = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(1, 4, 6, 8)
    axes = [{"name": "c", "type": "channel"}, *_space("micrometer")]
    _ome_group(root / "0", [arr], axes, [[1, 2.0, 1.0, 1.0]], version=version)
    if version == "0.5":
        zarr.open_group(root, mode="a", zarr_format=3).attrs.update({"ome": {"version": "0.5", "bioformats2raw.layout": 3}})
    else:
        zarr.open_group(root, mode="a", zarr_format=2).attrs.update({"bioformats2raw.layout": 3})
    vol = open_volume(root)
    assert vol.ngff_version == version
    assert vol.shape == (4, 6, 8) and vol.voxel_size == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(vol.read(vol.roi), arr[0])


@pytest.mark.parametrize("fmt", [2, 3])
def test_plain_zarr_arrays(tmp_path, fmt):
    data = np.random.default_rng(5).random((2, 5, 6, 7)).astype(np.float32)
    zarr.create_array(tmp_path / "a3.zarr", data=data[0], chunks=(5, 3, 3), zarr_format=fmt)
    zarr.create_array(tmp_path / "a4.zarr", data=data, chunks=(1, 5, 6, 7), zarr_format=fmt)
    with pytest.raises(InputError, match=r"no voxel size recorded .* pass voxel_size=\(z, y, x\) in µm \(CLI: --voxel-size Z Y X\)"):
        open_volume(tmp_path / "a3.zarr")
    vol = open_volume(tmp_path / "a3.zarr", voxel_size=(2, 1, 1))
    assert vol.shape == (5, 6, 7) and vol.chunk_shape == (5, 3, 3) and vol.ngff_version is None
    np.testing.assert_array_equal(vol.read(vol.roi), data[0])
    with pytest.raises(InputError, match=r"`channel` must be given .* shape \(2, 5, 6, 7\) \(axes 'czyx'\)"):
        open_volume(tmp_path / "a4.zarr", voxel_size=(2, 1, 1))
    vol4 = open_volume(tmp_path / "a4.zarr", voxel_size=(2, 1, 1), channel=1)
    np.testing.assert_array_equal(vol4.read(Roi((1, 1, 1), (2, 2, 2))), data[1, 1:3, 1:3, 1:3])


def test_2d_input_is_rejected(tmp_path):
    zarr.create_array(tmp_path / "flat.zarr", data=np.zeros((16, 16), np.uint8))
    with pytest.raises(InputError, match=r"is a 2D image \(shape \(16, 16\), axes 'yx'\); bigseg needs a 3D volume"):
        open_volume(tmp_path / "flat.zarr", voxel_size=(1, 1, 1))


def test_time_series_is_rejected(tmp_path):
    zarr.create_array(tmp_path / "t.zarr", data=np.zeros((3, 1, 4, 4, 4), np.uint8))
    with pytest.raises(InputError, match=r"shape \(3, 1, 4, 4, 4\) \(axes 'tczyx'\) with 3 time points"):
        open_volume(tmp_path / "t.zarr", voxel_size=(1, 1, 1))


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(VolumeNotFoundError, match="nope.zarr"):
        open_volume(tmp_path / "nope.zarr")
    with pytest.raises(VolumeNotFoundError, match="nope.tif"):
        open_volume(tmp_path / "nope.tif")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "readme.txt").write_text("hi")
    with pytest.raises(InputError, match="expected an OME-Zarr image .* or a .tif/.tiff file"):
        open_volume(folder)
    zarr.open_group(tmp_path / "g.zarr", mode="w").create_group("inner")
    with pytest.raises(InputError, match=r"without OME `multiscales` metadata \(it holds groups \['inner'\]"):
        open_volume(tmp_path / "g.zarr")


def test_read_outside_volume_raises(tmp_path, data):
    url = tmp_path / "img.zarr"
    _write_image(url, data, n_levels=1)
    vol = open_volume(url)
    with pytest.raises(InputError, match=r"outside level 0 .* shape \(20, 40, 36\)"):
        vol.read(Roi((10, 0, 0), (11, 4, 4)))


def test_label_output_opens_as_volume_and_copy_image_block(tmp_path, data):
    src = tmp_path / "in.zarr"
    _write_image(src, data, n_levels=1)
    before = _tree_hash(src)
    vol = open_volume(src)
    out = create_image(tmp_path / "out.zarr", shape=vol.shape, dtype="uint16", voxel_size=vol.voxel_size, chunk_shape=16)
    for z in range(0, 20, 16):
        roi = Roi((z, 0, 0), (min(16, 20 - z), 40, 36))
        copy_image_block(vol, out, roi)
    lab = create_labels(out, "nuclei")
    lab.write(Roi((0, 0, 0), vol.shape), (data > 2000).astype(np.uint32))
    lab.finalize()
    out.finalize()
    np.testing.assert_array_equal(open_volume(out.url).read(vol.roi), data)
    labels = open_volume(lab.url)
    assert labels.dtype == "uint32" and labels.voxel_size == (1.0, 0.5, 0.5)
    np.testing.assert_array_equal(labels.read(vol.roi), data > 2000)
    assert _tree_hash(src) == before
