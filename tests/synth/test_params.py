"""Parameters, presets and bad input: every error names the value and the fix."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.synth import PRESETS, SynthParams, preset, synthesize, synthesize_block, truth_stats
from bigseg.tiling import Roi


def test_preset_returns_frozen_params_with_overrides() -> None:
    p = preset("confocal", diameter_um=9.0, voxel_size=(2, 1, 1))
    assert p.diameter_um == 9.0 and p.voxel_size == (2.0, 1.0, 1.0)
    assert p.background == PRESETS["confocal"].background
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.diameter_um = 3.0  # type: ignore[misc]


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(InputError, match=r"unknown synthetic preset 'widefield'.*mesospim, confocal"):
        preset("widefield")
    with pytest.raises(InputError, match="unknown synthetic preset"):
        synthesize((8, 8, 8), preset="widefield")


def test_unknown_field_lists_valid_fields() -> None:
    with pytest.raises(InputError, match=r"unknown synthetic parameter\(s\) diameter; valid: voxel_size, diameter_um"):
        preset("dense", diameter=3)
    with pytest.raises(InputError, match="unknown synthetic parameter"):
        synthesize((8, 8, 8), preset=PRESETS["dense"], nuclei=3)
    with pytest.raises(InputError, match=r"max_overlap \(`max_overlap` is now `max_intersection`\)"):
        synthesize((8, 8, 8), preset="dense", max_overlap=0.1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"volume_fraction": 0.0}, r"`volume_fraction` must be in \(0, 0.6\], got 0.0"),
        ({"volume_fraction": 0.9}, r"`volume_fraction` must be in \(0, 0.6\], got 0.9"),
        ({"max_intersection": -0.1}, r"`max_intersection` must be in \[0, 0.5\]"),
        ({"diameter_um": "big"}, r"`diameter_um` must be a number, got 'big'"),
        ({"intensity_cv": float("nan")}, r"`intensity_cv` must be in \[0, 1\], got nan"),
        ({"voxel_size": (1, 1)}, r"`voxel_size` must be 3 numbers \(z, y, x\) in µm, got 2"),
        ({"voxel_size": (1, 0, 1)}, r"`voxel_size` must be 3 finite numbers > 0 \(z, y, x\) in µm, got \(1, 0, 1\)"),
        ({"psf_sigma_um": (1, -1, 1)}, r"`psf_sigma_um` must be 3 finite numbers >= 0"),
        ({"dtype": "int8"}, r"`dtype` must be one of uint8, uint16, float32, got 'int8'"),
        ({"diameter_um": 2.0, "voxel_size": (5, 5, 5)}, r"`diameter_um` \(2.0 µm\) is smaller than one voxel \(5.0 µm\)"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        preset("confocal", **overrides)


def test_bad_shape_seed_and_roi() -> None:
    p = PRESETS["confocal"]
    with pytest.raises(InputError, match=r"`shape` must have 3 values \(z, y, x\), got 2"):
        synthesize((8, 8), preset=p)
    with pytest.raises(InputError, match=r"`seed` must be an int >= 0, got -1"):
        synthesize((8, 8, 8), preset=p, seed=-1)
    with pytest.raises(InputError, match=r"`roi` must be a non-empty Roi inside the volume"):
        synthesize_block(p, (8, 8, 8), Roi((4, 0, 0), (8, 8, 8)), 0)
    with pytest.raises(InputError, match=r"`preset` must be a preset name or a SynthParams, got int"):
        synthesize((8, 8, 8), preset=3)  # type: ignore[arg-type]


def test_truth_stats_known_answer() -> None:
    # two 2x2x2 cubes face to face (touching) and one 2x2x2 cube alone, in 1 µm voxels
    lab = np.zeros((6, 6, 8), dtype=np.uint32)
    lab[2:4, 2:4, 0:2] = 1
    lab[2:4, 2:4, 2:4] = 2
    lab[2:4, 2:4, 6:8] = 3
    st = truth_stats(lab, (1.0, 1.0, 1.0))
    assert st["count"] == 3
    assert st["touching_fraction"] == pytest.approx(2 / 3)
    assert st["volume_fraction"] == pytest.approx(24 / lab.size)
    assert st["density_per_mm3"] == pytest.approx(3 / (lab.size * 1e-9))
    np.testing.assert_allclose(st["diameters_um"], (6 * 8 / np.pi) ** (1 / 3))
    inner = truth_stats(lab, (1.0, 1.0, 1.0), exclude_border=True)  # 1 and 3 touch the x border
    assert inner["n_measured"] == 1 and inner["touching_fraction"] == 1.0
    with pytest.raises(InputError, match=r"`labels` must be a 3-D integer array, got shape \(6, 8\)"):
        truth_stats(lab[0], (1, 1, 1))
    with pytest.raises(InputError, match="`voxel_size` must be 3 finite numbers > 0"):
        truth_stats(lab, (1, 0, 1))


def test_every_field_is_documented() -> None:
    doc = SynthParams.__doc__ or ""
    missing = [f for f in SynthParams.field_names() if f"    {f} :" not in doc]
    assert not missing
