"""Random fields keyed by voxel position, and Gaussian smoothing with a known halo.

Every random number of the image comes from a generator seeded by
``[seed, tag, cube index]``, where the *key cubes* are the cubes of
:data:`KEY_CUBE` voxels of a grid fixed at the origin (extended past the
volume on every side; unrelated to zarr chunks). Whatever window a block
asks for, the value at a voxel is the same, so blocks of any shape agree bit for bit.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from bigseg.tiling import Roi

__all__ = ["KEY_CUBE", "blur", "key_cubes", "gauss_radius", "keyed_normal", "smooth_field"]

KEY_CUBE = 32
"""Edge, in voxels, of the key cubes: every random number comes from the
generator of its cube. Blocks whose offsets are multiples of it are
generated without waste."""

_KEY_OFFSET = 1 << 32  # keys of cubes at negative positions stay non-negative


def key_cubes(win: Roi, cube: int = KEY_CUBE) -> list[tuple[tuple[int, ...], Roi]]:
    """``(cube index, full cube ROI)`` of every key cube meeting ``win``."""
    ranges = [range(math.floor(o / cube), -(-e // cube)) for o, e in zip(win.offset, win.end)]
    out = []
    for idx in itertools.product(*ranges):
        out.append((idx, Roi(tuple(i * cube for i in idx), (cube,) * win.ndim)))
    return out


def keyed_normal(seed: int, tag: int, win: Roi) -> np.ndarray:
    """Standard normal white noise over ``win`` ((Z, Y, X) ndarray of float64)."""
    return _keyed(seed, tag, win, lambda rng, shape: rng.standard_normal(shape))


def _keyed(seed: int, tag: int, win: Roi, draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]) -> np.ndarray:
    out = np.empty(win.shape, dtype=np.float64)
    for idx, roi in key_cubes(win):
        rng = np.random.default_rng([seed, tag, *(i + _KEY_OFFSET for i in idx)])
        values = draw(rng, roi.shape)
        inter = roi.intersect(win)
        out[inter.relative_to(win)] = values[inter.relative_to(roi)]
    return out


def gauss_radius(sigma_vox: float) -> int:
    """Half-width (voxels) of the truncated Gaussian kernel used for ``sigma_vox``."""
    return 0 if sigma_vox < 0.2 else int(math.ceil(3.0 * sigma_vox))


def _kernel(sigma_vox: float) -> np.ndarray:
    r = gauss_radius(sigma_vox)
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma_vox) ** 2)
    return w / w.sum()


def blur(arr: np.ndarray, sigma_vox: tuple[float, ...]) -> np.ndarray:
    """Separable Gaussian blur; values within ``gauss_radius`` of the edges are not valid.

    The caller pads by that halo and crops; the valid part depends only on
    the input values around each voxel, so it is identical for any window.
    """
    out = arr
    for axis, s in enumerate(sigma_vox):
        if gauss_radius(s):
            out = ndi.correlate1d(out, _kernel(s), axis=axis, mode="constant", cval=0.0)
    return out


def smooth_field(seed: int, tag: int, win: Roi, sigma_vox: tuple[float, ...]) -> np.ndarray:
    """Smoothed keyed noise with unit variance over ``win`` ((Z, Y, X) float64).

    ``sigma_vox`` is the grain size (Gaussian sd) per axis in voxels.
    """
    halo = tuple(gauss_radius(s) for s in sigma_vox)
    outer = win.grow(halo)
    field = blur(keyed_normal(seed, tag, outer), sigma_vox)
    field = field[win.relative_to(outer)]
    norm = math.prod(float(np.sum(_kernel(s) ** 2)) for s in sigma_vox if gauss_radius(s))
    return field / math.sqrt(norm)
