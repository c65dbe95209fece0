"""``bigseg.segment`` and ``bigseg.decode``: OME-Zarr in → one consistent label volume + nucleus table out.

This module opens (or resumes) an output, plans the run and hands it to ``_driver``, which runs the
stages block by block (its docstring lists them). Every block of every stage leaves a done record once
its output is durable, and every driver-side result between stages is saved as a named record, so the
same call on an unfinished output skips what is done (``_records``, ``_resume``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Callable, Mapping

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
from bigseg.pipeline._driver import SegmentResult, run_stages, runner_for, saved, starting_client, timed
from bigseg.pipeline._lock import LOCK_NAME, RunLock
from bigseg.pipeline._records import RecordStore
from bigseg.pipeline._resume import check_existing, decode_fingerprint, inspect_output, segment_fingerprint
from bigseg.pipeline._outputs import LABEL_NAME, create_outputs, create_tissue_labels, output_url, relative
from bigseg.pipeline._plan import Plan, decode_overrides, make_plan, plan_decoder
from bigseg.pipeline._scratch import Scratch
from bigseg.pipeline._tasks import RunContext
from bigseg.pipeline._tissue import estimate_tissue
from bigseg.predict import ClassicalSpec, PredictorSpec
from bigseg.decode import DecodeParams
from bigseg.tiling import Grid, Halo

__all__ = ["SegmentResult", "decode", "segment"]

logger = logging.getLogger(__name__)

WORK = ".bigseg-work"

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
        # The cluster starts now, in the background, while the driver plans (StartingClient).
        with starting_client(cfg, client, **_size(cfg, volume, predictor_spec)) as starting:
            cfg, plan, startup = _planned(cfg, volume, predictor_spec)
            _check_plan(records, plan, fresh, out_url)
            image, labels, maps, work = create_outputs(
                cfg, volume, plan.grid, in_url, out_url, storage_options=so, fingerprint=fingerprint,
                keep=(LOCK_NAME,), reopen=not fresh,
            )
            scratch = Scratch(join_url(work, WORK), plan.grid, so)
            if fresh:
                scratch.create(slots=plan.stitch == "iou")  # the records live in it: created first
            nucleus = tuple(max(1, round(plan.diameter_um / v)) for v in volume.voxel_size)
            tissue = timed(startup, "tissue", lambda: saved(
                records, "tissue", lambda: estimate_tissue(volume, plan.grid, plan.reach, nucleus))
                if cfg.skip_empty else None)
            ctx = _context(cfg, plan, volume, maps, image, labels, scratch)
            if tissue is not None:
                ctx = replace(ctx, tissue=create_tissue_labels(cfg, labels, reopen=not fresh))
            if fresh:
                records.save("plan", _plan_summary(plan))
                records.save("created", 1)  # last: a kill before it makes the next attempt start afresh
            with runner_for(cfg, starting, progress, on_cluster, records, lock) as runner:
                return run_stages(cfg, ctx, plan, runner, out_url, predict=True, tissue=tissue, startup=startup)


def _size(cfg: SegmentConfig, volume: Volume, predictor_spec: PredictorSpec | None) -> dict[str, Any]:
    """What the ``'auto'`` scheduler weighs: the voxels to segment, and whether a model predicts them."""
    model = not isinstance(predictor_spec, ClassicalSpec) if predictor_spec is not None else cfg.predictor != "classical"
    return {"voxels": int(np.prod(volume.shape, dtype=np.int64)), "model": model}


def _planned(
    cfg: SegmentConfig, volume: Volume, predictor_spec: PredictorSpec | None,
) -> tuple[SegmentConfig, Plan, dict[str, float]]:
    """The run's plan, the config with the plan's stitching path (the decoder's, where the config names
    none) and the start-up seconds so far."""
    startup: dict[str, float] = {}
    plan = timed(startup, "plan", lambda: make_plan(cfg, volume, predictor_spec))
    logger.info("grid %s blocks of %s, halo %s", plan.grid.grid_shape, plan.grid.block_shape, plan.grid.halo.shape)
    return cfg.model_copy(update={"stitch": plan.stitch}), plan, startup


def _segment_once(
    cfg: SegmentConfig, volume: Volume, in_url: str, out_url: str, client: Any, progress: Any, on_cluster: Any,
    predictor_spec: PredictorSpec | None, so: dict[str, Any] | None,
) -> SegmentResult:
    """A run without resume (``into-input``: bigseg keeps no lock or records inside an input)."""
    with starting_client(cfg, client, **_size(cfg, volume, predictor_spec)) as starting:  # starts while the driver plans
        cfg, plan, startup = _planned(cfg, volume, predictor_spec)
        nucleus = tuple(max(1, round(plan.diameter_um / v)) for v in volume.voxel_size)
        tissue = timed(startup, "tissue", lambda: estimate_tissue(volume, plan.grid, plan.reach, nucleus)
                       if cfg.skip_empty else None)
        image, labels, maps, work = create_outputs(cfg, volume, plan.grid, in_url, out_url, storage_options=so)
        scratch = Scratch(join_url(work, WORK), plan.grid, so)
        scratch.create(slots=plan.stitch == "iou")
        ctx = _context(cfg, plan, volume, maps, image, labels, scratch)
        if tissue is not None:
            ctx = replace(ctx, tissue=create_tissue_labels(cfg, labels))
        with runner_for(cfg, starting, progress, on_cluster, None, None) as runner:
            return run_stages(cfg, ctx, plan, runner, out_url, predict=True, tissue=tissue, startup=startup)


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
        voxels = int(np.prod(volume.shape, dtype=np.int64))
        with starting_client(cfg, client, voxels=voxels) as starting, \
                runner_for(cfg, starting, progress, on_cluster, records, lock) as runner:
            return run_stages(cfg, ctx, plan, runner, out_url, predict=False)
