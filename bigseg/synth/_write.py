"""Write a synthetic volume of any size to OME-Zarr, block by block on Dask.

One task per block, run by :class:`bigseg.pipeline.BlockRunner` (at most
``window`` tasks in flight), so neither the graph nor memory grows with the
volume. Each task rebuilds the
nuclei it needs from the seed (no shared state), renders its block with
:func:`synthesize_block` and writes image and labels::

    out.zarr/                  the image, levels 0 .. n_levels-1
    └── labels/truth/          exact instance labels (uint32), same levels
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigseg.errors import InputError
from bigseg.io import ImageWriter, create_image, create_labels
from bigseg.pipeline import BlockRunner
from bigseg.synth._api import resolve_params
from bigseg.synth._params import SynthParams
from bigseg.synth._render import synthesize_block, validate_seed
from bigseg.tiling import Grid, Halo, Roi, parse_shape

__all__ = ["SynthResult", "write_synthetic"]

logger = logging.getLogger(__name__)

LABEL_NAME = "truth"


@dataclass(frozen=True, slots=True)
class SynthResult:
    """What :func:`write_synthetic` wrote.

    Attributes
    ----------
    url : str
        The OME-Zarr image group.
    labels_url : str
        The ground-truth label image (``<url>/labels/truth``).
    shape : (3,) tuple of int
        Level-0 shape, voxels (z, y, x).
    voxel_size : (3,) tuple of float
        µm per voxel (z, y, x).
    n_nuclei : int
        Nuclei with at least one voxel in the volume.
    n_blocks : int
    seed : int
    preset : str
        Preset name, or ``"custom"`` for a SynthParams passed in.
    params : SynthParams
    """

    url: str
    labels_url: str
    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    n_nuclei: int
    n_blocks: int
    seed: int
    preset: str
    params: SynthParams


@dataclass(frozen=True, slots=True)
class _Job:
    """Everything a block task needs; small and picklable."""

    params: SynthParams
    shape: tuple[int, int, int]
    seed: int
    image: ImageWriter
    labels: ImageWriter


def _write_block(job: _Job, roi: Roi) -> np.ndarray:
    """Render and write one block; return the IDs of the nuclei it contains."""
    image, labels = synthesize_block(job.params, job.shape, roi, job.seed)
    job.image.write(roi, image)
    job.labels.write(roi, labels)
    return np.unique(labels[labels > 0])


def _build_level(_: _Job, item: tuple[ImageWriter, int, Roi]) -> None:
    writer, level, roi = item
    writer.build_pyramid_block(level, roi, "nearest" if writer.is_labels else "mean")


def write_synthetic(
    url: str | os.PathLike[str],
    shape: Any,
    *,
    voxel_size: Any = None,
    preset: str | SynthParams = "confocal",
    seed: int = 0,
    block_shape: Any = (128, 128, 128),
    chunk_shape: Any = None,
    client: Any = None,
    window: int | None = None,
    overwrite: bool = False,
    n_levels: int = 1,
    ngff_version: str = "0.5",
    **overrides: Any,
) -> SynthResult:
    """Write a synthetic image with its ground-truth labels as OME-Zarr.

    Parameters
    ----------
    url : str or path
        Output image group (local path or fsspec URL).
    shape : int or (3,) tuple of int
        Volume shape, voxels (z, y, x).
    voxel_size : (3,) tuple of float, optional
        µm per voxel; default: the preset's.
    preset : str or SynthParams
    seed : int
        Same seed, same volume, whatever ``block_shape`` and ``client``.
    block_shape : int or (3,) tuple of int
        Voxels per task; multiples of 32 (:data:`KEY_CUBE`) waste nothing.
    chunk_shape : int or (3,) tuple of int, optional
        Storage chunk; must divide ``block_shape``. Default: ``block_shape``.
    client : distributed.Client, optional
        Run the blocks on this cluster; default: one thread per CPU in this process.
    window : int, optional
        Blocks in flight at once (default: twice the available threads, at least 2).
    overwrite : bool
        Replace an existing output.
    n_levels : int
        Resolution levels (image by mean, labels by nearest voxel).
    ngff_version : {"0.5", "0.4"}
    **overrides
        Any :class:`SynthParams` field.

    Returns
    -------
    SynthResult
    """
    params = resolve_params(preset, voxel_size, **overrides)
    shp: tuple[int, int, int] = parse_shape(shape, name="shape")  # type: ignore[assignment]
    seed = validate_seed(seed)
    block = parse_shape(block_shape, name="block_shape")
    chunk = parse_shape(chunk_shape if chunk_shape is not None else block, name="chunk_shape")
    if any(b % c for b, c in zip(block, chunk)):
        raise InputError(f"`block_shape` {block} must be a multiple of `chunk_shape` {chunk} on every axis")
    image = create_image(
        url, shape=shp, dtype=params.dtype, voxel_size=params.voxel_size, chunk_shape=chunk,
        n_levels=n_levels, ngff_version=ngff_version, overwrite=overwrite,  # type: ignore[arg-type]
    )
    labels = create_labels(image, LABEL_NAME, dtype="uint32", overwrite=overwrite)
    grid = Grid(shp, block, Halo.of(0))
    rois = [b.write_roi for b in grid.blocks()]
    runner = BlockRunner.on(client, window=window, threads=1 if client is not None else os.cpu_count() or 1)
    logger.info("writing %s: shape %s in %d blocks of %s", image.url, shp, len(rois), block)
    runner.set_context(_Job(params, shp, seed, image, labels))
    found = runner.run("synthesize", _write_block, rois)
    n_nuclei = int(np.unique(np.concatenate(found)).size) if found else 0
    for level in range(1, n_levels):
        items = [(w, level, r) for w in (image, labels) for r in w.pyramid_rois(level)]
        runner.run(f"pyramid level {level}", _build_level, items)
    name = params_name(preset)
    meta = {"synthetic": {"preset": name, "seed": seed, "n_nuclei": n_nuclei, "params": _jsonable(params)}}
    image.finalize(meta)
    labels.finalize(meta)
    return SynthResult(
        image.url, labels.url, shp, params.voxel_size, n_nuclei, len(rois), seed, name, params
    )


def params_name(preset: str | SynthParams) -> str:
    return preset if isinstance(preset, str) else "custom"


def _jsonable(params: SynthParams) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(params).items()}
