"""OME-NGFF (OME-Zarr) metadata: build it for writing, parse it for reading.

Version 0.5 keeps everything under ``attributes["ome"]`` of a zarr v3 group
(``zarr.json``) with ``"version": "0.5"`` there; version 0.4 keeps
``multiscales`` (with ``"version": "0.4"`` inside) in the ``.zattrs`` of a
zarr v2 group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

from bigseg.errors import InputError

__all__ = [
    "LABEL_COLORS_MAX",
    "Multiscale",
    "NgffVersion",
    "image_label_attrs",
    "labels_group_attrs",
    "multiscales_attrs",
    "ome_attrs",
    "parse_multiscale",
]

NgffVersion = Literal["0.4", "0.5"]

# Factor that converts a length in the unit to micrometers.
_UNIT_TO_UM: dict[str, float] = {
    "angstrom": 1e-4,
    "nanometer": 1e-3,
    "nm": 1e-3,
    "micrometer": 1.0,
    "micron": 1.0,
    "um": 1.0,
    "µm": 1.0,
    "\u03bcm": 1.0,
    "millimeter": 1e3,
    "mm": 1e3,
    "centimeter": 1e4,
    "cm": 1e4,
    "meter": 1e6,
    "m": 1e6,
}


def unit_to_um(unit: str | None) -> float:
    """Micrometers per ``unit``; a missing unit is taken as micrometers."""
    if unit is None or unit == "":
        return 1.0
    key = str(unit).strip().lower()
    if key not in _UNIT_TO_UM:
        raise InputError(
            f"unsupported spatial unit {unit!r}; expected one of {sorted(set(_UNIT_TO_UM))} "
            "or pass voxel_size=(z, y, x) in µm (CLI: --voxel-size Z Y X)"
        )
    return _UNIT_TO_UM[key]


# ---------------------------------------------------------------- writing


def multiscales_attrs(
    *,
    paths: Sequence[str],
    voxel_sizes: Sequence[Sequence[float]],
    has_channel: bool,
    name: str,
    version: NgffVersion,
) -> dict[str, Any]:
    """One ``multiscales`` entry: axes (c?, z, y, x) in micrometers, and per level a ``scale``
    (its voxel size) then, for downscaled levels, a ``translation``.

    NGFF places a voxel's coordinate at its centre. A level-``k`` voxel averages ``f`` level-0
    voxels per axis (``f`` = its voxel size / the level-0 one), so its centre lies
    ``(f - 1) / 2`` level-0 voxels from the first one: that offset, in µm, is the translation
    that keeps every level on top of level 0 in a viewer.
    """
    axes: list[dict[str, str]] = [{"name": "c", "type": "channel"}] if has_channel else []
    axes += [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    lead = [1.0] if has_channel else []
    base = [float(v) for v in voxel_sizes[0]]
    datasets = []
    for p, vs in zip(paths, voxel_sizes):
        size = [float(v) for v in vs]
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": lead + size}]
        shift = [(s - b) / 2 for s, b in zip(size, base)]
        if any(shift):
            transforms.append({"type": "translation", "translation": [0.0] * len(lead) + shift})
        datasets.append({"path": p, "coordinateTransformations": transforms})
    ms: dict[str, Any] = {"name": name, "axes": axes, "datasets": datasets}
    if version == "0.4":
        ms = {"version": "0.4", **ms}
    return ms


def ome_attrs(version: NgffVersion, body: Mapping[str, Any]) -> dict[str, Any]:
    """Wrap NGFF keys for ``version``: under ``"ome"`` for 0.5, at top level for 0.4."""
    if version == "0.5":
        return {"ome": {"version": "0.5", **body}}
    return dict(body)


def labels_group_attrs(version: NgffVersion, names: Sequence[str]) -> dict[str, Any]:
    """Attributes of the ``labels`` group listing its label images."""
    return ome_attrs(version, {"labels": list(names)})


# A viewer-ready colour per label is listed only up to this many labels: beyond it the list
# would grow with the number of nuclei (megabytes of JSON for a whole brain) and viewers pick
# their own colours for labels without one anyway.
LABEL_COLORS_MAX = 255


def _label_colors(n_labels: int) -> list[dict[str, Any]]:
    """Background transparent; label ``i`` an opaque hue stepped by the golden angle, so that
    neighbouring IDs (often neighbouring nuclei) get clearly different colours."""
    import colorsys

    colors: list[dict[str, Any]] = [{"label-value": 0, "rgba": [0, 0, 0, 0]}]
    for i in range(1, n_labels + 1):
        r, g, b = colorsys.hsv_to_rgb((i * 0.381966) % 1.0, 0.75, 1.0)
        colors.append({"label-value": i, "rgba": [round(r * 255), round(g * 255), round(b * 255), 255]})
    return colors


def image_label_attrs(version: NgffVersion, source: str | None = None, n_labels: int | None = None) -> dict[str, Any]:
    """The ``image-label`` entry of a label image.

    ``version``; ``source.image``, the path of the image the labels belong to relative to the
    label image (``"../../"`` for ``<image>/labels/<name>``; viewers use it to find that image),
    when given; ``colors`` when ``n_labels`` (IDs 1..n) is known and at most
    :data:`LABEL_COLORS_MAX`, else no colours.
    """
    entry: dict[str, Any] = {"version": version}
    if source is not None:
        entry["source"] = {"image": source}
    if n_labels is not None and 0 <= n_labels <= LABEL_COLORS_MAX:
        entry["colors"] = _label_colors(n_labels)
    return entry


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Multiscale:
    """What bigseg needs from one ``multiscales`` entry.

    Attributes
    ----------
    version : str or None
    axes : tuple of (name, type)
        Lower-case axis names and types (``""`` where the type is missing).
    paths : tuple of str
        Array paths, finest level first.
    voxel_sizes : tuple of (z, y, x) floats
        Per level, in µm (dataset scale times the multiscale-level scale).
    """

    version: str | None
    axes: tuple[tuple[str, str], ...]
    paths: tuple[str, ...]
    voxel_sizes: tuple[tuple[float, float, float] | None, ...]


def ngff_body(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The NGFF keys of a group's attributes and the version they declare."""
    if isinstance(attrs.get("ome"), Mapping):
        ome = dict(attrs["ome"])
        return ome, str(ome.get("version")) if ome.get("version") is not None else "0.5"
    body = dict(attrs)
    ms = body.get("multiscales")
    version = None
    if isinstance(ms, list) and ms and isinstance(ms[0], Mapping):
        version = ms[0].get("version")
    return body, str(version) if version is not None else None


def _parse_axes(raw: Any, ndim_hint: int | None) -> tuple[tuple[str, str], ...]:
    if raw is None:
        if ndim_hint is None:
            raise InputError("OME-Zarr multiscales has no `axes` and the array rank is unknown")
        return tuple((a, "") for a in "tczyx"[-ndim_hint:])
    out = []
    for a in raw:
        if isinstance(a, str):  # NGFF 0.3: plain names
            out.append((a.lower(), ""))
        else:
            out.append((str(a.get("name", "")).lower(), str(a.get("type", "") or "").lower()))
    return tuple(out)


def _scale_of(transforms: Any, ndim: int) -> list[float]:
    scale = [1.0] * ndim
    for t in transforms or []:
        if isinstance(t, Mapping) and t.get("type") == "scale":
            values = t.get("scale")
            if not isinstance(values, list) or len(values) != ndim:
                raise InputError(f"coordinateTransformations scale {values!r} does not match {ndim} axes")
            scale = [a * float(b) for a, b in zip(scale, values)]
    return scale


def parse_multiscale(body: Mapping[str, Any], version: str | None, *, ndim_hint: int | None = None) -> Multiscale:
    """Parse the first ``multiscales`` entry of NGFF attributes ``body``."""
    ms_list = body.get("multiscales")
    if not isinstance(ms_list, list) or not ms_list:
        raise InputError("OME-Zarr group has no `multiscales` entry")
    ms = ms_list[0]
    axes = _parse_axes(ms.get("axes"), ndim_hint)
    datasets = ms.get("datasets") or []
    if not datasets:
        raise InputError("OME-Zarr multiscales lists no datasets (resolution levels)")
    spatial = [i for i, (name, kind) in enumerate(axes) if kind == "space" or (not kind and name in ("z", "y", "x"))]
    units = [
        unit_to_um(raw.get("unit")) if isinstance(raw, Mapping) else 1.0
        for raw in (ms.get("axes") or [None] * len(axes))
    ]
    outer = _scale_of(ms.get("coordinateTransformations"), len(axes))
    sizes: list[tuple[float, float, float] | None] = []
    for ds in datasets:
        scale = _scale_of(ds.get("coordinateTransformations"), len(axes))
        if len(spatial) != 3 or all(
            t.get("type") != "scale" for t in ds.get("coordinateTransformations") or [] if isinstance(t, Mapping)
        ):
            sizes.append(None)
            continue
        vs = tuple(scale[i] * outer[i] * units[i] for i in spatial)
        sizes.append(vs if all(math.isfinite(v) and v > 0 for v in vs) else None)  # type: ignore[arg-type]
    return Multiscale(
        version=version,
        axes=axes,
        paths=tuple(str(ds["path"]) for ds in datasets),
        voxel_sizes=tuple(sizes),
    )
