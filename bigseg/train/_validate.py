"""Validation during training: decode BCD maps and score instances.

:func:`decode_bcd` is the NucMM rule (seeds = foreground high, contour low,
distance high; marker watershed on ``-distance`` inside the foreground
mask): ``bigseg.decode.watershed_block`` when installed, else the same rule
here.
:func:`score` uses :func:`bigseg.evaluate.evaluate` (with a small IoU
matcher, :func:`match_scores`, as fallback and test oracle).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cc3d
import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.segmentation import watershed

from bigseg.errors import InputError

__all__ = ["DecodeThresholds", "decode_bcd", "match_scores", "score"]


@dataclass(frozen=True, slots=True)
class DecodeThresholds:
    """NucMM-style decoding thresholds (probabilities / tanh distance)."""

    seed_foreground: float = 0.75
    seed_contour: float = 0.3
    seed_distance: float = 0.4
    mask_foreground: float = 0.5
    mask_distance: float = -1.0

    def __post_init__(self) -> None:
        for name in ("seed_foreground", "seed_contour", "mask_foreground"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"`{name}` is a probability and must be in [0, 1], got {v}")
        for name in ("seed_distance", "mask_distance"):
            v = getattr(self, name)
            if not -1 <= v <= 1:
                raise InputError(f"`{name}` is a tanh distance and must be in [-1, 1], got {v}")


def decode_bcd(maps: np.ndarray, thresholds: DecodeThresholds | None = None) -> np.ndarray:
    """Instance labels from ``(3, Z, Y, X)`` BCD maps.

    Returns
    -------
    (Z, Y, X) ndarray of uint32
    """
    t = thresholds or DecodeThresholds()
    if maps.ndim != 4 or maps.shape[0] != 3:
        raise InputError(f"`maps` must have shape (3, Z, Y, X), got {maps.shape}")
    try:
        from bigseg.decode import DecodeParams, watershed_block
    except ImportError:
        pass
    else:
        return watershed_block(maps, DecodeParams(**asdict(t)))
    fg, ct, dist = maps
    seeds = (fg > t.seed_foreground) & (ct < t.seed_contour) & (dist > t.seed_distance)
    markers = cc3d.connected_components(seeds, connectivity=6).astype(np.int32)
    mask = ((fg > t.mask_foreground) & (dist > t.mask_distance)) | seeds
    return watershed(-dist.astype(np.float64), markers=markers, mask=mask).astype(np.uint32)


def match_scores(pred: np.ndarray, gt: np.ndarray, thresholds: tuple[float, ...] = (0.5, 0.75)) -> dict[str, float]:
    """F1 and AP (= TP / (TP + FP + FN)) per IoU threshold, one-to-one matching.

    Returns
    -------
    dict
        ``{"f1@0.5": ..., "ap@0.5": ..., "n_pred": ..., "n_gt": ...}``.
    """
    if pred.shape != gt.shape:
        raise InputError(f"`pred` (shape {pred.shape}) must have the shape of `gt` (shape {gt.shape})")
    p_ids, p = np.unique(pred, return_inverse=True)
    g_ids, g = np.unique(gt, return_inverse=True)
    np_, ng = len(p_ids), len(g_ids)
    inter = np.bincount(p.ravel() * ng + g.ravel(), minlength=np_ * ng).reshape(np_, ng).astype(np.float64)
    sp, sg = inter.sum(1, keepdims=True), inter.sum(0, keepdims=True)
    iou = inter / np.maximum(sp + sg - inter, 1)
    iou = iou[p_ids != 0][:, g_ids != 0]
    n_pred, n_gt = iou.shape
    out: dict[str, float] = {"n_pred": float(n_pred), "n_gt": float(n_gt)}
    for thr in thresholds:
        tp = 0
        if n_pred and n_gt:
            # Matching with IoU > 0.5 is unique anyway; Hungarian keeps lower thresholds one-to-one.
            cost = -(iou * (iou >= thr))
            r, c = linear_sum_assignment(cost)
            tp = int(np.sum(iou[r, c] >= thr))
        fp, fn = n_pred - tp, n_gt - tp
        out[f"f1@{thr}"] = 2 * tp / max(2 * tp + fp + fn, 1)
        out[f"ap@{thr}"] = tp / max(tp + fp + fn, 1)
    return out


def score(
    pred: np.ndarray, gt: np.ndarray, thresholds: tuple[float, ...] = (0.5, 0.75), *, ignore_border: bool = False
) -> dict[str, float]:
    """Instance scores of ``pred`` against ``gt``: ``f1@t``, ``ap@t`` per threshold, ``n_pred``, ``n_gt``.

    Uses :func:`bigseg.evaluate.evaluate` (``ignore_border`` leaves objects
    touching the volume's faces out) when available, else :func:`match_scores`.
    """
    try:
        from bigseg.evaluate import evaluate
    except ImportError:
        return match_scores(pred, gt, thresholds)
    result = evaluate(pred, gt, thresholds=thresholds, ignore_border=ignore_border)
    out: dict[str, float] = {"n_pred": float(result.n_pred), "n_gt": float(result.n_gt)}
    for thr in thresholds:
        m = result.at(thr)
        out[f"f1@{thr}"] = float(m.f1)
        out[f"ap@{thr}"] = float(m.ap)
    return out
