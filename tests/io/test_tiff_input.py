"""open_volume on TIFF files: ImageJ and OME-TIFF voxel sizes, channels, lazy reads."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tifffile

from bigseg.errors import InputError, MissingVoxelSizeError
from bigseg.io import open_volume
from bigseg.tiling import Roi


@pytest.fixture
def stack():
    return np.random.default_rng(7).integers(0, 60000, (9, 30, 40)).astype(np.uint16)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_imagej_spacing_and_resolution(tmp_path, stack):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1 / 0.25, 1 / 0.2), metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    before = _sha(path)
    vol = open_volume(path)
    assert vol.shape == (9, 30, 40) and vol.dtype == "uint16" and vol.ngff_version is None
    assert vol.voxel_size == pytest.approx((2.0, 0.2, 0.25), rel=1e-6)  # (z, y, x)
    np.testing.assert_array_equal(vol.read(Roi((2, 3, 4), (5, 6, 7))), stack[2:7, 3:9, 4:11])
    assert _sha(path) == before


def test_imagej_nanometer_unit(tmp_path, stack):
    path = tmp_path / "nm.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1 / 100, 1 / 100), metadata={"axes": "ZYX", "spacing": 500.0, "unit": "nm"})
    assert open_volume(path).voxel_size == pytest.approx((0.5, 0.1, 0.1), rel=1e-6)


def test_tiff_without_spacing_needs_voxel_size(tmp_path, stack):
    path = tmp_path / "plain.tiff"
    tifffile.imwrite(path, stack, compression="zlib", tile=(16, 16))
    with pytest.raises(InputError, match=r"pass voxel_size=\(z, y, x\) in µm \(CLI: --voxel-size Z Y X\)"):
        open_volume(path)
    vol = open_volume(path, voxel_size=(1.5, 0.5, 0.5))
    assert vol.voxel_size == (1.5, 0.5, 0.5) and vol.chunk_shape == (1, 16, 16)
    np.testing.assert_array_equal(vol.read(Roi((0, 10, 20), (9, 20, 20))), stack[:, 10:30, 20:40])


def test_ome_tiff_physical_sizes(tmp_path, stack):
    path = tmp_path / "a.ome.tif"
    meta = {"axes": "ZYX", "PhysicalSizeZ": 1500, "PhysicalSizeZUnit": "nm", "PhysicalSizeY": 0.3, "PhysicalSizeX": 0.3}
    tifffile.imwrite(path, stack, ome=True, metadata=meta)
    vol = open_volume(path)
    assert vol.voxel_size == pytest.approx((1.5, 0.3, 0.3), rel=1e-6)
    np.testing.assert_array_equal(vol.read(vol.roi), stack)


def test_imagej_hyperstack_channels(tmp_path):
    data = np.random.default_rng(8).integers(0, 255, (5, 2, 16, 16)).astype(np.uint8)  # ZCYX
    path = tmp_path / "zc.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX", "spacing": 1.0})
    with pytest.raises(InputError, match=r"shape \(5, 2, 16, 16\) \(axes 'zcyx'\); pass channel=0\.\.1 \(CLI: --channel\)"):
        open_volume(path)
    vol = open_volume(path, channel=1)
    assert vol.shape == (5, 16, 16)
    np.testing.assert_array_equal(vol.read(vol.roi), data[:, 1])


def test_2d_tiff_is_rejected(tmp_path):
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match=r"2D image \(shape \(32, 32\)"):
        open_volume(path, voxel_size=(1, 1, 1))


def test_tiff_level_out_of_range(tmp_path, stack):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, stack)
    with pytest.raises(InputError, match=r"has 1 resolution level\(s\), got level=1"):
        open_volume(path, level=1, voxel_size=(1, 1, 1))


def test_ome_tiff_unknown_unit_warns_and_asks_for_the_voxel_size(tmp_path, stack, caplog):
    path = tmp_path / "furlong.ome.tif"
    meta = {"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": "furlong", "PhysicalSizeY": 0.3, "PhysicalSizeX": 0.3}
    tifffile.imwrite(path, stack, ome=True, metadata=meta)
    with caplog.at_level("WARNING", logger="bigseg"):
        with pytest.raises(MissingVoxelSizeError, match=r"no voxel size recorded.*--voxel-size"):
            open_volume(path)
    assert "OME physical-size unit not understood" in caplog.text and "furlong" in caplog.text
    assert open_volume(path, voxel_size=(2, 0.3, 0.3)).voxel_size == (2.0, 0.3, 0.3)


def test_opening_a_tiff_looks_at_its_identity_once(tmp_path, stack, monkeypatch):
    """One look (a HEAD request on an object store) per open_volume, not one to take the identity and
    another to check it; reads through the open handle take none."""
    import bigseg.io._tiff as tiff_module

    calls = []
    real = tiff_module.file_identity
    monkeypatch.setattr(tiff_module, "file_identity", lambda *a, **k: calls.append(a) or real(*a, **k))
    path = tmp_path / "once.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZYX"})
    vol = open_volume(path, voxel_size=(1.0, 1.0, 1.0))
    assert len(calls) == 1
    np.testing.assert_array_equal(vol.read(vol.roi), stack)
    assert len(calls) == 1


def test_a_tiff_written_anew_at_the_same_path_is_read_anew(tmp_path, stack):
    """The open-file cache must not serve an old file's pixels for a new file at the same path
    (an export re-run in the same notebook), and a volume opened on the old file must not read the new one."""
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1.0, 1.0), metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    old = open_volume(str(path))
    assert np.array_equal(old.read(old.roi), stack)
    other = (stack[:6, :20, :25] // 2).astype(np.uint16)
    path.unlink()
    tifffile.imwrite(path, other, imagej=True, resolution=(1.0, 1.0), metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    new = open_volume(str(path))
    assert new.shape == (6, 20, 25)
    assert np.array_equal(new.read(new.roi), other)
    with pytest.raises(InputError, match=r"was written anew since it was opened.*open it again"):
        old.read(Roi((0, 0, 0), (1, 1, 1)))
    assert np.array_equal(open_volume(str(path)).read(new.roi), other)  # the new file stays readable
