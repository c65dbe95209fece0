"""In-memory entry point: a whole small volume at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from bigseg.errors import InputError
from bigseg.synth._params import SynthParams
from bigseg.synth._presets import preset as _preset
from bigseg.synth._render import synthesize_block
from bigseg.tiling import Roi, parse_shape

__all__ = ["resolve_params", "synthesize"]


def resolve_params(preset: str | SynthParams, voxel_size: Any = None, **overrides: Any) -> SynthParams:
    """A preset name or parameter set, with ``voxel_size`` and other fields replaced."""
    if voxel_size is not None:
        overrides["voxel_size"] = voxel_size
    if isinstance(preset, SynthParams):
        return preset.updated(**overrides)
    if not isinstance(preset, str):
        raise InputError(f"`preset` must be a preset name or a SynthParams, got {type(preset).__name__}")
    return _preset(preset, **overrides)


def synthesize(
    shape: Any,
    *,
    voxel_size: Any = None,
    preset: str | SynthParams = "confocal",
    seed: int = 0,
    **overrides: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """A whole synthetic volume in memory (for tests and training patches).

    Parameters
    ----------
    shape : int or (3,) tuple of int
        Volume shape in voxels (z, y, x).
    voxel_size : (3,) tuple of float, optional
        µm per voxel (z, y, x); default: the preset's.
    preset : str or SynthParams
        A name in :data:`PRESETS` or a full parameter set.
    seed : int
        Non-negative seed; the same seed gives the same volume.
    **overrides
        Any :class:`SynthParams` field.

    Returns
    -------
    image : (Z, Y, X) ndarray of the preset's dtype (uint8, uint16 or float32)
    labels : (Z, Y, X) ndarray of uint32
        Exact instance labels, 0 = background; IDs unique, not consecutive.
    """
    params = resolve_params(preset, voxel_size, **overrides)
    shp = parse_shape(shape, name="shape")
    return synthesize_block(params, shp, Roi((0, 0, 0), shp), seed)  # type: ignore[arg-type]
