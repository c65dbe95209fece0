"""The typical nucleus diameter of an image, estimated before the block-wise run (``--diameter auto``).

Driver-side: loads a model, reads a few crops of the image (``bigseg.io``),
predicts and decodes them. :mod:`bigseg.pipeline` calls it once per run.
"""

from bigseg.diameter._estimate import (
    CandidateScore,
    DiameterEstimate,
    candidate_grid,
    estimate_diameter,
    estimate_volume_diameter,
)

__all__ = [
    "CandidateScore",
    "DiameterEstimate",
    "candidate_grid",
    "estimate_diameter",
    "estimate_volume_diameter",
]
