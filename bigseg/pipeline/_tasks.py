"""Block tasks: each reads its block, runs the pure stage functions, writes its write ROI.

Every task takes the shared :class:`RunContext` (sent to workers once) and one
:class:`~bigseg.tiling.Block`. Writes cover exactly the block's write ROI,
which is aligned to the storage write unit, so no two tasks touch one chunk
or shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bigseg.decode import DecodeParams, flood_block, seed_mask, watershed_block
from bigseg.io import ImageWriter, Volume, check_finite
from bigseg.measure import BlockStats, block_stats
from bigseg.predict import Normalization, PredictorSpec, get_predictor
from bigseg.stitch import (
    Numbering,
    Renumbering,
    face_pairs,
    iou_pairs,
    label_seeds,
    provisional_ids,
    shared_read_roi,
)
from bigseg.tiling import Block, Grid, Roi
from bigseg.pipeline._maps import decode_maps, encode_maps
from bigseg.pipeline._scratch import Scratch

__all__ = [
    "RunContext",
    "flood_task",
    "iou_pairs_task",
    "iou_write_task",
    "local_decode_task",
    "predict_task",
    "pyramid_task",
    "relabel_task",
    "seed_pairs_task",
]


@dataclass(frozen=True)
class RunContext:
    """What every block task of one run shares (small and picklable)."""

    grid: Grid
    volume: Volume | None
    normalization: Normalization | None
    predictor: PredictorSpec | None
    params: DecodeParams
    maps: ImageWriter
    image: ImageWriter | None
    labels: ImageWriter
    scratch: Scratch


def _read_maps(ctx: RunContext, roi: Roi) -> np.ndarray:
    """Stored maps of ``roi`` as float32 (whatever their storage encoding)."""
    return decode_maps(ctx.maps.read(roi))


def _write_roi_maps(ctx: RunContext, block: Block) -> np.ndarray:
    """Predict the block (writing the maps and image copy of its write ROI), or read stored maps.

    Returns the write ROI's maps as stored (encoded and decoded again), as every later read sees them.
    """
    if ctx.predictor is None:
        return _read_maps(ctx, block.write_roi)
    assert ctx.volume is not None and ctx.normalization is not None  # set together by the driver
    image = ctx.volume.read(block.read_roi)
    check_finite(image, f"the image's read ROI {block.read_roi}")
    inner = block.write_in_read
    if ctx.image is not None:
        ctx.image.write(block.write_roi, image[inner])
    maps = get_predictor(ctx.predictor).predict(
        ctx.normalization.apply(image), offset=block.read_roi.offset, write_roi=block.write_roi
    )
    stored = encode_maps(maps, ctx.maps.dtype)
    ctx.maps.write(block.write_roi, stored)
    return decode_maps(stored)


def predict_task(ctx: RunContext, block: Block, with_seeds: bool) -> int:
    """Stage 1: maps of the write ROI; with seeds, label them locally. Returns the seed count."""
    maps = _write_roi_maps(ctx, block)
    if not with_seeds:
        return 0
    local, n = label_seeds(seed_mask(maps, ctx.params))
    ctx.scratch.write("seeds", block.write_roi, local)
    return n


def _higher_neighbours(grid: Grid, block: Block) -> list[tuple[int, Block]]:
    out = []
    for axis, (i, g) in enumerate(zip(block.index, grid.grid_shape)):
        if i + 1 < g:
            index = list(block.index)
            index[axis] += 1
            out.append((axis, grid.block(tuple(index))))
    return out


def _plane(roi: Roi, axis: int, at: int) -> Roi:
    offset, shape = list(roi.offset), list(roi.shape)
    offset[axis], shape[axis] = at, 1
    return Roi(tuple(offset), tuple(shape))


def seed_pairs_task(ctx: RunContext, block: Block) -> np.ndarray:
    """Stage 2 (seeds): pairs of seed IDs touching across this block's high faces."""
    pairs = [np.zeros((0, 2), dtype=np.uint64)]
    for axis, hi in _higher_neighbours(ctx.grid, block):
        face = block.write_roi.end[axis]
        lo_plane = ctx.scratch.read("seeds", _plane(block.write_roi, axis, face - 1))
        hi_plane = ctx.scratch.read("seeds", _plane(hi.write_roi, axis, face))
        pairs.append(face_pairs(np.squeeze(lo_plane, axis), block.linear, np.squeeze(hi_plane, axis), hi.linear))
    return np.concatenate(pairs)


def _global_markers(ctx: RunContext, block: Block, numbering: Numbering) -> np.ndarray:
    provisional = np.zeros(block.read_roi.shape, dtype=np.uint64)
    for other in ctx.grid.blocks_touching(block.read_roi):
        part = other.write_roi.intersect(block.read_roi)
        local = ctx.scratch.read("seeds", part)
        provisional[part.relative_to(block.read_roi)] = provisional_ids(local, other.linear)
    return numbering.to_final(provisional)


def _finish_write_roi(ctx: RunContext, block: Block, write_labels: np.ndarray) -> BlockStats:
    ctx.scratch.write("stitched", block.write_roi, write_labels)
    if ctx.volume is not None:
        image = ctx.volume.read(block.write_roi)
    else:
        image = np.zeros(block.write_roi.shape, dtype=np.float32)
    return block_stats(write_labels, image, block.write_roi, ctx.grid.volume_shape)


def flood_task(ctx: RunContext, block: Block, numbering: Numbering) -> BlockStats:
    """Stage 3 (seeds): flood the read ROI from global seeds; write the write ROI."""
    maps = _read_maps(ctx, block.read_roi)
    markers = _global_markers(ctx, block, numbering)
    labels = flood_block(maps, markers, ctx.params)
    return _finish_write_roi(ctx, block, labels[block.write_in_read])


def local_decode_task(ctx: RunContext, block: Block) -> int:
    """Stage 2 (iou): decode the whole read ROI alone; keep it in the block's slot."""
    labels = watershed_block(_read_maps(ctx, block.read_roi), ctx.params)
    ctx.scratch.write_slot(block, labels)
    return int(labels.max(initial=0))


def iou_pairs_task(ctx: RunContext, block: Block, min_iou: float) -> np.ndarray:
    """Stage 3 (iou): mutual-best-IoU pairs with each higher face neighbour."""
    pairs = [np.zeros((0, 2), dtype=np.uint64)]
    for _, hi in _higher_neighbours(ctx.grid, block):
        roi = shared_read_roi(block, hi)
        if roi is None or roi.empty:
            continue
        a = provisional_ids(ctx.scratch.read_slot(block, roi), block.linear)
        b = provisional_ids(ctx.scratch.read_slot(hi, roi), hi.linear)
        pairs.append(iou_pairs(a, b, min_iou=min_iou))
    return np.concatenate(pairs)


def iou_write_task(ctx: RunContext, block: Block, numbering: Numbering) -> BlockStats:
    """Stage 4 (iou): the write ROI's local labels → final IDs."""
    local = ctx.scratch.read_slot(block, block.write_roi)
    return _finish_write_roi(ctx, block, numbering.to_final(provisional_ids(local, block.linear)))


def relabel_task(ctx: RunContext, block: Block, renumbering: Renumbering) -> None:
    """Last stage: drop small objects, consecutive uint32 IDs, write level 0."""
    ctx.labels.write(block.write_roi, renumbering.apply(ctx.scratch.read("stitched", block.write_roi)))


def pyramid_task(ctx: RunContext, item: tuple[str, int, Roi]) -> None:
    """Build one write unit of a lower-resolution level."""
    which, level, roi = item
    writer: Any = ctx.labels if which == "labels" else ctx.image
    writer.build_pyramid_block(level, roi, "nearest" if which == "labels" else "mean")
