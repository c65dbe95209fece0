"""Regions of interest and halos: half-open voxel boxes in (Z, Y, X)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from bigseg.errors import InputError
from bigseg.tiling._parse import parse_shape

__all__ = ["Halo", "Roi"]


@dataclass(frozen=True, slots=True)
class Roi:
    """A half-open box ``[offset, offset + shape)`` in voxels.

    Examples
    --------
    >>> Roi((0, 0, 0), (4, 4, 4)).intersect(Roi((2, 2, 2), (4, 4, 4)))
    Roi(offset=(2, 2, 2), shape=(2, 2, 2))
    """

    offset: tuple[int, ...]
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", tuple(int(v) for v in self.offset))
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))
        if len(self.offset) != len(self.shape):
            raise InputError(
                f"Roi offset {self.offset} and shape {self.shape} must have the same number of axes"
            )
        if any(s < 0 for s in self.shape):
            raise InputError(f"Roi shape must be >= 0 on every axis, got {self.shape}")

    @property
    def end(self) -> tuple[int, ...]:
        return tuple(o + s for o, s in zip(self.offset, self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def empty(self) -> bool:
        return self.size == 0

    def to_slices(self) -> tuple[slice, ...]:
        """Slices that cut this ROI out of an array that starts at the origin."""
        return tuple(slice(o, e) for o, e in zip(self.offset, self.end))

    def relative_to(self, outer: Roi) -> tuple[slice, ...]:
        """Slices that cut this ROI out of an array covering ``outer``."""
        if not outer.contains(self):
            raise InputError(f"{self} is not inside {outer}")
        return tuple(slice(o - p, o - p + s) for o, p, s in zip(self.offset, outer.offset, self.shape))

    def intersect(self, other: Roi) -> Roi:
        lo = tuple(max(a, b) for a, b in zip(self.offset, other.offset))
        hi = tuple(min(a, b) for a, b in zip(self.end, other.end))
        return Roi(lo, tuple(max(0, h - l) for l, h in zip(lo, hi)))

    def contains(self, other: Roi) -> bool:
        return all(a <= b for a, b in zip(self.offset, other.offset)) and all(
            a >= b for a, b in zip(self.end, other.end)
        )

    def grow(self, halo: Halo | tuple[int, ...]) -> Roi:
        """This ROI with ``halo`` voxels added on both sides of every axis."""
        h = halo.shape if isinstance(halo, Halo) else tuple(halo)
        return Roi(tuple(o - v for o, v in zip(self.offset, h)), tuple(s + 2 * v for s, v in zip(self.shape, h)))

    def shift(self, by: tuple[int, ...]) -> Roi:
        return Roi(tuple(o + b for o, b in zip(self.offset, by)), self.shape)


@dataclass(frozen=True, slots=True)
class Halo:
    """Per-axis context, in voxels, read around a block's write ROI.

    The halo must cover what the write ROI depends on: the predictor's receptive
    field and the radius of the largest nucleus (seeds flood that far).
    """

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.shape, (tuple, list)):
            raise InputError(
                f"Halo takes one value per axis, e.g. Halo((8, 8, 8)), got Halo({self.shape!r}); "
                f"for the same value on every axis use Halo.of({self.shape!r})"
            )
        object.__setattr__(self, "shape", parse_shape(self.shape, name="halo", ndim=len(self.shape), minimum=0))

    @classmethod
    def of(cls, value: int | Iterable[int], ndim: int = 3) -> Halo:
        return cls(parse_shape(value, name="halo", ndim=ndim, minimum=0))
