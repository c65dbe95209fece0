"""Score a model on labelled folders (``raw.tif``, ``labels.tif``, ``meta.json``).

This is how ``docs/models.md`` measures the default model on real volumes:
whole-volume percentile normalisation (as the pipeline does), the volume
predicted as one block, NucMM decoding with the card's thresholds, and F1 /
AP at IoU 0.5 and 0.75 against the labels.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bigseg.errors import InputError, VolumeNotFoundError
from bigseg.predict import ModelPredictor
from bigseg.train._validate import DecodeThresholds, decode_bcd, score

__all__ = ["evaluate_folder", "read_folder"]


def read_folder(folder: str | Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Raw image, labels (None when the folder has none) and ``meta.json`` of one folder."""
    import tifffile

    folder = Path(folder)
    raw = folder / "raw.tif"
    if not raw.is_file():
        raise VolumeNotFoundError(f"{folder} has no raw.tif; expected raw.tif, labels.tif and meta.json")
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    labels = tifffile.imread(folder / "labels.tif") if (folder / "labels.tif").is_file() else None
    return tifffile.imread(raw), labels, meta


def evaluate_folder(
    folder: str | Path,
    predictor: ModelPredictor,
    *,
    thresholds: DecodeThresholds | None = None,
    percentiles: tuple[float, float] = (1.0, 99.8),
) -> dict[str, Any]:
    """Segment one labelled folder and score it.

    Returns
    -------
    dict
        ``f1@0.5``, ``ap@0.5``, ``f1@0.75``, ``ap@0.75``, ``n_pred``, ``n_gt``,
        ``predict_s`` (seconds), and ``maps`` / ``pred`` arrays for inspection.
    """
    image, labels, _ = read_folder(folder)
    if labels is None:
        raise InputError(f"{folder} has no labels.tif; it can be looked at, not scored")
    lo, hi = np.percentile(image, percentiles)
    norm = (image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6)
    t0 = time.perf_counter()
    maps = predictor.predict(norm)
    seconds = time.perf_counter() - t0
    if thresholds is None:
        d = predictor.card.decoding
        thresholds = DecodeThresholds(**d.model_dump())
    pred = decode_bcd(maps, thresholds)
    return {**score(pred, labels), "predict_s": seconds, "maps": maps, "pred": pred}
