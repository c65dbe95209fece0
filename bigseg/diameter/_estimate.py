"""Nucleus diameter from the model's self-consistency (``--diameter auto``).

The model was trained on nuclei of one size (``card.diameter_um`` at
``card.voxel_size``, varied 0.7-1.4x). Told a candidate diameter, the
predictor rescales the data so that nuclei of that diameter reach the
training size; at the right candidate the decoded objects come out about as
large as the candidate, at a wrong one the model splits, merges, shrinks or
misses them. For each candidate of a geometric grid the model runs on a few
crops of bounded size (``crop_size`` model voxels per side, so a small
candidate costs no more than a large one) and the equivalent-sphere
diameters of the decoded objects not cut by a crop's border are measured::

    candidate µm   2.5   3.5   4.9   6.9   9.6  13.4  18.8 ...
    median / cand  2.1   1.6   1.3   1.02  0.93  0.71  0.4     -> 6.9 (then refined)

The crops are centred on the brightest regions of a coarse view of the
image, chosen once for all candidates, so the estimate is deterministic and
does not depend on how the volume is later cut into blocks. A
:class:`~bigseg.io.Volume` is never read whole: each candidate reads its crops
from the pyramid level closest to its model voxel size.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from bigseg.decode import DecodeParams, watershed_block
from bigseg.errors import InputError
from bigseg.maps import Device
from bigseg.io import Levels, Volume, array_levels, check_finite, crop_box, crop_centres, read_box, volume_levels
from bigseg.predict import (
    LoadedModel,
    ModelCard,
    ModelPredictor,
    ModelSpec,
    Normalization,
    ScaleMap,
    load_model_package,
    patch_divisor,
)
from bigseg.tiling import parse_voxel_size

__all__ = ["CandidateScore", "DiameterEstimate", "candidate_grid", "estimate_diameter", "estimate_volume_diameter"]

logger = logging.getLogger(__name__)

Size3 = tuple[float, float, float]
Shape3 = tuple[int, int, int]

# A candidate is tried only where a crop spans this many candidate diameters on every axis...
_MIN_FOV = 2.0
# ... and the candidate is this many voxels (the finest axis) across.
_MIN_VOXELS_ACROSS = 1.5
# Objects below this fraction of the candidate's sphere volume are not counted (as the
# pipeline's default size filter).
_MIN_VOLUME_FRACTION = 0.1


def candidate_grid(start: float = 2.5, stop: float = 80.0, factor: float = 1.4) -> tuple[float, ...]:
    """Geometric grid of candidate diameters (µm) from ``start`` up to ``stop``.

    Examples
    --------
    >>> candidate_grid(4.0, 20.0, 2.0)
    (4.0, 8.0, 16.0)
    """
    if not (math.isfinite(start) and start > 0 and math.isfinite(stop) and stop >= start):
        raise InputError(f"the candidate grid needs 0 < start <= stop, got start={start}, stop={stop}")
    if not (math.isfinite(factor) and factor > 1):
        raise InputError(f"the candidate grid's `factor` must be > 1, got {factor}")
    n = int(math.floor(math.log(stop / start) / math.log(factor) + 1e-9)) + 1
    return tuple(round(start * factor**i, 3) for i in range(n))


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """What the model found when told that nuclei are ``candidate_um`` across.

    ``n_objects`` objects not cut by a crop border (and at least a tenth of the
    candidate's sphere volume), their median equivalent-sphere diameter
    ``median_um`` (NaN without objects) and the score ``ratio`` =
    ``median_um / candidate_um`` (1 = self-consistent; NaN without objects).
    """

    candidate_um: float
    n_objects: int
    median_um: float
    ratio: float

    @classmethod
    def of(cls, candidate: float, diameters: np.ndarray) -> CandidateScore:
        if diameters.size == 0:
            return cls(candidate, 0, math.nan, math.nan)
        median = float(np.median(diameters))
        return cls(candidate, int(diameters.size), median, median / candidate)


@dataclass(frozen=True, slots=True)
class DiameterEstimate:
    """A nucleus diameter estimated from the image, with the evidence.

    Attributes
    ----------
    diameter_um : float
        The estimate, µm (equivalent-sphere diameter of a typical nucleus).
    chosen_um : float
        The grid candidate the estimate was read at (before refinement).
    self_consistent : bool
        True where the model's objects reached the candidate's size (a fixed
        point was found); False where the candidate whose ratio came closest
        to 1 was taken instead (less reliable; a warning is logged).
    candidates : tuple of CandidateScore
        One row per candidate tried, ascending.
    refined : CandidateScore or None
        The run at the first estimate (one fixed-point step), if it was made.
    seconds : float
        Wall time of the estimate (not compared: equal estimates may take different times).
    """

    diameter_um: float
    chosen_um: float
    self_consistent: bool
    candidates: tuple[CandidateScore, ...]
    refined: CandidateScore | None = None
    seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.diameter_um) and self.diameter_um > 0):
            raise InputError(f"DiameterEstimate.diameter_um must be > 0 µm, got {self.diameter_um}")

    def table(self) -> str:
        """The per-candidate evidence as a small text table."""
        rows = [f"{'candidate µm':>12s} {'objects':>7s} {'median µm':>9s} {'ratio':>6s}"]
        for c in (*self.candidates, *([self.refined] if self.refined else [])):
            mark = " <- chosen" if c.candidate_um == self.chosen_um else ""
            rows.append(f"{c.candidate_um:12.2f} {c.n_objects:7d} {c.median_um:9.2f} {c.ratio:6.2f}{mark}")
        return "\n".join(rows)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for the run's metadata)."""
        def row(c: CandidateScore) -> list[Any]:
            return [c.candidate_um, c.n_objects, None if math.isnan(c.median_um) else round(c.median_um, 3)]

        return {
            "diameter_um": round(self.diameter_um, 3), "chosen_um": self.chosen_um,
            "self_consistent": self.self_consistent, "seconds": round(self.seconds, 2),
            "candidates": [row(c) for c in self.candidates], "refined": row(self.refined) if self.refined else None,
        }


def _interior_diameters(labels: np.ndarray, voxel: Size3) -> np.ndarray:
    """Equivalent-sphere diameters (µm) of the objects that touch no face of ``labels``."""
    sizes = np.bincount(labels.ravel()).astype(np.float64)
    faces = [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]
    sizes[np.unique(np.concatenate([f.ravel() for f in faces]))] = 0
    sizes[0] = 0
    sizes = sizes[sizes > 0]
    return (6.0 / math.pi * sizes * math.prod(voxel)) ** (1 / 3)


def _one_patch(card: ModelCard, voxel: Size3, diameter: float, shape: tuple[int, ...]) -> Shape3:
    """A patch that holds the whole crop on the model's grid: a crop is predicted alone, as one
    patch (no blocking to be independent of), at the cost of one patch."""
    scale = ScaleMap.between(voxel, card.voxel_size, data_diameter=diameter, model_diameter=card.diameter_um)
    _, n = scale.model_range((0, 0, 0), shape)
    div = patch_divisor(card.architecture, card.architecture_kwargs)
    return tuple(-(-k // div) * div for k in n)  # type: ignore[return-value]


@dataclass(frozen=True)
class _Trial:
    """Everything one candidate run needs besides the candidate."""

    loaded: LoadedModel
    levels: Levels
    centres: list[Size3]
    crop_size: int
    params: DecodeParams
    device: Device

    def diameters(self, diameter: float) -> np.ndarray | None:
        """Diameters (µm) of the objects decoded at ``diameter``; None where it cannot be tried."""
        card, extent = self.loaded.card, self.levels.extent_um
        res: Size3 = tuple(v * diameter / card.diameter_um for v in card.voxel_size)  # type: ignore[assignment]
        side: Size3 = tuple(self.crop_size * r for r in res)  # type: ignore[assignment]
        if any(min(s, e) < _MIN_FOV * diameter for s, e in zip(side, extent)):
            return None
        if diameter < _MIN_VOXELS_ACROSS * min(self.levels.voxel_sizes[0]):
            return None
        predictors: dict[tuple[Size3, Shape3], ModelPredictor] = {}
        found = []
        for lo, hi in dict.fromkeys(crop_box(c, side, extent) for c in self.centres):
            block, voxel = read_box(self.levels, lo, hi, res)
            key = (voxel, _one_patch(card, voxel, diameter, block.shape))
            if key not in predictors:
                spec = ModelSpec(model=str(self.loaded.source), voxel_size=voxel, diameter_um=diameter,
                                 device=self.device, patch_size=key[1], overlap=0.0)
                predictors[key] = ModelPredictor(self.loaded.network, card, spec=spec, source=self.loaded.source)
            labels = watershed_block(predictors[key].predict(block), self.params)
            found.append(_interior_diameters(labels, voxel))
        d = np.concatenate(found)
        return d[d ** 3 >= _MIN_VOLUME_FRACTION * diameter**3]


def _choose(scores: Sequence[CandidateScore], min_objects: int) -> tuple[CandidateScore, bool] | None:
    """The largest stable self-consistent candidate, else the ratio closest to 1.

    Below the nuclei's scale the model splits them or finds chromatin grains
    (ratio < 1, the grains' fixed point is small); above it, it sees shrunken
    nuclei (ratio < 1). The nuclei's size is the upper fixed point of
    candidate -> median: the largest candidate whose objects are at least as
    big as the candidate (ratio >= 1). It needs ``min_objects`` objects,
    counted with the next candidate's (a sparse image may hold few whole
    nuclei per crop), and a witness that the fixed point attracts: the next
    candidate sees smaller objects (ratio < 1) in ``min_objects`` objects, or
    the previous one sees larger ones (ratio >= 1). Far above the nuclei's
    scale a model may merge one or two clusters into blobs as big as the
    candidate, with neither witness.
    """
    for k in range(len(scores) - 1, -1, -1):
        here = scores[k]
        above = scores[k + 1] if k + 1 < len(scores) else None
        below = scores[k - 1] if k > 0 else None
        if not (here.n_objects and here.ratio >= 1):
            continue
        if here.n_objects + (above.n_objects if above else 0) < min_objects:
            continue
        from_above = above is not None and above.n_objects >= min_objects and above.ratio < 1
        from_below = below is not None and below.n_objects > 0 and below.ratio >= 1
        if from_above or from_below:
            return here, True
    enough = [s for s in scores if s.n_objects >= min_objects]
    if not enough:
        return None
    return min(enough, key=lambda s: abs(math.log(s.ratio))), False


def _check_options(candidates: Sequence[float] | None, crop_size: int, n_crops: int, min_objects: int) -> tuple[float, ...]:
    try:
        grid = candidate_grid() if candidates is None else tuple(sorted({float(c) for c in candidates}))
    except (TypeError, ValueError):
        grid = ()
    if not grid or not all(math.isfinite(c) and c > 0 for c in grid):
        raise InputError(f"`candidates` must be diameters in µm > 0, got {candidates!r}")
    if int(crop_size) < 16:
        raise InputError(f"`crop_size` must be >= 16 model voxels, got {crop_size}")
    if int(n_crops) < 1 or int(min_objects) < 1:
        raise InputError(f"`n_crops` and `min_objects` must be >= 1, got {n_crops} and {min_objects}")
    return grid


def _estimate(
    levels: Levels, model: str, grid: tuple[float, ...], *, crop_size: int, n_crops: int, min_objects: int,
    refine: bool, device: Device,
) -> DiameterEstimate:
    t0 = time.perf_counter()
    loaded = load_model_package(model)
    trial = _Trial(loaded, levels, crop_centres(levels, int(n_crops)), int(crop_size), loaded.card.decoding, device)
    scores = [CandidateScore.of(c, d) for c in grid if (d := trial.diameters(c)) is not None]
    extent = tuple(round(e, 1) for e in levels.extent_um)
    if not scores:
        raise InputError(
            f"the image ({extent} µm) is too small or too coarse to try any candidate diameter of "
            f"{grid[0]}-{grid[-1]} µm; pass the nucleus diameter (CLI: --diameter UM)"
        )
    picked = _choose(scores, int(min_objects))
    if picked is None:
        raise InputError(
            f"no nuclei found at any candidate diameter ({scores[0].candidate_um}-{scores[-1].candidate_um} µm) "
            f"in the image ({extent} µm); is it empty? Pass the nucleus diameter (CLI: --diameter UM)"
        )
    chosen, consistent = picked
    estimate, refined = chosen.median_um, None
    if refine and (d := trial.diameters(round(estimate, 3))) is not None:
        refined = CandidateScore.of(round(estimate, 3), d)
        if refined.n_objects >= min(int(min_objects), chosen.n_objects):
            estimate = refined.median_um
    result = DiameterEstimate(estimate, chosen.candidate_um, consistent, tuple(scores), refined, time.perf_counter() - t0)
    if not consistent:
        logger.warning("no self-consistent nucleus diameter; the closest candidate gives %.1f µm (unreliable: "
                       "check it, or pass the diameter)\n%s", estimate, result.table())
    logger.info("estimated nucleus diameter %.2f µm in %.1fs\n%s", estimate, result.seconds, result.table())
    return result


def estimate_diameter(
    image: np.ndarray,
    voxel_size: Sequence[float],
    *,
    model: str = "default",
    candidates: Sequence[float] | None = None,
    crop_size: int = 64,
    n_crops: int = 3,
    min_objects: int = 3,
    refine: bool = True,
    device: Device = "auto",
) -> DiameterEstimate:
    """Estimate the typical nucleus diameter of an image with a model's self-consistency.

    Parameters
    ----------
    image : (Z, Y, X) ndarray
        Normalised image (~[0, 1], the model card's percentiles), in memory.
    voxel_size : (z, y, x) floats
        µm per voxel.
    model : str
        Model package path or shipped name (``"default"``: the shipped model).
    candidates : sequence of float, optional
        Candidate diameters, µm; default :func:`candidate_grid` (2.5-80 µm, x1.4).
    crop_size : int
        Side of each crop in model voxels (the cost of a candidate is bounded by it).
    n_crops : int
        Crops per candidate, centred on the brightest regions of a coarse view.
    min_objects : int
        Objects (not cut by a crop border) needed to trust a candidate.
    refine : bool
        Run once more at the first estimate and take that run's median.
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    DiameterEstimate

    Raises
    ------
    InputError
        Bad arguments; an image too small for any candidate; no nuclei at any candidate.
    """
    image = np.asarray(image)
    if image.ndim != 3 or min(image.shape) < 1:
        raise InputError(f"`image` must be a (Z, Y, X) array, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.number):
        raise InputError(f"`image` must hold numbers (a normalised image), got dtype {image.dtype}")
    check_finite(image, "`image`")
    grid = _check_options(candidates, crop_size, n_crops, min_objects)
    levels = array_levels(image, parse_voxel_size(voxel_size))
    return _estimate(levels, model, grid, crop_size=crop_size, n_crops=n_crops, min_objects=min_objects,
                     refine=refine, device=device)


def estimate_volume_diameter(
    volume: Volume,
    normalization: Normalization,
    *,
    model: str = "default",
    candidates: Sequence[float] | None = None,
    crop_size: int = 64,
    n_crops: int = 3,
    min_objects: int = 3,
    refine: bool = True,
    device: Device = "auto",
) -> DiameterEstimate:
    """:func:`estimate_diameter` for a stored volume, read in a bounded number of crops.

    The crops' centres come from a coarse pyramid level; each candidate reads
    its crops from the coarsest level still finer than its model voxel (at most
    ``bigseg.io.MAX_READ_VOXELS`` voxels a read), normalised by ``normalization``. The
    volume is never read whole (unless it is small), so this works for a
    whole-organ volume with a pyramid; a large volume without one is sampled
    around its centre only.
    """
    grid = _check_options(candidates, crop_size, n_crops, min_objects)
    return _estimate(volume_levels(volume, normalization.apply), model, grid, crop_size=crop_size, n_crops=n_crops,
                     min_objects=min_objects, refine=refine, device=device)
