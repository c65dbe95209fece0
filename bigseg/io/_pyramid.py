"""Resolution pyramids: per-level factors and block downsampling (pure numpy).

Level ``l`` has shape ``ceil(shape[l-1] / factor[l])`` on every axis; the
last voxel along an axis may summarize fewer than ``factor`` voxels::

    level 0   | a b | c d | e |      (5 voxels, factor 2)
    level 1   |  ab |  cd | e |      (3 voxels; the last one from 1 voxel)
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np

from bigseg.errors import InputError

__all__ = ["Method", "default_factors", "downsample", "parse_factors", "pyramid_shapes"]

Method = Literal["mean", "nearest", "mode"]

Factor = tuple[int, int, int]


def default_factors(voxel_size: Sequence[float], n_levels: int) -> tuple[Factor, ...]:
    """Per-level factors (z, y, x), relative to the previous level.

    2 in y and x; 2 in z only while the z voxel size at the previous level is
    not more than twice the xy size (anisotropic data keeps its z until the
    xy voxels have caught up).

    Examples
    --------
    >>> default_factors((2.0, 0.5, 0.5), 4)
    ((1, 2, 2), (1, 2, 2), (2, 2, 2))
    """
    vz, vy, vx = (float(v) for v in voxel_size)
    out: list[Factor] = []
    for _ in range(n_levels - 1):
        fz = 2 if vz <= 2.0 * min(vy, vx) else 1
        out.append((fz, 2, 2))
        vz, vy, vx = vz * fz, vy * 2, vx * 2
    return tuple(out)


def parse_factors(
    downscale: Sequence[int] | Sequence[Sequence[int]] | None, voxel_size: Sequence[float], n_levels: int
) -> tuple[Factor, ...]:
    """``downscale`` as ``n_levels - 1`` factors (z, y, x) of ints >= 1.

    ``None`` gives :func:`default_factors`; one (z, y, x) triple is used for
    every level; otherwise one triple per level after the first.
    """
    if downscale is None:
        return default_factors(voxel_size, n_levels)
    raw: list[Any] = list(downscale)
    items: list[Any] = [raw] * (n_levels - 1) if raw and all(isinstance(v, (int, np.integer)) for v in raw) else raw
    if len(items) != n_levels - 1:
        raise InputError(
            f"`downscale` must be one (z, y, x) factor or {n_levels - 1} of them (one per level after the first), "
            f"got {downscale!r}"
        )
    out: list[Factor] = []
    for f in items:
        t = tuple(int(v) for v in f)
        if len(t) != 3 or any(v < 1 for v in t):
            raise InputError(f"each `downscale` factor must be 3 ints >= 1 (z, y, x), got {f!r}")
        out.append((t[0], t[1], t[2]))
    return tuple(out)


def pyramid_shapes(shape: Sequence[int], factors: Sequence[Factor]) -> tuple[tuple[int, int, int], ...]:
    """(Z, Y, X) shape of every level: level 0 is ``shape``, then ceil-divided."""
    z, y, x = (int(s) for s in shape)
    shapes = [(z, y, x)]
    for fz, fy, fx in factors:
        z, y, x = math.ceil(z / fz), math.ceil(y / fy), math.ceil(x / fx)
        shapes.append((z, y, x))
    return tuple(shapes)


def downsample(data: np.ndarray, factor: Sequence[int], method: Method) -> np.ndarray:
    """Downsample the last three axes of ``data`` by ``factor``.

    Parameters
    ----------
    data : (..., Z, Y, X) ndarray
        Leading axes (channels) are kept.
    factor : (3,) ints
    method : {"mean", "nearest", "mode"}
        ``mean`` averages each box (intensities; rounded for integer dtypes);
        ``nearest`` picks its first voxel (labels); ``mode`` its most frequent
        value, ties going to the first voxel (labels, smoother).

    Returns
    -------
    (..., ceil(Z/fz), ceil(Y/fy), ceil(X/fx)) ndarray of ``data.dtype``
    """
    f = tuple(int(v) for v in factor)
    if method == "nearest":
        return np.ascontiguousarray(data[(..., slice(None, None, f[0]), slice(None, None, f[1]), slice(None, None, f[2]))])
    if method == "mean":
        return _mean(data, f)
    if method == "mode":
        return _mode(data, f)
    raise InputError(f"`method` must be 'mean', 'nearest' or 'mode', got {method!r}")


def _mean(data: np.ndarray, f: tuple[int, ...]) -> np.ndarray:
    acc = data.astype(np.float64)
    nd = data.ndim
    for k, v in enumerate(f):
        axis = nd - 3 + k
        n = acc.shape[axis]
        starts = np.arange(0, n, v)
        counts = np.minimum(starts + v, n) - starts
        shape = [1] * nd
        shape[axis] = len(starts)
        acc = np.add.reduceat(acc, starts, axis=axis) / counts.reshape(shape)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        acc = np.clip(np.rint(acc), info.min, info.max)
    elif data.dtype == np.bool_:
        return acc >= 0.5
    return acc.astype(data.dtype)


def _mode(data: np.ndarray, f: tuple[int, ...]) -> np.ndarray:
    first = downsample(data, f, "nearest")
    # One candidate per position in the box; positions beyond the edge repeat the first voxel.
    cands = []
    for dz in range(f[0]):
        for dy in range(f[1]):
            for dx in range(f[2]):
                c = first.copy()
                sub = data[..., dz :: f[0], dy :: f[1], dx :: f[2]]
                c[..., : sub.shape[-3], : sub.shape[-2], : sub.shape[-1]] = sub
                cands.append(c)
    stack = np.stack(cands)
    counts = np.zeros(stack.shape, dtype=np.int32)
    for c in cands:
        counts += stack == c
    best = np.argmax(counts, axis=0)
    return np.take_along_axis(stack, best[None], axis=0)[0]
