"""Block tasks: each reads its block, runs the pure stage functions, writes its write ROI.

Every task takes the shared :class:`RunContext` (sent to workers once) and one
:class:`~bigseg.tiling.Block`. Writes cover exactly the block's write ROI,
which is aligned to the storage write unit, so no two tasks touch one chunk
or shard.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import fastremap
import numpy as np

from bigseg.decode import (
    DecodeParams,
    Decoder,
    flood_block,
    outline_histogram,
    seed_mask,
    smooth,
    tascan_block,
    voronoi_flood,
    voronoi_seed_mask,
    watershed_block,
)
from bigseg.io import ImageWriter, Volume, check_finite, copy_image_block, join_url
from bigseg.maps import FOREGROUND
from bigseg.measure import BlockStats, block_stats, combine_stats, object_table
from bigseg.predict import Normalization, PredictorSpec, device_task, get_predictor
from bigseg.stitch import (
    Numbering,
    Renumbering,
    face_pairs,
    label_seeds,
    local_numbering,
    iou_pairs,
    owner_blocks,
    provisional_ids,
    shared_read_roi,
    resolve_roots,
    split_provisional,
)
from bigseg.tiling import Block, Grid, Roi
from bigseg.pipeline._maps import decode_maps, encode_maps
from bigseg.pipeline._scratch import Scratch
from bigseg.pipeline._table import write_table

__all__ = [
    "RunContext",
    "copy_task",
    "flood_task",
    "histogram_task",
    "host_task",
    "local_decode_task",
    "measure_task",
    "iou_pairs_task",
    "iou_write_task",
    "predict_task",
    "pyramid_task",
    "relabel_task",
    "resolve_task",
    "seed_pairs_task",
    "table_task",
    "voronoi_seeds_task",
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
    table_url: str = ""
    #: How many blocks (per axis) an object's voxels may lie from the block owning it.
    owner_reach: tuple[int, ...] = (1, 1, 1)
    #: Objects with fewer voxels are removed.
    min_size: int = 0
    #: The tissue mask's label image (with empty-block skipping).
    tissue: ImageWriter | None = None
    decoder: Decoder = Decoder()


def _read_maps(ctx: RunContext, roi: Roi) -> np.ndarray:
    """Stored maps of ``roi`` as float32 (whatever their storage encoding)."""
    return decode_maps(ctx.maps.read(roi))


def _write_roi_maps(ctx: RunContext, block: Block, copy_image: bool = True) -> np.ndarray:
    """Predict the block (writing the maps, and with ``copy_image`` the image copy, of its write ROI),
    or read stored maps.

    Returns the write ROI's maps as stored (in their storage encoding), as every later read sees them.
    """
    if ctx.predictor is None:
        return ctx.maps.read(block.write_roi)
    assert ctx.volume is not None and ctx.normalization is not None  # set together by the driver
    image = ctx.volume.read(block.read_roi)
    check_finite(image, f"the image's read ROI {block.read_roi}")
    maps = get_predictor(ctx.predictor).predict(
        ctx.normalization.apply(image), offset=block.read_roi.offset, write_roi=block.write_roi
    )
    stored = encode_maps(maps, ctx.maps.dtype)
    ctx.maps.write(block.write_roi, stored)
    if copy_image and ctx.image is not None:
        ctx.image.write(block.write_roi, image[block.write_in_read])
    return stored


def predict_task(ctx: RunContext, block: Block, with_seeds: bool, copy_image: bool = True) -> int:
    """Stage 1: maps of the write ROI (and the image copy); with seeds, label them locally. Returns the seed count.

    On a GPU run (:func:`host_task` follows) only the maps: everything else leaves the GPU worker.
    """
    with device_task():  # its interval, for telling host from device time (benchmarks, tests)
        stored = _write_roi_maps(ctx, block, copy_image)
        if not with_seeds:
            return 0
        return _label_seeds(ctx, block, decode_maps(stored))


def _label_seeds(ctx: RunContext, block: Block, maps: np.ndarray) -> int:
    local, n = label_seeds(seed_mask(maps, ctx.params))
    ctx.scratch.write("seeds", block.write_roi, local)
    return n


def host_task(ctx: RunContext, block: Block, with_seeds: bool) -> int:
    """Stage 1b of a GPU run, on any worker: the image copy and the seed labels of the write ROI, from
    the stored maps (the same values :func:`predict_task` labels). Returns the seed count."""
    if ctx.image is not None:
        assert ctx.volume is not None  # an image copy is made from the input
        copy_image_block(ctx.volume, ctx.image, block.write_roi)
    return _label_seeds(ctx, block, _read_maps(ctx, block.write_roi)) if with_seeds else 0


def histogram_task(ctx: RunContext, block: Block) -> np.ndarray:
    """Voronoi-Otsu, stage 2: histogram of the outline-blurred foreground of the write ROI (summed by the driver)."""
    fg = _read_maps(ctx, block.read_roi)[FOREGROUND]
    return outline_histogram(smooth(fg, ctx.decoder.outline_sigma)[block.write_in_read])


def _threshold(ctx: RunContext) -> float:
    assert ctx.decoder.threshold is not None  # set by the driver from the whole-volume histogram
    return ctx.decoder.threshold


def voronoi_seeds_task(ctx: RunContext, block: Block) -> int:
    """Voronoi-Otsu, stage 3: local maxima of the spot blur inside the Otsu mask; label the write ROI's seeds."""
    fg = _read_maps(ctx, block.read_roi)[FOREGROUND]
    mask = smooth(fg, ctx.decoder.outline_sigma) > _threshold(ctx)
    seeds = voronoi_seed_mask(smooth(fg, ctx.decoder.spot_sigma), mask)[block.write_in_read]
    local, n = label_seeds(seeds)
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


def seed_pairs_task(ctx: RunContext, block: Block) -> int:
    """Stage 2 (seeds): pairs of seed IDs touching across this block's high faces, saved; returns how many."""
    pairs = [np.zeros((0, 2), dtype=np.uint64)]
    for axis, hi in _higher_neighbours(ctx.grid, block):
        face = block.write_roi.end[axis]
        lo_plane = ctx.scratch.read("seeds", _plane(block.write_roi, axis, face - 1))
        hi_plane = ctx.scratch.read("seeds", _plane(hi.write_roi, axis, face))
        pairs.append(face_pairs(np.squeeze(lo_plane, axis), block.linear, np.squeeze(hi_plane, axis), hi.linear))
    out = np.concatenate(pairs)
    ctx.scratch.save("pairs", block.linear, pairs=out)
    return len(out)


def _around(grid: Grid, block: Block, lo: int | tuple[int, ...], hi: int | tuple[int, ...]) -> list[int]:
    """Linear indices of the blocks ``block.index + d``, ``lo <= d <= hi`` per axis, inside the grid."""
    n = len(block.index)
    lo_t = (lo,) * n if isinstance(lo, int) else lo
    hi_t = (hi,) * n if isinstance(hi, int) else hi
    ranges = [np.arange(max(0, i + a), min(g, i + b + 1)) for i, a, b, g in zip(block.index, lo_t, hi_t, grid.grid_shape)]
    mesh = np.meshgrid(*ranges, indexing="ij")
    return [int(v) for v in np.ravel_multi_index(tuple(m.ravel() for m in mesh), grid.grid_shape)]


def resolve_task(ctx: RunContext, block: Block, counts: np.ndarray) -> tuple[int, np.ndarray]:
    """Stage (both paths): roots of this block's merged IDs from the pairs around it.

    Returns the non-root count and this block's pairs in groups wider than two
    blocks (usually none), whose roots the driver finds.
    """
    around = [c for c in _around(ctx.grid, block, -2, 1) if counts[c] > 0]
    pairs = {c: ctx.scratch.load("pairs", c)["pairs"] for c in around}
    nonroot, roots, wide = resolve_roots(np.concatenate(list(pairs.values())), block.linear, ctx.grid.grid_shape)
    ctx.scratch.save("roots", block.linear, nonroot=nonroot, roots=roots)
    own = pairs[block.linear]
    return len(nonroot), own[np.isin(split_provisional(own[:, 0])[1], wide)]


def _numbering(ctx: RunContext, blocks: list[int], counts: np.ndarray, offsets: np.ndarray) -> Numbering:
    """The numbering of ``blocks``, from their root tables and those of the blocks holding their roots."""
    empty = (np.zeros(0, np.uint32), np.zeros(0, np.uint64))

    def table(b: int) -> tuple[np.ndarray, np.ndarray]:
        if counts[b] == 0:
            return empty
        t = ctx.scratch.load("roots", b)
        return t["nonroot"], t["roots"]

    tables = {b: table(b) for b in blocks}
    for b in list(tables):
        for r in np.unique(split_provisional(tables[b][1])[0]).tolist():
            if r not in tables:
                tables[r] = table(r)
    return local_numbering(offsets, tables, blocks)


def _global_markers(ctx: RunContext, block: Block, numbering: Numbering) -> np.ndarray:
    provisional = np.zeros(block.read_roi.shape, dtype=np.uint64)
    for other in ctx.grid.blocks_touching(block.read_roi):
        part = other.write_roi.intersect(block.read_roi)
        local = ctx.scratch.read("seeds", part)
        provisional[part.relative_to(block.read_roi)] = provisional_ids(local, other.linear)
    return numbering.to_final(provisional)


def _finish_write_roi(
    ctx: RunContext, block: Block, write_labels: np.ndarray, offsets: np.ndarray
) -> tuple[int, BlockStats]:
    """Write the write ROI's stitched labels; save its partial statistics for the owners nearby.

    Returns the row count and the rows of objects owned farther away (only
    objects wider than two blocks; usually none), which the driver passes on.
    """
    ctx.scratch.write("stitched", block.write_roi, write_labels)
    if ctx.volume is not None:
        image = ctx.volume.read(block.write_roi)
    else:
        image = np.zeros(block.write_roi.shape, dtype=np.float32)
    stats = block_stats(write_labels, image, block.write_roi, ctx.grid.volume_shape)
    owner = owner_blocks(stats.ids, offsets)
    own = owner == block.linear
    far = ~own & ~np.isin(owner, _around(ctx.grid, block, _neg(ctx.owner_reach), ctx.owner_reach))
    ctx.scratch.save("stats-own", block.linear, **_stats_arrays(_take(stats, own)))
    ctx.scratch.save("stats-foreign", block.linear, **_stats_arrays(_take(stats, ~own & ~far)))
    return len(stats), _take(stats, far)


def _neg(t: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-v for v in t)


def _take(stats: BlockStats, keep: np.ndarray) -> BlockStats:
    return BlockStats(**{f.name: getattr(stats, f.name)[keep] for f in fields(stats)})


def _stats_arrays(stats: BlockStats) -> dict[str, np.ndarray]:
    return {f.name: getattr(stats, f.name) for f in fields(stats)}


def flood_task(ctx: RunContext, block: Block, counts: np.ndarray, offsets: np.ndarray) -> tuple[int, BlockStats]:
    """Stage 3 (seeds): flood the read ROI from global seeds; write the write ROI; save partial statistics."""
    maps = _read_maps(ctx, block.read_roi)
    touching = [b.linear for b in ctx.grid.blocks_touching(block.read_roi)]
    markers = _global_markers(ctx, block, _numbering(ctx, touching, counts, offsets))
    if ctx.decoder.name == "voronoi-otsu":
        labels = voronoi_flood(smooth(maps[FOREGROUND], ctx.decoder.outline_sigma), markers, _threshold(ctx))
    else:
        labels = flood_block(maps, markers, ctx.params)
    return _finish_write_roi(ctx, block, labels[block.write_in_read], offsets)


def local_decode_task(ctx: RunContext, block: Block) -> int:
    """Stage 2 (iou): decode the whole read ROI alone; keep it in the block's slot."""
    maps = _read_maps(ctx, block.read_roi)
    if ctx.decoder.name == "tascan":
        labels = tascan_block(maps, mask_foreground=ctx.params.mask_foreground, seed_contour=ctx.params.seed_contour,
                              params=ctx.decoder.tascan, anisotropy=ctx.labels.voxel_size)
    else:
        labels = watershed_block(maps, ctx.params)
    ctx.scratch.write_slot(block, labels)
    return int(labels.max(initial=0))


def iou_pairs_task(ctx: RunContext, block: Block, min_iou: float) -> int:
    """Stage 3 (iou): mutual-best-IoU pairs with each higher face neighbour, saved; returns how many."""
    pairs = [np.zeros((0, 2), dtype=np.uint64)]
    for _, hi in _higher_neighbours(ctx.grid, block):
        roi = shared_read_roi(block, hi)
        if roi is None or roi.empty:
            continue
        a = provisional_ids(ctx.scratch.read_slot(block, roi), block.linear)
        b = provisional_ids(ctx.scratch.read_slot(hi, roi), hi.linear)
        pairs.append(iou_pairs(a, b, min_iou=min_iou))
    out = np.concatenate(pairs)
    ctx.scratch.save("pairs", block.linear, pairs=out)
    return len(out)


def iou_write_task(
    ctx: RunContext, block: Block, counts: np.ndarray, offsets: np.ndarray
) -> tuple[int, BlockStats]:
    """Stage 4 (iou): the write ROI's local labels → stitched IDs; save partial statistics."""
    local = ctx.scratch.read_slot(block, block.write_roi)
    numbering = _numbering(ctx, [block.linear], counts, offsets)
    return _finish_write_roi(ctx, block, numbering.to_final(provisional_ids(local, block.linear)), offsets)


def measure_task(ctx: RunContext, block: Block, active: np.ndarray, offsets: np.ndarray, far: BlockStats) -> int:
    """Combine the partial statistics of the objects this block owns (exchanged with neighbours only, plus
    ``far`` rows of wide objects from the driver); keep those of >= ``min_size`` voxels, and every object cut by
    a face of the volume (only part of such a nucleus is imaged: its size is no evidence); returns how many."""
    parts = [BlockStats(**ctx.scratch.load("stats-own", block.linear)), far]
    for c in _around(ctx.grid, block, _neg(ctx.owner_reach), ctx.owner_reach):
        if c != block.linear and active[c]:
            foreign = BlockStats(**ctx.scratch.load("stats-foreign", c))
            parts.append(_take(foreign, owner_blocks(foreign.ids, offsets) == block.linear))
    stats = combine_stats(parts)
    kept = _take(stats, (stats.count >= ctx.min_size) | stats.touches_border)
    ctx.scratch.save("objects", block.linear, **_stats_arrays(kept))
    ctx.scratch.save("kept", block.linear, ids=kept.ids)
    return len(kept)


def _upsample(mask: np.ndarray, factor: tuple[int, ...], roi: Roi) -> np.ndarray:
    """``roi`` (voxels) of a coarse ``mask``, each coarse voxel repeated ``factor`` times per axis."""
    lo = [o // f for o, f in zip(roi.offset, factor)]
    part = mask[tuple(slice(a, -(-e // f)) for a, e, f in zip(lo, roi.end, factor))]
    for axis, f in enumerate(factor):
        part = np.repeat(part, f, axis=axis)
    return part[tuple(slice(o - a * f, o - a * f + s) for o, a, f, s in zip(roi.offset, lo, factor, roi.shape))]


def relabel_task(
    ctx: RunContext, block: Block, offsets: np.ndarray, kept_offsets: np.ndarray,
    mask: tuple[np.ndarray, tuple[int, ...]] | None = None,
) -> None:
    """Last stage: drop small objects, consecutive uint32 IDs (1 + rank among kept objects), write level 0
    (and the block's part of the tissue mask, when skipping)."""
    if ctx.tissue is not None and mask is not None:
        ctx.tissue.write(block.write_roi, _upsample(mask[0], mask[1], block.write_roi))
    stitched = ctx.scratch.read("stitched", block.write_roi)
    present = fastremap.unique(stitched)
    present = present[present != 0].astype(np.int64)
    owner = owner_blocks(present, offsets)
    new = np.zeros(len(present), dtype=np.int64)
    for r in np.unique(owner).tolist():
        sel = owner == r
        kept = ctx.scratch.load("kept", r)["ids"].astype(np.int64)
        pos = np.searchsorted(kept, present[sel])
        hit = pos < len(kept)
        hit[hit] = kept[pos[hit]] == present[sel][hit]
        new[sel] = np.where(hit, kept_offsets[r] + 1 + pos, 0)
    renumbering = Renumbering(present.astype(np.uint32), new.astype(np.uint32), int(kept_offsets[-1]))
    ctx.labels.write(block.write_roi, renumbering.apply(stitched))


def table_task(ctx: RunContext, part: tuple[int, list[int]], kept_offsets: np.ndarray, voxel_size: Any) -> int:
    """Write one file of the object table: the kept objects of a run of consecutive owner blocks."""
    index, owners = part
    pieces = []
    for r in owners:
        stats = BlockStats(**ctx.scratch.load("objects", r))
        ids = np.arange(kept_offsets[r] + 1, kept_offsets[r] + 1 + len(stats), dtype=np.uint64)
        pieces.append(replace(stats, ids=ids))
    stats = combine_stats(pieces) if pieces else BlockStats.empty()
    write_table(object_table(stats, voxel_size), join_url(ctx.table_url, f"part-{index:05d}.parquet"),
                ctx.labels.storage_options)
    return len(stats)


def copy_task(ctx: RunContext, block: Block) -> None:
    """Copy a skipped block's image into the output copy (it is never predicted)."""
    assert ctx.image is not None and ctx.volume is not None  # only submitted for an image copy
    copy_image_block(ctx.volume, ctx.image, block.write_roi)


def pyramid_task(ctx: RunContext, item: tuple[str, int, Roi]) -> None:
    """Build one write unit of a lower-resolution level."""
    which, level, roi = item
    writer: Any = {"labels": ctx.labels, "tissue": ctx.tissue, "image": ctx.image}[which]
    writer.build_pyramid_block(level, roi, "mean" if which == "image" else "nearest")
