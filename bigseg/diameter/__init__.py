"""The typical nucleus diameter of an image, estimated before the block-wise run (``--diameter auto``).

Driver-side: loads a model, reads a few crops of the image (``bigseg.io``),
predicts and decodes them. :mod:`bigseg.pipeline` calls it once per run.
:func:`log_diameter` estimates it from image evidence alone (LoG scale selection).
"""

from bigseg.diameter._estimate import (
    CandidateScore,
    DiameterEstimate,
    candidate_grid,
    estimate_diameter,
    estimate_volume_diameter,
)
from bigseg.diameter._log import (
    AmbiguousDiameterError,
    BlobScale,
    LogDiameterEstimate,
    log_diameter,
    volume_log_diameter,
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
