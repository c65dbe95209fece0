"""``bigseg.segment``: OME-Zarr in → one consistent label volume + nucleus table out.

Stages (one Dask future per active block, bounded window)::

    (driver)     tissue mask on a low-resolution level: blocks far from tissue are skipped
    predict      image read ROI → BCD maps of the write ROI (+ image copy) → local seed labels
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
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bigseg.config import SegmentConfig, load_config
from bigseg.errors import InputError, OutputLockedError, OutputMismatchError
from bigseg.io import (
    ImageWriter,
    Volume,
    create_labels,
    is_complete,
    join_url,
    normalize_url,
    open_group,
    open_volume,
    open_writer,
    path_exists,
    remove_tree,
)
from bigseg.measure import BlockStats, combine_stats
from bigseg.pipeline._executor import BlockRunner, fault_point, open_client
from bigseg.pipeline._lock import LOCK_NAME, RunLock
from bigseg.pipeline._records import RecordStore
from bigseg.pipeline._resume import check_existing, decode_fingerprint, inspect_output, segment_fingerprint
from bigseg.pipeline._outputs import LABEL_NAME, create_outputs, create_tissue_labels, output_url, relative
from bigseg.pipeline._plan import Plan, decode_overrides, make_plan, plan_decoder
from bigseg.pipeline._scratch import Scratch
from bigseg.pipeline._table import clear_table
from bigseg.pipeline._tasks import (
    RunContext,
    copy_task,
    flood_task,
    histogram_task,
    local_decode_task,
    measure_task,
    iou_pairs_task,
    iou_write_task,
    predict_task,
    pyramid_task,
    relabel_task,
    resolve_task,
    seed_pairs_task,
    table_task,
    voronoi_seeds_task,
)
from bigseg.pipeline._tissue import TissueMask, estimate_tissue
from bigseg.predict import PredictorSpec
from bigseg.stitch import MAX_LOCAL, merge_wide, owner_blocks, split_provisional
from bigseg.decode import HISTOGRAM_BINS, DecodeParams, otsu_from_histogram
from bigseg.tiling import Block, Grid, Halo

__all__ = ["SegmentResult", "decode", "segment"]

logger = logging.getLogger(__name__)

#: About this many objects per file of the partitioned table ``labels/nuclei.parquet/``.
ROWS_PER_TABLE_FILE = 1_000_000
WORK = ".bigseg-work"


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


def _resolve_config(config: SegmentConfig | None, options: dict[str, Any]) -> SegmentConfig:
    if config is None:
        return load_config(**options)
    if options:
        return load_config(environ={}, **{**config.model_dump(exclude_unset=True), **options})
    return config


def segment(
    input: str,
    output: str | None = None,
    *,
    config: SegmentConfig | None = None,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_cluster: Callable[[str | None], None] | None = None,
    predictor_spec: PredictorSpec | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> SegmentResult:
    """Segment every nucleus of a 3D image into one consistent label volume.

    Calling it again with the same arguments on an unfinished output continues
    that run block by block (the result is byte-identical to an uninterrupted
    run); on a complete output it returns at once. Another input or
    configuration on an existing output is refused unless ``overwrite``.

    Parameters
    ----------
    input : str
        OME-Zarr (0.4/0.5, bioformats2raw), zarr array or TIFF; a path or an
        fsspec URL.
    output : str, optional
        Where to write the result (``labels/nuclei``, uint32, same pyramid
        levels, and ``labels/nuclei.parquet/``). With ``output_mode="copy"``
        (default) it is an OME-Zarr image holding a copy of the input; with
        ``"labels-only"`` it holds only the labels, naming the input as their
        image; with ``"into-input"`` there is none: the labels go into the
        input OME-Zarr (the only time bigseg writes into its input).
    config : SegmentConfig, optional
        Full configuration; ``options`` override it field by field.
    client : distributed.Client, optional
        Run on this cluster; otherwise ``config.scheduler`` decides.
    progress : callable, optional
        ``progress(stage, done, total)`` after each block.
    on_cluster : callable, optional
        Called once the cluster is up, with its dashboard link (None in-process).
    predictor_spec : PredictorSpec, optional
        A predictor of your own (or :class:`bigseg.predict.SimulatedSpec`) instead of the
        config's; decoding uses a model spec's card thresholds, default ones otherwise,
        unless the config sets them.
    storage_options : dict, optional
        fsspec options for the input and the output URLs (credentials, endpoint);
        never written into the output.
    **options
        Any :class:`~bigseg.config.SegmentConfig` field.

    Returns
    -------
    SegmentResult

    Raises
    ------
    OutputMismatchError
        ``output`` holds a run of another input or configuration.
    OutputLockedError
        Another run is writing ``output``.
    BlockFailedError
        A block failed after its retries; blocks already done stay done.
    """
    cfg = _resolve_config(config, options)
    so = dict(storage_options) if storage_options else None
    in_url = normalize_url(input)
    out_url = output_url(cfg, in_url, output)
    volume = open_volume(in_url, level=cfg.level, channel=cfg.channel, voxel_size=cfg.voxel_size, storage_options=so)
    if cfg.output_mode == "into-input":  # the output is the input: no fingerprint, lock or records there
        return _segment_once(cfg, volume, in_url, out_url, client, progress, on_cluster, predictor_spec, so)
    fingerprint = segment_fingerprint(cfg, volume, in_url, predictor_spec)
    if check_existing(inspect_output(out_url, so), fingerprint, out_url, overwrite=cfg.overwrite):
        return _already_complete(out_url, volume, so)
    with RunLock(out_url, so, stale_after=cfg.lock_stale_s) as lock:
        state = inspect_output(out_url, so)  # another run may have finished it while we waited for the lock
        if check_existing(state, fingerprint, out_url, overwrite=cfg.overwrite):
            return _already_complete(out_url, volume, so)
        records = RecordStore(join_url(out_url, WORK, "records"), so)
        fresh = cfg.overwrite or state.kind != "bigseg" or not records.load("created")[0]
        if fresh and state.kind in ("bigseg", "foreign"):
            remove_tree(out_url, so, keep=(LOCK_NAME,))
        plan = make_plan(cfg, volume, predictor_spec)
        cfg = cfg.model_copy(update={"stitch": plan.stitch})  # the decoder's path where the config names none
        logger.info("grid %s blocks of %s, halo %s", plan.grid.grid_shape, plan.grid.block_shape, plan.grid.halo.shape)
        _check_plan(records, plan, fresh, out_url)
        image, labels, maps, work = create_outputs(
            cfg, volume, plan.grid, in_url, out_url, storage_options=so, fingerprint=fingerprint, keep=(LOCK_NAME,),
            reopen=not fresh,
        )
        scratch = Scratch(join_url(work, WORK), plan.grid, so)
        if fresh:
            scratch.create(slots=plan.stitch == "iou")  # the records live in it: created first
        nucleus = tuple(max(1, round(plan.diameter_um / v)) for v in volume.voxel_size)
        tissue = _saved(records, "tissue", lambda: estimate_tissue(volume, plan.grid, plan.reach, nucleus)) \
            if cfg.skip_empty else None
        ctx = _context(cfg, plan, volume, maps, image, labels, scratch)
        if tissue is not None:
            ctx = replace(ctx, tissue=create_tissue_labels(cfg, labels, reopen=not fresh))
        if fresh:
            records.save("plan", _plan_summary(plan))
            records.save("created", 1)  # last: a kill before it makes the next attempt start afresh
        with _runner(cfg, client, progress, on_cluster, records, lock) as runner:
            return _run(cfg, ctx, plan, runner, out_url, predict=True, tissue=tissue)


def _segment_once(
    cfg: SegmentConfig, volume: Volume, in_url: str, out_url: str, client: Any, progress: Any, on_cluster: Any,
    predictor_spec: PredictorSpec | None, so: dict[str, Any] | None,
) -> SegmentResult:
    """A run without resume (``into-input``: bigseg keeps no lock or records inside an input)."""
    plan = make_plan(cfg, volume, predictor_spec)
    cfg = cfg.model_copy(update={"stitch": plan.stitch})  # the decoder's path where the config names none
    logger.info("grid %s blocks of %s, halo %s", plan.grid.grid_shape, plan.grid.block_shape, plan.grid.halo.shape)
    nucleus = tuple(max(1, round(plan.diameter_um / v)) for v in volume.voxel_size)
    tissue = estimate_tissue(volume, plan.grid, plan.reach, nucleus) if cfg.skip_empty else None
    image, labels, maps, work = create_outputs(cfg, volume, plan.grid, in_url, out_url, storage_options=so)
    scratch = Scratch(join_url(work, WORK), plan.grid, so)
    scratch.create(slots=plan.stitch == "iou")
    ctx = _context(cfg, plan, volume, maps, image, labels, scratch)
    if tissue is not None:
        ctx = replace(ctx, tissue=create_tissue_labels(cfg, labels))
    with _runner(cfg, client, progress, on_cluster, None, None) as runner:
        return _run(cfg, ctx, plan, runner, out_url, predict=True, tissue=tissue)


def _context(
    cfg: SegmentConfig, plan: Plan, volume: Volume, maps: ImageWriter, image: ImageWriter | None,
    labels: ImageWriter, scratch: Scratch,
) -> RunContext:
    """What every task of the run shares, including how far an object may lie from its owning block."""
    grid = plan.grid
    if cfg.stitch == "seeds":
        # a write-ROI voxel takes a seed from the read ROI (ceil(halo / block) blocks away), whose group spans <= 2 blocks
        reach = tuple(1 + -(-h // b) for h, b in zip(grid.halo.shape, grid.block_shape))
    else:
        reach = (1,) * len(grid.block_shape)
    voxel = float(np.prod(labels.voxel_size))
    min_size = int(np.ceil(plan.params.min_volume_um3 / voxel)) if plan.params.min_volume_um3 > 0 else 0
    table_url = join_url(labels.url.rsplit("/", 1)[0], f"{labels.name}.parquet")
    return RunContext(grid, volume, plan.normalization, plan.predictor, plan.params, maps, image, labels, scratch,
                      table_url=table_url, owner_reach=reach, min_size=min_size, decoder=plan.decoder)


def _plan_summary(plan: Plan) -> str:
    """The values derived from the input at the start (JSON); a resumed run must derive the same."""
    return json.dumps({
        "block_shape": list(plan.grid.block_shape), "halo": list(plan.grid.halo.shape),
        "diameter_um": plan.diameter_um, "decode": {k: getattr(plan.params, k) for k in plan.params.__dataclass_fields__},
        "normalization": repr(plan.normalization), "predictor": repr(plan.predictor),
    }, sort_keys=True)


def _check_plan(records: RecordStore, plan: Plan, fresh: bool, out_url: str) -> None:
    if fresh:
        return
    found, recorded = records.load("plan")
    if found and recorded != _plan_summary(plan):
        raise OutputMismatchError(
            f"output {out_url!r}: the run derived other values from the input than when it started "
            f"(recorded {recorded}, now {_plan_summary(plan)}); pass --overwrite to start again, or choose another output"
        )


def _already_complete(out_url: str, volume: Volume, so: dict[str, Any] | None, label_name: str = LABEL_NAME) -> SegmentResult:
    labels_url = join_url(out_url, "labels", label_name)
    run = dict(open_group(labels_url, so).attrs).get("bigseg", {}).get("run", {})
    grid_attrs = run.get("grid", {})
    block = tuple(grid_attrs.get("block_shape", volume.shape))
    grid = Grid(volume.shape, tuple(min(b, s) for b, s in zip(block, volume.shape)), Halo.of(grid_attrs.get("halo", 0)))
    _clean_leftovers(out_url, so, label_name)
    logger.info("%s is already complete; nothing to do", out_url)
    return SegmentResult(
        output=out_url, labels_url=labels_url, table_url=labels_url + ".parquet",
        n_objects=int(run.get("n_objects", 0)), n_blocks=grid.n_blocks, grid=grid, voxel_size=volume.voxel_size,
        already_complete=True,
    )


def _clean_leftovers(out_url: str, so: dict[str, Any] | None, label_name: str) -> None:
    """Finish the clean-up of a run killed after its output became complete (work folder,
    unsaved maps, its lock); nothing is written when there is nothing to clean."""
    work = join_url(out_url, WORK if label_name == LABEL_NAME else f"{WORK}-{label_name}")
    maps = join_url(out_url, "maps")
    stale_maps = label_name == LABEL_NAME and path_exists(maps, so) and not is_complete(maps, storage_options=so)
    if not (path_exists(work, so) or stale_maps or path_exists(join_url(out_url, LOCK_NAME), so)):
        return
    try:
        with RunLock(out_url, so):
            for url in ([work] if path_exists(work, so) else []) + ([maps] if stale_maps else []):
                remove_tree(url, so)
    except OutputLockedError as exc:
        logger.info("not cleaning up %s now: %s", out_url, exc)


class _runner:
    """Context manager: a BlockRunner on the given client, or one opened from the config."""

    def __init__(
        self, cfg: SegmentConfig, client: Any, progress: Any, on_cluster: Any, records: RecordStore | None,
        lock: RunLock | None,
    ) -> None:
        self.cfg, self.client, self.progress, self.on_cluster = cfg, client, progress, on_cluster
        self.records, self.lock = records, lock
        self._cm: Any = None

    def __enter__(self) -> BlockRunner:
        client = self.client
        if client is None:
            cfg = self.cfg
            self._cm = open_client(
                cfg.scheduler, n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker,
                memory_limit=cfg.memory_limit, task_threads=cfg.task_threads,
            )
            client = self._cm.__enter__()
        if self.on_cluster is not None:
            self.on_cluster(getattr(client, "dashboard_link", None))
        return BlockRunner.on(
            client, window=self.cfg.window, progress=self.progress, records=self.records,
            retries=self.cfg.retries, timeout=self.cfg.block_timeout, check=self.lock.check if self.lock else None,
        )

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


def _timed(timings: dict[str, float], stage: str, fn: Callable[[], Any]) -> Any:
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
    _timed(timings, "pairs", lambda: _fold(runner, "pairs", pairs_task, labelled, pairs_args))
    counts_h, wide = runner.share(counts), list[np.ndarray]()
    nonroots = _timed(timings, "resolve", lambda: _fold(
        runner, "resolve", resolve_task, labelled, lambda b: (counts_h,), keep=wide))
    nonroots += _add_wide_roots(ctx, np.concatenate(wide or [np.zeros((0, 2), np.uint64)]), ctx.grid.n_blocks)
    offsets = _prefix(counts - nonroots)
    if offsets[-1] > MAX_LOCAL:
        raise InputError(f"{offsets[-1]} objects do not fit in uint32 IDs (at most {MAX_LOCAL}); segment in parts")
    return offsets


def _saved(records: RecordStore | None, name: str, compute: Callable[[], Any]) -> Any:
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


def _run(
    cfg: SegmentConfig, ctx: RunContext, plan: Plan, runner: BlockRunner, out_url: str, *, predict: bool,
    tissue: TissueMask | None = None,
) -> SegmentResult:
    grid, timings, n = ctx.grid, dict[str, float](), ctx.grid.n_blocks
    active = tissue.active if tissue is not None else np.ones(n, dtype=bool)
    blocks = _Blocks(grid, np.flatnonzero(active))
    runner.set_context(ctx)
    seeded = cfg.stitch == "seeds"
    voronoi = ctx.decoder.name == "voronoi-otsu"
    if ctx.image is not None and predict and not active.all():
        _timed(timings, "copy", lambda: _fold(runner, "copy", copy_task, _Blocks(grid, np.flatnonzero(~active))))
    counts = _timed(timings, "predict" if predict else "seeds", lambda: _fold(
        runner, "predict", predict_task, blocks, lambda b: (seeded and not voronoi,),
        resources={"GPU": 1} if cfg.gpu_resources and predict else None))
    if voronoi:
        ctx, plan = _voronoi_threshold(ctx, plan, runner, blocks, timings)
        counts = _timed(timings, "seeds", lambda: _fold(runner, "seeds", voronoi_seeds_task, blocks))
    if not seeded:
        counts = _timed(timings, "decode", lambda: _fold(runner, "decode", local_decode_task, blocks))
    records = runner.records
    offsets = _saved(records, "offsets", lambda: _number(cfg, ctx, runner, counts, timings))
    counts_h, offsets_h, far = runner.share(counts), runner.share(offsets), list[BlockStats]()
    write_fn = flood_task if seeded else iou_write_task
    _timed(timings, "flood", lambda: _fold(runner, "flood", write_fn, blocks, lambda b: (counts_h, offsets_h), keep=far))
    far_by_owner = _by_owner(combine_stats(far), offsets)
    active_h = runner.share(active)
    n_kept = _timed(timings, "measure", lambda: _fold(
        runner, "measure", measure_task, _Blocks(grid, np.flatnonzero(np.diff(offsets) > 0)),
        lambda b: (active_h, offsets_h, far_by_owner.get(b.linear, BlockStats.empty()))))
    kept_offsets = _prefix(n_kept)
    kept_h = runner.share(kept_offsets)
    mask_h = runner.share((tissue.mask, tissue.factor)) if tissue is not None else None
    _timed(timings, "relabel", lambda: _fold(runner, "relabel", relabel_task, blocks,
                                             lambda b: (offsets_h, kept_h, mask_h)))
    _timed(timings, "pyramid", lambda: _build_pyramids(ctx, runner))
    voxel = ctx.labels.voxel_size
    if records is None or not records.done("table"):  # a resumed run keeps the parts already written
        clear_table(ctx.table_url, ctx.labels.storage_options)
    _timed(timings, "table", lambda: runner.run(
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

    threshold = otsu_from_histogram(_timed(timings, "histogram", whole_volume_histogram))
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


def decode(
    output: str,
    *,
    label_name: str = LABEL_NAME,
    config: SegmentConfig | None = None,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_cluster: Callable[[str | None], None] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> SegmentResult:
    """Decode the BCD maps kept by ``segment(..., save_maps=True)`` again, with other thresholds.

    No inference runs. The labels go to ``OUT/labels/<label_name>`` (replacing an existing one only
    with ``overwrite=True``). Thresholds not given keep the values of the run that made the maps.
    Resumes like :func:`segment`: the same call continues an unfinished decode and returns at once
    on a complete one.
    """
    cfg = _resolve_config(config, options)
    so = dict(storage_options) if storage_options else None
    out_url = normalize_url(output)
    maps_url = join_url(out_url, "maps")
    if not is_complete(maps_url, storage_options=so):
        raise InputError(
            f"{out_url!r} has no finished BCD maps at {maps_url!r}; run `bigseg segment ... --save-maps` first"
        )
    labels_url = join_url(out_url, "labels", label_name)
    previous = dict(open_group(join_url(out_url, "labels", LABEL_NAME), so).attrs).get("bigseg", {}).get("run", {})
    source = dict(open_group(out_url, so).attrs).get("bigseg", {}).get("source_image")
    if source is None:  # an image copy: measure on it
        volume = open_volume(out_url, storage_options=so)
    else:  # labels only: measure on the source image; the new labels take the old ones' geometry
        used = previous.get("config", {})
        volume = open_volume(source, level=used.get("level", 0), channel=used.get("channel"),
                             voxel_size=used.get("voxel_size"), storage_options=so)
    fingerprint = decode_fingerprint(cfg, maps_url, label_name)
    if check_existing(inspect_output(labels_url, so), fingerprint, labels_url, overwrite=cfg.overwrite):
        return _already_complete(out_url, volume, so, label_name)
    with RunLock(out_url, so, stale_after=cfg.lock_stale_s) as lock:
        state = inspect_output(labels_url, so)
        if check_existing(state, fingerprint, labels_url, overwrite=cfg.overwrite):
            return _already_complete(out_url, volume, so, label_name)
        work = join_url(out_url, f"{WORK}-{label_name}")
        records = RecordStore(join_url(work, "records"), so)
        fresh = cfg.overwrite or state.kind != "bigseg" or not records.load("created")[0]
        defaults = DecodeParams(**previous.get("decode", {}))
        diameter = float(previous.get("diameter_um", 10.0))
        params = replace(defaults, **decode_overrides(cfg))
        maps = open_writer(maps_url, storage_options=so)
        if source is None:
            image = open_writer(out_url, storage_options=so)
        else:
            image = replace(open_writer(join_url(out_url, "labels", LABEL_NAME), storage_options=so), url=out_url,
                            is_labels=False)
        decoder, stitch = plan_decoder(cfg, previous.get("decoder", {}).get("name", "bcd"), diameter, volume.voxel_size)
        cfg = cfg.model_copy(update={"stitch": stitch})
        grid_attrs = previous.get("grid", {})
        grid = Grid(volume.shape, tuple(maps.chunk_shapes[0][-3:]), Halo.of(grid_attrs.get("halo", cfg.halo or 0)))
        plan = Plan(grid, None, None, params, diameter, decoder=decoder, stitch=stitch)
        # Checked above: an existing label image here is this decode's (or `overwrite` was asked for).
        labels = create_labels(image, label_name, dtype="uint32", overwrite=fresh, attrs={"fingerprint": fingerprint},
                               reopen=not fresh,
                               source=relative(source, join_url(out_url, "labels", label_name)) if source else None)
        scratch = Scratch(work, grid, so)
        if fresh:
            scratch.create(slots=cfg.stitch == "iou")
            records.save("created", 1)
        ctx = _context(cfg, plan, volume, maps, None, labels, scratch)
        with _runner(cfg, client, progress, on_cluster, records, lock) as runner:
            return _run(cfg, ctx, plan, runner, out_url, predict=False)
