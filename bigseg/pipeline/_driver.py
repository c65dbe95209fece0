"""The stages of one run, in order (one Dask future per active block, bounded window)::

    (driver)     tissue mask on a low-resolution level: blocks far from tissue are skipped
    predict      image read ROI → BCD maps of the write ROI (+ image copy) → local seed labels;
                 with GPU resources split in two: the GPU stage writes only the maps, and a host
                 stage on any worker makes the image copy and the seed labels from the stored maps
    pairs        seed labels touching across block faces (saved per block)
    resolve      roots of the block's merged IDs, from the pairs around it
    (driver)     prefix sums of per-block root counts → offsets (final IDs by construction)
    flood        read ROI maps + global seeds → marker watershed → write-ROI labels + partial stats
    measure      the owning block combines its objects' partial stats, drops small objects
    (driver)     prefix sums of per-block kept counts
    relabel      write-ROI labels → final labels 1..N, level 0 (and the tissue mask)
    pyramid      lower levels (labels nearest, image mean)
    table        one Parquet file per run of owning blocks; metadata last (a partial output never
                 looks complete)

The driver holds a few numbers per block, never a table of all objects.

Every block of every stage leaves a done record once its output is durable, and
every driver-side result between stages is saved as a named record, so the same
call on an unfinished output skips what is done (``_records``, ``_resume``).
The ``iou`` stitch mode replaces pairs/flood by per-block decoding of the
whole read ROI and merges on mutual-best IoU where read ROIs intersect.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from bigseg.config import SegmentConfig
from bigseg.decode import HISTOGRAM_BINS, otsu_from_histogram
from bigseg.errors import InputError
from bigseg.io import open_group, remove_tree
from bigseg.measure import BlockStats, combine_stats
from bigseg.pipeline._executor import BlockRunner, StartingClient, fault_point
from bigseg.pipeline._lock import RunLock
from bigseg.pipeline._outputs import LABEL_NAME
from bigseg.pipeline._plan import Plan
from bigseg.pipeline._records import RecordStore
from bigseg.pipeline._table import clear_table
from bigseg.pipeline._tasks import (
    RunContext,
    copy_task,
    flood_task,
    histogram_task,
    host_task,
    iou_pairs_task,
    iou_write_task,
    local_decode_task,
    measure_task,
    predict_task,
    pyramid_task,
    relabel_task,
    resolve_task,
    seed_pairs_task,
    table_task,
    voronoi_seeds_task,
)
from bigseg.pipeline._tissue import TissueMask
from bigseg.pipeline._workers import auto_scheduler
from bigseg.stitch import MAX_LOCAL, merge_wide, owner_blocks, split_provisional
from bigseg.tiling import Block, Grid

logger = logging.getLogger(__name__)

#: About this many objects per file of the partitioned table ``labels/nuclei.parquet/``.
ROWS_PER_TABLE_FILE = 1_000_000


@dataclass(frozen=True)
class SegmentResult:
    """What a run produced, and how long each stage took (seconds)."""

    output: str
    labels_url: str
    table_url: str
    n_objects: int
    n_blocks: int
    grid: Grid
    voxel_size: tuple[float, float, float]
    timings: dict[str, float] = field(default_factory=dict)
    dashboard_link: str | None = None
    n_skipped: int = 0
    skipped: dict[str, tuple[int, int]] = field(default_factory=dict)
    already_complete: bool = False

    def summary(self) -> str:
        if self.already_complete:
            return (
                f"{self.output} is already complete ({self.n_objects} nuclei); nothing to do\n"
                f"  labels: {self.labels_url}\n"
                f"  table:  {self.table_url}"
            )
        total = sum(self.timings.values())
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        resumed = {k: v for k, v in self.skipped.items() if v[0]}
        done_before = (
            "  resumed: " + ", ".join(f"{k} {d}/{n} blocks skipped" for k, (d, n) in resumed.items()) + "\n"
            if resumed else ""
        )
        return (
            f"found {self.n_objects} nuclei in a {self.grid.volume_shape} volume "
            f"({self.n_blocks} blocks of {self.grid.block_shape}, halo {self.grid.halo.shape}) in {total:.1f}s\n"
            f"  skipped {self.n_skipped} of {self.n_blocks} blocks (no tissue)\n"
            f"  stages: {stages}\n"
            f"{done_before}"
            f"  labels: {self.labels_url}\n"
            f"  table:  {self.table_url}"
        )


class runner_for:
    """Context manager: a BlockRunner on the client of ``client`` (a :class:`StartingClient`, or a
    client or None given by the caller), or on one opened from the config."""

    def __init__(
        self, cfg: SegmentConfig, client: Any, progress: Any, on_cluster: Any, records: RecordStore | None,
        lock: RunLock | None,
    ) -> None:
        self.cfg, self.client, self.progress, self.on_cluster = cfg, client, progress, on_cluster
        self.records, self.lock = records, lock
        self._cm: StartingClient | None = None

    def __enter__(self) -> BlockRunner:
        starting = self.client if isinstance(self.client, StartingClient) else None
        if starting is None:
            self._cm = starting = starting_client(self.cfg, self.client)
        client = starting.get()
        if self.on_cluster is not None:
            self.on_cluster(getattr(client, "dashboard_link", None))
        return BlockRunner.on(
            client, window=self.cfg.window, progress=self.progress, records=self.records,
            retries=self.cfg.retries, timeout=self.cfg.block_timeout, check=self.lock.check if self.lock else None,
        )

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


def run_scheduler(cfg: SegmentConfig, voxels: int | None, *, model: bool = False) -> str:
    """The config's scheduler, with ``'auto'`` resolved for a run over ``voxels`` (``model``: a model
    predicts them): ``'sync'`` for a small run, else ``'local'`` (:func:`auto_scheduler`)."""
    if cfg.scheduler != "auto":
        return cfg.scheduler
    if voxels is None:
        return "local"
    chosen = auto_scheduler(voxels, model=model, n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker,
                            task_threads=cfg.task_threads)
    logger.info("scheduler auto: %s for %d voxels%s", "in this process" if chosen == "sync" else "a local cluster",
                voxels, " (model)" if model else "")
    return chosen


def starting_client(cfg: SegmentConfig, client: Any = None, *, voxels: int | None = None,
                    model: bool = False) -> StartingClient:
    """The run's client (``client`` if given, else the config's scheduler, ``'auto'`` resolved for
    ``voxels`` by :func:`run_scheduler`), its start begun now."""
    scheduler = cfg.scheduler if client is not None else run_scheduler(cfg, voxels, model=model)
    return StartingClient(
        scheduler, client, n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker,
        memory_limit=cfg.memory_limit, task_threads=cfg.task_threads,
    )


def timed(timings: dict[str, float], stage: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, its seconds added to ``timings[stage]`` and logged."""
    t0 = time.perf_counter()
    out = fn()
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0
    logger.info("stage %s: %.2fs", stage, timings[stage])
    return out


class _Blocks(Sequence[Block]):
    """The blocks of ``grid`` with the given linear indices, made on demand (the driver holds only the indices)."""

    def __init__(self, grid: Grid, linears: np.ndarray) -> None:
        self.grid, self.linears = grid, np.asarray(linears, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.linears)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.grid.block(int(v)) for v in self.linears[i]]
        return self.grid.block(int(self.linears[i]))


def _prefix(values: np.ndarray) -> np.ndarray:
    """``[0, v0, v0 + v1, ...]`` (int64): the offsets that turn per-block counts into IDs."""
    return np.concatenate([[0], np.cumsum(values, dtype=np.int64)])


def table_parts(n_kept: np.ndarray, rows_per_file: int) -> list[tuple[int, list[int]]]:
    """Runs of consecutive owner blocks, about ``rows_per_file`` objects each: one table file per run."""
    owners = np.flatnonzero(n_kept > 0)
    if not len(owners):
        return [(0, [])]
    start = np.cumsum(n_kept[owners]) - n_kept[owners]
    part = start // max(1, rows_per_file)
    _, first = np.unique(part, return_index=True)
    bounds = [*first.tolist(), len(owners)]
    return [(k, owners[a:b].tolist()) for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def _fold(
    runner: BlockRunner, stage: str, fn: Callable[..., Any], blocks: _Blocks, args: Any = None, *,
    keep: list[Any] | None = None, resources: dict[str, float] | None = None,
) -> np.ndarray:
    """Run a stage; per-block counts (the result, or its first item) in an array over the whole grid.

    A result's second item, when non-empty, is appended to ``keep``: the driver
    holds per-block numbers and the rare extra rows, never a list of every result.
    """
    out = np.zeros(blocks.grid.n_blocks, dtype=np.int64)
    for i, result in runner.imap(stage, fn, blocks, args, resources=resources):
        if isinstance(result, tuple):
            result, extra = result
            if keep is not None and len(extra):
                keep.append(extra)
        if result is not None:
            out[blocks.linears[i]] = result
    return out


def _number(cfg: SegmentConfig, ctx: RunContext, runner: BlockRunner, counts: np.ndarray,
            timings: dict[str, float]) -> np.ndarray:
    """Pairs, per-block roots, wide groups: the offsets that make final IDs (prefix sums of root counts)."""
    labelled = _Blocks(ctx.grid, np.flatnonzero(counts > 0))
    seeded = cfg.stitch == "seeds"
    pairs_task, pairs_args = (seed_pairs_task, None) if seeded else (iou_pairs_task, lambda b: (cfg.min_iou,))
    timed(timings, "pairs", lambda: _fold(runner, "pairs", pairs_task, labelled, pairs_args))
    counts_h, wide = runner.share(counts), list[np.ndarray]()
    nonroots = timed(timings, "resolve", lambda: _fold(
        runner, "resolve", resolve_task, labelled, lambda b: (counts_h,), keep=wide))
    nonroots += _add_wide_roots(ctx, np.concatenate(wide or [np.zeros((0, 2), np.uint64)]), ctx.grid.n_blocks)
    offsets = _prefix(counts - nonroots)
    if offsets[-1] > MAX_LOCAL:
        raise InputError(f"{offsets[-1]} objects do not fit in uint32 IDs (at most {MAX_LOCAL}); segment in parts")
    return offsets


def saved(records: RecordStore | None, name: str, compute: Callable[[], Any]) -> Any:
    """A driver-side result between stages: loaded if a previous attempt saved it, else computed and saved."""
    if records is None:
        return compute()
    found, value = records.load(name)
    if found:
        logger.info("%s: loaded from an earlier attempt", name)
        return value
    value = compute()
    fault_point(name, 0, "written")
    records.save(name, value)
    fault_point(name, 0, "saved")
    return value


def run_stages(
    cfg: SegmentConfig, ctx: RunContext, plan: Plan, runner: BlockRunner, out_url: str, *, predict: bool,
    tissue: TissueMask | None = None, startup: dict[str, float] | None = None,
) -> SegmentResult:
    """Every stage of one run; ``startup`` holds the driver's seconds before it (plan: normalisation,
    diameter, halo; tissue: the tissue mask), reported first among the timings."""
    grid, timings, n = ctx.grid, dict(startup or {}), ctx.grid.n_blocks
    active = tissue.active if tissue is not None else np.ones(n, dtype=bool)
    blocks = _Blocks(grid, np.flatnonzero(active))
    runner.set_context(ctx)
    seeded = cfg.stitch == "seeds"
    voronoi = ctx.decoder.name == "voronoi-otsu"
    if ctx.image is not None and predict and not active.all():
        timed(timings, "copy", lambda: _fold(runner, "copy", copy_task, _Blocks(grid, np.flatnonzero(~active))))
    with_seeds = seeded and not voronoi
    if predict and cfg.gpu_resources:
        # The GPU worker's process does only what the device needs (one GIL for all its blocks' host
        # work); the rest runs on every worker. Stage names differ from the one-stage form, so that a
        # resumed run never takes one form's records for the other's.
        timed(timings, "predict", lambda: _fold(
            runner, "predict-gpu", predict_task, blocks, lambda b: (False, False), resources={"GPU": 1}))
        counts = timed(timings, "seeds", lambda: _fold(runner, "predict-host", host_task, blocks,
                                                       lambda b: (with_seeds,)))
    else:
        counts = timed(timings, "predict" if predict else "seeds", lambda: _fold(
            runner, "predict", predict_task, blocks, lambda b: (with_seeds,)))
    if voronoi:
        ctx, plan = _voronoi_threshold(ctx, plan, runner, blocks, timings)
        counts = timed(timings, "seeds", lambda: _fold(runner, "seeds", voronoi_seeds_task, blocks))
    if not seeded:
        counts = timed(timings, "decode", lambda: _fold(runner, "decode", local_decode_task, blocks))
    records = runner.records
    offsets = saved(records, "offsets", lambda: _number(cfg, ctx, runner, counts, timings))
    counts_h, offsets_h, far = runner.share(counts), runner.share(offsets), list[BlockStats]()
    write_fn = flood_task if seeded else iou_write_task
    timed(timings, "flood", lambda: _fold(runner, "flood", write_fn, blocks, lambda b: (counts_h, offsets_h), keep=far))
    far_by_owner = _by_owner(combine_stats(far), offsets)
    active_h = runner.share(active)
    n_kept = timed(timings, "measure", lambda: _fold(
        runner, "measure", measure_task, _Blocks(grid, np.flatnonzero(np.diff(offsets) > 0)),
        lambda b: (active_h, offsets_h, far_by_owner.get(b.linear, BlockStats.empty()))))
    kept_offsets = _prefix(n_kept)
    kept_h = runner.share(kept_offsets)
    mask_h = runner.share((tissue.mask, tissue.factor)) if tissue is not None else None
    timed(timings, "relabel", lambda: _fold(runner, "relabel", relabel_task, blocks,
                                            lambda b: (offsets_h, kept_h, mask_h)))
    timed(timings, "pyramid", lambda: _build_pyramids(ctx, runner))
    voxel = ctx.labels.voxel_size
    if records is None or not records.done("table"):  # a resumed run keeps the parts already written
        clear_table(ctx.table_url, ctx.labels.storage_options)
    timed(timings, "table", lambda: runner.run(
        "table", table_task, table_parts(n_kept, ROWS_PER_TABLE_FILE), lambda p: (kept_h, voxel)))
    n_objects = int(kept_offsets[-1])
    _finalize(cfg, ctx, plan, n_objects, predict, tissue, timings)
    return SegmentResult(
        output=out_url, labels_url=ctx.labels.url, table_url=ctx.table_url, n_objects=n_objects,
        n_blocks=grid.n_blocks, grid=grid, voxel_size=voxel, timings=timings,
        dashboard_link=getattr(runner.client, "dashboard_link", None), n_skipped=n - len(blocks),
        skipped=dict(runner.skipped),
    )


def _add_wide_roots(ctx: RunContext, pairs: np.ndarray, n_blocks: int) -> np.ndarray:
    """Roots of the groups wider than two blocks (one union-find over their pairs only), added to the
    root tables of their blocks; returns the non-roots added per block."""
    added = np.zeros(n_blocks, dtype=np.int64)
    ids, roots = merge_wide(pairs)
    if not len(ids):
        return added
    blk, loc = split_provisional(ids)
    logger.info("%d IDs in objects wider than two blocks, in %d blocks", len(ids), len(np.unique(blk)))
    for b in np.unique(blk).tolist():
        sel = blk == b
        table = ctx.scratch.load("roots", b)
        new = ~np.isin(loc[sel], table["nonroot"])  # a resumed run may have added them already: add once
        nonroot = np.concatenate([table["nonroot"], loc[sel][new]])
        order = np.argsort(nonroot)
        ctx.scratch.save("roots", b, nonroot=nonroot[order],
                         roots=np.concatenate([table["roots"], roots[sel][new]])[order])
        added[b] = int(sel.sum())
    return added


def _by_owner(stats: BlockStats, offsets: np.ndarray) -> dict[int, BlockStats]:
    """Rows of objects wider than two blocks, per owning block."""
    owner = owner_blocks(stats.ids, offsets)
    return {int(r): BlockStats(**{f.name: getattr(stats, f.name)[owner == r] for f in fields(stats)})
            for r in np.unique(owner)}


def _voronoi_threshold(
    ctx: RunContext, plan: Plan, runner: BlockRunner, blocks: Sequence[Block], timings: dict[str, float]
) -> tuple[RunContext, Plan]:
    """Whole-volume Otsu threshold of the outline-blurred foreground, from every write ROI's histogram."""

    def whole_volume_histogram() -> np.ndarray:
        total = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        for _, counts in runner.imap("histogram", histogram_task, blocks):  # folded as they arrive
            total += counts
        return total

    threshold = otsu_from_histogram(timed(timings, "histogram", whole_volume_histogram))
    logger.info("voronoi-otsu: whole-volume Otsu threshold %.4f", threshold)
    decoder = replace(ctx.decoder, threshold=threshold)
    ctx = replace(ctx, decoder=decoder)
    runner.set_context(ctx)
    return ctx, replace(plan, decoder=decoder)


def _build_pyramids(ctx: RunContext, runner: BlockRunner) -> None:
    for level in range(1, ctx.labels.n_levels):
        items: list[tuple[str, int, Any]] = [("labels", level, r) for r in ctx.labels.pyramid_rois(level)]
        if ctx.tissue is not None:
            items += [("tissue", level, r) for r in ctx.tissue.pyramid_rois(level)]
        if ctx.image is not None:
            items += [("image", level, r) for r in ctx.image.pyramid_rois(level)]
        runner.run(f"pyramid-{level}", pyramid_task, items)


def _predictor_record(spec: Any) -> dict[str, Any] | str:
    """What predicted the maps, for the output's metadata: the spec's fields (a model run: the package,
    the data's voxel size and diameter, any cap on enlargement), else its ``repr``."""
    if is_dataclass(spec) and not isinstance(spec, type):
        return {"kind": type(spec).__name__, **json.loads(json.dumps(asdict(spec), default=str))}
    return repr(spec)


def _finalize(
    cfg: SegmentConfig, ctx: RunContext, plan: Plan, n_objects: int, predicted: bool, tissue: TissueMask | None,
    timings: dict[str, float],
) -> None:
    """Metadata (labels, tissue, maps, then the root: the output is complete from that write on),
    then the clean-up. Writing the same attributes twice gives the same bytes, so a run killed in
    here just does it again."""
    run = {
        "n_objects": n_objects,
        "table": f"{ctx.labels.name}.parquet",
        "config": cfg.model_dump(mode="json"),
        "decode": {k: getattr(plan.params, k) for k in plan.params.__dataclass_fields__},
        "diameter_um": plan.diameter_um,
        "decoder": plan.decoder.as_dict(),
        "stitch": plan.stitch,
        "predictor": _predictor_record(plan.predictor),
        **({"diameter_estimate": plan.diameter_estimate.as_dict()} if plan.diameter_estimate else {}),
        "grid": {"block_shape": list(plan.grid.block_shape), "halo": list(plan.grid.halo.shape)},
        "skipped_blocks": tissue.n_skipped if tissue is not None else 0,
        "n_blocks": plan.grid.n_blocks,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    ctx.labels.finalize({"run": run}, n_labels=n_objects)
    fault_point("finalize", 0, "labels")
    if ctx.tissue is not None and tissue is not None:
        ctx.tissue.finalize({"tissue": {
            "level": tissue.level, "threshold": tissue.threshold, "values": {"1": "tissue", "2": "margin"},
            "skipped_blocks": tissue.n_skipped,
        }})
    if predicted and cfg.save_maps:
        ctx.maps.finalize({"role": "bcd-maps"})
    if ctx.image is not None:
        ctx.image.finalize({"labels": [LABEL_NAME]})
    elif cfg.output_mode == "labels-only":
        root = open_group(ctx.labels.url.rsplit("/", 2)[0], ctx.labels.storage_options, mode="r+")
        root.attrs.update({"bigseg": {**dict(root.attrs).get("bigseg", {}), "complete": True}})
    fault_point("finalize", 0, "complete")
    if predicted and not cfg.save_maps:
        remove_tree(ctx.maps.url, ctx.maps.storage_options)
    ctx.scratch.remove()
