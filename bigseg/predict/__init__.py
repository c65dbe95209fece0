"""Predictors: image block → BCD maps (foreground, contour, signed distance).

The classical predictor needs no weights; model predictors run a MONAI
network from a model package (weights + JSON card), the shipped default
model first among them.

The model side (``ModelSpec``, networks, packages, the sliding window) imports
torch and loads on first use, so a worker that runs the classical predictor,
and anything importing only normalisation or the protocol, never imports torch
(about 1.5 s of CPU per process, and a worker that then takes seconds to exit).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bigseg.predict._card import Architecture, Head, ModelCard, Provenance, TargetSpec
from bigseg.predict._classical import ClassicalPredictor, ClassicalSpec
from bigseg.predict._device import (
    CPU_BATCH,
    MAX_BATCH,
    batch_for_memory,
    busy_fraction,
    device_intervals,
    device_task,
    device_tasks,
    device_use,
    device_uses,
    overlap_times,
    reset_device_intervals,
)
from bigseg.predict._normalize import Normalization, estimate_normalization
from bigseg.predict._protocol import Predictor, PredictorSpec
from bigseg.predict._registry import get_predictor
from bigseg.predict._scale import ScaleMap
from bigseg.predict._simulated import SimulatedPredictor, SimulatedSpec

if TYPE_CHECKING:
    from bigseg.predict._model import (
        MAX_UPSAMPLE,
        ModelPredictor,
        ModelSpec,
        default_model_for,
        default_model_spec,
        semantic_to_bcd,
    )
    from bigseg.predict._networks import (
        ARCHITECTURES,
        HEADS,
        activate,
        build_network,
        full_kwargs,
        patch_divisor,
    )
    from bigseg.predict._package import (
        COARSE_MODEL,
        DEFAULT_MODEL,
        DEFAULT_MODELS,
        LoadedModel,
        available_models,
        load_model_package,
        read_card,
        resolve_model,
        save_model_package,
    )
    from bigseg.predict._sliding import sliding_window

__all__ = [
    "ARCHITECTURES",
    "COARSE_MODEL",
    "CPU_BATCH",
    "DEFAULT_MODEL",
    "DEFAULT_MODELS",
    "HEADS",
    "MAX_BATCH",
    "MAX_UPSAMPLE",
    "Architecture",
    "ClassicalPredictor",
    "ClassicalSpec",
    "Head",
    "LoadedModel",
    "ModelCard",
    "ModelPredictor",
    "ModelSpec",
    "Normalization",
    "Predictor",
    "PredictorSpec",
    "Provenance",
    "ScaleMap",
    "SimulatedPredictor",
    "SimulatedSpec",
    "TargetSpec",
    "activate",
    "available_models",
    "build_network",
    "batch_for_memory",
    "busy_fraction",
    "default_model_for",
    "default_model_spec",
    "device_intervals",
    "device_task",
    "device_tasks",
    "device_use",
    "device_uses",
    "estimate_normalization",
    "full_kwargs",
    "get_predictor",
    "load_model_package",
    "overlap_times",
    "patch_divisor",
    "read_card",
    "reset_device_intervals",
    "resolve_model",
    "save_model_package",
    "semantic_to_bcd",
    "sliding_window",
]

_TORCH = {
    **dict.fromkeys(("MAX_UPSAMPLE", "ModelPredictor", "ModelSpec", "default_model_for", "default_model_spec",
                     "semantic_to_bcd"), "_model"),
    **dict.fromkeys(("ARCHITECTURES", "HEADS", "activate", "build_network", "full_kwargs", "patch_divisor"),
                    "_networks"),
    **dict.fromkeys(("COARSE_MODEL", "DEFAULT_MODEL", "DEFAULT_MODELS", "LoadedModel", "available_models",
                     "load_model_package", "read_card", "resolve_model", "save_model_package"), "_package"),
    "sliding_window": "_sliding",
}


def __getattr__(name: str) -> Any:
    if name not in _TORCH:
        raise AttributeError(f"module 'bigseg.predict' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bigseg.predict.{_TORCH[name]}"), name)
