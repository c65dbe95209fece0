"""Validation during training: decode BCD maps and score instances.

Both are thin wrappers of the pipeline's own stages, so a model is validated
exactly as ``bigseg segment`` will use it: :func:`decode_bcd` is
:func:`bigseg.decode.watershed_block` (NucMM rule), :func:`score` is
:func:`bigseg.evaluate.evaluate`.
"""

from __future__ import annotations

import numpy as np

from bigseg.decode import DecodeParams, watershed_block
from bigseg.evaluate import evaluate

__all__ = ["decode_bcd", "score"]


def decode_bcd(maps: np.ndarray, thresholds: DecodeParams | None = None) -> np.ndarray:
    """Instance labels ``(Z, Y, X)`` uint32 from ``(3, Z, Y, X)`` BCD maps, decoded as one block."""
    return watershed_block(maps, thresholds or DecodeParams())


def score(
    pred: np.ndarray, gt: np.ndarray, thresholds: tuple[float, ...] = (0.5, 0.75), *, ignore_border: bool = False
) -> dict[str, float]:
    """Instance scores of ``pred`` against ``gt``: ``f1@t``, ``ap@t`` per threshold, ``n_pred``, ``n_gt``.

    ``ignore_border`` leaves objects touching the volume's faces out.
    """
    result = evaluate(pred, gt, thresholds=thresholds, ignore_border=ignore_border)
    out: dict[str, float] = {"n_pred": float(result.n_pred), "n_gt": float(result.n_gt)}
    for thr in thresholds:
        m = result.at(thr)
        out[f"f1@{thr}"] = float(m.f1)
        out[f"ap@{thr}"] = float(m.ap)
    return out
