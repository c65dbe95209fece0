"""NucMM U3D-BCD decoding: seeds from the three maps, marker watershed.

Seeds are voxels where the foreground is high, the contour low and the
distance high; they flood over ``-distance`` inside the foreground mask.
Small objects are removed *after* stitching (an object cut by a block border
is small in each block), so nothing here drops objects by size.
"""

from __future__ import annotations

import cc3d
import numpy as np
from skimage.segmentation import watershed

from bigseg.errors import InputError
from bigseg.maps import CONTOUR, DISTANCE, FOREGROUND, DecodeParams

__all__ = ["flood_block", "foreground_mask", "seed_mask", "watershed_block"]


def _check_maps(maps: np.ndarray) -> None:
    if maps.ndim != 4 or maps.shape[0] != 3:
        raise InputError(f"`maps` must have shape (3, Z, Y, X) (foreground, contour, distance), got {maps.shape}")


def seed_mask(maps: np.ndarray, params: DecodeParams) -> np.ndarray:
    """Boolean ``(Z, Y, X)`` seed mask; a pointwise function of the maps."""
    _check_maps(maps)
    return (
        (maps[FOREGROUND] > params.seed_foreground)
        & (maps[CONTOUR] < params.seed_contour)
        & (maps[DISTANCE] > params.seed_distance)
    )


def foreground_mask(maps: np.ndarray, params: DecodeParams) -> np.ndarray:
    """Boolean ``(Z, Y, X)`` mask the seeds may flood."""
    _check_maps(maps)
    return (maps[FOREGROUND] > params.mask_foreground) & (maps[DISTANCE] > params.mask_distance)


def flood_block(maps: np.ndarray, markers: np.ndarray, params: DecodeParams) -> np.ndarray:
    """Flood ``markers`` over ``-distance`` inside the foreground mask.

    Parameters
    ----------
    maps : (3, Z, Y, X) ndarray of float32
    markers : (Z, Y, X) ndarray of uint32
        Seed labels (0 = no seed); their IDs are kept.

    Returns
    -------
    (Z, Y, X) ndarray of uint32
    """
    _check_maps(maps)
    if markers.shape != maps.shape[1:]:
        raise InputError(f"`markers` (shape {markers.shape}) must match the maps' spatial shape {maps.shape[1:]}")
    if not markers.any():
        return np.zeros(markers.shape, dtype=np.uint32)
    mask = foreground_mask(maps, params) | (markers > 0)
    elevation = -maps[DISTANCE].astype(np.float64)
    labels = watershed(elevation, markers=markers.astype(np.int64), mask=mask)
    return labels.astype(np.uint32)


def watershed_block(maps: np.ndarray, params: DecodeParams | None = None) -> np.ndarray:
    """Decode one block on its own: local seed labels, then :func:`flood_block`.

    This is the whole-volume reference, and the decoder of the ``iou`` stitch
    path (labels are local to the block).

    Returns
    -------
    (Z, Y, X) ndarray of uint32
    """
    params = params or DecodeParams()
    seeds = cc3d.connected_components(seed_mask(maps, params), connectivity=6).astype(np.uint32)
    return flood_block(maps, seeds, params)
