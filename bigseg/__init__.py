"""bigseg: every nucleus in whole-organ 3D microscopy, block by block on Dask.

The public API is small: :func:`segment` (image → labels + table),
:func:`open_volume` (any 3D input), :class:`SegmentConfig` / :func:`load_config`.
"""

from bigseg.config import SegmentConfig, load_config
from bigseg.io import open_volume
from bigseg.pipeline import SegmentResult, segment

__all__ = ["SegmentConfig", "SegmentResult", "load_config", "open_volume", "segment"]
__version__ = "0.1.0"
