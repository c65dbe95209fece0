"""The BCD maps every predictor writes and the decoder reads, the thresholds that decode them,
and the devices a predictor computes them on.

Torch-free and numpy-free: the config, the model card, ``predict`` and
``decode`` all use these names.

A predictor turns an image block into three per-voxel maps, stacked on a
leading channel axis::

    maps (3, Z, Y, X) float32
    maps[FOREGROUND]  foreground probability  [0, 1]
    maps[CONTOUR]     contour probability     [0, 1]
    maps[DISTANCE]    signed distance         [-1, 1]  (> 0 inside nuclei, 1 at centres)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from bigseg.errors import InputError

__all__ = ["CONTOUR", "DISTANCE", "DEVICES", "FOREGROUND", "MAP_CHANNELS", "DecodeParams", "Device"]

MAP_CHANNELS = ("foreground", "contour", "distance")
FOREGROUND, CONTOUR, DISTANCE = 0, 1, 2

#: Where a predictor computes the maps: ``auto`` is CUDA when available, else the CPU.
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda")


@dataclass(frozen=True, slots=True)
class DecodeParams:
    """Thresholds of the BCD decoding (NucMM's thres1..thres5).

    Parameters
    ----------
    seed_foreground, seed_contour, seed_distance : float
        A voxel is a seed where foreground > ``seed_foreground``,
        contour < ``seed_contour`` and distance > ``seed_distance``.
    mask_foreground, mask_distance : float
        Seeds flood only where foreground > ``mask_foreground`` and
        distance > ``mask_distance``.
    min_volume_um3 : float
        Objects smaller than this (µm³), measured after stitching, are removed.

    The one type of decode thresholds, with one set of defaults. A model card's
    ``decoding`` holds one (without ``min_volume_um3``, which follows the run's
    diameter) and replaces these defaults for that model; the config's
    ``seed_*``/``mask_foreground``/``min_volume_um3`` override single fields.
    """

    seed_foreground: float = 0.75
    seed_contour: float = 0.4
    seed_distance: float = 0.4
    mask_foreground: float = 0.5
    mask_distance: float = -1.0
    min_volume_um3: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise InputError(f"DecodeParams.{name} must be finite, got {value}")
        for name in ("seed_foreground", "seed_contour", "mask_foreground"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"DecodeParams.{name} is a probability and must be in [0, 1], got {value}")
        if self.min_volume_um3 < 0:
            raise InputError(f"DecodeParams.min_volume_um3 must be >= 0, got {self.min_volume_um3}")
