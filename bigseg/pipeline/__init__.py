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
from bigseg.pipeline._security import job_security, tls_environment, write_job_certificates
from bigseg.pipeline._slurm import slurm_cluster
from bigseg.pipeline._workers import (
    WorkerLayout,
    local_layout,
    worker_config,
    worker_environ,
    worker_settings,
)

if TYPE_CHECKING:
    from bigseg.pipeline._info import OutputInfo, describe_output
    from bigseg.pipeline._segment import SegmentResult, decode, segment

__all__ = [
    "BlockRunner",
    "OutputInfo",
    "SegmentResult",
    "WorkerLayout",
    "decode",
    "describe_output",
    "job_security",
    "local_layout",
    "open_client",
    "segment",
    "slurm_cluster",
    "tls_environment",
    "worker_config",
    "worker_environ",
    "worker_settings",
    "write_job_certificates",
]

_LAZY = {
    "SegmentResult": "bigseg.pipeline._segment",
    "decode": "bigseg.pipeline._segment",
    "segment": "bigseg.pipeline._segment",
    "OutputInfo": "bigseg.pipeline._info",
    "describe_output": "bigseg.pipeline._info",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bigseg.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
