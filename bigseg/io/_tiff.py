"""TIFF input through tifffile: axes, voxel size and lazy zarr views.

Each level is read through ``series.aszarr(level=...)``, a read-only zarr
store over the file that decodes only the pages/tiles a read touches. The
file is opened once per process and kept open (read-only), keyed by its
identity as well as its URL (:func:`~bigseg.io._store.file_identity`): a file written anew at the
same path (an export re-run in the same notebook) is opened anew, not read
through the old handle.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Mapping

import zarr

from bigseg.errors import InputError
from bigseg.io._ngff import unit_to_um
from bigseg.io._store import FileIdentity, file_identity, freeze_options, get_fs, is_local

__all__ = ["TiffInfo", "inspect_tiff", "open_tiff_level"]

log = logging.getLogger(__name__)

_OPEN: dict[tuple[str, Any], tuple[FileIdentity, Any]] = {}
_ARRAYS: dict[tuple[str, Any, FileIdentity, int, int], Any] = {}
_LOCK = threading.RLock()

# tifffile axis codes -> bigseg axes; "Q"/"I" (unknown, sequence) become z when there is no Z.
_AXES = {"Z": "z", "Y": "y", "X": "x", "C": "c", "S": "c", "T": "t"}


@dataclass(frozen=True, slots=True)
class TiffInfo:
    """What :func:`open_volume` needs from a TIFF file (one series)."""

    axes: str
    level_shapes: tuple[tuple[int, ...], ...]
    level_chunks: tuple[tuple[int, ...], ...]
    dtype: str
    voxel_size: tuple[float, float, float] | None
    identity: FileIdentity | None = None


def _tiff_file(
    url: str, storage_options: Mapping[str, Any] | None, identity: FileIdentity | None = None,
) -> tuple[FileIdentity, Any]:
    """The open TIFF at ``url`` as it was when ``identity`` was taken (``None``: as it is now), and that
    identity; a handle to an older file there is closed.

    The file's identity is looked at once: to take it (``identity`` None), or to check a given one
    before opening the file (not when a handle to that same identity is already open).
    """
    import tifffile

    key = (url, freeze_options(storage_options))
    with _LOCK:
        held = _OPEN.get(key)
        if identity is None:
            identity = file_identity(url, storage_options)
        elif (held is None or held[0] != identity) and file_identity(url, storage_options) != identity:
            raise InputError(
                f"TIFF {url!r} was written anew since it was opened (size or modification time changed); "
                "open it again (a run started on the old file cannot continue on the new one)")
        if held is not None and held[0] == identity:
            return identity, held[1]
        if held is not None:
            held[1].close()
            for old in [k for k in _ARRAYS if k[:2] == key]:
                del _ARRAYS[old]
        if is_local(url):
            tif = tifffile.TiffFile(url)
        else:
            fs, path = get_fs(url, storage_options)
            tif = tifffile.TiffFile(fs.open(path, "rb"), name=path.rsplit("/", 1)[-1])
        _OPEN[key] = (identity, tif)
        return identity, tif


def open_tiff_level(
    url: str, series: int, level: int, storage_options: Mapping[str, Any] | None = None,
    identity: FileIdentity | None = None,
) -> Any:
    """A read-only zarr array over ``level`` of ``series`` of the TIFF at ``url``, as the file was when
    ``identity`` (:func:`~bigseg.io._store.file_identity`; default: taken now) was taken."""
    if identity is None:
        identity = file_identity(url, storage_options)
    key = (url, freeze_options(storage_options), identity, series, level)
    arr = _ARRAYS.get(key)
    if arr is None:
        _, tif = _tiff_file(url, storage_options, identity)
        with _LOCK:
            store = tif.series[series].aszarr(level=level, lock=_LOCK)
            arr = zarr.open_array(store, mode="r")
            _ARRAYS[key] = arr
    return arr


def _map_axes(codes: str) -> str:
    out = [_AXES.get(c, "?") for c in codes.upper()]
    if "z" not in out:
        for i, c in enumerate(codes.upper()):
            if c in "QI" and out[i] == "?":
                out[i] = "z"
                break
    return "".join(out)


def inspect_tiff(url: str, storage_options: Mapping[str, Any] | None = None, series: int = 0) -> TiffInfo:
    """Axes, per-level shapes/chunks, dtype, (if recorded) voxel size in µm, and the file's identity."""
    identity, tif = _tiff_file(url, storage_options)  # one look at the file's identity per open
    if not 0 <= series < len(tif.series):
        raise InputError(f"TIFF {url!r} has {len(tif.series)} series, got series={series}")
    s = tif.series[series]
    shapes, chunks = [], []
    for level in range(len(s.levels)):
        arr = open_tiff_level(url, series, level, storage_options, identity)
        shapes.append(tuple(int(v) for v in arr.shape))
        chunks.append(tuple(int(v) for v in arr.chunks))
    return TiffInfo(
        axes=_map_axes(s.axes),
        level_shapes=tuple(shapes),
        level_chunks=tuple(chunks),
        dtype=str(s.dtype),
        voxel_size=_ome_voxel_size(tif, series) or _imagej_voxel_size(tif),
        identity=identity,
    )


def _ome_voxel_size(tif: Any, series: int) -> tuple[float, float, float] | None:
    if not tif.is_ome or not tif.ome_metadata:
        return None
    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return None
    pixels = [el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"]
    if len(pixels) <= series:
        return None
    attrs = pixels[series].attrib
    try:
        sizes = [float(attrs[f"PhysicalSize{a}"]) for a in "ZYX"]
    except (KeyError, ValueError):
        return None
    try:
        scales = [unit_to_um(attrs.get(f"PhysicalSize{a}Unit", "µm")) for a in "ZYX"]
    except InputError as exc:
        log.warning("TIFF %s: OME physical-size unit not understood (%s); voxel size not taken from it",
                    tif.filename, exc)
        return None
    return tuple(s * f for s, f in zip(sizes, scales))  # type: ignore[return-value]


def _imagej_voxel_size(tif: Any) -> tuple[float, float, float] | None:
    meta = tif.imagej_metadata if tif.is_imagej else None
    if not meta or "spacing" not in meta:
        return None
    unit = str(meta.get("unit", "micron")).replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    try:
        scale = unit_to_um({"microns": "micron"}.get(unit, unit))
    except InputError:
        log.warning("TIFF %s: ImageJ unit %r not understood; voxel size not taken from it", tif.filename, unit)
        return None
    tags = tif.pages[0].tags
    sizes = []
    for name in ("YResolution", "XResolution"):
        tag = tags.get(name)
        num, den = tag.value if tag is not None else (1, 1)
        if not num:
            return None
        sizes.append(den / num * scale)
    return (float(meta["spacing"]) * scale, sizes[0], sizes[1])
