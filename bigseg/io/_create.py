"""Create OME-Zarr images and label images (0.5 on zarr v3, 0.4 on zarr v2).

Layout of an image with ``n_levels=2`` and one label image::

    out.zarr/                 {"bigseg": {"complete": ...}, "ome": {"multiscales": ...}}
    ├── 0/                    level 0, (Z, Y, X) or (C, Z, Y, X)
    ├── 1/                    level 1, downscaled by ``factors[0]``
    └── labels/               {"ome": {"labels": ["nuclei"]}}
        └── nuclei/           {"ome": {"multiscales": ..., "image-label": {}}}
            ├── 0/
            └── 1/
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
from typing import Any, Mapping, Sequence

import numcodecs
import numpy as np

from bigseg.errors import InputError, OutputExistsError
from bigseg.io._ngff import NgffVersion, ngff_body, parse_multiscale
from bigseg.io._pyramid import parse_factors, pyramid_shapes
from bigseg.io._store import (
    forget_handles,
    is_empty_dir,
    join_url,
    make_store,
    normalize_url,
    open_array,
    open_group,
    path_exists,
    remove_tree,
)
from bigseg.io._writer import ImageWriter
from bigseg.tiling import parse_shape, parse_voxel_size

__all__ = ["create_group", "create_image", "create_labels", "describe_image", "is_complete"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _parse_dtype(dtype: Any) -> str:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputError(f"`dtype` must be a numpy dtype such as 'uint16' or 'float32', got {dtype!r}") from None
    if not (np.issubdtype(dt, np.number) or dt == np.bool_):
        raise InputError(f"`dtype` must be numeric or bool, got {dt}")
    return dt.str if dt.byteorder == ">" else dt.name


def _level_layout(
    shapes: Sequence[tuple[int, ...]],
    chunk: tuple[int, ...],
    shard: tuple[int, ...] | None,
    lead: tuple[int, ...],
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...] | None, ...]]:
    """Per-level full chunk and shard shapes: chunks clipped to the level,
    shards clipped to the chunks that cover it (so they stay chunk multiples)."""
    chunks: list[tuple[int, ...]] = []
    shards: list[tuple[int, ...] | None] = []
    for s in shapes:
        c = tuple(min(a, b) for a, b in zip(chunk, s))
        chunks.append(lead + c)
        if shard is None:
            shards.append(None)
        else:
            shards.append(lead + tuple(min(h, math.ceil(n / k) * k) for h, n, k in zip(shard, s, c)))
    return tuple(chunks), tuple(shards)


def _parse_chunks(chunk_shape: Any, shard_shape: Any) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Spatial chunk and shard shapes (Z, Y, X) as asked (clipped per level later)."""
    chunk = parse_shape(chunk_shape, name="chunk_shape")
    if shard_shape is None:
        return chunk, None
    shard = parse_shape(shard_shape, name="shard_shape")
    if any(h % c for h, c in zip(shard, chunk)):
        raise InputError(f"`shard_shape` {shard} must be a multiple of `chunk_shape` {chunk} on every axis")
    return chunk, shard


def _prepare_path(url: str, storage_options: Mapping[str, Any] | None, overwrite: bool, keep: Sequence[str]) -> None:
    if not path_exists(url, storage_options) or is_empty_dir(url, storage_options, ignore=keep):
        return
    if not overwrite:
        raise OutputExistsError(
            f"output {url!r} already exists; pass overwrite=True (CLI: --overwrite) to replace it, or choose another path"
        )
    remove_tree(url, storage_options)


def _create_arrays(writer: ImageWriter, attrs: dict[str, Any], keep: Sequence[str] = ()) -> None:
    fmt = 3 if writer.ngff_version == "0.5" else 2
    store = make_store(writer.url, writer.storage_options, read_only=False)
    import zarr

    if keep:
        # mode "w" would delete every key under the group, the kept ones (a run's lock) too.
        # A new group gets ``attrs`` in its first metadata write (never a bigseg group without them).
        # Copies: zarr keeps the dict it is given, and ``put`` clears the group's dict before filling it.
        group = zarr.open_group(store, mode="a", zarr_format=fmt, attributes=copy.deepcopy(attrs))  # type: ignore[arg-type]
        group.attrs.put(copy.deepcopy(attrs))
    else:
        group = zarr.open_group(store, mode="w", zarr_format=fmt, attributes=attrs)  # type: ignore[arg-type]
    dims = (("c",) if writer.has_channel else ()) + ("z", "y", "x")
    for level, path in enumerate(writer.paths):
        kwargs: dict[str, Any] = {
            "shape": writer.level_shapes[level],
            "chunks": writer.chunk_shapes[level],
            "dtype": writer.dtype,
            "fill_value": 0,
        }
        if fmt == 3:
            kwargs.update(shards=writer.shard_shapes[level], dimension_names=dims)
        else:
            kwargs.update(
                compressors=numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
                chunk_key_encoding={"name": "v2", "separator": "/"},
            )
        group.create_array(path, overwrite=True, **kwargs)
    forget_handles(writer.url)


def describe_image(
    url: str | os.PathLike[str],
    *,
    shape: Sequence[int],
    dtype: Any,
    voxel_size: Sequence[float],
    chunk_shape: int | Sequence[int],
    n_levels: int = 1,
    downscale: Sequence[int] | Sequence[Sequence[int]] | None = None,
    ngff_version: NgffVersion = "0.5",
    channel_names: Sequence[str] | None = None,
    shard_shape: int | Sequence[int] | None = None,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ImageWriter:
    """The :class:`ImageWriter` :func:`create_image` would return, without creating anything.

    For the geometry of an image that is not written (labels beside an
    existing image, or a labels-only output); arguments as for :func:`create_image`.
    """
    url = normalize_url(url)
    if ngff_version not in ("0.4", "0.5"):
        raise InputError(f"`ngff_version` must be '0.5' or '0.4', got {ngff_version!r}")
    full = parse_shape(shape, name="shape", ndim=4 if channel_names is not None else 3)
    lead = full[:-3]
    if channel_names is not None:
        channel_names = tuple(str(c) for c in channel_names)
        if len(channel_names) != full[0]:
            raise InputError(f"{len(channel_names)} `channel_names` given for {full[0]} channels (shape {full})")
    if not isinstance(n_levels, int) or n_levels < 1:
        raise InputError(f"`n_levels` must be an int >= 1, got {n_levels!r}")
    if shard_shape is not None and ngff_version == "0.4":
        raise InputError("`shard_shape` needs ngff_version='0.5' (zarr v3); OME-Zarr 0.4 (zarr v2) has no shards")
    vs = parse_voxel_size(voxel_size)
    factors = parse_factors(downscale, vs, n_levels)
    spatial = pyramid_shapes(full[-3:], factors)
    chunk, shard = _parse_chunks(chunk_shape, shard_shape)
    chunks, shards = _level_layout(spatial, chunk, shard, lead)
    sizes = [vs]
    for f in factors:
        sizes.append(tuple(v * k for v, k in zip(sizes[-1], f)))  # type: ignore[arg-type]
    return ImageWriter(
        url=url,
        ngff_version=ngff_version,
        dtype=_parse_dtype(dtype),
        paths=tuple(str(i) for i in range(n_levels)),
        level_shapes=tuple(lead + s for s in spatial),
        chunk_shapes=chunks,
        shard_shapes=shards,
        voxel_sizes=tuple(sizes),  # type: ignore[arg-type]
        factors=factors,
        channel_names=channel_names,
        name=name or url.rstrip("/").rsplit("/", 1)[-1],
        storage_options=dict(storage_options) if storage_options else None,
    )


def create_image(
    url: str | os.PathLike[str],
    *,
    shape: Sequence[int],
    dtype: Any,
    voxel_size: Sequence[float],
    chunk_shape: int | Sequence[int],
    n_levels: int = 1,
    downscale: Sequence[int] | Sequence[Sequence[int]] | None = None,
    ngff_version: NgffVersion = "0.5",
    channel_names: Sequence[str] | None = None,
    shard_shape: int | Sequence[int] | None = None,
    overwrite: bool = False,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    keep: Sequence[str] = (),
    reopen: bool = False,
) -> ImageWriter:
    """Create an empty OME-Zarr image and return its writer.

    Parameters
    ----------
    url : str or path
        Local path, ``file://`` or fsspec URL of the image group.
    shape : (Z, Y, X) or (C, Z, Y, X) ints
        (C, Z, Y, X) only with ``channel_names``; channels are never downscaled
        and are stored in one chunk.
    dtype : numpy dtype
    voxel_size : (z, y, x) floats
        Level-0 voxel size in µm.
    chunk_shape : int or (Z, Y, X) ints
        Storage chunk, clipped to the shape.
    n_levels : int
        Resolution levels (1 = no pyramid).
    downscale : (z, y, x) ints, or one per level after the first, optional
        Default: 2 in y, x; 2 in z while z voxels are not > 2x the xy size.
    ngff_version : {"0.5", "0.4"}
        0.5 writes zarr v3 (zstd); 0.4 zarr v2 (Blosc zstd).
    channel_names : sequence of str, optional
    shard_shape : int or (Z, Y, X) ints, optional
        Shard shape (0.5 only), a multiple of ``chunk_shape``; writes must
        then align to shards.
    overwrite : bool
        Replace an existing zarr tree at ``url`` (never a non-zarr folder).
    name : str, optional
        Name in the multiscales metadata (default: the folder name).
    storage_options : dict, optional
        Passed to fsspec.
    attrs : dict, optional
        More ``bigseg`` attributes written at creation and kept by ``finalize``
        (a run's fingerprint).
    keep : sequence of str
        Names at the root of ``url`` that may exist and are left alone (a run's lock).
    reopen : bool
        Return the writer of an image an earlier call with the same arguments
        created, without touching storage (a resumed run).

    Raises
    ------
    OutputExistsError
        ``url`` exists and ``overwrite`` is False.
    InputError
        Invalid shapes, dtype, voxel size or version.
    """
    writer = describe_image(
        url, shape=shape, dtype=dtype, voxel_size=voxel_size, chunk_shape=chunk_shape, n_levels=n_levels,
        downscale=downscale, ngff_version=ngff_version, channel_names=channel_names, shard_shape=shard_shape,
        name=name, storage_options=storage_options,
    )
    url = writer.url
    chunk, shard = writer.chunk_shapes[0][-3:], writer.shard_shapes[0]
    if reopen:
        return writer
    _prepare_path(url, storage_options, overwrite, keep)
    _create_arrays(writer, {"bigseg": {**dict(attrs or {}), "complete": False}}, keep)
    log.info("created %s: levels %s, chunks %s, shards %s", url, writer.level_shapes, chunk, shard)
    return writer


def create_labels(
    parent: ImageWriter,
    name: str,
    *,
    dtype: Any = "uint32",
    chunk_shape: int | Sequence[int] | None = None,
    shard_shape: int | Sequence[int] | None = None,
    overwrite: bool = False,
    source: str | None = "../../",
    attrs: Mapping[str, Any] | None = None,
    reopen: bool = False,
) -> ImageWriter:
    """Create the label image ``<parent>/labels/<name>`` and return its writer.

    ``parent`` may be an existing image (labels written into it) or only a
    description (:func:`describe_image`) of one. ``source`` is recorded as
    the ``image-label`` source (the image's path, relative to the label image):
    by default ``parent`` itself, two groups up; None records none.

    Same (Z, Y, X) shape, voxel size, number of levels and downscale factors
    as ``parent``; no channel axis. ``chunk_shape`` and ``shard_shape``
    default to the parent's. It is listed in ``labels`` at :meth:`finalize`.
    ``attrs`` and ``reopen`` as for :func:`create_image`.
    """
    if not isinstance(parent, ImageWriter):
        raise InputError(f"`parent` must be an ImageWriter from create_image, got {type(parent).__name__}")
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise InputError(f"label `name` must be letters, digits, '_', '-' or '.', got {name!r}")
    if chunk_shape is None:
        chunk_shape = parent.chunk_shapes[0][-3:]
        if shard_shape is None and parent.shard_shapes[0] is not None:
            shard_shape = parent.shard_shapes[0][-3:]
    if shard_shape is not None and parent.ngff_version == "0.4":
        raise InputError("`shard_shape` needs an OME-Zarr 0.5 parent; the parent is 0.4 (zarr v2)")
    chunk, shard = _parse_chunks(chunk_shape, shard_shape)
    spatial = tuple(s[-3:] for s in parent.level_shapes)
    chunks, shards = _level_layout(spatial, chunk, shard, ())
    labels_url = join_url(parent.url, "labels")
    writer = ImageWriter(
        url=join_url(labels_url, name),
        ngff_version=parent.ngff_version,
        dtype=_parse_dtype(dtype),
        paths=parent.paths,
        level_shapes=spatial,
        chunk_shapes=chunks,
        shard_shapes=shards,
        voxel_sizes=parent.voxel_sizes,
        factors=parent.factors,
        name=name,
        is_labels=True,
        label_source=source,
        storage_options=parent.storage_options,
    )
    if reopen:
        return writer
    _ensure_labels_group(labels_url, parent)
    _prepare_path(writer.url, parent.storage_options, overwrite, ())
    _create_arrays(writer, {"bigseg": {**dict(attrs or {}), "complete": False}})
    return writer


def create_group(
    url: str | os.PathLike[str], *, ngff_version: NgffVersion, attributes: Mapping[str, Any],
    overwrite: bool = False, storage_options: Mapping[str, Any] | None = None, keep: Sequence[str] = (),
) -> str:
    """Create an empty zarr group (v3 for OME-Zarr 0.5, v2 for 0.4) with ``attributes``; returns its URL.

    ``keep``: names at its root that may exist and are left alone (a run's lock).
    """
    import zarr

    url = normalize_url(url)
    _prepare_path(url, storage_options, overwrite, keep)
    store = make_store(url, storage_options, read_only=False)
    group = zarr.open_group(store, mode="a" if keep else "w", zarr_format=3 if ngff_version == "0.5" else 2,  # type: ignore[arg-type]
                            attributes=copy.deepcopy(dict(attributes)))
    if keep:
        group.attrs.put(copy.deepcopy(dict(attributes)))
    return url


def _ensure_labels_group(labels_url: str, parent: ImageWriter) -> None:
    import zarr

    fmt = 3 if parent.ngff_version == "0.5" else 2
    store = make_store(labels_url, parent.storage_options, read_only=False)
    try:
        zarr.open_group(store, mode="r")  # type: ignore[arg-type]
    except FileNotFoundError:
        zarr.open_group(store, mode="w", zarr_format=fmt)  # type: ignore[arg-type]


def is_complete(url: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None) -> bool:
    """True if ``url`` is a bigseg output whose ``finalize`` has run."""
    url = normalize_url(url)
    try:
        group = open_group(url, storage_options, mode="r")
    except (FileNotFoundError, OSError, ValueError):
        return False
    meta = dict(group.attrs).get("bigseg")
    return isinstance(meta, Mapping) and meta.get("complete") is True


def open_writer(url: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None) -> ImageWriter:
    """The :class:`ImageWriter` of an existing OME-Zarr image (e.g. to add labels to a finished output).

    Raises
    ------
    InputError
        ``url`` is not an OME-Zarr image with ``multiscales`` metadata.
    """
    url = normalize_url(url)
    try:
        group = open_group(url, storage_options, mode="r")
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise InputError(f"{url!r} is not an OME-Zarr image ({exc})") from None
    attrs = dict(group.attrs)
    body, version = ngff_body(attrs)
    ms = parse_multiscale(body, version)
    if ms.version not in ("0.4", "0.5"):
        raise InputError(f"{url!r} is OME-Zarr {ms.version}; only 0.4 and 0.5 outputs can be opened for writing")
    arrays = [open_array(join_url(url, p), storage_options, mode="r") for p in ms.paths]
    shapes = tuple(tuple(int(s) for s in a.shape) for a in arrays)
    spatial = [s[-3:] for s in shapes]
    factors = tuple(
        tuple(max(1, round(a / b)) for a, b in zip(hi, lo)) for hi, lo in zip(spatial[:-1], spatial[1:])
    )
    sizes = tuple(v if v is not None else (1.0, 1.0, 1.0) for v in ms.voxel_sizes)
    raw = attrs.get("bigseg")
    bigseg_attrs: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    channels = bigseg_attrs.get("channel_names") if len(shapes[0]) == 4 else None
    return ImageWriter(
        url=url,
        ngff_version=ms.version,  # type: ignore[arg-type]
        dtype=str(arrays[0].dtype),
        paths=ms.paths,
        level_shapes=shapes,
        chunk_shapes=tuple(tuple(int(c) for c in a.chunks) for a in arrays),
        shard_shapes=tuple(tuple(int(c) for c in a.shards) if getattr(a, "shards", None) else None for a in arrays),
        voxel_sizes=sizes,  # type: ignore[arg-type]
        factors=factors,  # type: ignore[arg-type]
        channel_names=tuple(channels) if channels else None,
        name=url.rstrip("/").rsplit("/", 1)[-1],
        is_labels="image-label" in body,
        storage_options=dict(storage_options) if storage_options else None,
    )
