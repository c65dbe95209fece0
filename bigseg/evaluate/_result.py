"""Scores from a :class:`Contingency`: per-threshold matching and the voxel metrics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from bigseg.errors import InputError
from bigseg.evaluate._contingency import Contingency
from bigseg.evaluate._matching import ObjectPairs, match
from bigseg.evaluate._voxel import adapted_rand_error, foreground_dice, variation_of_information

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EvaluationResult",
    "MatchingScores",
    "match_instances",
    "parse_thresholds",
    "score",
]

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def parse_thresholds(value: float | Iterable[float]) -> tuple[float, ...]:
    """IoU thresholds as a sorted tuple of unique floats in (0, 1]."""
    values = [value] if isinstance(value, (int, float)) else list(value)
    try:
        out = sorted({float(v) for v in values})
    except (TypeError, ValueError):
        raise InputError(f"`thresholds` must be numbers in (0, 1], got {value!r}") from None
    if not out or not all(0.0 < v <= 1.0 for v in out):
        raise InputError(
            f"`thresholds` must be one or more IoU values in (0, 1], got {value!r}; e.g. (0.5,) or "
            "(0.1, 0.2, ..., 0.9)"
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class MatchingScores:
    """Instance-matching scores at one IoU threshold (StarDist's ``matching``).

    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 TP / (2 TP + FP + FN)``, ``ap = TP / (TP + FP + FN)`` (StarDist's
    "accuracy", NucMM's AP), ``mean_iou`` = mean IoU of the TP pairs (SQ),
    ``pq = mean_iou * f1`` (panoptic quality = SQ · RQ, with RQ = F1).
    With no TP every ratio is 0; with nothing to find and nothing found
    (TP = FP = FN = 0) every ratio is 1.
    """

    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ap: float
    mean_iou: float
    pq: float

    @property
    def n_gt(self) -> int:
        return self.tp + self.fn

    @property
    def n_pred(self) -> int:
        return self.tp + self.fp

    @classmethod
    def from_counts(cls, threshold: float, tp: int, fp: int, fn: int, iou_sum: float) -> MatchingScores:
        if tp + fp + fn == 0:
            return cls(threshold, 0, 0, 0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
        if tp == 0:
            return cls(threshold, 0, fp, fn, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        f1 = 2 * tp / (2 * tp + fp + fn)
        mean_iou = iou_sum / tp
        return cls(threshold, tp, fp, fn, tp / (tp + fp), tp / (tp + fn), f1, tp / (tp + fp + fn),
                   mean_iou, mean_iou * f1)


def match_instances(
    table: Contingency,
    thresholds: float | Iterable[float] = DEFAULT_THRESHOLDS,
    *,
    ignore_border: bool = False,
) -> tuple[MatchingScores, ...]:
    """Match objects one-to-one at each IoU threshold and count TP, FP, FN.

    A pair matches when ``IoU >= threshold``; among such pairs the matching
    has the most matches, ties broken by the larger IoU sum.

    With ``ignore_border``, matching uses all objects; afterwards a match
    whose ground-truth object touches the volume border is ignored (neither
    TP nor FN, and its prediction is not an FP), and so are unmatched
    objects, of either side, that touch the border. A match whose
    ground-truth object is inside but whose prediction touches the border
    stays a TP.
    """
    pairs = ObjectPairs.from_table(table)
    return tuple(_scores_at(pairs, t, ignore_border) for t in parse_thresholds(thresholds))


def _scores_at(pairs: ObjectPairs, threshold: float, ignore_border: bool) -> MatchingScores:
    m = match(pairs.gt_index, pairs.pred_index, pairs.iou, threshold=threshold)
    gi, pi, iou = pairs.gt_index[m], pairs.pred_index[m], pairs.iou[m]
    g_ign = pairs.gt_border if ignore_border else np.zeros(len(pairs.gt_labels), bool)
    p_ign = pairs.pred_border if ignore_border else np.zeros(len(pairs.pred_labels), bool)
    counted = ~g_ign[gi]
    tp = int(np.count_nonzero(counted))
    fn = int(np.count_nonzero(~g_ign)) - tp
    p_matched = np.zeros(len(pairs.pred_labels), bool)
    p_matched[pi] = True
    fp = int(np.count_nonzero(~p_matched & ~p_ign))
    return MatchingScores.from_counts(threshold, tp, fp, fn, float(iou[counted].sum()))


def _mean_gt_overlap(pairs: ObjectPairs, ignore_border: bool) -> tuple[float, float]:
    """3DCellSeg-style JI and DSC: per ground-truth object, the IoU (Dice) with its
    partner in the IoU-sum-maximizing one-to-one matching (0 without one), averaged."""
    keep = ~pairs.gt_border if ignore_border else np.ones(len(pairs.gt_labels), bool)
    if not keep.any():
        n_pred = np.count_nonzero(~pairs.pred_border if ignore_border else np.ones(len(pairs.pred_labels)))
        return (1.0, 1.0) if n_pred == 0 else (0.0, 0.0)
    m = match(pairs.gt_index, pairs.pred_index, pairs.iou, threshold=0.0, objective="iou")
    per_gt = np.zeros(len(pairs.gt_labels))
    per_gt[pairs.gt_index[m]] = pairs.iou[m]
    per_gt = per_gt[keep]
    return float(per_gt.mean()), float(np.mean(2 * per_gt / (1 + per_gt)))


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """All scores of one prediction against one ground truth.

    Attributes
    ----------
    matching : tuple of MatchingScores
        One entry per IoU threshold, ascending.
    dice : float
        Foreground Dice (CellSeg3D).
    adapted_rand_error, rand_precision, rand_recall : float
        SNEMI3D adapted Rand error and its pair precision/recall.
    vi_split, vi_merge : float
        Variation of information H(pred|gt) and H(gt|pred), bits.
    mean_gt_iou, mean_gt_dice : float
        3DCellSeg's JI and DSC (see :func:`match_instances` for matching).
    n_gt, n_pred : int
        Nonzero labels present in the scored region (border objects included).
    n_voxels : int
        Voxels scored.
    ignore_border : bool
        Whether border-touching objects were left out of the object scores.
    shape : tuple of int
        Volume shape (Z, Y, X), voxels.
    voxel_size : tuple of float or None
        Voxel size (Z, Y, X) in µm, where known.
    """

    matching: tuple[MatchingScores, ...]
    dice: float
    adapted_rand_error: float
    rand_precision: float
    rand_recall: float
    vi_split: float
    vi_merge: float
    mean_gt_iou: float
    mean_gt_dice: float
    n_gt: int
    n_pred: int
    n_voxels: int
    ignore_border: bool = False
    shape: tuple[int, ...] = ()
    voxel_size: tuple[float, ...] | None = None
    masked: bool = False

    def at(self, threshold: float) -> MatchingScores:
        """The matching scores at ``threshold``."""
        for s in self.matching:
            if math.isclose(s.threshold, threshold):
                return s
        raise InputError(f"no scores at threshold {threshold}; have {[s.threshold for s in self.matching]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict (lists instead of tuples)."""
        out = asdict(self)
        out["matching"] = [asdict(s) for s in self.matching]
        out["shape"] = list(self.shape)
        out["voxel_size"] = None if self.voxel_size is None else list(self.voxel_size)
        return out

    def to_table(self) -> str:
        """Readable text table: one row per threshold, then the voxel metrics."""
        head = f"{'IoU':>5} {'TP':>7} {'FP':>7} {'FN':>7} {'prec':>6} {'recall':>6} {'F1':>6} {'AP':>6} {'meanIoU':>7} {'PQ':>6}"
        rows = [head, "-" * len(head)]
        for s in self.matching:
            rows.append(
                f"{s.threshold:>5.2f} {s.tp:>7d} {s.fp:>7d} {s.fn:>7d} {s.precision:>6.3f} {s.recall:>6.3f} "
                f"{s.f1:>6.3f} {s.ap:>6.3f} {s.mean_iou:>7.3f} {s.pq:>6.3f}"
            )
        border = ", border objects ignored" if self.ignore_border else ""
        masked = " inside the mask" if self.masked else ""
        rows += [
            "",
            f"foreground Dice           {self.dice:.4f}",
            f"adapted Rand error        {self.adapted_rand_error:.4f}   "
            f"(precision {self.rand_precision:.4f}, recall {self.rand_recall:.4f})",
            f"VI split / merge (bits)   {self.vi_split:.4f} / {self.vi_merge:.4f}",
            f"mean GT JI / DSC          {self.mean_gt_iou:.4f} / {self.mean_gt_dice:.4f}",
            f"objects: {self.n_gt} ground truth, {self.n_pred} predicted; "
            f"{self.n_voxels} voxels scored{masked}{border}",
        ]
        return "\n".join(rows)


def score(
    table: Contingency,
    *,
    thresholds: float | Iterable[float] = DEFAULT_THRESHOLDS,
    ignore_border: bool = False,
    shape: tuple[int, ...] = (),
    voxel_size: tuple[float, ...] | None = None,
    masked: bool = False,
) -> EvaluationResult:
    """Every metric of bigseg.evaluate from one contingency table."""
    pairs = ObjectPairs.from_table(table)
    matching = tuple(_scores_at(pairs, t, ignore_border) for t in parse_thresholds(thresholds))
    are, rand_p, rand_r = adapted_rand_error(table)
    split, merge = variation_of_information(table)
    ji, dsc = _mean_gt_overlap(pairs, ignore_border)
    return EvaluationResult(
        matching=matching,
        dice=foreground_dice(table),
        adapted_rand_error=are,
        rand_precision=rand_p,
        rand_recall=rand_r,
        vi_split=split,
        vi_merge=merge,
        mean_gt_iou=ji,
        mean_gt_dice=dsc,
        n_gt=len(pairs.gt_labels),
        n_pred=len(pairs.pred_labels),
        n_voxels=table.n_voxels,
        ignore_border=bool(ignore_border),
        shape=tuple(int(s) for s in shape),
        voxel_size=None if voxel_size is None else tuple(float(v) for v in voxel_size),
        masked=bool(masked),
    )
