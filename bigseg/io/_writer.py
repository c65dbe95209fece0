"""The OME-Zarr image writer: a picklable description of an output image.

An :class:`ImageWriter` holds URLs and shapes only, so it can be sent to Dask
workers; each process opens the arrays on first use. Writes must cover whole
write units (shards if sharded, else chunks) because two tasks writing parts
of one shard would each rewrite the whole shard and lose the other's data::

    array   |  unit 0  |  unit 1  |  unit 2 |      (last unit cut by the edge)
    ok      |=====================|
    ok                 |===================|      (ends at the array edge)
    error        |=========|                      (starts and ends mid-unit)
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from bigseg.errors import InputError
from bigseg.io._ngff import NgffVersion, image_label_attrs, labels_group_attrs, multiscales_attrs, ngff_body, ome_attrs
from bigseg.io._pyramid import Method, downsample
from bigseg.io._store import join_url, open_array, open_group
from bigseg.tiling import Roi

__all__ = ["ImageWriter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImageWriter:
    """An OME-Zarr image (or label image) being written.

    Attributes
    ----------
    url : str
        The image group.
    ngff_version : {"0.4", "0.5"}
    dtype : str
    paths : tuple of str
        Array path of each level inside the group (``"0"``, ``"1"``, ...).
    level_shapes : tuple of tuple of int
        Full array shape per level: (Z, Y, X), or (C, Z, Y, X) with channels.
    chunk_shapes, shard_shapes : tuple of tuple of int
        Full storage chunk / shard shape per level (``shard_shapes`` entries
        are ``None`` when not sharded).
    voxel_sizes : tuple of (z, y, x) floats
        Per level, in µm.
    factors : tuple of (z, y, x) ints
        Downscale factor of each level after the first, relative to the
        previous level.
    channel_names : tuple of str or None
    name : str
    is_labels : bool
    storage_options : dict or None
        Passed to fsspec for non-local URLs.
    """

    url: str
    ngff_version: NgffVersion
    dtype: str
    paths: tuple[str, ...]
    level_shapes: tuple[tuple[int, ...], ...]
    chunk_shapes: tuple[tuple[int, ...], ...]
    shard_shapes: tuple[tuple[int, ...] | None, ...]
    voxel_sizes: tuple[tuple[float, float, float], ...]
    factors: tuple[tuple[int, int, int], ...]
    channel_names: tuple[str, ...] | None = None
    name: str = "image"
    is_labels: bool = False
    #: For a label image: the path of its image (``image-label`` ``source``), relative or a URL.
    label_source: str | None = None
    storage_options: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.paths)
        for attr in ("level_shapes", "chunk_shapes", "shard_shapes", "voxel_sizes"):
            if len(getattr(self, attr)) != n:
                raise InputError(f"ImageWriter.{attr} must have one entry per level ({n})")
        if len(self.factors) != n - 1:
            raise InputError(f"ImageWriter.factors must have {n - 1} entries, got {len(self.factors)}")

    # ------------------------------------------------------------ shapes

    @property
    def n_levels(self) -> int:
        return len(self.paths)

    @property
    def has_channel(self) -> bool:
        return self.channel_names is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """(Z, Y, X) of level 0."""
        return self.spatial_shape(0)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """(z, y, x) µm of level 0."""
        return self.voxel_sizes[0]

    def spatial_shape(self, level: int = 0) -> tuple[int, ...]:
        """(Z, Y, X) of ``level``."""
        return self.level_shapes[self._check_level(level)][-3:]

    def write_unit(self, level: int = 0) -> tuple[int, ...]:
        """(Z, Y, X) of the shard (sharded) or chunk at ``level``: writes align to it."""
        level = self._check_level(level)
        unit = self.shard_shapes[level] or self.chunk_shapes[level]
        return unit[-3:]

    def _expect(self, level: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.level_shapes[level], self.chunk_shapes[level]

    def array_url(self, level: int = 0) -> str:
        return join_url(self.url, self.paths[self._check_level(level)])

    def _check_level(self, level: int) -> int:
        if not isinstance(level, (int, np.integer)) or not 0 <= level < self.n_levels:
            raise InputError(f"`level` must be 0..{self.n_levels - 1} for {self.url!r}, got {level!r}")
        return int(level)

    def _check_roi(self, roi: Roi, level: int) -> None:
        shape = self.spatial_shape(level)
        if not isinstance(roi, Roi) or roi.ndim != 3:
            raise InputError(f"`roi` must be a 3D Roi (z, y, x), got {roi!r}")
        if not Roi((0, 0, 0), shape).contains(roi):
            raise InputError(f"{roi} is outside level {level} of {self.url!r}, shape {shape}")

    def _check_aligned(self, roi: Roi, level: int) -> None:
        unit, shape = self.write_unit(level), self.spatial_shape(level)
        for o, e, u, s in zip(roi.offset, roi.end, unit, shape):
            if o % u or (e % u and e != s):
                raise InputError(
                    f"{roi} is not aligned to the write unit {unit} (shard if sharded, else chunk) of level {level} "
                    f"of {self.url!r} (shape {shape}); both ends must be multiples of it or end at the array edge, "
                    "because partial shard/chunk writes from several tasks overwrite each other"
                )

    def _index(self, roi: Roi) -> tuple[slice, ...]:
        return ((slice(None),) if self.has_channel else ()) + roi.to_slices()

    # ------------------------------------------------------------ data

    def write(self, roi: Roi, data: np.ndarray, level: int = 0) -> None:
        """Write ``data`` into ``roi`` of ``level``.

        Parameters
        ----------
        roi : Roi
            (z, y, x) voxels of ``level``; aligned to :meth:`write_unit` at both
            ends except where it ends at the array edge.
        data : (Z, Y, X) or (C, Z, Y, X) ndarray
            ``roi.shape``, with the channel axis first for channel images.
        level : int

        Raises
        ------
        InputError
            Misaligned or out-of-bounds ``roi``, wrong ``data`` shape, or float
            data for an integer image.
        """
        self._check_roi(roi, level)
        self._check_aligned(roi, level)
        data = np.asarray(data)
        expected = self.level_shapes[level][:-3] + roi.shape
        if data.shape != expected:
            raise InputError(f"`data` of shape {data.shape} does not fit {roi} of {self.url!r}; expected {expected}")
        target = np.dtype(self.dtype)
        if np.issubdtype(target, np.integer) and not np.issubdtype(data.dtype, np.integer) and data.dtype != np.bool_:
            raise InputError(f"cannot write {data.dtype} data into the {target} image {self.url!r}; convert it first")
        arr = open_array(self.array_url(level), self.storage_options, mode="r+", expect=self._expect(level))
        arr[self._index(roi)] = data.astype(target, copy=False)

    def read(self, roi: Roi, level: int = 0) -> np.ndarray:
        """The (Z, Y, X) or (C, Z, Y, X) data of ``roi`` at ``level``."""
        self._check_roi(roi, level)
        arr = open_array(self.array_url(level), self.storage_options, mode="r+", expect=self._expect(level))
        return np.asarray(arr[self._index(roi)])

    # ------------------------------------------------------------ pyramid

    def pyramid_rois(self, level: int) -> list[Roi]:
        """Write ROIs that tile ``level`` (>= 1), one per write unit, row-major."""
        level = self._check_level(level)
        if level == 0:
            raise InputError("`level` must be >= 1: level 0 is written by the caller, not built from the pyramid")
        shape, unit = self.spatial_shape(level), self.write_unit(level)
        starts = [range(0, s, u) for s, u in zip(shape, unit)]
        return [
            Roi(off, tuple(min(u, s - o) for o, u, s in zip(off, unit, shape)))
            for off in itertools.product(*starts)
        ]

    def build_pyramid_block(self, level: int, roi: Roi, method: Method = "mean") -> None:
        """Build ``roi`` of ``level`` (>= 1) by downsampling ``level - 1``.

        ``mean`` for intensities, ``nearest`` (strided pick) or ``mode``
        (majority) for labels. ``roi`` must be aligned like :meth:`write`.
        """
        level = self._check_level(level)
        if level == 0:
            raise InputError("`level` must be >= 1 for build_pyramid_block")
        self._check_roi(roi, level)
        self._check_aligned(roi, level)
        f = self.factors[level - 1]
        src = Roi(tuple(o * v for o, v in zip(roi.offset, f)), tuple(s * v for s, v in zip(roi.shape, f)))
        src = src.intersect(Roi((0, 0, 0), self.spatial_shape(level - 1)))
        out = downsample(self.read(src, level - 1), f, method)
        self.write(roi, out, level)

    # ------------------------------------------------------------ metadata

    def finalize(self, extra_attrs: Mapping[str, Any] | None = None, *, n_labels: int | None = None) -> None:
        """Write the NGFF metadata and mark the image complete.

        ``n_labels`` (label images: IDs run 1..n_labels) decides whether ``image-label`` lists
        colours (see :func:`~bigseg.io._ngff.image_label_attrs`).

        Called once, after every block is written. The ``multiscales`` (and,
        for labels, ``image-label``) metadata and ``{"bigseg": {"complete":
        true}}`` go in one attribute write; a label image is then listed in
        the parent's ``labels`` group. Before this the group carries
        ``{"bigseg": {"complete": false}}`` and no ``multiscales``.
        """
        body: dict[str, Any] = {
            "multiscales": [
                multiscales_attrs(
                    paths=self.paths,
                    voxel_sizes=self.voxel_sizes,
                    has_channel=self.has_channel,
                    name=self.name,
                    version=self.ngff_version,
                )
            ]
        }
        if self.is_labels:
            body["image-label"] = image_label_attrs(self.ngff_version, self.label_source, n_labels)
        group = open_group(self.url, self.storage_options, mode="r+")
        before = dict(group.attrs).get("bigseg")
        # Keep what creation recorded (a run's fingerprint); finalizing twice writes the same attributes.
        bigseg: dict[str, Any] = {**(dict(before) if isinstance(before, Mapping) else {}), "complete": True}
        if self.channel_names is not None:
            bigseg["channel_names"] = list(self.channel_names)
        bigseg.update(dict(extra_attrs or {}))
        group.attrs.update({**ome_attrs(self.ngff_version, body), "bigseg": bigseg})
        if self.is_labels:
            self._list_in_parent()
        log.info("finalized %s (%d levels)", self.url, self.n_levels)

    def _list_in_parent(self) -> None:
        labels_url = self.url.rsplit("/", 1)[0]
        group = open_group(labels_url, self.storage_options, mode="r+")
        body, _ = ngff_body(dict(group.attrs))
        names = [str(n) for n in body.get("labels", [])]
        if self.name not in names:
            names.append(self.name)
        group.attrs.update(labels_group_attrs(self.ngff_version, names))
