"""ModelSpec / ModelPredictor: validation, protocol, global-grid rescaling (chunking invariance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from bigseg.errors import InputError
from bigseg.predict import Predictor, PredictorSpec, get_predictor
from bigseg.predict._card import ModelCard
from bigseg.predict._model import ModelPredictor, ModelSpec, default_model_spec
from bigseg.predict._networks import build_network
from bigseg.predict._package import DEFAULT_MODEL, save_model_package
from bigseg.predict._scale import ScaleMap


class _Pointwise(torch.nn.Module):
    """A fake network whose logits depend on each voxel alone: blending cannot change it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([4 * x - 2, 2 - 4 * x, 3 * x - 1], dim=1)


def _card(head: str = "bcd", halo: int = 0) -> ModelCard:
    return ModelCard(name="fake", architecture="unet", architecture_kwargs={"channels": [4, 8], "strides": [2]},
                     head=head, patch_size=(16, 16, 16), halo=(halo,) * 3)


def _volume(shape=(40, 60, 70), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 1.5).astype(np.float32) * 3 - 0.5


def test_spec_is_hashable_and_validated() -> None:
    a = ModelSpec("m", voxel_size=[2, 1, 1], diameter_um=6)
    b = ModelSpec("m", voxel_size=(2.0, 1.0, 1.0), diameter_um=6.0)
    assert a == b and hash(a) == hash(b)
    assert isinstance(a, PredictorSpec)
    with pytest.raises(InputError, match=r"`voxel_size` must be 3 finite numbers > 0.*\[1, 0, 1\]"):
        ModelSpec(voxel_size=[1, 0, 1])
    with pytest.raises(InputError, match=r"`diameter_um` must be > 0 µm, got -3.*--diameter"):
        ModelSpec(diameter_um=-3)
    with pytest.raises(InputError, match="`device` must be 'auto', 'cpu' or 'cuda', got 'tpu'"):
        ModelSpec(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="`precision` must be"):
        ModelSpec(precision="int8")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"`overlap` must be in \[0, 1\)"):
        ModelSpec(overlap=1.0)


def test_default_model_spec() -> None:
    spec = default_model_spec((2.0, 0.5, 0.5), 8.0, tta=True)
    assert spec.model == DEFAULT_MODEL and spec.voxel_size == (2.0, 0.5, 0.5)
    assert spec.diameter_um == 8.0 and spec.tta


def test_scale_between() -> None:
    # 6 µm nuclei in 0.5 µm voxels are 12 voxels across: the model's scale, step 1.
    s = ScaleMap.between((0.5, 0.5, 0.5), (1.0, 1.0, 1.0), data_diameter=6.0, model_diameter=12.0)
    assert s.step == pytest.approx((1.0, 1.0, 1.0))
    s = ScaleMap.between((2.0, 0.25, 0.25), (1.0, 1.0, 1.0), data_diameter=9.0, model_diameter=12.0)
    assert s.step == pytest.approx((0.375, 3.0, 3.0))
    assert ScaleMap.between((2.0, 1.0, 1.0), (1.0, 1.0, 1.0), model_diameter=12.0).step == (0.5, 1.0, 1.0)


def test_predictor_protocol_and_shapes() -> None:
    spec = ModelSpec("x", voxel_size=(2.0, 0.4, 0.4), diameter_um=9.0, device="cpu")
    pred = ModelPredictor(_Pointwise(), _card(halo=4), spec=spec)
    assert isinstance(pred, Predictor)
    img = _volume((10, 33, 41))
    maps = pred.predict(img)
    assert maps.shape == (3, 10, 33, 41) and maps.dtype == np.float32
    assert maps[:2].min() >= 0 and maps[:2].max() <= 1 and np.abs(maps[2]).max() <= 1
    # halo = card halo (model voxels) × step + interpolation and anti-aliasing support, in data voxels
    assert pred.halo == (2, 11, 11)  # z: ceil(4 * 0.375 + 0.375); y, x: ceil(4 * 1.875 + 1.875 + 3 * 0.875 / 2)


@pytest.mark.parametrize("voxel_size,diameter", [((2.0, 0.5, 0.5), 9.0), ((1.0, 1.0, 1.0), None),
                                                 ((0.7, 0.3, 0.3), 5.0)])
def test_blocks_agree_with_the_whole_volume(voxel_size, diameter) -> None:
    """Chunking invariance of the resampling: with a pointwise network, any block
    predicted with its global offset equals the whole volume's maps in the block's
    interior (``halo`` voxels from its edges), to float rounding (1e-5)."""
    spec = ModelSpec("x", voxel_size=voxel_size, diameter_um=diameter, device="cpu")
    pred = ModelPredictor(_Pointwise(), _card(), spec=spec)
    vol = _volume()
    whole = pred.predict(vol)
    h = pred.halo
    for lo, hi in [((0, 0, 0), (25, 37, 50)), ((13, 21, 17), (40, 60, 70)), ((7, 9, 30), (31, 44, 59))]:
        block = vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        maps = pred.predict(block, offset=lo)
        inner = tuple(slice(h[i] if lo[i] > 0 else 0, (hi[i] - lo[i]) - (h[i] if hi[i] < vol.shape[i] else 0))
                      for i in range(3))
        ref = whole[(slice(None),) + tuple(slice(lo[i] + s.start, lo[i] + s.stop) for i, s in enumerate(inner))]
        np.testing.assert_allclose(maps[(slice(None),) + inner], ref, atol=1e-5)


def test_offset_matters_off_the_model_grid() -> None:
    # Without the offset a block would be sampled on its own grid: different values.
    spec = ModelSpec("x", voxel_size=(1.0, 0.4, 0.4), diameter_um=9.0, device="cpu")
    pred = ModelPredictor(_Pointwise(), _card(), spec=spec)
    vol = _volume()
    a = pred.predict(vol[:, 11:, 11:], offset=(0, 11, 11))
    b = pred.predict(vol[:, 11:, 11:])
    assert np.abs(a - b).max() > 1e-3


def test_tta_of_a_flip_symmetric_model_changes_nothing() -> None:
    spec = ModelSpec("x", voxel_size=(1.0, 1.0, 1.0), device="cpu")
    plain = ModelPredictor(_Pointwise(), _card(), spec=spec)
    tta = ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", voxel_size=(1.0, 1.0, 1.0), device="cpu", tta=True))
    img = _volume((12, 20, 24))
    np.testing.assert_allclose(tta.predict(img), plain.predict(img), atol=1e-6)


def test_semantic_head_gives_bcd_maps() -> None:
    class _Blob(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 20 * (x - 0.5)

    img = np.zeros((16, 32, 32), np.float32)
    img[4:12, 8:24, 8:24] = 1.0
    pred = ModelPredictor(_Blob(), _card("semantic"), spec=ModelSpec("x", device="cpu"))
    fg, contour, dist = pred.predict(img)
    assert fg[8, 16, 16] > 0.99 and fg[0, 0, 0] < 0.01
    assert dist[8, 16, 16] > 0.3 and dist[0, 0, 0] < 0
    assert contour.max() <= 1 and contour[8, 16, 16] < 0.05


def test_bad_patch_size_and_block() -> None:
    spec = ModelSpec("x", device="cpu", patch_size=(20, 16, 16))
    with pytest.raises(InputError, match=r"`patch_size` \(20, 16, 16\) must be multiples of 8 for architecture .unet.; e.g. \(24, 16, 16\)"):
        ModelPredictor(_Pointwise(), ModelCard(name="f", architecture="unet", head="bcd",
                       architecture_kwargs={"channels": [4, 8, 16, 32], "strides": [2, 2, 2]}), spec=spec)
    pred = ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", device="cpu"))
    with pytest.raises(InputError, match=r"must be a \(Z, Y, X\) block, got shape \(4, 4\)"):
        pred.predict(np.zeros((4, 4), np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_requested_without_cuda() -> None:
    with pytest.raises(InputError, match="device='cuda' was asked for but no CUDA device"):
        ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", device="cuda"))


def test_spec_builds_from_a_package_once_per_process(tmp_path: Path) -> None:
    net = build_network("unet", "bcd", {"channels": [4, 8], "strides": [2]})
    path = save_model_package(net, _card(), tmp_path / "pkg")
    spec = ModelSpec(str(path), voxel_size=(1.0, 1.0, 1.0), device="cpu")
    first = get_predictor(spec)
    assert get_predictor(ModelSpec(str(path), voxel_size=(1, 1, 1), device="cpu")) is first
    assert first.predict(_volume((8, 16, 16))).shape == (3, 8, 16, 16)
