"""Composition of the stages into block-wise runs on Dask.

:class:`BlockRunner` (and :func:`open_client`) are the only code that talks
to Dask; ``synth`` and ``evaluate`` use them too. They import no stage, and
``segment``/``decode`` (which import every stage, torch included) load on
first use, so ``from bigseg.pipeline import BlockRunner`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bigseg.pipeline._executor import BlockRunner, open_client
from bigseg.pipeline._workers import (
    WorkerLayout,
    local_layout,
    worker_config,
    worker_environ,
    worker_settings,
)

if TYPE_CHECKING:
    from bigseg.pipeline._segment import SegmentResult, decode, segment

__all__ = [
    "BlockRunner",
    "SegmentResult",
    "WorkerLayout",
    "decode",
    "local_layout",
    "open_client",
    "segment",
    "worker_config",
    "worker_environ",
    "worker_settings",
]

_LAZY = ("SegmentResult", "decode", "segment")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bigseg.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module("bigseg.pipeline._segment"), name)
