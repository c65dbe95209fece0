"""LoG scale selection: within ±25 % across the synthetic panel, and a refusal where the evidence is ambiguous."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bigseg.diameter import AmbiguousDiameterError, log_diameter, volume_log_diameter
from bigseg.errors import InputError
from bigseg.synth import synthesize
from bigseg.testing import write_image
from bigseg.testing._diameter_panel import PANEL, PanelCase, make_panel_volume

# Panel cases the estimate misses (measured; benchmarks/diameter_panel.py prints the table). Kept
# visible as strict xfails so that a change which fixes or breaks one shows up.
KNOWN_MISSES = {
    "random d=3vox z/xy=1 fill=0": "refused, rightly: its nuclei (2.25 voxels across, 8 % of the volume) stand 2-3 "
                                   "sd of the noise's response out of the noise at their scale (p90 3-5 sd); what stands "
                                   "out is large background structure (10-24 µm); noise-free it reads 1.24x, with a "
                                   "quarter of its noise 1.34x (benchmarks/diameter_noise.py)",
}


def _cases() -> list:
    out = []
    for case in PANEL:
        if case.preset == "em-like":  # out of scope: refused (test_dark_nuclei_are_refused)
            continue
        if case.name in KNOWN_MISSES:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[case.name])]
        else:
            marks = []
        out.append(pytest.param(case, id=case.name.replace(" ", "_"), marks=marks))
    return out


def _within(case: PanelCase) -> bool:
    vol = make_panel_volume(case)
    try:
        est = log_diameter(vol.image, vol.voxel_size)
    except AmbiguousDiameterError:
        return False
    return abs(math.log(est.diameter_um / vol.true_diameter_um)) <= math.log(1.25)


def test_panel_spans_the_claimed_range() -> None:
    """At least 30 volumes, 2-40 voxels across, anisotropy 1-8, every preset and the randomised mode."""
    from bigseg.synth import PRESETS

    assert len(PANEL) >= 30
    assert min(c.d_vox for c in PANEL) <= 2 and max(c.d_vox for c in PANEL) >= 40
    assert min(c.anisotropy for c in PANEL) == 1 and max(c.anisotropy for c in PANEL) >= 8
    assert {c.preset for c in PANEL} == set(PRESETS) | {"random"}


@pytest.mark.parametrize("case", [c for c in PANEL if c.name in (
    "random d=6vox z/xy=2 fill=0", "dense d=10vox z/xy=2.2 fill=0.5", "dense d=2.5vox z/xy=1 fill=0.45",
    "lightsheet-organoid d=24vox z/xy=7.7 fill=0.1", "mesospim d=4vox z/xy=1 fill=0.1")],
    ids=lambda c: c.name.replace(" ", "_"))
def test_estimate_within_25_percent_small_panel(case: PanelCase) -> None:
    """Five panel volumes (2.5, 4, 6, 10 and 24 voxels across; sparse and crowded; z/xy up to 7.7; the
    mesoSPIM one blurred by a PSF as large as its nuclei), seconds each."""
    assert _within(case)


@pytest.mark.parametrize("name,limited", [("mesospim d=3vox z/xy=1 fill=0.05", True),
                                          ("confocal d=3vox z/xy=1 fill=0.05", False),
                                          ("lightsheet-organoid d=4vox z/xy=1 fill=0.1", False)])
def test_a_blur_limited_image_is_recognised_and_recorded(name: str, limited: bool) -> None:
    """mesoSPIM's PSF (1.33x the nuclei's radius along z) makes its blobs' axial profiles a Gaussian's:
    measured as blur-limited (1.44x before, 1.10x now), and the evidence says so; the confocal preset's
    nuclei, 1.5x longer in z but sharp, and the organoid's are not (their figures unchanged: 0.91x, 0.83x)."""
    vol = make_panel_volume([c for c in PANEL if c.name == name][0])
    est = log_diameter(vol.image, vol.voxel_size)
    assert est.blur_limited is limited and est.as_dict()["blur_limited"] is limited
    assert est.axial_shape is not None and (est.axial_shape <= 0.766) is limited  # the evidence, recorded
    assert est.as_dict()["axial_shape"] == pytest.approx(est.axial_shape, abs=1e-3)
    assert abs(math.log(est.diameter_um / vol.true_diameter_um)) <= math.log(1.25)


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases())
def test_estimate_within_25_percent_on_the_panel(case: PanelCase) -> None:
    assert _within(case)


_DARK_REFUSAL = r"does not look like bright nuclei on a darker background.*no bright tail.*Pass --diameter UM"


def test_dark_nuclei_are_refused() -> None:
    """Dark nuclei on bright neuropil (em-like): out of the LoG estimate's scope, refused, not measured."""
    case = [c for c in PANEL if c.name == "em-like d=8vox z/xy=1 fill=0.5"][0]
    vol = make_panel_volume(case)
    with pytest.raises(AmbiguousDiameterError, match=_DARK_REFUSAL):
        log_diameter(vol.image, vol.voxel_size)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in PANEL if c.preset == "em-like"], ids=lambda c: c.name.replace(" ", "_"))
def test_every_em_like_panel_volume_is_refused(case: PanelCase) -> None:
    """Refused for its missing bright tail, or (the smallest, 4 voxels across) earlier, for too few blobs."""
    vol = make_panel_volume(case)
    with pytest.raises(AmbiguousDiameterError, match=_DARK_REFUSAL + "|no nucleus-like structure stands out"):
        log_diameter(vol.image, vol.voxel_size)


def _textured(preset: str, voxel: tuple, texture: float) -> tuple[np.ndarray, float]:
    """A volume with chromatin texture, deep enough (72 z planes) to hold whole nuclei (the confocal
    preset's are 22 µm long in z): the labels' median diameter of the uncut nuclei is the truth."""
    from bigseg.synth import truth_stats

    image, labels = synthesize((72, 128, 128), preset=preset, voxel_size=voxel, seed=21, volume_fraction=0.15,
                               texture=texture)
    return image, truth_stats(labels, voxel, exclude_border=True)["median_diameter_um"]


@pytest.mark.parametrize("preset,voxel,texture", [("lightsheet-organoid", (1.0, 0.5, 0.5), 0.3),
                                                  ("confocal", (1.0, 0.6, 0.6), 0.6)])
def test_chromatin_texture_is_measured(preset: str, voxel: tuple, texture: float) -> None:
    """Chromatin grains inside the nuclei do not pull the estimate out of ±25 % (the grain preset values
    are 0.3-0.4; these go up to 0.6)."""
    image, true = _textured(preset, voxel, texture)
    assert abs(math.log(log_diameter(image, voxel).diameter_um / true)) <= math.log(1.25)


@pytest.mark.parametrize("preset,voxel,texture", [("lightsheet-organoid", (1.0, 0.5, 0.5), 0.6),
                                                  ("lightsheet-organoid", (1.0, 0.5, 0.5), 0.9),
                                                  ("confocal", (1.0, 0.6, 0.6), 0.9)])
def test_strong_chromatin_texture_is_measured_or_refused(preset: str, voxel: tuple, texture: float) -> None:
    """Grains as strong as the nucleus itself (texture 0.6-0.9): measured within ±25 %, or refused as two
    sizes (the grains' and the nuclei's, listed by their LoG scale); never a wrong guess."""
    image, true = _textured(preset, voxel, texture)
    try:
        est = log_diameter(image, voxel).diameter_um
    except AmbiguousDiameterError as err:
        assert "nuclei of clearly different sizes" in str(err) and len(err.candidates) >= 2, str(err)
        assert min(err.candidates) < true / 2 and max(err.candidates) > true / 2, (err.candidates, true)
        return
    assert abs(math.log(est / true)) <= math.log(1.25), (est, true)


@pytest.mark.parametrize("preset,voxel,texture", [("lightsheet-organoid", (1.0, 0.5, 0.5), 0.6),
                                                  ("confocal", (1.0, 0.6, 0.6), 0.9)])
def test_strong_chromatin_texture_is_measured(preset: str, voxel: tuple, texture: float) -> None:
    """Grains as strong as the nucleus inside nucleus-sized bright regions are the nuclei's texture, not a
    second size (they were refused as two sizes until 2026-11-30; now 0.84x and 0.87x)."""
    image, true = _textured(preset, voxel, texture)
    assert abs(math.log(log_diameter(image, voxel).diameter_um / true)) <= math.log(1.25)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_crowded_nuclei_2_5_voxels_across_are_measured(seed: int) -> None:
    """The dense preset at 2.5 voxels per nucleus, 8-bit and photon-starved, other seeds than the panel's:
    within ±25 % (0.84-0.93x; all four were refused while the significance floor was modelled as white
    noise's response on the working grid, which overstated it 1.3-2.3x at these nuclei's scale)."""
    assert _within(PanelCase("dense", 2.5, 1, 0.45, seed=seed))


def test_a_few_large_blobs_are_not_a_nucleus_size() -> None:
    """Nuclei ~2 voxels across in heavy noise: only two large bright regions stand out. Refused, not measured."""
    case = [c for c in PANEL if c.name == "random d=3vox z/xy=1 fill=0"][0]
    vol = make_panel_volume(case)
    with pytest.raises(AmbiguousDiameterError, match=r"the strongest structure is 2 blob\(s\).*too few to be a "
                                                     r"typical nucleus.*Candidates:.*Pass --diameter UM"):
        log_diameter(vol.image, vol.voxel_size)


# Randomised draws of 3-4-voxel nuclei that stay in the noise (benchmarks/diameter_background.py): refused
# or within ±25 %. Those still read wrongly are strict xfails with their measured cause.
_BACKGROUND_MISSES = {
    (3, 2, 43): "4.3x: 18 blobs of 12 µm, half the coarsest scale; its noise-free twin reads 3.0x (159 blobs): "
                "the 3.6-µm nuclei at 24 % fill, blurred along z, are read as their clusters",
    (4, 1, 48): "5.7x: 140 blobs of 14 µm (0.6x the coarsest scale), background structure not told from nuclei",
}


@pytest.mark.parametrize("d, anisotropy, seed", [
    pytest.param(*key, id=f"d{key[0]}_zxy{key[1]}_s{key[2]}",
                 marks=[pytest.mark.xfail(strict=True, reason=_BACKGROUND_MISSES[key])] if key in _BACKGROUND_MISSES
                 else []) for key in ((3, 1, 40), (3, 2, 46), (3, 2, 43), (4, 1, 48))])
def test_background_structure_is_not_read_as_nuclei(d: float, anisotropy: float, seed: int) -> None:
    """Tiny nuclei in the noise under smooth background structure: refused or measured, never read as the
    background's size. Seeds 40 and 46 read 15.2x and 9.5x until 2026-11-30 (4-5 blobs of 24 µm, at the coarsest
    scale examined, in a 48 µm cube); now refused as such."""
    vol = make_panel_volume(PanelCase("random", d, anisotropy, 0.0, seed=seed))
    try:
        est = log_diameter(vol.image, vol.voxel_size)
    except AmbiguousDiameterError as exc:
        assert "Pass --diameter UM" in str(exc)
        return
    assert abs(math.log(est.diameter_um / vol.true_diameter_um)) <= math.log(1.25), est.diameter_um / vol.true_diameter_um


def test_background_at_the_coarsest_scale_is_refused_with_the_candidates() -> None:
    """The refusal names the scale and the candidates (a randomised draw that read 15.2x until 2026-11-30)."""
    vol = make_panel_volume(PanelCase("random", 3, 1, 0.0, seed=40))
    with pytest.raises(AmbiguousDiameterError, match=r"5 blobs of 23\.8 µm, is at the coarsest scale examined.*"
                                                     r"Candidates: 23\.8 µm.*Pass --diameter UM") as info:
        log_diameter(vol.image, vol.voxel_size)
    assert info.value.candidates and not info.value.too_fine


def test_pure_noise_is_refused() -> None:
    rng = np.random.default_rng(0)
    for image in (rng.normal(100, 10, (40, 80, 80)), rng.poisson(50, (40, 80, 80)).astype(np.float32)):
        with pytest.raises(AmbiguousDiameterError, match=r"no nucleus-like structure stands out of the noise.*"
                                                         r"pass --diameter UM"):
            log_diameter(image, (2.0, 0.5, 0.5))


def test_two_populations_are_refused_with_both_candidates() -> None:
    """Nuclei of 4 and 16 µm, the same volume fraction: the error lists both sizes."""
    small, _ = synthesize((48, 96, 96), preset="lightsheet-organoid", voxel_size=(1, 0.5, 0.5), seed=1,
                          diameter_um=4.0, volume_fraction=0.08, clustering=0)
    big, _ = synthesize((48, 96, 96), preset="lightsheet-organoid", voxel_size=(1, 0.5, 0.5), seed=2,
                        diameter_um=16.0, volume_fraction=0.08, clustering=0)
    both = np.maximum(small.astype(np.float32), big.astype(np.float32))
    with pytest.raises(AmbiguousDiameterError, match=r"nuclei of clearly different sizes.*pass --diameter UM") as err:
        log_diameter(both, (1, 0.5, 0.5))
    cands = sorted(err.value.candidates)
    assert any(2.5 < c < 5 for c in cands) and any(10 < c < 20 for c in cands), cands
    for image, expected in ((small, 4.0), (big, 16.0)):  # each alone is measured (labels' medians ~4 and ~16 µm)
        assert 0.7 < log_diameter(image, (1, 0.5, 0.5)).diameter_um / expected < 1.3


def test_a_crowded_mixture_is_refused() -> None:
    """4 µm and 16 µm nuclei at 20 % fill each: the small nuclei touch the large ones, yet they are a
    population of their own (their bright regions are small), not the large ones' texture: refused."""
    small, _ = synthesize((48, 96, 96), preset="lightsheet-organoid", voxel_size=(1, 0.5, 0.5), seed=1,
                          diameter_um=4.0, volume_fraction=0.2, clustering=0)
    big, _ = synthesize((48, 96, 96), preset="lightsheet-organoid", voxel_size=(1, 0.5, 0.5), seed=2,
                        diameter_um=16.0, volume_fraction=0.2, clustering=0)
    with pytest.raises(AmbiguousDiameterError, match=r"nuclei of clearly different sizes") as err:
        log_diameter(np.maximum(small.astype(np.float32), big.astype(np.float32)), (1, 0.5, 0.5))
    cands = sorted(err.value.candidates)
    assert any(2.5 < c < 5 for c in cands) and any(10 < c < 20 for c in cands), cands


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match=r"`image` must be a 3D \(Z, Y, X\) array, got \(8, 8\)"):
        log_diameter(np.zeros((8, 8)), (1, 1, 1))
    with pytest.raises(InputError, match=r"`voxel_size` must be 3 finite numbers > 0.*\(1, 0, 1\)"):
        log_diameter(np.zeros((8, 8, 8)), (1, 0, 1))
    with pytest.raises(InputError, match="NaN or infinite"):
        log_diameter(np.full((8, 8, 8), np.nan), (1, 1, 1))


def test_stored_volume_gives_the_array_estimate(tmp_path) -> None:
    from bigseg.io import open_volume

    case = [c for c in PANEL if c.name == "lightsheet-organoid d=4vox z/xy=1 fill=0.1"][0]
    vol = make_panel_volume(case)
    write_image(tmp_path / "v.zarr", vol.image, voxel_size=vol.voxel_size)
    stored = volume_log_diameter(open_volume(str(tmp_path / "v.zarr")))
    assert stored == log_diameter(vol.image, vol.voxel_size)


def test_a_volume_larger_than_one_read_gives_the_whole_image_estimate(tmp_path, monkeypatch) -> None:
    """A textured organoid larger than one read (budgets scaled down 16x, so that the test is quick): the
    pipeline's reads (4 boxes of 9, each examined on the working grid the whole image gets) give the
    whole-image estimate within 10 %, and no read exceeds the budget. (One of those boxes examined at its
    own, finer, resolution reads 0.69x of the truth here against the whole image's 0.86x: the grains
    are resolved.)"""
    from bigseg.diameter import _log, _volume
    from bigseg.io import open_volume
    from bigseg.synth import truth_stats

    monkeypatch.setattr(_log, "_WORK_VOXELS", 2**18)
    monkeypatch.setattr(_volume, "_READ_VOXELS", 2**20)
    voxel = (2.0, 0.26, 0.26)
    image, labels = synthesize((40, 480, 480), preset="lightsheet-organoid", voxel_size=voxel, seed=1,
                               volume_fraction=0.15, texture=0.6, diameter_um=8.0)
    write_image(tmp_path / "v.zarr", image, voxel_size=voxel)
    reads: list[int] = []  # the images the estimate examines (the coarse view that places them is io's)
    evidence = _log._evidence

    def spy(image, *args):  # type: ignore[no-untyped-def]
        reads.append(image.size)
        return evidence(image, *args)

    monkeypatch.setattr(_log, "_evidence", spy)
    stored = volume_log_diameter(open_volume(str(tmp_path / "v.zarr")))
    assert len(reads) == 4 and max(reads) <= 2**20 and sum(reads) < image.size, reads
    whole = log_diameter(image, voxel)
    assert whole.work_voxel_um > min(voxel) / 2  # the whole image is examined on a budget-limited grid
    assert stored.work_voxel_um == whole.work_voxel_um
    assert abs(math.log(stored.diameter_um / whole.diameter_um)) <= math.log(1.1), (stored, whole)
    true = truth_stats(labels, voxel, exclude_border=True)["median_diameter_um"]
    assert abs(math.log(stored.diameter_um / true)) <= math.log(1.25), (stored.diameter_um, true)


@pytest.mark.slow
def test_a_large_volume_of_small_nuclei_is_examined_finer(tmp_path, monkeypatch) -> None:
    """Nuclei 5 µm across in a volume whose whole-image working grid (1.68 µm voxels, budgets scaled down
    16x) is too coarse to show them: the whole image is refused as too fine, and the pipeline halves
    the working voxel (reading boxes of the finer grid) and measures them within ±25 %."""
    from bigseg.diameter import _log, _volume
    from bigseg.io import open_volume
    from bigseg.synth import truth_stats

    monkeypatch.setattr(_log, "_WORK_VOXELS", 2**18)
    monkeypatch.setattr(_volume, "_READ_VOXELS", 2**20)
    voxel = (2.0, 0.26, 0.26)
    image, labels = synthesize((40, 480, 480), preset="lightsheet-organoid", voxel_size=voxel, seed=1,
                               volume_fraction=0.15, diameter_um=5.0)
    with pytest.raises(AmbiguousDiameterError, match="the strongest structure is at the finest scale") as err:
        log_diameter(image, voxel)
    assert err.value.too_fine
    write_image(tmp_path / "v.zarr", image, voxel_size=voxel)
    stored = volume_log_diameter(open_volume(str(tmp_path / "v.zarr")))
    assert stored.work_voxel_um == pytest.approx(_log._work_voxel(image.shape, voxel) / 2)
    true = truth_stats(labels, voxel, exclude_border=True)["median_diameter_um"]
    assert abs(math.log(stored.diameter_um / true)) <= math.log(1.25), (stored.diameter_um, true)


@pytest.mark.parametrize("shape,voxel", [((24, 24, 24), (1.0, 1.0, 1.0)), ((10, 40, 40), (4.0, 1.0, 1.0)),
                                         ((96, 96, 96), (1.0, 1.0, 1.0))])
def test_the_noise_floor_is_white_noise_s_response(shape: tuple, voxel: tuple) -> None:
    """The significance floor per scale is the sd of white noise's response through the working grid's
    resampling (finer than native, anisotropic, coarser than native) and the filters, within 5 %."""
    from bigseg.diameter import _log
    from bigseg.diameter._noise import noise_response_sd

    monkey_budget = 2**17  # the 96^3 case gets a working grid coarser than its voxels
    work_um = max(min(voxel) / 2, (math.prod(s * v for s, v in zip(shape, voxel)) / monkey_budget) ** (1 / 3))
    noise = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    work = _log._isotropic(noise, voxel, work_um)
    sigmas = 0.7 * 2.0 ** (np.arange(0, 10, 2) / 4)
    measured = np.array([r.std() for r, _ in _log._responses(work, sigmas)])
    computed = noise_response_sd(shape, voxel, work_um, sigmas, [_log._grid_factor(s, work.shape) for s in sigmas])
    np.testing.assert_allclose(computed, measured, rtol=0.05)
