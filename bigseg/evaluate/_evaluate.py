"""Evaluate a prediction against ground truth at any scale, block by block.

The volume is cut into a :class:`~bigseg.tiling.Grid` (halo 0); each block's
:class:`Contingency` is computed from the block alone and the tables are
summed in the driver as they arrive, so no whole volume is ever loaded. The
blocks run through :class:`bigseg.pipeline.BlockRunner`: in this process, or
as futures on a ``distributed.Client``, at most a window of them at a time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from bigseg.errors import InputError, MissingVoxelSizeError
from bigseg.evaluate._contingency import Contingency, check_labels, contingency_block
from bigseg.evaluate._result import DEFAULT_THRESHOLDS, EvaluationResult, parse_thresholds, score
from bigseg.pipeline import BlockRunner
from bigseg.tiling import Block, Grid, Halo, Roi, parse_shape

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)

_COMBINE_EVERY = 64  # the driver sums tables in batches of this many, to bound its memory


@dataclass(frozen=True, slots=True)
class _Source:
    """An input as the evaluation sees it: shape, dtype, voxel size, block reads.

    ``data`` is an in-memory ndarray, or anything with ``read(roi)`` (a
    :class:`bigseg.io.Volume`), or another array-like sliced with ``[...]``
    (zarr, dask). Only ndarrays are sliced before a block is sent to a worker;
    the others travel whole (a Volume pickles as its URLs).
    """

    name: str
    data: Any
    shape: tuple[int, ...]
    dtype: np.dtype
    voxel_size: tuple[float, ...] | None

    def read(self, roi: Roi) -> np.ndarray:
        if hasattr(self.data, "read"):
            return np.asarray(self.data.read(roi))
        return np.asarray(self.data[roi.to_slices()])

    def for_task(self, roi: Roi) -> Any:
        return self.read(roi) if isinstance(self.data, np.ndarray) else self


def _open(value: Any, name: str, voxel_size: Sequence[float] | None) -> _Source:
    if isinstance(value, (str, os.PathLike)):
        return _open_path(os.fspath(value), name, voxel_size)
    if isinstance(value, (list, tuple)) or not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise InputError(
            f"`{name}` must be a label array (numpy, zarr, dask), a Volume or a path/URL, got {type(value).__name__}"
        )
    vs = getattr(value, "voxel_size", None)
    return _Source(
        name=name,
        data=value,
        shape=tuple(int(s) for s in value.shape),
        dtype=np.dtype(value.dtype),
        voxel_size=None if vs is None else tuple(float(v) for v in vs),
    )


def _open_path(url: str, name: str, voxel_size: Sequence[float] | None) -> _Source:
    """Open a path/URL; a file without voxel size is fine here (scores are in voxels)."""
    from bigseg.io import open_volume  # lazily: numpy-only use needs no zarr/fsspec

    try:
        return _open(open_volume(url, voxel_size=voxel_size), name, voxel_size)
    except MissingVoxelSizeError:  # only without voxel_size: a placeholder follows
        pass
    # open_volume insists on a voxel size; any placeholder works, and the source is
    # recorded as having none, so there is nothing to compare.
    src = _open(open_volume(url, voxel_size=(1.0, 1.0, 1.0)), name, None)
    return _Source(src.name, src.data, src.shape, src.dtype, None)


def _validate(pred: _Source, gt: _Source, mask: _Source | None, voxel_size: Sequence[float] | None) -> None:
    if pred.shape != gt.shape:
        raise InputError(
            f"`pred` (shape {pred.shape}) must have the same shape as `gt` (shape {gt.shape}); "
            "evaluate at the same resolution level and region"
        )
    for src in (pred, gt):
        check_labels(np.zeros(0, src.dtype), src.name)
    if mask is not None:
        if mask.shape != gt.shape:
            raise InputError(f"`mask` (shape {mask.shape}) must have the same shape as `gt` (shape {gt.shape})")
        if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == np.bool_):
            raise InputError(f"`mask` must be boolean or numeric (nonzero = scored), got dtype {mask.dtype}")
    if voxel_size is None:
        _check_voxel_sizes([s for s in (gt, pred, mask) if s is not None])


def _check_voxel_sizes(sources: list[_Source]) -> None:
    known = [(s.name, s.voxel_size) for s in sources if s.voxel_size is not None]
    for name, vs in known[1:]:
        ref_name, ref = known[0]
        if len(vs) != len(ref) or not np.allclose(vs, ref, rtol=1e-3):
            raise InputError(
                f"`{name}` voxel size {vs} µm differs from `{ref_name}` voxel size {ref} µm; "
                "resample one onto the other's grid, or, if the voxels do correspond and the metadata is "
                "wrong, pass voxel_size=(z, y, x) (CLI: --voxel-size, once per axis)"
            )


def _block_table(volume_shape: tuple[int, ...], block: Block, pred: Any, gt: Any, mask: Any) -> Contingency:
    """Table of one block; each input is the block's ndarray or a :class:`_Source`."""
    roi = block.write_roi
    p = pred.read(roi) if isinstance(pred, _Source) else pred
    g = gt.read(roi) if isinstance(gt, _Source) else gt
    m = mask.read(roi) if isinstance(mask, _Source) else mask
    if m is not None:
        m = m != 0
    return contingency_block(p, g, m, roi=roi, volume_shape=volume_shape)


def _accumulate(runner: BlockRunner, grid: Grid, pred: _Source, gt: _Source, mask: _Source | None) -> Contingency:
    """Sum the blocks' tables as they arrive, ``_COMBINE_EVERY`` at a time (bounded driver memory)."""
    def inputs(block: Block) -> tuple[Any, Any, Any]:
        roi = block.write_roi
        return pred.for_task(roi), gt.for_task(roi), None if mask is None else mask.for_task(roi)

    runner.set_context(grid.volume_shape)
    total = Contingency.empty()
    pending: list[Contingency] = []
    for done, (_, table) in enumerate(runner.imap("evaluate", _block_table, list(grid.blocks()), inputs), 1):
        pending.append(table)
        if len(pending) >= _COMBINE_EVERY:
            total, pending = Contingency.combine([total, *pending]), []
            logger.info("evaluated %d of %d blocks", done, grid.n_blocks)
    return Contingency.combine([total, *pending])


def evaluate(
    pred: Any,
    gt: Any,
    *,
    thresholds: float | Iterable[float] = DEFAULT_THRESHOLDS,
    mask: Any = None,
    ignore_border: bool = False,
    block_shape: int | Sequence[int] = 128,
    client: Any = None,
    voxel_size: Sequence[float] | None = None,
) -> EvaluationResult:
    """Score predicted instance labels against ground truth, block by block.

    Parameters
    ----------
    pred, gt : (Z, Y, X) array of int, Volume, or str
        Labels (0 = background): numpy/zarr/dask arrays, a
        :class:`bigseg.io.Volume`, or a path/URL opened with
        :func:`bigseg.io.open_volume` (for an OME-Zarr label image pass the
        label group, e.g. ``"out.zarr/labels/nuclei"``).
    thresholds : float or sequence of float
        IoU thresholds in (0, 1] for instance matching; default 0.1 ... 0.9.
    mask : (Z, Y, X) array, Volume or str, optional
        Region to score: voxels where it is 0/False count for neither input.
    ignore_border : bool
        Leave objects touching the volume's outer faces out of the object
        scores (see :func:`~bigseg.evaluate.match_instances`).
    block_shape : int or (Z, Y, X) ints
        Voxels read per block (one int for every axis).
    client : distributed.Client, optional
        Run blocks as futures on this client (a bounded window of them); serially without one.
    voxel_size : (z, y, x) floats, optional
        µm. Skips the comparison of the inputs' voxel-size metadata (and is
        passed to ``open_volume`` for paths): use it when the metadata is
        wrong but the voxels correspond.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InputError
        On shapes that differ, non-integer labels, negative labels, or
        voxel sizes that differ.
    """
    p, g = _open(pred, "pred", voxel_size), _open(gt, "gt", voxel_size)
    m = None if mask is None else _open(mask, "mask", voxel_size)
    _validate(p, g, m, voxel_size)
    thresholds = parse_thresholds(thresholds)
    ndim = len(g.shape)
    grid = Grid(g.shape, parse_shape(block_shape, name="block_shape", ndim=ndim), Halo.of(0, ndim))
    logger.info("evaluating %s in %d blocks of %s", g.shape, grid.n_blocks, grid.block_shape)
    table = _accumulate(BlockRunner.on(client), grid, p, g, m)
    vs = tuple(voxel_size) if voxel_size is not None else g.voxel_size or p.voxel_size
    return score(table, thresholds=thresholds, ignore_border=ignore_border, shape=g.shape,
                 voxel_size=vs, masked=m is not None)
