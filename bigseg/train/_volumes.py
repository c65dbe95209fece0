"""Labelled volumes from files, normalised and brought to the model's scale."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from bigseg.errors import InputError, VolumeNotFoundError
from bigseg.predict._scale import ScaleMap
from bigseg.train._config import LabelledPair
from bigseg.train._data import LabelledVolume

__all__ = ["load_pair", "read_array", "resample_labels"]

logger = logging.getLogger(__name__)


def read_array(
    path: str, voxel_size: tuple[float, float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """A 3D array and its voxel size (µm) if the file states one.

    TIFF through tifffile (voxel size from a ``meta.json`` beside it, if any);
    zarr / OME-Zarr through :func:`bigseg.io.open_volume` (``voxel_size``, µm,
    stands in where the file records none).
    """
    p = Path(path)
    if not p.exists() and "://" not in path:
        raise VolumeNotFoundError(f"{path!r} does not exist; pass an existing TIFF or zarr path")
    if p.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        arr = tifffile.imread(p)
        return np.squeeze(arr), voxel_size or _meta_voxel_size(p)
    from bigseg.io import open_volume

    vol = open_volume(path, voxel_size=voxel_size)
    vs = vol.voxel_size
    return np.asarray(vol.read_level(0)), (None if vs is None else (float(vs[0]), float(vs[1]), float(vs[2])))


def _meta_voxel_size(tif: Path) -> tuple[float, float, float] | None:
    """Voxel size from a ``meta.json`` beside the TIFF (the layout of bigseg's test data)."""
    meta = tif.parent / "meta.json"
    if meta.is_file():
        vs = json.loads(meta.read_text()).get("voxel_size_um")
        if vs is not None:
            return tuple(float(v) for v in vs)  # type: ignore[return-value]
    return None


def resample_labels(labels: np.ndarray, scale: ScaleMap) -> np.ndarray:
    """Nearest-neighbour resampling of labels onto the model grid (global, origin 0)."""
    out = labels
    _, n = scale.model_range((0, 0, 0), labels.shape)
    for ax, st in enumerate(scale.step):
        idx = np.clip(np.rint(np.arange(n[ax]) * st).astype(np.intp), 0, labels.shape[ax] - 1)
        out = np.take(out, idx, axis=ax)
    return out


def load_pair(
    pair: LabelledPair,
    *,
    model_voxel_size: tuple[float, float, float],
    model_diameter: float,
    percentiles: tuple[float, float] = (1.0, 99.8),
) -> LabelledVolume:
    """Read, normalise (whole-volume percentiles) and rescale one labelled pair."""
    image, vs = read_array(pair.image, pair.voxel_size)
    labels, _ = read_array(pair.labels, pair.voxel_size or vs)
    if image.shape != labels.shape or image.ndim != 3:
        raise InputError(
            f"image {pair.image!r} (shape {image.shape}) and labels {pair.labels!r} (shape {labels.shape}) "
            "must be 3D volumes of the same shape"
        )
    voxel_size = pair.voxel_size or vs
    if voxel_size is None:
        raise InputError(f"{pair.image!r} states no voxel size; pass one (CLI: --voxel-size Z Y X)")
    lo, hi = np.percentile(image, percentiles)
    norm = ((image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)
    scale = ScaleMap.between(voxel_size, model_voxel_size, data_diameter=pair.diameter_um, model_diameter=model_diameter)
    small = scale.to_model(norm)
    lab = resample_labels(labels.astype(np.uint32), scale)
    logger.info("training pair %s: %s -> %s at the model's scale", pair.image, image.shape, small.shape)
    return LabelledVolume(small, lab, name=pair.image)
