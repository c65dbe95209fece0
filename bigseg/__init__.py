"""bigseg: every nucleus in whole-organ 3D microscopy, block by block on Dask.

The public API is small: :func:`segment` (image → labels + table),
:func:`open_volume` (any 3D input), :class:`SegmentConfig` / :func:`load_config`.

They are imported on first use, so that importing one stage (``import
bigseg.decode``) does not import the others (the pipeline pulls in torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bigseg.config import SegmentConfig, load_config
    from bigseg.io import open_volume
    from bigseg.pipeline import SegmentResult, segment

__all__ = ["SegmentConfig", "SegmentResult", "load_config", "open_volume", "segment"]
__version__ = "0.1.0"

_HOME = {
    "SegmentConfig": "bigseg.config", "load_config": "bigseg.config", "open_volume": "bigseg.io",
    "SegmentResult": "bigseg.pipeline", "segment": "bigseg.pipeline",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'bigseg' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
