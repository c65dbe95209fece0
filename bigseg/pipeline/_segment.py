"""``bigseg.segment``: OME-Zarr in → one consistent label volume + nucleus table out.

Stages (one Dask future per block, bounded window)::

    predict      image read ROI → BCD maps of the write ROI (+ image copy) → local seed labels
    pairs        seed labels touching across block faces
    (driver)     union-find → global seed numbering (each task gets only its blocks' part)
    flood        read ROI maps + global seeds → marker watershed → write-ROI labels + partial stats
    (driver)     combine partial stats → sizes → small-object removal → consecutive uint32
    relabel      write-ROI labels → final labels, level 0
    pyramid      lower levels (labels nearest, image mean)
    (driver)     table → Parquet; metadata last (a partial output never looks complete)

The ``iou`` stitch mode replaces pairs/flood by per-block decoding of the
whole read ROI and merges on mutual-best IoU where read ROIs intersect.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np

from bigseg.config import SegmentConfig, load_config
from bigseg.errors import InputError
from bigseg.io import (
    ImageWriter,
    Volume,
    create_image,
    create_labels,
    is_complete,
    join_url,
    normalize_url,
    open_group,
    open_volume,
    open_writer,
    remove_tree,
)
from bigseg.maps import MAP_CHANNELS
from bigseg.measure import BlockStats, combine_stats, object_table
from bigseg.pipeline._executor import BlockRunner, open_client
from bigseg.pipeline._plan import Plan, check_output_location, decode_overrides, make_plan
from bigseg.pipeline._scratch import Scratch
from bigseg.pipeline._table import write_table
from bigseg.pipeline._tasks import (
    RunContext,
    flood_task,
    iou_pairs_task,
    iou_write_task,
    local_decode_task,
    predict_task,
    pyramid_task,
    relabel_task,
    seed_pairs_task,
)
from bigseg.predict import PredictorSpec
from bigseg.stitch import Renumbering, number_objects
from bigseg.decode import DecodeParams
from bigseg.tiling import Grid, Halo

__all__ = ["SegmentResult", "decode", "segment"]

logger = logging.getLogger(__name__)

LABEL_NAME = "nuclei"


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

    def summary(self) -> str:
        total = sum(self.timings.values())
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        return (
            f"found {self.n_objects} nuclei in a {self.grid.volume_shape} volume "
            f"({self.n_blocks} blocks of {self.grid.block_shape}, halo {self.grid.halo.shape}) in {total:.1f}s\n"
            f"  stages: {stages}\n"
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
    output: str,
    *,
    config: SegmentConfig | None = None,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_cluster: Callable[[str | None], None] | None = None,
    predictor_spec: PredictorSpec | None = None,
    **options: Any,
) -> SegmentResult:
    """Segment every nucleus of a 3D image into one consistent label volume.

    Parameters
    ----------
    input : str
        OME-Zarr (0.4/0.5, bioformats2raw), zarr array or TIFF; a path or an
        fsspec URL.
    output : str
        Where to write the OME-Zarr result: the image copy, ``labels/nuclei``
        (uint32, same pyramid levels) and ``labels/nuclei.parquet``.
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
    **options
        Any :class:`~bigseg.config.SegmentConfig` field.

    Returns
    -------
    SegmentResult
    """
    cfg = _resolve_config(config, options)
    in_url, out_url = normalize_url(input), normalize_url(output)
    check_output_location(in_url, out_url)
    volume = open_volume(in_url, level=cfg.level, channel=cfg.channel, voxel_size=cfg.voxel_size)
    plan = make_plan(cfg, volume, predictor_spec)
    logger.info("grid %s blocks of %s, halo %s", plan.grid.grid_shape, plan.grid.block_shape, plan.grid.halo.shape)
    image, labels, maps = _create_outputs(cfg, volume, plan.grid, out_url)
    scratch = Scratch(join_url(out_url, ".bigseg-work"), plan.grid)
    scratch.create(slots=cfg.stitch == "iou")
    ctx = RunContext(plan.grid, volume, plan.normalization, plan.predictor, plan.params, maps, image, labels, scratch)
    with _runner(cfg, client, progress, on_cluster) as runner:
        return _run(cfg, ctx, plan, runner, out_url, predict=True)


class _runner:
    """Context manager: a BlockRunner on the given client, or one opened from the config."""

    def __init__(self, cfg: SegmentConfig, client: Any, progress: Any, on_cluster: Any) -> None:
        self.cfg, self.client, self.progress, self.on_cluster = cfg, client, progress, on_cluster
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
        return BlockRunner.on(client, window=self.cfg.window, progress=self.progress)

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


def _create_outputs(
    cfg: SegmentConfig, volume: Volume, grid: Grid, out_url: str
) -> tuple[ImageWriter, ImageWriter, ImageWriter]:
    block = grid.block_shape
    chunk = tuple(b // 2 for b in block) if cfg.shard else block
    shard = block if cfg.shard else None
    n_levels = max(1, volume.n_levels - cfg.level)
    image = create_image(
        out_url, shape=volume.shape, dtype=volume.dtype, voxel_size=volume.voxel_size, chunk_shape=chunk,
        shard_shape=shard, n_levels=n_levels, ngff_version=cfg.ngff_version, overwrite=cfg.overwrite,
    )
    labels = create_labels(image, LABEL_NAME, dtype="uint32")
    maps = _create_maps(image, grid, cfg)
    return image, labels, maps


def _create_maps(image: ImageWriter, grid: Grid, cfg: SegmentConfig) -> ImageWriter:
    return create_image(
        join_url(image.url, "maps"), shape=(len(MAP_CHANNELS), *grid.volume_shape), dtype=cfg.maps_dtype,
        voxel_size=image.voxel_size, chunk_shape=grid.block_shape, ngff_version=cfg.ngff_version,
        channel_names=MAP_CHANNELS, overwrite=True,
    )


def _timed(timings: dict[str, float], stage: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0
    logger.info("stage %s: %.2fs", stage, timings[stage])
    return out


def _run(cfg: SegmentConfig, ctx: RunContext, plan: Plan, runner: BlockRunner, out_url: str, *, predict: bool) -> SegmentResult:
    grid, timings = ctx.grid, dict[str, float]()
    blocks = list(grid.blocks())
    runner.set_context(ctx)
    seeded = cfg.stitch == "seeds"
    counts = _timed(timings, "predict" if predict else "seeds", lambda: runner.run(
        "predict", predict_task, blocks, lambda b: (seeded,),
        resources={"GPU": 1} if cfg.gpu_resources and predict else None,
    ))
    if seeded:
        pairs = _timed(timings, "pairs", lambda: runner.run("pairs", seed_pairs_task, blocks))
    else:
        counts = _timed(timings, "decode", lambda: runner.run("decode", local_decode_task, blocks))
        pairs = _timed(timings, "pairs", lambda: runner.run("pairs", iou_pairs_task, blocks, lambda b: (cfg.min_iou,)))
    numbering = number_objects(np.asarray(counts, dtype=np.int64), np.concatenate(pairs))

    def numbering_for(block: Any) -> tuple[Any]:
        touching = [b.linear for b in grid.blocks_touching(block.read_roi)] if seeded else [block.linear]
        return (numbering.subset(touching),)

    write_fn = flood_task if seeded else iou_write_task
    parts = _timed(timings, "flood", lambda: runner.run("flood", write_fn, blocks, numbering_for))
    stats = combine_stats(parts)
    voxel = float(np.prod(grid_voxel := ctx.labels.voxel_size))
    min_size = int(np.ceil(plan.params.min_volume_um3 / voxel)) if plan.params.min_volume_um3 > 0 else 0
    # Numbered by first voxel, so that the IDs, like the partition, do not depend on the blocking.
    renumbering = Renumbering.from_sizes(stats.ids.astype(np.uint32), stats.count, min_size=min_size,
                                         order=stats.first)
    _timed(timings, "relabel", lambda: runner.run(
        "relabel", relabel_task, blocks, lambda b: (renumbering.subset(parts[b.linear].ids.astype(np.uint32)),)
    ))
    _timed(timings, "pyramid", lambda: _build_pyramids(ctx, runner))
    table_url = _timed(timings, "table", lambda: _write_table(ctx, stats, renumbering, grid_voxel, out_url))
    n_objects = int(renumbering.n_kept)
    _finalize(cfg, ctx, plan, n_objects, predict)
    return SegmentResult(
        output=out_url, labels_url=ctx.labels.url, table_url=table_url, n_objects=n_objects,
        n_blocks=grid.n_blocks, grid=grid, voxel_size=grid_voxel, timings=timings,
        dashboard_link=getattr(runner.client, "dashboard_link", None),
    )


def _build_pyramids(ctx: RunContext, runner: BlockRunner) -> None:
    for level in range(1, ctx.labels.n_levels):
        items: list[tuple[str, int, Any]] = [("labels", level, r) for r in ctx.labels.pyramid_rois(level)]
        if ctx.image is not None:
            items += [("image", level, r) for r in ctx.image.pyramid_rois(level)]
        runner.run(f"pyramid-{level}", pyramid_task, items)


def _write_table(ctx: RunContext, stats: BlockStats, renumbering: Renumbering, voxel_size: Any, out_url: str) -> str:
    new_ids = renumbering.apply(stats.ids.astype(np.uint32))
    keep = np.flatnonzero(new_ids > 0)
    keep = keep[np.argsort(new_ids[keep], kind="stable")]  # rows in ID order
    kept = BlockStats(**{f.name: getattr(stats, f.name)[keep] for f in fields(stats)})
    kept = replace(kept, ids=new_ids[keep].astype(np.uint64))
    url = join_url(out_url, "labels", f"{ctx.labels.name}.parquet")
    write_table(object_table(kept, voxel_size), url)
    return url


def _finalize(cfg: SegmentConfig, ctx: RunContext, plan: Plan, n_objects: int, predicted: bool) -> None:
    ctx.scratch.remove()
    if predicted and cfg.save_maps:
        ctx.maps.finalize({"role": "bcd-maps"})
    elif predicted:
        remove_tree(ctx.maps.url)
    run = {
        "n_objects": n_objects,
        "table": f"{ctx.labels.name}.parquet",
        "config": cfg.model_dump(mode="json"),
        "decode": {k: getattr(plan.params, k) for k in plan.params.__dataclass_fields__},
        "diameter_um": plan.diameter_um,
        **({"diameter_estimate": plan.diameter_estimate.as_dict()} if plan.diameter_estimate else {}),
        "grid": {"block_shape": list(plan.grid.block_shape), "halo": list(plan.grid.halo.shape)},
    }
    ctx.labels.finalize({"run": run})
    if ctx.image is not None:
        ctx.image.finalize({"labels": [LABEL_NAME]})


def decode(
    output: str,
    *,
    label_name: str = LABEL_NAME,
    config: SegmentConfig | None = None,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_cluster: Callable[[str | None], None] | None = None,
    **options: Any,
) -> SegmentResult:
    """Decode the BCD maps kept by ``segment(..., save_maps=True)`` again, with other thresholds.

    No inference runs. The labels go to ``OUT/labels/<label_name>`` (replacing an existing one only
    with ``overwrite=True``). Thresholds not given keep the values of the run that made the maps.
    """
    cfg = _resolve_config(config, options)
    out_url = normalize_url(output)
    maps_url = join_url(out_url, "maps")
    if not is_complete(maps_url):
        raise InputError(
            f"{out_url!r} has no finished BCD maps at {maps_url!r}; run `bigseg segment ... --save-maps` first"
        )
    previous = dict(open_group(join_url(out_url, "labels", LABEL_NAME)).attrs).get("bigseg", {}).get("run", {})
    defaults = DecodeParams(**previous.get("decode", {}))
    diameter = float(previous.get("diameter_um", 10.0))
    params = replace(defaults, **decode_overrides(cfg))
    maps, image, volume = open_writer(maps_url), open_writer(out_url), open_volume(out_url)
    grid_attrs = previous.get("grid", {})
    grid = Grid(volume.shape, tuple(maps.chunk_shapes[0][-3:]), Halo.of(grid_attrs.get("halo", cfg.halo or 0)))
    plan = Plan(grid, None, None, params, diameter)
    labels = create_labels(image, label_name, dtype="uint32", overwrite=cfg.overwrite)
    scratch = Scratch(join_url(out_url, ".bigseg-work"), grid)
    scratch.create(slots=cfg.stitch == "iou")
    ctx = RunContext(grid, volume, None, None, params, maps, None, labels, scratch)
    with _runner(cfg, client, progress, on_cluster) as runner:
        return _run(cfg, ctx, plan, runner, out_url, predict=False)
