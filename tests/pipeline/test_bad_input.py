"""Bad input gets a clear error naming the value and the fix; the input is never changed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import tifffile
import zarr

from bigseg.errors import BlockFailedError, InputError, OutputExistsError, VolumeNotFoundError
from bigseg.io import is_complete, open_volume
from bigseg.pipeline import segment
from bigseg.testing import balls_volume, tree_digest, write_image


def run(src, out, **kw):
    kw.setdefault("scheduler", "sync")
    kw.setdefault("predictor", "classical")
    kw.setdefault("diameter_um", 10.0)
    return segment(str(src), str(out), **kw)


@pytest.fixture
def small(tmp_path):
    image, _ = balls_volume((32, 48, 48), np.array([(16, 16, 16), (16, 32, 32)]), 6.0)
    src = tmp_path / "in.zarr"
    write_image(src, image)
    return src


def test_missing_path(tmp_path):
    with pytest.raises(VolumeNotFoundError, match="nope.zarr"):
        run(tmp_path / "nope.zarr", tmp_path / "out.zarr")


def test_non_zarr_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="folder"):
        run(tmp_path / "folder", tmp_path / "out.zarr")


def test_2d_image(tmp_path):
    path = tmp_path / "plane.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16))
    with pytest.raises(InputError, match=r"\(64, 64\)"):
        run(path, tmp_path / "out.zarr", voxel_size=(1.0, 1.0, 1.0))


def test_multichannel_without_channel_then_with(tmp_path):
    path = tmp_path / "two.zarr"
    image, _ = balls_volume((32, 48, 48), np.array([(16, 24, 24)]), 6.0)
    arr = zarr.create_array(str(path), shape=(2, 32, 48, 48), chunks=(1, 32, 48, 48), dtype="float32")
    arr[0], arr[1] = image, 0
    with pytest.raises(InputError, match="channel"):
        run(path, tmp_path / "out.zarr", voxel_size=(1.0, 1.0, 1.0))
    result = run(path, tmp_path / "out.zarr", voxel_size=(1.0, 1.0, 1.0), channel=0)
    assert result.n_objects == 1


def test_nan_in_float_image(tmp_path):
    image, _ = balls_volume((32, 48, 48), np.array([(16, 24, 24)]), 6.0)
    image[3, 4, 5] = np.nan
    src = tmp_path / "nan.zarr"
    write_image(src, image)
    before = tree_digest(src)
    with pytest.raises(InputError, match="NaN"):
        run(src, tmp_path / "out.zarr")
    assert tree_digest(src) == before
    assert not is_complete(tmp_path / "out.zarr")


def test_empty_volume_gives_no_nuclei(tmp_path):
    src = tmp_path / "zeros.zarr"
    write_image(src, np.zeros((32, 48, 48), np.uint16))
    result = run(src, tmp_path / "out.zarr", block_shape=(16, 16, 16))
    assert result.n_objects == 0
    assert not open_volume(result.labels_url).read_level(0).any()
    assert is_complete(result.output)


def test_all_foreground_volume_is_one_consistent_object(tmp_path):
    # A bright slab filling the volume but a dark border plane: one object, whatever the blocking.
    image = np.ones((32, 48, 48), np.float32)
    image[0] = 0
    src = tmp_path / "full.zarr"
    write_image(src, image)
    result = run(src, tmp_path / "out.zarr", block_shape=(16, 16, 16), diameter_um=8.0)
    labels = open_volume(result.labels_url).read_level(0)
    assert result.n_objects >= 1
    assert np.count_nonzero(labels) > 0.8 * labels.size


def test_existing_output_of_another_configuration(small, tmp_path):
    run(small, tmp_path / "out.zarr")
    before = tree_digest(tmp_path / "out.zarr")
    assert run(small, tmp_path / "out.zarr").already_complete  # the same run again: nothing to do
    with pytest.raises(OutputExistsError, match=r"block_shape: recorded \[128, 128, 128\], now \[16, 16, 16\].*--overwrite"):
        run(small, tmp_path / "out.zarr", block_shape=(16, 16, 16))
    assert tree_digest(tmp_path / "out.zarr") == before
    assert not run(small, tmp_path / "out.zarr", block_shape=(16, 16, 16), overwrite=True).already_complete


def test_output_inside_input_is_refused(small):
    with pytest.raises(InputError, match="never modifies its input"):
        run(small, small / "labels-out")


def test_input_is_byte_for_byte_unchanged(small, tmp_path):
    before = tree_digest(small)
    run(small, tmp_path / "out.zarr", block_shape=(16, 16, 16), save_maps=True)
    assert tree_digest(small) == before


def test_bad_options_name_value_and_fix(small, tmp_path):
    with pytest.raises(InputError, match="block_shape"):
        run(small, tmp_path / "o.zarr", block_shape=(0, 16, 16))
    with pytest.raises(InputError, match="stitch"):
        run(small, tmp_path / "o.zarr", stitch="contact")
    with pytest.raises(InputError, match="Extra inputs"):
        run(small, tmp_path / "o.zarr", blocks=(16, 16, 16))


@dataclass(frozen=True)
class FailingSpec:
    """A predictor that fails on the block whose read ROI starts at ``fail_at``."""

    fail_at: tuple[int, int, int]

    def build(self):
        return _Failing(self.fail_at)


class _Failing:
    halo = (2, 2, 2)

    def __init__(self, fail_at):
        self.fail_at = fail_at

    def predict(self, image, *, offset=(0, 0, 0), write_roi=None):
        if tuple(offset) == self.fail_at:
            raise RuntimeError("simulated GPU failure")
        return np.zeros((3, *(image.shape if write_roi is None else write_roi.shape)), np.float32)


def test_failed_block_is_reported_and_output_stays_incomplete(small, tmp_path, monkeypatch):
    import bigseg.pipeline._plan as plan

    real = plan._predictor

    def fake(cfg, volume, norm=None):
        spec, norm, params, d = real(cfg, volume, norm)
        return FailingSpec((14, 14, 14)), norm, params, d

    monkeypatch.setattr(plan, "_predictor", fake)
    with pytest.raises(BlockFailedError, match=r"block \(1, 1, 1\).*simulated GPU failure"):
        run(small, tmp_path / "out.zarr", block_shape=(16, 16, 16), halo=(2, 2, 2))
    assert not is_complete(tmp_path / "out.zarr")
    assert not is_complete(tmp_path / "out.zarr" / "labels" / "nuclei")


def test_a_halo_smaller_than_the_predictor_needs_is_refused(small, tmp_path):
    from bigseg.pipeline._plan import required_halo
    from bigseg.predict import ClassicalSpec

    need = required_halo(ClassicalSpec((1.0, 1.0, 1.0), 10.0))
    small_halo = (need[0] - 1, need[1], need[2])
    with pytest.raises(InputError, match=rf"`halo` \({small_halo[0]}, .*smaller than the predictor needs: at least "
                                         rf"\({need[0]}, {need[1]}, {need[2]}\).*--halo {need[0]} {need[1]} {need[2]}"):
        run(small, tmp_path / "out.zarr", halo=small_halo)
    assert not (tmp_path / "out.zarr").exists()
