"""Training patches: random crops of labelled volumes and of synthetic volumes.

Every draw is a pure function of ``(seed, step)`` (and, for the synthetic
pool, of the generation index), so a resumed run sees exactly the batches an
uninterrupted one would have seen.

A source returns ``(image, labels)`` crops of ``patch + 2 * pad`` voxels;
augmentation runs on the crop, targets are computed on the augmented labels,
and the pad is cut away, so distances near the patch edge still see the
nuclei just outside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bigseg.errors import InputError
from bigseg.synth._randomized import RandomNucleiConfig, random_nuclei
from bigseg.train._presets import PRESET_NAMES

__all__ = ["LabelledVolume", "PatchSource", "PatchVolume", "SyntheticPool", "VolumeSource", "random_crop"]

logger = logging.getLogger(__name__)


class PatchSource(Protocol):
    """Something that yields ``(image, labels)`` crops of a given shape."""

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int], step: int) -> tuple[np.ndarray, np.ndarray]: ...


def random_crop(
    rng: np.random.Generator, arrays: tuple[np.ndarray, ...], shape: tuple[int, int, int]
) -> tuple[np.ndarray, ...]:
    """The same random ``shape`` crop of each array, zero-padded where the array is smaller."""
    full = arrays[0].shape
    start = [int(rng.integers(0, max(f - s, 0) + 1)) for f, s in zip(full, shape)]
    sl = tuple(slice(a, a + s) for a, s in zip(start, shape))
    out = []
    for arr in arrays:
        crop = np.asarray(arr[sl])
        if crop.shape != tuple(shape):
            pad = [(0, s - c) for s, c in zip(shape, crop.shape)]
            crop = np.pad(crop, pad)
        out.append(crop)
    return tuple(out)


@dataclass
class SyntheticPool:
    """A pool of domain-randomised volumes, one replaced every ``refresh_every`` steps.

    Parameters
    ----------
    seed : int
        Base seed; volume ``g`` is drawn with seed ``(seed, 1, g)``.
    volume_shape : (int, int, int)
        Shape of each pool volume (voxels, model scale).
    size : int
        Number of volumes in the pool.
    refresh_every : int
        Steps between replacing one volume (generation costs ~0.3 s per 64³).
    config : RandomNucleiConfig
        Generator ranges.
    preset_fraction : float
        Share of volumes drawn from ``bigseg.synth`` presets (rendered at the
        preset's voxel size, then rescaled to the model's) instead of
        :func:`random_nuclei`.
    presets : tuple of str
        The presets drawn from, uniformly (repeat a name to weight it).
    preset_max_downsample : float, optional
        Render a preset at a coarser voxel where it would be shrunk more than this per axis.
    model_voxel_size, model_diameter, max_upsample
        The model's scale, and the cap on enlargement per axis, for preset volumes.
    """

    seed: int
    volume_shape: tuple[int, int, int] = (80, 80, 80)
    size: int = 16
    refresh_every: int = 4
    config: RandomNucleiConfig = field(default_factory=RandomNucleiConfig)
    preset_fraction: float = 0.0
    presets: tuple[str, ...] = PRESET_NAMES
    preset_max_downsample: float | None = None
    model_voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    model_diameter: float = 12.0
    max_upsample: float | None = None
    _slots: dict[int, tuple[int, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.size < 1 or self.refresh_every < 1:
            raise InputError(f"pool size and refresh_every must be >= 1, got {self.size}, {self.refresh_every}")

    def _generation(self, step: int) -> int:
        """Index of the newest volume in the pool at ``step``."""
        return self.size - 1 + step // self.refresh_every

    def _ensure(self, step: int) -> None:
        newest = self._generation(step)
        for slot in range(self.size):
            g = newest - ((newest - slot) % self.size)  # newest generation stored in this slot
            have = self._slots.get(slot)
            if have is None or have[0] != g:
                self._slots[slot] = (g, *self._generate(g))

    def _generate(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, 1, g))
        if self.preset_fraction > 0 and rng.random() < self.preset_fraction:
            from bigseg.train._presets import preset_volume

            return preset_volume(rng, self.volume_shape, names=self.presets, model_voxel_size=self.model_voxel_size,
                                 model_diameter=self.model_diameter, max_upsample=self.max_upsample,
                                 max_downsample=self.preset_max_downsample)
        return random_nuclei(self.volume_shape, seed=rng, config=self.config)

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int], step: int) -> tuple[np.ndarray, np.ndarray]:
        self._ensure(step)
        _, image, labels = self._slots[int(rng.integers(0, self.size))]
        image_c, labels_c = random_crop(rng, (image, labels), shape)
        return image_c, labels_c


@dataclass(frozen=True)
class LabelledVolume:
    """A normalised image and its instance labels at the model's scale.

    Attributes
    ----------
    image : (Z, Y, X) ndarray of float32
        Normalised like the pipeline normalises (whole-volume percentiles).
    labels : (Z, Y, X) ndarray of int
        Instance labels, 0 = background.
    name : str
        Where it came from, for logs.
    """

    image: np.ndarray
    labels: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape != self.labels.shape:
            raise InputError(
                f"image {self.name!r} (shape {self.image.shape}) and its labels (shape {self.labels.shape}) "
                "must be 3D volumes of the same shape"
            )

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """A random ``shape`` crop (zero-padded where the volume is smaller)."""
        image, labels = random_crop(rng, (self.image, self.labels), shape)
        return image, labels


class PatchVolume(Protocol):
    """A labelled volume at the model's scale that hands out random crops."""

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class VolumeSource:
    """Random crops of labelled volumes, each volume drawn with equal probability.

    The volumes are in memory (:class:`LabelledVolume`) or read patch by patch
    from their files (:class:`bigseg.train._volumes.LazyLabelledVolume`).
    """

    volumes: tuple[PatchVolume, ...]

    def __post_init__(self) -> None:
        if not self.volumes:
            raise InputError("a VolumeSource needs at least one (image, labels) pair")

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int], step: int) -> tuple[np.ndarray, np.ndarray]:
        vol = self.volumes[int(rng.integers(0, len(self.volumes)))]
        image, labels = vol.draw(rng, shape)
        return image.astype(np.float32), labels.astype(np.uint32)
