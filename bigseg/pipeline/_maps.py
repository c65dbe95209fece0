"""How the BCD maps are stored between the predict stage and decoding.

Every block reads the same stored maps (its own core and its neighbours'), so the
storage precision changes the labels only where a map value lies within one step
of a threshold or two floods meet. Encodings, chosen by the stored dtype::

    float32   as predicted (12 bytes per voxel for the three maps)
    float16   6 bytes per voxel; steps of 2^-11 near 1 (the default)

Not uint8 with a fixed scale (NucMM's choice, 3 bytes per voxel): its 255 levels
of distance make plateaus where the marker watershed breaks ties by flooding
order, and the labels then changed with the blocking (measured on the test balls).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from bigseg.errors import InputError

__all__ = ["MAPS_DTYPES", "MapsDtype", "decode_maps", "encode_maps"]

MapsDtype = Literal["float32", "float16"]
MAPS_DTYPES: tuple[str, ...] = ("float32", "float16")


def encode_maps(maps: np.ndarray, dtype: str) -> np.ndarray:
    """``(3, Z, Y, X) float32`` maps → their stored form in ``dtype`` (see the module)."""
    if dtype not in MAPS_DTYPES:
        raise InputError(f"`maps_dtype` must be one of {', '.join(MAPS_DTYPES)}, got {dtype!r}")
    return np.ascontiguousarray(maps, dtype=dtype)


def decode_maps(stored: np.ndarray) -> np.ndarray:
    """Stored maps (any encoding above) → ``(3, Z, Y, X) float32``."""
    return np.asarray(stored, dtype=np.float32)
