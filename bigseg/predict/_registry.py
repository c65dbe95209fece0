"""Per-process cache of built predictors: a Dask worker loads a model once."""

from __future__ import annotations

import functools

from bigseg.predict._protocol import Predictor, PredictorSpec

__all__ = ["get_predictor"]


@functools.lru_cache(maxsize=4)
def get_predictor(spec: PredictorSpec) -> Predictor:
    """Build the predictor described by ``spec``, once per process."""
    return spec.build()
