"""``open_volume``: find the image behind a URL and describe it as a :class:`Volume`.

Accepted, in the order tried:

1. a ``.tif``/``.tiff`` file (ImageJ or OME-TIFF voxel sizes are used);
2. an OME-Zarr image group, 0.4 (``.zattrs``) or 0.5 (``zarr.json``
   ``attributes["ome"]``), or a bioformats2raw root (image ``0``);
3. a plain zarr array (v2 or v3): 3D = zyx, 4D = czyx, 5D = tczyx, or the
   v3 ``dimension_names``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Sequence

import zarr

from bigseg.errors import InputError, MissingVoxelSizeError, VolumeNotFoundError
from bigseg.io._ngff import Multiscale, ngff_body, parse_multiscale
from bigseg.io._store import join_url, make_store, normalize_url, path_exists
from bigseg.io._tiff import inspect_tiff
from bigseg.io._volume import Size3, Volume
from bigseg.tiling import parse_voxel_size

__all__ = ["open_volume"]

log = logging.getLogger(__name__)

_TIFF_SUFFIXES = (".tif", ".tiff")
_EXPECTED = (
    "expected an OME-Zarr image (0.4 or 0.5), a bioformats2raw root, a zarr array, or a .tif/.tiff file"
)


def open_volume(
    url: str | os.PathLike[str],
    *,
    level: int = 0,
    channel: int | None = None,
    voxel_size: Sequence[float] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    series: int = 0,
) -> Volume:
    """Describe the 3D image at ``url`` as a lazily read :class:`Volume`.

    Parameters
    ----------
    url : str or path
        Local path, ``file://`` URL or fsspec URL (``s3://``, ``gs://``,
        ``https://``, ``memory://``) of an OME-Zarr root or image group, a
        zarr array, or a TIFF file.
    level : int
        Resolution level (0 = full resolution).
    channel : int, optional
        Required when the image has a channel axis of size > 1.
    voxel_size : (z, y, x) floats, optional
        µm at ``level``; overrides the metadata, required where there is none.
    storage_options : dict, optional
        Passed to fsspec.
    series : int
        TIFF series (ignored for zarr).

    Raises
    ------
    VolumeNotFoundError
        Nothing exists at ``url``.
    InputError
        Not a supported image, not 3D, channel or level out of range, or no
        voxel size known.
    """
    src = normalize_url(url)
    override = parse_voxel_size(voxel_size) if voxel_size is not None else None
    so = dict(storage_options) if storage_options else None
    if src.lower().endswith(_TIFF_SUFFIXES):
        if not path_exists(src, so):
            raise VolumeNotFoundError(f"input {src!r} does not exist")
        return _open_tiff(src, level, channel, override, so, series)
    node = _open_zarr_node(src, so)
    if isinstance(node, zarr.Array):
        return _open_plain_array(src, node, level, channel, override, so)
    return _open_ome_group(src, node, level, channel, override, so)


def _open_zarr_node(src: str, so: Mapping[str, Any] | None) -> Any:
    try:
        return zarr.open(make_store(src, so, read_only=True), mode="r")
    except (FileNotFoundError, KeyError, OSError, ValueError) as exc:
        if not path_exists(src, so):
            raise VolumeNotFoundError(f"input {src!r} does not exist") from exc
        raise InputError(f"{src!r} holds no zarr metadata: {_EXPECTED}") from exc


def _open_tiff(
    src: str, level: int, channel: int | None, override: Size3 | None, so: Mapping[str, Any] | None, series: int
) -> Volume:
    info = inspect_tiff(src, so, series)
    fixed = _reduce_axes(info.axes, info.level_shapes[0], channel, src)
    shapes = tuple(_spatial(s, fixed) for s in info.level_shapes)
    chunks = tuple(_spatial(c, fixed) for c in info.level_chunks)
    meta: list[Size3 | None] = [info.voxel_size] + [None] * (len(shapes) - 1)
    sizes = _level_voxel_sizes(meta, shapes, _check_level(level, len(shapes), src), override, src)
    return Volume(
        source=src, kind="tiff", level_urls=(src,) * len(shapes), axes=info.axes, fixed=fixed,
        level_shapes=shapes, level_voxel_sizes=sizes, level=level, channel=channel, dtype=info.dtype,
        chunk_shape=chunks[level], level_chunk_shapes=chunks, tiff_series=series, storage_options=dict(so or {}) or None,
        tiff_identity=info.identity,
    )  # fmt: skip


def _open_plain_array(
    src: str, arr: Any, level: int, channel: int | None, override: Size3 | None, so: Mapping[str, Any] | None
) -> Volume:
    names = getattr(arr.metadata, "dimension_names", None)
    if names and all(isinstance(n, str) and n.lower() in "tczyx" for n in names) and len(set(names)) == len(names):
        axes = "".join(n.lower() for n in names)
    elif 2 <= arr.ndim <= 5:
        axes = "tczyx"[-arr.ndim :]
    else:
        axes = "?" * arr.ndim
    fixed = _reduce_axes(axes, arr.shape, channel, src)
    _check_level(level, 1, src)
    meta, version = _parent_voxel_size(src, so)
    shape = _spatial(arr.shape, fixed)
    sizes = _level_voxel_sizes([meta], (shape,), 0, override, src)
    chunk = _spatial(arr.chunks, fixed)
    return Volume(
        source=src, kind="zarr", level_urls=(src,), axes=axes, fixed=fixed, level_shapes=(shape,),
        level_voxel_sizes=sizes, level=0, channel=channel, dtype=str(arr.dtype), chunk_shape=chunk,
        level_chunk_shapes=(chunk,), ngff_version=version, storage_options=dict(so or {}) or None,
        metadata_urls=(_metadata_url(src, arr),),
    )  # fmt: skip


def _parent_voxel_size(src: str, so: Mapping[str, Any] | None) -> tuple[Size3 | None, str | None]:
    """Voxel size of an array opened directly inside an OME-Zarr image, from its parent."""
    if "/" not in src.rstrip("/"):
        return None, None
    parent, name = src.rstrip("/").rsplit("/", 1)
    try:
        group = zarr.open_group(make_store(parent, so, read_only=True), mode="r")  # type: ignore[arg-type]
        ms = parse_multiscale(*ngff_body(dict(group.attrs)))
    except (FileNotFoundError, KeyError, OSError, ValueError):
        return None, None
    if name not in ms.paths:
        return None, None
    return ms.voxel_sizes[ms.paths.index(name)], ms.version


def _find_image_group(src: str, group: Any) -> tuple[str, Any, dict[str, Any], str | None]:
    """The OME image group at ``src``, following a bioformats2raw root to ``0``."""
    attrs = dict(group.attrs)
    body, version = ngff_body(attrs)
    if "multiscales" in body:
        return src, group, body, version
    if body.get("bioformats2raw.layout") is not None or attrs.get("bioformats2raw.layout") is not None:
        child_url = join_url(src, "0")
        try:
            child = group["0"]
        except KeyError:
            child = None
        if not isinstance(child, zarr.Group):
            raise InputError(f"bioformats2raw root {src!r} has no image group '0'")
        return _find_image_group(child_url, child)
    children = sorted(getattr(group, "group_keys", lambda: [])())
    hint = f" (it holds groups {children[:5]}; open one of them)" if children else ""
    raise InputError(f"{src!r} is a zarr group without OME `multiscales` metadata{hint}: {_EXPECTED}")


def _open_ome_group(
    src: str, group: Any, level: int, channel: int | None, override: Size3 | None, so: Mapping[str, Any] | None
) -> Volume:
    image_url, image, body, version = _find_image_group(src, group)
    try:
        ms: Multiscale = parse_multiscale(body, version)
    except InputError as exc:
        raise InputError(f"{image_url!r}: {exc}") from None
    arrays = []
    for path in ms.paths:
        try:
            arrays.append(image[path])
        except KeyError:
            raise InputError(f"OME-Zarr {image_url!r} lists level {path!r} but has no such array") from None
    axes = _ome_axes(ms, arrays[0].ndim, image_url)
    fixed = _reduce_axes(axes, arrays[0].shape, channel, image_url)
    shapes = tuple(_spatial(a.shape, fixed) for a in arrays)
    chunks = tuple(_spatial(a.chunks, fixed) for a in arrays)
    level = _check_level(level, len(arrays), image_url)
    sizes = _level_voxel_sizes(list(ms.voxel_sizes), shapes, level, override, image_url)
    level_urls = tuple(join_url(image_url, p) for p in ms.paths)
    return Volume(
        source=src, kind="zarr", level_urls=level_urls, axes=axes,
        fixed=fixed, level_shapes=shapes, level_voxel_sizes=sizes, level=level, channel=channel,
        dtype=str(arrays[0].dtype), chunk_shape=chunks[level], level_chunk_shapes=chunks,
        ngff_version=ms.version, storage_options=dict(so or {}) or None,
        metadata_urls=(_metadata_url(image_url, image), *map(_metadata_url, level_urls, arrays)),
    )  # fmt: skip


def _metadata_url(url: str, node: Any) -> str:
    """The document holding the metadata of the zarr array or group ``node`` at ``url``: ``zarr.json``
    (v3); for v2 an array's ``.zarray`` and a group's ``.zattrs`` (where OME-Zarr 0.4 keeps its own)."""
    if node.metadata.zarr_format == 3:
        return join_url(url, "zarr.json")
    return join_url(url, ".zarray" if isinstance(node, zarr.Array) else ".zattrs")


def _ome_axes(ms: Multiscale, ndim: int, url: str) -> str:
    if len(ms.axes) != ndim:
        raise InputError(f"OME-Zarr {url!r} declares {len(ms.axes)} axes {ms.axes} for {ndim}D arrays")
    out = []
    for name, kind in ms.axes:
        if kind == "space" or (not kind and name in ("z", "y", "x")):
            out.append(name if name in ("z", "y", "x") else "s")
        elif kind == "channel" or name == "c":
            out.append("c")
        elif kind == "time" or name == "t":
            out.append("t")
        else:
            out.append("?")
    return "".join(out)


def _reduce_axes(axes: str, shape: Sequence[int], channel: int | None, url: str) -> tuple[int | None, ...]:
    """Index per axis: ``None`` keeps a spatial axis, an int picks from any other."""
    shape = tuple(int(s) for s in shape)
    spatial = [i for i, a in enumerate(axes) if a in "zyxs"]
    if len(spatial) != 3:
        raise InputError(
            f"{url!r} is a {len(spatial)}D image (shape {shape}, axes {axes!r}); bigseg needs a 3D volume (z, y, x)"
        )
    fixed: list[int | None] = []
    for a, n in zip(axes, shape):
        if a in "zyxs":
            fixed.append(None)
        elif a == "c":
            fixed.append(_pick_channel(n, channel, shape, axes, url))
        elif n == 1:
            fixed.append(0)
        else:
            what = "time points" if a == "t" else f"entries on a non-spatial axis ({axes!r})"
            raise InputError(f"{url!r} has shape {shape} (axes {axes!r}) with {n} {what}; bigseg reads one 3D volume")
    if channel is not None and "c" not in axes and channel != 0:
        raise InputError(f"`channel={channel}` given but {url!r} (shape {shape}, axes {axes!r}) has no channel axis")
    return tuple(fixed)


def _pick_channel(n: int, channel: int | None, shape: tuple[int, ...], axes: str, url: str) -> int:
    if channel is None:
        if n == 1:
            return 0
        raise InputError(
            f"`channel` must be given for the multi-channel image {url!r} of shape {shape} (axes {axes!r}); "
            f"pass channel=0..{n - 1} (CLI: --channel)"
        )
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < n:
        raise InputError(f"`channel` must be 0..{n - 1} for {url!r} (shape {shape}, axes {axes!r}), got {channel!r}")
    return channel


def _spatial(values: Sequence[int], fixed: Sequence[int | None]) -> tuple[int, int, int]:
    return tuple(int(v) for v, f in zip(values, fixed) if f is None)  # type: ignore[return-value]


def _check_level(level: int, n: int, url: str) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < n:
        raise InputError(f"`level` must be 0..{n - 1}: {url!r} has {n} resolution level(s), got level={level!r}")
    return level


def _level_voxel_sizes(
    meta: list[Size3 | None], shapes: Sequence[tuple[int, int, int]], level: int, override: Size3 | None, url: str
) -> tuple[Size3, ...]:
    """µm per level: metadata, else scaled from the chosen level by the shape ratio."""
    ref = override or meta[level]
    if ref is None:
        raise MissingVoxelSizeError(
            f"no voxel size recorded in {url!r}; pass voxel_size=(z, y, x) in µm (CLI: --voxel-size Z Y X)"
        )
    if override is not None:
        meta = [None] * len(shapes)
    out = []
    for shape, vs in zip(shapes, meta):
        if vs is None:
            vs = tuple(r * a / b for r, a, b in zip(ref, shapes[level], shape))  # type: ignore[assignment]
        out.append(vs)
    out[level] = ref
    return tuple(out)  # type: ignore[arg-type]
