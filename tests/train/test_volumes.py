"""Labelled files read patch by patch at the model's scale (memory grows with the patch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from bigseg.errors import InputError, VolumeNotFoundError
from bigseg.predict import ScaleMap
from bigseg.synth import random_nuclei
from bigseg.train import LabelledPair
from bigseg.train._volumes import load_pair, resample_labels


def _write_pair(tmp_path: Path, shape: tuple[int, int, int] = (30, 70, 64)) -> tuple[np.ndarray, np.ndarray]:
    img, lab = random_nuclei(shape, seed=4)
    raw = (img * 1000 + 100).astype(np.uint16)
    for name, arr in (("img", raw), ("lab", lab.astype(np.uint16))):
        z = zarr.create_array(str(tmp_path / f"{name}.zarr"), shape=shape, chunks=(8, 16, 16), dtype=arr.dtype)
        z[:] = arr
    return raw, lab


@pytest.mark.parametrize("diameter", [6.0, 20.0])  # model steps < 1 (upsampling) and > 1 (anti-aliased)
def test_patches_equal_the_whole_volume_resampled(tmp_path: Path, diameter: float) -> None:
    raw, lab = _write_pair(tmp_path)
    voxel = (2.0, 0.5, 0.5)
    pair = LabelledPair(str(tmp_path / "img.zarr"), str(tmp_path / "lab.zarr"), voxel_size=voxel, diameter_um=diameter)
    vol = load_pair(pair, model_voxel_size=(1.0, 1.0, 1.0), model_diameter=12.0)
    # Reference: the whole volume normalised and resampled at once (the in-memory path).
    lo, hi = np.percentile(raw, (1.0, 99.8))
    scale = ScaleMap.between(voxel, (1.0, 1.0, 1.0), data_diameter=diameter, model_diameter=12.0)
    whole = scale.to_model((raw.astype(np.float32) - lo) / (hi - lo))
    whole_lab = resample_labels(lab.astype(np.uint32), scale)
    assert vol.model_shape == whole.shape
    shape = (12, 12, 12)
    starts = [(0, 0, 0), tuple(max(n - 12, 0) for n in whole.shape), tuple(n // 3 for n in whole.shape)]
    for start in starts:
        image, labels = vol.patch(start, shape)
        sl = tuple(slice(a, a + s) for a, s in zip(start, shape))
        ref, ref_lab = whole[sl], whole_lab[sl]
        got = tuple(slice(0, n) for n in ref.shape)
        np.testing.assert_allclose(image[got], ref, atol=1e-5)
        np.testing.assert_array_equal(labels[got], ref_lab)
        # Beyond the volume (small volumes) the patch is zero-padded.
        assert not image[tuple(slice(n, None) for n in ref.shape)].any()


def test_a_patch_reads_only_the_box_under_it(tmp_path: Path) -> None:
    _write_pair(tmp_path, (40, 160, 160))
    pair = LabelledPair(str(tmp_path / "img.zarr"), str(tmp_path / "lab.zarr"), voxel_size=(1.0, 1.0, 1.0),
                        diameter_um=24.0)  # step 2: the patch covers 2x its size per axis
    vol = load_pair(pair, model_voxel_size=(1.0, 1.0, 1.0), model_diameter=12.0)
    reads: list[tuple[int, ...]] = []
    real = type(vol.image).read

    def spy(self, roi):  # type: ignore[no-untyped-def]
        reads.append(roi.shape)
        return real(self, roi)

    type(vol.image).read = spy  # type: ignore[method-assign]
    try:
        image, labels = vol.draw(np.random.default_rng(0), (8, 8, 8))
    finally:
        type(vol.image).read = real  # type: ignore[method-assign]
    assert image.shape == labels.shape == (8, 8, 8)
    # 8 model voxels at step 2 span 15 data voxels; + 2 x (blur reach 3 + 1) per axis.
    assert reads and all(max(shape) <= 15 + 2 * 3 for shape in reads), reads
    assert max(int(np.prod(s)) for s in reads) < 40 * 160 * 160 // 50


def test_tiff_pair_takes_its_voxel_size_from_meta_json(tmp_path: Path) -> None:
    img, lab = random_nuclei((16, 24, 24), seed=2)
    tifffile.imwrite(tmp_path / "raw.tif", (img * 1000).astype(np.uint16))
    tifffile.imwrite(tmp_path / "labels.tif", lab.astype(np.uint16))
    pair = LabelledPair(str(tmp_path / "raw.tif"), str(tmp_path / "labels.tif"))
    with pytest.raises(InputError, match="no voxel size recorded.*--voxel-size"):
        load_pair(pair, model_voxel_size=(1.0, 1.0, 1.0), model_diameter=12.0)
    (tmp_path / "meta.json").write_text(json.dumps({"voxel_size_um": [2.0, 1.0, 1.0]}))
    vol = load_pair(pair, model_voxel_size=(1.0, 1.0, 1.0), model_diameter=12.0)
    assert vol.scale.step == (0.5, 1.0, 1.0) and vol.model_shape == (31, 24, 24)


def test_pair_errors(tmp_path: Path) -> None:
    _write_pair(tmp_path)
    z = zarr.create_array(str(tmp_path / "short.zarr"), shape=(30, 70, 60), dtype="uint16")
    z[:] = 0
    kw = dict(model_voxel_size=(1.0, 1.0, 1.0), model_diameter=12.0)
    with pytest.raises(InputError, match=r"shape \(30, 70, 64\).*shape \(30, 70, 60\).*same shape"):
        load_pair(LabelledPair(str(tmp_path / "img.zarr"), str(tmp_path / "short.zarr"), voxel_size=(1, 1, 1)), **kw)
    with pytest.raises(VolumeNotFoundError, match="missing.zarr' does not exist"):
        load_pair(LabelledPair(str(tmp_path / "img.zarr"), str(tmp_path / "missing.zarr"), voxel_size=(1, 1, 1)), **kw)
