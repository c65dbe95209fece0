"""Per-process cache of built predictors: a Dask worker loads a model once.

A GPU worker's threads may all ask for the predictor at once when its first
blocks arrive; the lock makes the first build the only one (one copy of the
network in the device's memory).
"""

from __future__ import annotations

import functools
import threading

from bigseg.predict._protocol import Predictor, PredictorSpec

__all__ = ["get_predictor"]

_BUILD = threading.Lock()


@functools.lru_cache(maxsize=4)
def _built(spec: PredictorSpec) -> Predictor:
    return spec.build()


def get_predictor(spec: PredictorSpec) -> Predictor:
    """Build the predictor described by ``spec``, once per process (thread-safe)."""
    with _BUILD:
        return _built(spec)

