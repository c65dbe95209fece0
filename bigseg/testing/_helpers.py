"""Helpers for tests of bigseg and of code built on it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from bigseg.io import ImageWriter, create_image
from bigseg.tiling import Roi

__all__ = ["balls_volume", "same_partition", "tree_digest", "write_image"]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True if ``a`` and ``b`` are the same labelling up to renaming (0 stays 0)."""
    if a.shape != b.shape:
        return False
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]).astype(np.uint64), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def balls_volume(
    shape: tuple[int, int, int],
    centres: np.ndarray,
    radius: float,
    *,
    blur: float = 1.0,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Bright balls of ``radius`` voxels at ``centres`` on a dark, noisy background.

    Returns
    -------
    image : (Z, Y, X) ndarray of float32, ~[0, 1]
    labels : (Z, Y, X) ndarray of uint32, ball ``k`` labelled ``k + 1``
        (a voxel nearer to two centres goes to the first).
    """
    labels = np.zeros(shape, dtype=np.uint32)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    for k, c in enumerate(np.asarray(centres, dtype=float)):
        inside = sum((g - v) ** 2 for g, v in zip(grid, c)) <= radius**2
        labels[inside & (labels == 0)] = k + 1
    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter((labels > 0).astype(np.float32), blur) + rng.normal(0, noise, shape)
    return image.astype(np.float32), labels


def write_image(
    url: str | os.PathLike[str],
    image: np.ndarray,
    *,
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
    chunk_shape: tuple[int, int, int] = (32, 32, 32),
    ngff_version: str = "0.5",
    n_levels: int = 1,
) -> ImageWriter:
    """Write ``image`` as a finalized OME-Zarr image (pyramid levels by mean)."""
    writer = create_image(
        url, shape=image.shape, dtype=image.dtype, voxel_size=voxel_size, chunk_shape=chunk_shape,
        ngff_version=ngff_version, n_levels=n_levels,  # type: ignore[arg-type]
    )
    writer.write(Roi((0, 0, 0), image.shape), image)
    for level in range(1, n_levels):
        for roi in writer.pyramid_rois(level):
            writer.build_pyramid_block(level, roi, "mean")
    writer.finalize()
    return writer


def tree_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 over every file (name and bytes) below ``path``: to prove it unchanged."""
    h = hashlib.sha256()
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(root) if p != root else p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def stop_processes(procs: list[subprocess.Popen]) -> None:  # type: ignore[type-arg]
    """Terminate ``procs`` (last started first), then kill any that has not exited within 20 s."""
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
