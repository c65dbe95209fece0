"""The typical nucleus diameter of an image, estimated before the block-wise run (``--diameter auto``).

Driver-side: loads a model, reads a few crops of the image (``bigseg.io``),
predicts and decodes them. :mod:`bigseg.pipeline` calls it once per run.
:func:`log_diameter` estimates it from image evidence alone (LoG scale selection).
The model-based estimate imports torch and loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bigseg.diameter._log import (
    AmbiguousDiameterError,
    BlobScale,
    LogDiameterEstimate,
    log_diameter,
    volume_log_diameter,
)

if TYPE_CHECKING:
    from bigseg.diameter._estimate import (
        CandidateScore,
        DiameterEstimate,
        candidate_grid,
        estimate_diameter,
        estimate_volume_diameter,
    )

__all__ = [
    "AmbiguousDiameterError",
    "BlobScale",
    "CandidateScore",
    "DiameterEstimate",
    "LogDiameterEstimate",
    "candidate_grid",
    "estimate_diameter",
    "estimate_volume_diameter",
    "log_diameter",
    "volume_log_diameter",
]

_MODEL_BASED = ("CandidateScore", "DiameterEstimate", "candidate_grid", "estimate_diameter", "estimate_volume_diameter")


def __getattr__(name: str) -> Any:
    if name not in _MODEL_BASED:
        raise AttributeError(f"module 'bigseg.diameter' has no attribute {name!r}")
    return getattr(importlib.import_module("bigseg.diameter._estimate"), name)
