"""Choosing a model's decoding thresholds on synthetic volumes.

The BCD maps of a trained network are decoded with five thresholds
(:class:`bigseg.decode.DecodeParams`); which ones work best depends on the
network. :func:`choose_decoding` predicts each selection volume once, decodes
it with every setting of a grid, and keeps the setting with the best mean of
F1 at IoU 0.5 and F1 at IoU 0.75 over the volumes (ties: F1 at IoU 0.5, then
grid order). Nuclei cut by a
volume's faces are left out of the scores.

The default selection set (:func:`selection_volumes`) is synthetic: four
domain-randomised volumes and four ``bigseg.synth`` volumes at their presets'
own voxel sizes, so the choice never sees real data. ``bigseg train`` runs this at the end and writes the result into the
card's ``decoding``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bigseg.decode import DecodeParams
from bigseg.errors import InputError
from bigseg.predict import ModelPredictor
from bigseg.synth._randomized import random_nuclei
from bigseg.train._validate import decode_bcd, score

__all__ = ["DEFAULT_GRID", "DecodingChoice", "SelectionVolume", "choose_decoding", "selection_volumes"]

logger = logging.getLogger(__name__)

# (seed_foreground, seed_contour, seed_distance, mask_foreground): 180 settings.
DEFAULT_GRID: tuple[tuple[float, float, float, float], ...] = tuple(
    itertools.product((0.5, 0.65, 0.8), (0.3, 0.5, 0.7), (0.0, 0.1, 0.2, 0.3, 0.4), (0.2, 0.3, 0.4, 0.5))
)


@dataclass(frozen=True)
class SelectionVolume:
    """A raw image, its labels, voxel size (µm) and typical nucleus diameter (µm)."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    voxel_size: tuple[float, float, float]
    diameter_um: float


@dataclass(frozen=True)
class DecodingChoice:
    """The chosen thresholds and the scores behind the choice.

    ``scores`` maps each grid setting to ``(mean F1@0.5, mean F1@0.75)``;
    ``per_volume`` gives the chosen setting's ``(F1@0.5, F1@0.75)`` per volume.
    """

    params: DecodeParams
    f1_50: float
    f1_75: float
    scores: dict[tuple[float, ...], tuple[float, float]] = field(repr=False)
    per_volume: dict[str, tuple[float, float]]

    def summary(self) -> dict[str, Any]:
        """JSON-able record for a model card's provenance."""
        p = self.params
        return {
            "chosen": [p.seed_foreground, p.seed_contour, p.seed_distance, p.mask_foreground],
            "settings": len(self.scores), "mean_f1@0.5": round(self.f1_50, 4), "mean_f1@0.75": round(self.f1_75, 4),
            "per_volume": {k: [round(a, 4), round(b, 4)] for k, (a, b) in self.per_volume.items()},
        }


def selection_volumes() -> list[SelectionVolume]:
    """The default selection set, never real data.

    Four domain-randomised volumes (:func:`bigseg.synth.random_nuclei`, 64³ voxels of 1 µm,
    nuclei ~12 µm, seeds ``(7, i)``, apart from training and validation draws) and four
    ``bigseg.synth`` volumes at their presets' voxel sizes (seeds 100–103), on which a
    good model scores near 1 for many settings.
    """
    from bigseg.synth import PRESETS, synthesize

    isotropic = {"voxel_size": (1.0, 1.0, 1.0), "diameter_um": 10.0, "volume_fraction": 0.10,
                 "psf_sigma_um": (1.0, 0.5, 0.5), "haze": 0.0, "texture": 0.2, "intensity_cv": 0.15,
                 "axial_stretch": 1.0}
    specs: list[tuple[str, tuple[int, int, int], dict[str, Any]]] = [
        ("confocal", (40, 96, 96), {"volume_fraction": 0.12}),
        ("dense", (60, 128, 128), {}),
        ("lightsheet-organoid", (30, 256, 256), {"volume_fraction": 0.1}),
        ("confocal", (48, 96, 96), isotropic),
    ]
    out = []
    for i in range(4):  # domain-randomised volumes: hard enough to tell the settings apart
        image, labels = random_nuclei((64, 64, 64), seed=(7, i))
        out.append(SelectionVolume(f"randomised-{i}", image, labels, (1.0, 1.0, 1.0), 12.0))
    for i, (preset, shape, kw) in enumerate(specs):
        image, labels = synthesize(shape, preset=preset, seed=100 + i, **kw)
        params = PRESETS[preset]
        out.append(SelectionVolume(
            f"{preset}-{100 + i}", image, labels, tuple(kw.get("voxel_size", params.voxel_size)),  # type: ignore[arg-type]
            float(kw.get("diameter_um", params.diameter_um)),
        ))
    return out


def _normalise(image: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    lo, hi = np.percentile(image, percentiles)
    return ((image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def _params(setting: tuple[float, ...], base: DecodeParams) -> DecodeParams:
    return replace(base, seed_foreground=setting[0], seed_contour=setting[1], seed_distance=setting[2],
                   mask_foreground=setting[3])


def choose_decoding(
    predictor_for: Any,
    volumes: Sequence[SelectionVolume] | None = None,
    *,
    grid: Sequence[Sequence[float]] | None = None,
    base: DecodeParams | None = None,
) -> DecodingChoice:
    """Pick the decoding thresholds that score best on ``volumes``.

    Parameters
    ----------
    predictor_for : callable
        ``predictor_for(voxel_size, diameter_um) -> ModelPredictor`` for one volume.
    volumes : sequence of SelectionVolume, optional
        Default :func:`selection_volumes`.
    grid : sequence of (seed_foreground, seed_contour, seed_distance, mask_foreground), optional
        Settings to try, in order of preference on ties; default :data:`DEFAULT_GRID`.
    base : DecodeParams, optional
        Values of the fields the grid does not set (default ``DecodeParams()``;
        its ``min_volume_um3`` of 0 keeps every object).

    Returns
    -------
    DecodingChoice
    """
    settings = [tuple(float(v) for v in g) for g in (DEFAULT_GRID if grid is None else grid)]
    if not settings or any(len(g) != 4 for g in settings):
        raise InputError("`grid` must be a non-empty list of (seed_foreground, seed_contour, seed_distance, "
                         f"mask_foreground) settings, got {settings[:3]}")
    volumes = list(volumes) if volumes is not None else selection_volumes()  # looked up now: tests swap it
    if not volumes:
        raise InputError("`volumes` is empty; pass at least one SelectionVolume (or None for the default set)")
    base = base or DecodeParams()
    per: dict[tuple[float, ...], list[tuple[float, float]]] = {g: [] for g in settings}
    for vol in volumes:
        predictor: ModelPredictor = predictor_for(vol.voxel_size, vol.diameter_um)
        maps = predictor.predict(_normalise(vol.image, tuple(predictor.card.input.percentiles)))  # type: ignore[arg-type]
        for g in settings:
            params = _params(g, base)
            s = score(decode_bcd(maps, params), vol.labels, ignore_border=True)
            per[g].append((s["f1@0.5"], s["f1@0.75"]))
        logger.info("decoding selection: scored %s over %d settings", vol.name, len(settings))
    means = {g: (float(np.mean([a for a, _ in v])), float(np.mean([b for _, b in v]))) for g, v in per.items()}
    # Both IoU thresholds count: at 0.5 alone many settings tie, and the loosest masks win them.
    best = max(settings, key=lambda g: (round(means[g][0] + means[g][1], 9), round(means[g][0], 9),
                                        -settings.index(g)))
    chosen = _params(best, base)
    return DecodingChoice(chosen, *means[best], scores=means,
                          per_volume={v.name: per[best][i] for i, v in enumerate(volumes)})
