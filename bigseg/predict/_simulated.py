"""A simulated accelerator, for machines without one.

:class:`SimulatedPredictor` covers the block with patches as the model's sliding
window does and "runs" each batch of patches by sleeping ``seconds_per_mvox``
per million patch voxels (a sleep releases the GIL, as a GPU kernel does). Its
maps are a point-wise function of the image, so its host work is nearly nil:
with ``seconds_per_mvox=0`` it isolates the pipeline's own overhead, and with
a positive rate it lets a CPU machine measure how busy the pipeline keeps a
device (:func:`bigseg.predict.busy_fraction`)::

    foreground = clip(image, 0, 1)    contour = 0    distance = 2 * foreground - 1
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from bigseg.errors import InputError
from bigseg.predict._device import batch_for_memory, device_use
from bigseg.tiling import Roi

__all__ = ["SimulatedPredictor", "SimulatedSpec"]


@dataclass(frozen=True, slots=True)
class SimulatedSpec:
    """Parameters of :class:`SimulatedPredictor`.

    Parameters
    ----------
    seconds_per_mvox : float
        Simulated device time per million patch voxels (0: no device time).
    patch_size : (int, int, int)
        The simulated model's patch (data voxels).
    overlap : float
        Fraction of a patch shared with its neighbours, as in the sliding window.
    batch_size : int, optional
        Patches per simulated device call; default: sized to ``memory_gib`` by the
        rule of a GPU (:func:`bigseg.predict.batch_for_memory`).
    halo : (int, int, int)
        Context the simulated model asks for.
    memory_gib : float
        The simulated device's free memory, GiB.
    bytes_per_voxel : float
        Device memory a forward pass takes per patch voxel (1 KiB: a network
        holding 256 float32 values per voxel at its peak).
    """

    seconds_per_mvox: float = 0.0
    patch_size: tuple[int, int, int] = (32, 64, 64)
    overlap: float = 0.25
    batch_size: int | None = None
    halo: tuple[int, int, int] = (4, 4, 4)
    memory_gib: float = 1.0
    bytes_per_voxel: float = 1024.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds_per_mvox) and self.seconds_per_mvox >= 0):
            raise InputError(f"`seconds_per_mvox` must be a finite number >= 0, got {self.seconds_per_mvox}")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise InputError(f"`patch_size` must be 3 ints >= 1 (z, y, x), got {self.patch_size}")
        if not 0 <= self.overlap < 1:
            raise InputError(f"`overlap` must be in [0, 1), got {self.overlap}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"`batch_size` must be >= 1 (or None: from `memory_gib`), got {self.batch_size}")
        if not (math.isfinite(self.memory_gib) and self.memory_gib > 0):
            raise InputError(f"`memory_gib` must be a finite number > 0, got {self.memory_gib}")
        if not (math.isfinite(self.bytes_per_voxel) and self.bytes_per_voxel > 0):
            raise InputError(f"`bytes_per_voxel` must be a finite number > 0, got {self.bytes_per_voxel}")

    def build(self) -> SimulatedPredictor:
        return SimulatedPredictor(self)


def _patch_count(shape: tuple[int, ...], patch: tuple[int, ...], overlap: float) -> tuple[int, tuple[int, ...]]:
    """Number of sliding-window patches over ``shape``, and the patch shape used."""
    used = tuple(min(p, s) for p, s in zip(patch, shape))
    n = 1
    for s, p in zip(shape, used):
        step = max(1, int(p * (1 - overlap)))
        n *= 1 if s <= p else math.ceil((s - p) / step) + 1
    return n, used


class SimulatedPredictor:
    """Point-wise maps; the device time is a sleep per batch of patches (see the module)."""

    def __init__(self, spec: SimulatedSpec) -> None:
        self.spec = spec
        per_patch = spec.bytes_per_voxel * float(np.prod(spec.patch_size))
        #: Patches per simulated device call.
        self.batch_size = spec.batch_size or batch_for_memory(spec.memory_gib * 2**30, per_patch)

    @property
    def halo(self) -> tuple[int, int, int]:
        return self.spec.halo

    def device_seconds(self, shape: tuple[int, ...]) -> float:
        """Simulated device time of one block of ``shape``."""
        n, patch = _patch_count(shape, self.spec.patch_size, self.spec.overlap)
        return self.spec.seconds_per_mvox * n * float(np.prod(patch)) / 1e6

    def predict(
        self, image: np.ndarray, *, offset: tuple[int, ...] = (0, 0, 0), write_roi: Roi | None = None
    ) -> np.ndarray:
        """``(Z, Y, X)`` normalised block → ``(3, *write_roi.shape) float32`` maps (see the module);
        the whole block by default. The simulated cost is the block's, as before the patch grid."""
        if image.ndim != 3:
            raise InputError(f"`image` must be a (Z, Y, X) block, got shape {image.shape}")
        n, patch = _patch_count(image.shape, self.spec.patch_size, self.spec.overlap)
        if self.spec.seconds_per_mvox > 0:
            with device_use("simulated"):
                for first in range(0, n, self.batch_size):
                    batch = min(self.batch_size, n - first)
                    time.sleep(self.spec.seconds_per_mvox * batch * float(np.prod(patch)) / 1e6)
        if write_roi is not None:
            block = Roi(tuple(int(o) for o in offset), image.shape)
            if write_roi.empty or not block.contains(write_roi):
                raise InputError(f"`write_roi` {write_roi} must be a non-empty box inside the block {block}")
            image = image[write_roi.relative_to(block)]
        fg = np.clip(image, 0.0, 1.0).astype(np.float32)
        return np.stack([fg, np.zeros_like(fg), 2 * fg - 1])
