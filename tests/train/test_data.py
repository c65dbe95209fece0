"""Synthetic training volumes, patch sources and augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.synth import RandomNucleiConfig, random_nuclei
from bigseg.train import (
    Augmenter,
    LabelledVolume,
    SyntheticPool,
    VolumeSource,
)
from bigseg.train._data import random_crop


def test_random_nuclei_is_seeded_and_plausible() -> None:
    cfg = RandomNucleiConfig(diameter=10.0, fill_range=(0.2, 0.3))
    a_img, a_lab = random_nuclei((40, 40, 40), seed=5, config=cfg)
    b_img, b_lab = random_nuclei((40, 40, 40), seed=5, config=cfg)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    assert a_img.dtype == np.float32 and a_lab.dtype == np.uint32 and a_img.shape == (40, 40, 40)
    ids, sizes = np.unique(a_lab[a_lab > 0], return_counts=True)
    assert len(ids) >= 10
    # nuclei inside the volume (not cut by its faces) are ~10 voxels across: 0.7x .. 1.4x of it, ±20%
    diam = (6 * np.median(sizes) / np.pi) ** (1 / 3)
    assert 0.5 * 10 < diam < 1.7 * 10
    # brighter inside nuclei than outside
    assert a_img[a_lab > 0].mean() > a_img[a_lab == 0].mean()
    c_img, _ = random_nuclei((40, 40, 40), seed=6, config=cfg)
    assert not np.array_equal(a_img, c_img)


def test_random_nuclei_z_scale_squashes_nuclei() -> None:
    """``z_scale_range`` below 1 flattens every nucleus along z (labels), for data left anisotropic."""
    def extents(cfg: RandomNucleiConfig) -> float:
        _, lab = random_nuclei((48, 48, 48), seed=3, config=cfg)
        from scipy import ndimage as ndi

        boxes = [b for b in ndi.find_objects(lab) if b is not None]
        return float(np.median([(b[0].stop - b[0].start) / (b[2].stop - b[2].start) for b in boxes]))

    base = dict(diameter=10.0, fill_range=(0.1, 0.15), p_anisotropy=0.0)
    flat = extents(RandomNucleiConfig(**base, z_scale_range=(0.4, 0.4), p_z_scale=1.0))  # type: ignore[arg-type]
    round_ = extents(RandomNucleiConfig(**base, p_z_scale=0.0))  # type: ignore[arg-type]
    assert flat < 0.6 < 0.8 < round_


def test_config_validation() -> None:
    with pytest.raises(InputError, match=r"`diameter` must be > 1 voxel, got 0.5"):
        RandomNucleiConfig(diameter=0.5)
    with pytest.raises(InputError, match=r"`fill_range` must be \(low, high\).*\(0.5, 0.1\)"):
        RandomNucleiConfig(fill_range=(0.5, 0.1))
    with pytest.raises(InputError, match=r"`p_z_scale` must be in \[0, 1\], got 2"):
        RandomNucleiConfig(p_z_scale=2)


def test_pool_draws_depend_only_on_seed_and_step() -> None:
    """A pool that has lived through earlier steps and a fresh one (a resumed run) draw the same."""
    cfg = RandomNucleiConfig(diameter=6.0)
    lived = SyntheticPool(seed=1, volume_shape=(24, 24, 24), size=2, refresh_every=2, config=cfg)
    for step in range(5):
        lived.draw(np.random.default_rng(step), (16, 16, 16), step)
    fresh = SyntheticPool(seed=1, volume_shape=(24, 24, 24), size=2, refresh_every=2, config=cfg)
    a = lived.draw(np.random.default_rng(99), (16, 16, 16), 5)
    b = fresh.draw(np.random.default_rng(99), (16, 16, 16), 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_random_crop_pads_small_volumes() -> None:
    img = np.ones((4, 30, 30), np.float32)
    (crop,) = random_crop(np.random.default_rng(0), (img,), (8, 16, 16))
    assert crop.shape == (8, 16, 16)
    assert crop[:4].min() == 1 and crop[4:].max() == 0


def test_volume_source() -> None:
    img = np.random.default_rng(0).random((20, 20, 20), dtype=np.float32)
    lab = (img > 0.5).astype(np.uint32)
    src = VolumeSource((LabelledVolume(img, lab, "a"),))
    i, l = src.draw(np.random.default_rng(0), (8, 8, 8), 0)
    assert i.shape == l.shape == (8, 8, 8)
    np.testing.assert_array_equal(l, (i > 0.5))
    with pytest.raises(InputError, match="must be 3D volumes of the same shape"):
        LabelledVolume(img, lab[:5], "b")
    with pytest.raises(InputError, match="needs at least one"):
        VolumeSource(())


@pytest.mark.parametrize("level", ["light", "full"])
def test_augmentation_is_seeded_and_keeps_labels(level: str) -> None:
    img, lab = random_nuclei((32, 32, 32), seed=2, config=RandomNucleiConfig(diameter=8.0))
    aug = Augmenter(level)  # type: ignore[arg-type]
    i1, l1 = aug(img, lab, seed=7)
    i2, l2 = aug(img, lab, seed=7)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(l1, l2)
    assert l1.dtype == np.uint32 and i1.shape == img.shape
    assert set(np.unique(l1)) <= set(np.unique(lab))  # nearest interpolation invents no labels
    i3, _ = aug(img, lab, seed=8)
    assert not np.array_equal(i1, i3)


def test_augmentation_levels() -> None:
    img = np.zeros((8, 8, 8), np.float32)
    lab = np.zeros((8, 8, 8), np.uint32)
    out = Augmenter("none")(img, lab, 0)
    assert out[0] is img and out[1] is lab
    with pytest.raises(InputError, match="augmentation level must be 'none', 'light' or 'full', got 'max'"):
        Augmenter("max")  # type: ignore[arg-type]


def test_preset_volume_at_the_model_scale() -> None:
    from bigseg.train._presets import preset_volume

    image, labels = preset_volume(np.random.default_rng(0), (24, 32, 32), model_voxel_size=(1.0, 1.0, 1.0),
                                  model_diameter=12.0, name="confocal")
    assert image.shape == labels.shape == (24, 32, 32)
    assert image.dtype == np.float32 and labels.dtype == np.uint32
    again, _ = preset_volume(np.random.default_rng(0), (24, 32, 32), model_voxel_size=(1.0, 1.0, 1.0),
                             model_diameter=12.0, name="confocal")
    np.testing.assert_array_equal(image, again)
    if labels.any():
        assert image[labels > 0].mean() > image[labels == 0].mean()


def test_the_pool_draws_only_the_presets_asked_for(monkeypatch) -> None:
    """``presets`` limits (and by repetition weights) the presets of the pool's preset volumes; the
    default draws from all four, and a name that is no fluorescence preset is refused by name."""
    import bigseg.synth
    from bigseg.train import TrainConfig
    from bigseg.train._presets import PRESET_NAMES, preset_volume

    drawn: list[str] = []

    def spy(shape, *, preset, **kw):  # records the preset; the volume itself does not matter here
        drawn.append(preset)
        return np.zeros(shape, np.uint16), np.zeros(shape, np.uint32)

    monkeypatch.setattr(bigseg.synth, "synthesize", spy)
    rng = np.random.default_rng(0)
    for _ in range(300):
        preset_volume(rng, (8, 8, 8), model_voxel_size=(1.0, 1.0, 1.0), model_diameter=48.0,
                      names=("mesospim", "mesospim", "dense"))
    assert set(drawn) == {"mesospim", "dense"} and drawn.count("mesospim") > 1.2 * drawn.count("dense")
    assert TrainConfig(out="x").presets == PRESET_NAMES
    assert TrainConfig.from_dict(TrainConfig(out="x", presets=("dense",)).to_dict()).presets == ("dense",)
    with pytest.raises(InputError, match=r"`presets` must be names from .*got \['em-like'\]"):
        TrainConfig(out="x", presets=("em-like",))


def test_a_fine_voxel_preset_is_rendered_coarser_for_a_coarse_model(monkeypatch) -> None:
    """``max_downsample`` renders the dense preset (0.13 µm voxels) for a model of 5-voxel nuclei at a
    voxel at most 2x finer per axis than the model needs: the rendering stays within
    8x the model's voxels instead of 15x or more. Without it nothing changes."""
    import bigseg.synth
    from bigseg.synth import PRESETS
    from bigseg.train import TrainConfig
    from bigseg.train._presets import preset_volume

    calls: list[tuple[tuple[int, ...], tuple[float, ...]]] = []

    def spy(shape, *, preset, voxel_size, **kw):
        calls.append((tuple(shape), tuple(voxel_size)))
        return np.zeros(shape, np.uint16), np.zeros(shape, np.uint32)

    monkeypatch.setattr(bigseg.synth, "synthesize", spy)
    kw = {"model_voxel_size": (1.0, 1.0, 1.0), "model_diameter": 5.0, "name": "dense"}
    preset_volume(np.random.default_rng(0), (24, 32, 32), **kw)
    preset_volume(np.random.default_rng(0), (24, 32, 32), max_downsample=2.0, **kw)
    (fine_shape, fine_voxel), (coarse_shape, coarse_voxel) = calls
    assert fine_voxel == PRESETS["dense"].voxel_size and np.prod(fine_shape) > 15 * 24 * 32 * 32
    assert all(c >= f for c, f in zip(coarse_voxel, fine_voxel)) and coarse_voxel[2] > 1.5 * fine_voxel[2]
    assert np.prod(coarse_shape) <= 8 * 1.3 * 24 * 32 * 32
    with pytest.raises(InputError, match=r"`preset_max_downsample` must be >= 1 \(or None\), got 0.5"):
        TrainConfig(out="x", preset_max_downsample=0.5)
