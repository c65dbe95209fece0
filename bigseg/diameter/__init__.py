"""The typical nucleus diameter of an image, estimated before the block-wise run (``--diameter auto``).

Driver-side: :func:`volume_log_diameter` reads one coarse pyramid level of a
stored volume (``bigseg.io``) and :func:`log_diameter` estimates the diameter
from image evidence alone (LoG scale selection); :mod:`bigseg.pipeline` calls
it once per run. It refuses (:class:`AmbiguousDiameterError`) rather than guess.
"""

from bigseg.diameter._log import (
    AmbiguousDiameterError,
    BlobScale,
    LogDiameterEstimate,
    log_diameter,
)
from bigseg.diameter._volume import volume_log_diameter

__all__ = [
    "AmbiguousDiameterError",
    "BlobScale",
    "LogDiameterEstimate",
    "log_diameter",
    "volume_log_diameter",
]
