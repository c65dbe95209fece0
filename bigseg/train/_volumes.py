"""Labelled volumes from files, normalised and brought to the model's scale.

:func:`load_pair` opens an image and its labels lazily (OME-Zarr, zarr or
TIFF, local or fsspec) and returns a :class:`LazyLabelledVolume`: each
training patch reads only the data box under it (plus the resampling's
support), so memory grows with the patch, not the volume. Normalisation uses
whole-volume statistics, as the pipeline's does.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bigseg.errors import InputError, VolumeNotFoundError
from bigseg.predict import Normalization, ScaleMap, estimate_normalization
from bigseg.train._config import LabelledPair, UnlabelledImage

if TYPE_CHECKING:
    from bigseg.io import Volume

__all__ = ["LazyLabelledVolume", "load_pair", "resample_labels"]

logger = logging.getLogger(__name__)


def _meta_voxel_size(tif: Path) -> tuple[float, float, float] | None:
    """Voxel size from a ``meta.json`` beside the TIFF (the layout of bigseg's test data)."""
    meta = tif.parent / "meta.json"
    if meta.is_file():
        vs = json.loads(meta.read_text()).get("voxel_size_um")
        if vs is not None:
            return tuple(float(v) for v in vs)  # type: ignore[return-value]
    return None


def _nearest_labels(labels: np.ndarray, scale: ScaleMap, start: tuple[int, ...], stop: tuple[int, ...],
             offset: tuple[int, ...], extent: tuple[int, ...]) -> np.ndarray:
    """Model voxels ``start .. stop - 1`` of ``labels`` (a box at data ``offset`` of a volume of
    ``extent`` voxels), nearest neighbour: model voxel ``k`` takes data voxel ``round(k * step)``."""
    out = labels
    for ax, (a, b, st) in enumerate(zip(start, stop, scale.step)):
        idx = np.clip(np.rint(np.arange(a, b) * st).astype(np.intp), 0, extent[ax] - 1) - offset[ax]
        out = np.take(out, idx, axis=ax)
    return out


def resample_labels(labels: np.ndarray, scale: ScaleMap) -> np.ndarray:
    """Nearest-neighbour resampling of labels onto the model grid (global, origin 0)."""
    _, n = scale.model_range((0, 0, 0), labels.shape)
    return _nearest_labels(labels, scale, (0, 0, 0), n, (0, 0, 0), labels.shape)


@dataclass(frozen=True)
class LazyLabelledVolume:
    """An image and its labels on disk, cut into model-scale patches on demand.

    Model voxel ``k`` sits at data coordinate ``k * scale.step`` (the
    pipeline's global grid). A patch reads the data box holding its model
    voxels, widened by the anti-aliasing blur's reach and one voxel for the
    linear interpolation, so it equals the same crop of the whole volume
    resampled at once (to float rounding).
    """

    image: Volume
    labels: Volume | None
    normalization: Normalization
    scale: ScaleMap
    name: str = ""

    def __post_init__(self) -> None:
        if self.labels is not None and self.image.shape != self.labels.shape:
            raise InputError(
                f"image {self.name!r} (shape {self.image.shape}) and its labels (shape {self.labels.shape}) "
                "must be 3D volumes of the same shape"
            )

    @property
    def threshold(self) -> float:
        """The whole volume's Otsu level on the normalised scale (from the normalisation's statistics)."""
        return self.normalization.threshold

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """Extent of the volume in model voxels."""
        return self.scale.model_range((0, 0, 0), self.image.shape)[1]  # type: ignore[return-value]

    def patch(self, start: tuple[int, ...], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Model voxels ``start .. start + shape - 1`` (zero beyond the volume) of image and labels."""
        from bigseg.tiling import Roi

        n_model = self.model_shape
        stop = [min(a + s, n) for a, s, n in zip(start, shape, n_model)]
        lo, hi = [], []
        for a, b, st, n in zip(start, stop, self.scale.step, self.image.shape):
            reach = math.ceil(3 * (st - 1) / 2) + 1 if st > 1 else 1
            lo.append(max(0, math.floor(a * st) - reach))
            hi.append(min(n, math.ceil((b - 1) * st) + 1 + reach))
        roi = Roi(tuple(lo), tuple(h - l for l, h in zip(lo, hi)))
        small = self.scale.to_model(self.normalization.apply(self.image.read(roi)), offset=roi.offset)
        k0, _ = self.scale.model_range(roi.offset, roi.shape)
        inner = tuple(slice(a - k, b - k) for a, b, k in zip(start, stop, k0))
        out_labels = np.zeros(shape, np.uint32)
        got = tuple(slice(0, b - a) for a, b in zip(start, stop))
        if self.labels is not None:  # None: an unlabelled image (self-supervised training)
            out_labels[got] = _nearest_labels(np.asarray(self.labels.read(roi)), self.scale, start, tuple(stop),
                                              roi.offset, self.image.shape)
        image = np.zeros(shape, np.float32)
        image[got] = small[inner]
        return image, out_labels

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """A random ``shape`` patch, uniform over the volume (zero-padded where it is smaller)."""
        start = tuple(int(rng.integers(0, max(n - s, 0) + 1)) for n, s in zip(self.model_shape, shape))
        return self.patch(start, shape)


def load_pair(
    pair: LabelledPair,
    *,
    model_voxel_size: tuple[float, float, float],
    model_diameter: float,
    percentiles: tuple[float, float] = (1.0, 99.8),
) -> LazyLabelledVolume:
    """Open one labelled pair for patch reads at the model's scale.

    The voxel size comes from ``pair.voxel_size``, else the image's metadata,
    else a ``meta.json`` beside a TIFF.
    """
    from bigseg.io import open_volume

    for path in (pair.image, pair.labels):
        if "://" not in path and not Path(path).exists():
            raise VolumeNotFoundError(f"{path!r} does not exist; pass an existing TIFF or zarr path")
    voxel_size = pair.voxel_size
    if voxel_size is None and Path(pair.image).suffix.lower() in (".tif", ".tiff"):
        voxel_size = _meta_voxel_size(Path(pair.image))
    image = open_volume(pair.image, voxel_size=voxel_size)
    labels = open_volume(pair.labels, voxel_size=image.voxel_size)
    if image.shape != labels.shape:
        raise InputError(
            f"image {pair.image!r} (shape {image.shape}) and labels {pair.labels!r} (shape {labels.shape}) "
            "must be 3D volumes of the same shape"
        )
    norm = estimate_normalization(image, percentiles=percentiles)
    vs = tuple(float(v) for v in image.voxel_size)
    scale = ScaleMap.between(vs, model_voxel_size, data_diameter=pair.diameter_um,  # type: ignore[arg-type]
                             model_diameter=model_diameter)
    vol = LazyLabelledVolume(image, labels, norm, scale, name=pair.image)
    logger.info("training pair %s: %s -> %s model voxels, read patch by patch", pair.image, image.shape,
                vol.model_shape)
    return vol


def load_image(
    item: UnlabelledImage,
    *,
    model_voxel_size: tuple[float, float, float],
    model_diameter: float,
    percentiles: tuple[float, float] = (1.0, 99.8),
) -> LazyLabelledVolume:
    """Open one unlabelled image for patch reads at the model's scale (labels are all zero)."""
    from bigseg.io import open_volume

    if "://" not in item.image and not Path(item.image).exists():
        raise VolumeNotFoundError(f"{item.image!r} does not exist; pass an existing TIFF or zarr path")
    voxel_size = item.voxel_size
    if voxel_size is None and Path(item.image).suffix.lower() in (".tif", ".tiff"):
        voxel_size = _meta_voxel_size(Path(item.image))
    image = open_volume(item.image, voxel_size=voxel_size)
    norm = estimate_normalization(image, percentiles=percentiles)
    vs = tuple(float(v) for v in image.voxel_size)
    scale = ScaleMap.between(vs, model_voxel_size, data_diameter=item.diameter_um,  # type: ignore[arg-type]
                             model_diameter=model_diameter)
    vol = LazyLabelledVolume(image, None, norm, scale, name=item.image)
    logger.info("training image %s: %s -> %s model voxels (no labels)", item.image, image.shape, vol.model_shape)
    return vol
