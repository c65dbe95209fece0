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
from bigseg.predict._model import MAX_UPSAMPLE, ModelPredictor, ModelSpec, default_model_for, default_model_spec
from bigseg.predict._networks import build_network
from bigseg.predict._package import COARSE_MODEL, DEFAULT_MODEL, save_model_package
from bigseg.predict._scale import ScaleMap
from bigseg.tiling import Grid, Halo, Roi


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
    assert spec.diameter_um == 8.0 and spec.tta and spec.max_upsample is None


@pytest.mark.parametrize(("voxel", "diameter", "cap", "model"), [
    ((5.0, 5.26, 5.26), 15.0, None, DEFAULT_MODEL),  # no cap: the fine model, however much it enlarges
    ((1.0, 1.0, 1.0), 12.0, MAX_UPSAMPLE, DEFAULT_MODEL),  # the fine model's own scale
    ((1.0, 1.0, 1.0), 6.5, MAX_UPSAMPLE, DEFAULT_MODEL),  # 6.5 voxels: under 2x enlargement
    ((1.0, 1.0, 1.0), 5.5, MAX_UPSAMPLE, COARSE_MODEL),  # 5.5 voxels: over 2x along every axis
    ((1.0, 1.0, 1.0), 5.5, 3.0, DEFAULT_MODEL),  # ... which a cap of 3 allows the fine model
    ((5.0, 5.26, 5.26), 15.0, MAX_UPSAMPLE, COARSE_MODEL),  # whole-brain light-sheet, 3 voxels across
    ((2.0, 0.26, 0.26), 9.5, MAX_UPSAMPLE, DEFAULT_MODEL),  # organoid light-sheet: short in z only, resolved across
    ((0.5, 0.5, 0.5), None, MAX_UPSAMPLE, DEFAULT_MODEL),  # no diameter: nuclei 12 µm, as the fine model's: 24 voxels
    ((5.0, 5.26, 5.26), None, MAX_UPSAMPLE, COARSE_MODEL),  # ... and 2.4 voxels
])
def test_a_cap_sends_small_nuclei_to_the_coarse_model(
    voxel: tuple[float, float, float], diameter: float | None, cap: float | None, model: str
) -> None:
    assert default_model_for(voxel, diameter, cap) == model
    spec = ModelSpec(voxel_size=voxel, diameter_um=diameter, max_upsample=cap)
    assert (spec.model, spec.max_upsample) == (model, cap)
    assert min(spec.build().scale.step) >= 1 / cap - 1e-9 if cap else True  # type: ignore[attr-defined]


def test_a_named_model_is_not_replaced() -> None:
    named = ModelSpec(model=DEFAULT_MODEL, voxel_size=(5.0, 5.26, 5.26), diameter_um=15.0, max_upsample=2.0)
    assert (named.model, named.max_upsample) == (DEFAULT_MODEL, 2.0)


def test_scale_between() -> None:
    # 6 µm nuclei in 0.5 µm voxels are 12 voxels across: the model's scale, step 1.
    s = ScaleMap.between((0.5, 0.5, 0.5), (1.0, 1.0, 1.0), data_diameter=6.0, model_diameter=12.0)
    assert s.step == pytest.approx((1.0, 1.0, 1.0))
    s = ScaleMap.between((2.0, 0.25, 0.25), (1.0, 1.0, 1.0), data_diameter=9.0, model_diameter=12.0)
    assert s.step == pytest.approx((0.375, 3.0, 3.0))
    assert ScaleMap.between((2.0, 1.0, 1.0), (1.0, 1.0, 1.0), model_diameter=12.0).step == (0.5, 1.0, 1.0)


def test_scale_between_caps_the_enlargement_per_axis() -> None:
    # mesoSPIM: 15 µm nuclei in 5 µm voxels would need 4x upsampling; capped at 2x per axis.
    s = ScaleMap.between((5.0, 5.0, 5.0), (1.0, 1.0, 1.0), data_diameter=15.0, model_diameter=12.0, max_upsample=2.0)
    assert s.step == pytest.approx((0.5, 0.5, 0.5))
    # Only the axis that would be enlarged more is capped; shrinking axes keep their step.
    s = ScaleMap.between((2.0, 0.25, 0.25), (1.0, 1.0, 1.0), data_diameter=6.0, model_diameter=12.0, max_upsample=2.0)
    assert s.step == pytest.approx((0.5, 2.0, 2.0))
    with pytest.raises(InputError, match=r"`max_upsample` must be a finite number >= 1, got 0.5"):
        ScaleMap.between((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), model_diameter=12.0, max_upsample=0.5)


def test_predictor_protocol_and_shapes() -> None:
    spec = ModelSpec("x", voxel_size=(2.0, 0.4, 0.4), diameter_um=9.0, device="cpu")
    pred = ModelPredictor(_Pointwise(), _card(halo=4), spec=spec)
    assert isinstance(pred, Predictor)
    img = _volume((10, 33, 41))
    maps = pred.predict(img)
    assert maps.shape == (3, 10, 33, 41) and maps.dtype == np.float32
    assert maps[:2].min() >= 0 and maps[:2].max() <= 1 and np.abs(maps[2]).max() <= 1
    # 16³ patches, overlap 0.25, tile: border 2, reach 16 - 2 - 1 = 13 model voxels, + 1 interpolated back;
    # halo = 14 × step + interpolation and anti-aliasing support, in data voxels
    assert pred.halo == (6, 30, 30)  # z: ceil(14 * 0.375 + 0.375); y, x: ceil(14 * 1.875 + 1.875 + 3 * 0.875 / 2)


def _conv_predictor(voxel_size, diameter, **options) -> ModelPredictor:
    """A real (random-weight) U-Net: its maps depend on context and on where patches sit."""
    torch.manual_seed(0)
    net = build_network("unet", "bcd", {"channels": [4, 8], "strides": [2]})
    spec = ModelSpec("x", voxel_size=voxel_size, diameter_um=diameter, device="cpu", **options)
    return ModelPredictor(net, _card(), spec=spec)


@pytest.mark.parametrize("voxel_size,diameter,blend", [((2.0, 0.5, 0.5), 9.0, "tile"), ((1.0, 1.0, 1.0), None, "tile"),
                                                       ((0.7, 0.3, 0.3), 5.0, "gaussian")])
def test_blocks_agree_with_the_whole_volume(voxel_size, diameter, blend) -> None:
    """Blocking invariance: a write ROI cut anywhere, read with ``halo`` around it (clipped to the
    volume), gets exactly the whole volume's maps (float32, bit for bit)."""
    pred = _conv_predictor(voxel_size, diameter, blend=blend)
    vol = _volume()
    whole = pred.predict(vol)
    full = Roi((0, 0, 0), vol.shape)
    for roi in [Roi((0, 0, 0), (25, 37, 50)), Roi((13, 21, 17), (27, 39, 53)), Roi((7, 9, 30), (24, 35, 29)),
                 Roi((39, 59, 69), (1, 1, 1))]:
        read = roi.grow(pred.halo).intersect(full)
        maps = pred.predict(vol[read.to_slices()], offset=read.offset, write_roi=roi)
        np.testing.assert_array_equal(maps, whole[(slice(None), *roi.to_slices())])


@pytest.mark.parametrize("voxel_size,diameter,blend", [((2.0, 0.5, 0.5), 9.0, "tile"), ((1.0, 1.0, 1.0), None, "tile"),
                                                       ((1.3, 0.9, 2.2), 12.0, "tile"), ((0.7, 0.3, 0.3), 5.0, "gaussian")])
def test_blocks_of_a_grid_need_only_the_grid_halo(voxel_size, diameter, blend) -> None:
    """Every block of a grid, read with ``grid_halo`` (at most ``halo``), gets the whole volume's maps exactly."""
    pred = _conv_predictor(voxel_size, diameter, blend=blend)
    vol = _volume()
    whole = pred.predict(vol)
    for block in [(8, 16, 16), (13, 21, 17), (24, 40, 56)]:
        halo = pred.grid_halo(block, vol.shape)
        assert all(h <= m for h, m in zip(halo, pred.halo)), (halo, pred.halo)
        for b in Grid(vol.shape, block, Halo.of(halo)).blocks():
            maps = pred.predict(vol[b.read_roi.to_slices()], offset=b.read_roi.offset, write_roi=b.write_roi)
            np.testing.assert_array_equal(maps, whole[(slice(None), *b.write_roi.to_slices())])


def test_grid_halo_on_patch_boundaries_is_the_border() -> None:
    # 16³ windows, border 2, stride 12: write ROIs of 24 at step 1 start and end on patch boundaries,
    # so their patches read 2 voxels beyond them; a write ROI anywhere may need the reach + 1 = 14 (+ 1).
    pred = _conv_predictor((1.0, 1.0, 1.0), None)
    assert pred.patches.stride == (12, 12, 12) and pred.patches.border == (2, 2, 2)
    assert pred.grid_halo((24, 24, 36), (40, 60, 70)) == (2, 2, 2)
    assert pred.grid_halo((20, 24, 24), (40, 60, 70))[0] > 2  # 20 is off the patch period
    assert pred.grid_halo((40, 60, 70), (40, 60, 70)) == (0, 0, 0)  # one block: no cut
    assert pred.halo == (15, 15, 15)


def test_maps_do_not_depend_on_thread_count() -> None:
    """torch's thread count changes oneDNN's reduction order; the predictor pins its own."""
    pred = _conv_predictor((1.0, 0.6, 0.6), 9.0, threads=2)
    vol = _volume((20, 30, 30))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = pred.predict(vol)
        torch.set_num_threads(2)
        two = pred.predict(vol)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
    assert torch.get_num_threads() == threads


def test_core_must_lie_in_the_block() -> None:
    pred = ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", device="cpu"))
    with pytest.raises(InputError, match=r"`write_roi` Roi.* must be a non-empty box inside the block"):
        pred.predict(_volume((8, 16, 16)), offset=(4, 0, 0), write_roi=Roi((0, 0, 0), (8, 8, 8)))


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


def test_halo_follows_from_the_patch_grid() -> None:
    """halo = reach (patch - border - 1) + 1 interpolated back, at step 1 + 1 for the resampling."""
    def halo(**options) -> tuple[int, int, int]:
        return ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", device="cpu", **options)).halo

    assert halo() == (15, 15, 15)  # 16³ patches, tile, overlap 0.25: border 2, reach 13
    assert halo(overlap=0.5) == (13, 13, 13)  # border 4, reach 11
    assert halo(blend="gaussian") == (17, 17, 17)  # border 0, reach 15
    assert halo(patch_size=(32, 16, 8)) == (29, 15, 8)  # borders 4, 2, 1
