"""The :class:`Volume`: a picklable, lazily opened 3D input image."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from bigseg.errors import InputError
from bigseg.io._store import FileIdentity, open_array
from bigseg.io._tiff import open_tiff_level
from bigseg.tiling import Roi

__all__ = ["Volume", "check_finite"]

Shape3 = tuple[int, int, int]
Size3 = tuple[float, float, float]


def check_finite(data: np.ndarray, where: str) -> None:
    """Refuse image values that are NaN or infinite (integer images have none); ``where`` names the data."""
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise InputError(
            f"{where} has {bad} NaN or infinite values; replace them (e.g. with the background value) "
            "before segmenting"
        )


@dataclass(frozen=True, slots=True)
class Volume:
    """A 3D (Z, Y, X) view of one channel of a stored image, at one level.

    Holds URLs and shapes, not open arrays: it pickles cheaply to Dask
    workers, and each process opens the arrays once on first read. Build it
    with :func:`~bigseg.io.open_volume`.

    Attributes
    ----------
    source : str
        The URL or path that was opened (normalized).
    kind : {"zarr", "tiff"}
    level_urls : tuple of str
        The array (zarr) or file (TIFF) of each resolution level.
    axes : str
        Axes of the stored arrays, e.g. ``"tczyx"`` or ``"zyx"``.
    fixed : tuple of (int or None)
        Per stored axis: the index taken on a non-spatial axis (channel,
        size-1 time), ``None`` on the three spatial axes.
    level_shapes : tuple of (Z, Y, X)
        Per level.
    level_voxel_sizes : tuple of (z, y, x) floats
        Per level, in µm.
    level : int
        The chosen level (``shape``, ``voxel_size`` and :meth:`read` refer to it).
    channel : int or None
    dtype : str
    chunk_shape : (Z, Y, X) or None
        Storage chunk of the chosen level (inner chunk if sharded).
    ngff_version : str or None
        ``"0.4"``/``"0.5"`` for OME-Zarr, ``None`` otherwise.
    tiff_series : int
    storage_options : dict or None
    tiff_identity : FileIdentity or None
        The TIFF file's identity when it was opened (``bigseg.io._store.file_identity``):
        every read, in any process, is of that file, not of one written at the same path since.
    metadata_urls : tuple of str
        zarr: the metadata documents that describe the image, the image group's (OME-Zarr) and
        each level array's: ``zarr.json``, or for zarr v2 the group's ``.zattrs`` and the arrays'
        ``.zarray``. Writing the image anew rewrites them; a run's fingerprint names their identity.
        Empty for a TIFF.
    """

    source: str
    kind: Literal["zarr", "tiff"]
    level_urls: tuple[str, ...]
    axes: str
    fixed: tuple[int | None, ...]
    level_shapes: tuple[Shape3, ...]
    level_voxel_sizes: tuple[Size3, ...]
    level: int
    channel: int | None
    dtype: str
    chunk_shape: Shape3 | None
    ngff_version: str | None = None
    tiff_series: int = 0
    level_chunk_shapes: tuple[Shape3 | None, ...] = ()
    storage_options: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    tiff_identity: FileIdentity | None = field(default=None, compare=False, hash=False)
    metadata_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.level_urls)
        if len(self.level_shapes) != n or len(self.level_voxel_sizes) != n:
            raise InputError("Volume needs one shape and one voxel size per level")
        if not 0 <= self.level < n:
            raise InputError(f"`level` must be 0..{n - 1} ({n} levels in {self.source!r}), got {self.level}")
        if len(self.fixed) != len(self.axes) or sum(f is None for f in self.fixed) != 3:
            raise InputError(f"Volume.fixed {self.fixed} must leave exactly 3 spatial axes of {self.axes!r}")

    @property
    def shape(self) -> Shape3:
        """(Z, Y, X) of the chosen level."""
        return self.level_shapes[self.level]

    @property
    def voxel_size(self) -> Size3:
        """(z, y, x) in µm at the chosen level."""
        return self.level_voxel_sizes[self.level]

    @property
    def n_levels(self) -> int:
        return len(self.level_urls)

    @property
    def roi(self) -> Roi:
        """The whole chosen level as a Roi."""
        return Roi((0, 0, 0), self.shape)

    def with_level(self, level: int) -> Volume:
        """The same image at another resolution ``level``."""
        self._check_level(level)
        chunk = self.level_chunk_shapes[level] if self.level_chunk_shapes else None
        return replace(self, level=int(level), chunk_shape=chunk)

    def read(self, roi: Roi) -> np.ndarray:
        """(Z, Y, X) ndarray of the native dtype: ``roi`` of the chosen level."""
        return self.read_level(self.level, roi)

    def read_level(self, level: int, roi: Roi | None = None) -> np.ndarray:
        """(Z, Y, X) ndarray of ``roi`` (default: all) at ``level``.

        Meant for low-resolution levels (statistics) and block reads alike.
        """
        level = self._check_level(level)
        shape = self.level_shapes[level]
        if roi is None:
            roi = Roi((0, 0, 0), shape)
        if not isinstance(roi, Roi) or roi.ndim != 3:
            raise InputError(f"`roi` must be a 3D Roi (z, y, x), got {roi!r}")
        if not Roi((0, 0, 0), shape).contains(roi):
            raise InputError(f"{roi} is outside level {level} of {self.source!r}, shape {shape}")
        spatial = iter(roi.to_slices())
        index = tuple(next(spatial) if f is None else f for f in self.fixed)
        out = np.asarray(self._array(level)[index])
        return out.astype(np.dtype(self.dtype), copy=False)

    def _check_level(self, level: int) -> int:
        if not isinstance(level, (int, np.integer)) or not 0 <= level < self.n_levels:
            raise InputError(
                f"`level` must be 0..{self.n_levels - 1} ({self.n_levels} levels in {self.source!r}), got {level!r}"
            )
        return int(level)

    def _array(self, level: int) -> Any:
        if self.kind == "tiff":
            return open_tiff_level(self.level_urls[level], self.tiff_series, level, self.storage_options,
                                   self.tiff_identity)
        return open_array(self.level_urls[level], self.storage_options, mode="r")
