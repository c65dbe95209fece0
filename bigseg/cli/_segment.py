"""``bigseg segment IN OUT`` (the main job) and ``bigseg decode OUT`` (new thresholds, no inference)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from bigseg.errors import InputError

__all__ = ["register"]

# Decoder options shared by `segment` and `decode`.
_Decoder = Annotated[Optional[str], typer.Option(
    "--decoder", help="'bcd' (NucMM watershed), 'voronoi-otsu' (CellSeg3D) or 'tascan' (3DCellSeg); "
    "default: the model card's (bcd for the classical predictor).",
)]
_SpotSigma = Annotated[Optional[float], typer.Option("--spot-sigma", help="Voronoi-Otsu seed Gaussian σ (µm); default d/4.")]
_OutlineSigma = Annotated[Optional[float], typer.Option("--outline-sigma", help="Voronoi-Otsu mask Gaussian σ (µm); default d/8.")]
_MinTouchingArea = Annotated[Optional[int], typer.Option(
    "--min-touching-area", help="TASCAN: merge at this touching area (voxels); 30.")]
_MinTouchingFraction = Annotated[Optional[float], typer.Option(
    "--min-touching-fraction", help="TASCAN: merge at this share of a supervoxel's surface; 0.51.")]


class _Progress:
    """tqdm bars per stage on a terminal; one line per finished stage in logs (cron, SLURM)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.stage: str | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if not self.tty:
            if done == total:
                typer.echo(f"{stage}: {done}/{total} blocks done", err=True)
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage, self.bar = stage, tqdm(total=total, desc=f"{stage:>10}", unit="block", leave=False)
        assert self.bar is not None
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _report(bar: _Progress, run: Callable[[], Any]) -> None:
    """Run, close the progress bar, print the summary."""
    try:
        result = run()
    finally:
        bar.close()
    typer.echo(result.summary())


def parse_storage_options(text: str | None) -> dict[str, Any] | None:
    """The ``--storage-options`` JSON object, or None."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--storage-options must be a JSON object, got {text!r} ({exc})") from None
    if not isinstance(value, dict):
        raise InputError(f"--storage-options must be a JSON object such as '{{\"anon\": true}}', got {text!r}")
    return value


def _announce(link: str | None) -> None:
    typer.echo(f"Dask dashboard: {link}" if link else
               "running in this process (no Dask dashboard; --scheduler local starts a local cluster)", err=True)


def segment_command(
    input: str = typer.Argument(..., help="OME-Zarr / zarr / TIFF path or fsspec URL."),
    output: Optional[str] = typer.Argument(
        None, help="Output OME-Zarr path or URL (none with --output-mode into-input)."
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML job file (lowest precedence)."),
    output_mode: Optional[str] = typer.Option(
        None, "--output-mode",
        help="'copy' (default): OUT holds a copy of the image and the labels; 'labels-only': OUT holds only the "
        "labels, naming IN as their image; 'into-input': the labels go into IN (an OME-Zarr; no OUT).",
    ),
    predictor: Optional[str] = typer.Option(None, help="'model' or 'classical'."),
    model: Optional[str] = typer.Option(None, help="Model package (folder or .zip) or shipped name; default: the shipped fine model, or the "
        "coarse one where --max-upsample sends small nuclei to it (docs/models.md)."),
    diameter: Optional[str] = typer.Option(
        None, "--diameter", metavar="UM|auto",
        help="Typical nucleus diameter in µm, or 'auto' to estimate it from the image with the model "
        "(a few crops at candidate diameters; logged and recorded in the output). "
        "Default: estimated as with 'auto' (classical predictor: 10).",
    ),
    voxel_size: Optional[tuple[float, float, float]] = typer.Option(None, "--voxel-size", help="Voxel size Z Y X in µm."),
    level: Optional[int] = typer.Option(None, help="Resolution level of the input."),
    channel: Optional[int] = typer.Option(None, help="Channel of a multi-channel image."),
    block_shape: Optional[tuple[int, int, int]] = typer.Option(None, "--block-shape", help="Block shape Z Y X (voxels)."),
    halo: Optional[tuple[int, int, int]] = typer.Option(None, "--halo", help="Halo Z Y X in voxels."),
    stitch: Optional[str] = typer.Option(
        None, help="'seeds' (exact) or 'iou' (per-block labels merged on mutual-best IoU); default: the decoder's "
        "(iou for tascan).",
    ),
    decoder: _Decoder = None,
    spot_sigma: _SpotSigma = None,
    outline_sigma: _OutlineSigma = None,
    min_touching_area: _MinTouchingArea = None,
    min_touching_fraction: _MinTouchingFraction = None,
    min_volume: Optional[float] = typer.Option(None, "--min-volume", help="Remove objects below this volume (µm³); those cut by a face of the volume are kept [default: a tenth of a nucleus]."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Flip test-time augmentation."),
    max_upsample: Optional[float] = typer.Option(
        None, "--max-upsample", metavar="X",
        help="Enlarge the data at most X times per axis on its way to the model (whole-brain light-sheet: 2). With the "
        "default model, small nuclei then go to the shipped coarse model (docs/models.md). Default: no cap."),
    skip_empty: Optional[bool] = typer.Option(
        None, "--skip-empty/--no-skip-empty",
        help="Skip blocks with no tissue, found on a low-resolution level (default: on). Saved as OUT/labels/tissue.",
    ),
    save_maps: Optional[bool] = typer.Option(None, "--save-maps/--no-save-maps", help="Keep BCD maps for `bigseg decode`."),
    ngff_version: Optional[str] = typer.Option(None, "--ngff-version", help="'0.5' (zarr v3) or '0.4' (zarr v2)."),
    scheduler: Optional[str] = typer.Option(
        None, help="'auto' (default: in this process for a small run, else 'local'), 'local' (a Dask cluster on "
        "this machine), 'sync' (in this process) or a scheduler address (tcp://host:8786).",
    ),
    n_workers: Optional[int] = typer.Option(None, "--n-workers", help="Workers of the embedded local cluster."),
    overwrite: Optional[bool] = typer.Option(
        None, "--overwrite/--no-overwrite",
        help="Delete an existing output and start again (without it, the same command continues an unfinished "
        "output and does nothing on a complete one).",
    ),
    block_timeout: Optional[float] = typer.Option(
        None, "--block-timeout", metavar="SECONDS", help="A block task running longer than this counts as failed."
    ),
    retries: Optional[int] = typer.Option(None, "--retries", help="Tries again per failed block (default 1)."),
    storage_options: Optional[str] = typer.Option(
        None, "--storage-options", metavar="JSON",
        help='fsspec options for s3:// and other URLs, e.g. \'{"client_kwargs": {"endpoint_url": "http://..."}}\'; '
        "never written into the output.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Segment every nucleus of a 3D image into OUT (OME-Zarr labels + Parquet table).

    Re-running the same command continues an unfinished OUT block by block and exits 0 at once on a
    complete one, so it is safe to run from cron, scrontab or a Kubernetes CronJob.
    """
    from bigseg.config import load_config
    from bigseg.pipeline import segment

    bar = _Progress(progress)

    def run() -> Any:
        cfg = load_config(
            config, predictor=predictor, model=model, diameter_um=diameter, voxel_size=voxel_size,
            level=level, channel=channel, block_shape=block_shape, halo=halo, stitch=stitch, min_volume_um3=min_volume, tta=tta, max_upsample=max_upsample,
            save_maps=save_maps,
            skip_empty=skip_empty, output_mode=output_mode,
            decoder=decoder, spot_sigma_um=spot_sigma, outline_sigma_um=outline_sigma,
            min_touching_area=min_touching_area, min_touching_fraction=min_touching_fraction,
            ngff_version=ngff_version, scheduler=scheduler, n_workers=n_workers, overwrite=overwrite,
            block_timeout=block_timeout, retries=retries,
        )
        return segment(
            input, output, config=cfg, progress=bar, on_cluster=_announce,
            storage_options=parse_storage_options(storage_options),
        )

    _report(bar, run)


def decode_command(
    output: str = typer.Argument(..., help="An output of `bigseg segment --save-maps`."),
    name: str = typer.Option("nuclei", "--name", help="Label image to write under OUT/labels/."),
    seed_foreground: Optional[float] = typer.Option(None, help="Seeds where foreground > this."),
    seed_contour: Optional[float] = typer.Option(None, help="Seeds where contour < this."),
    seed_distance: Optional[float] = typer.Option(None, help="Seeds where distance > this."),
    mask_foreground: Optional[float] = typer.Option(None, help="Flood only where foreground > this."),
    min_volume: Optional[float] = typer.Option(None, "--min-volume", help="Remove objects below this volume (µm³); those cut by a face of the volume are kept [default: a tenth of a nucleus]."),
    stitch: Optional[str] = typer.Option(None, help="'seeds' or 'iou'."),
    decoder: _Decoder = None,
    spot_sigma: _SpotSigma = None,
    outline_sigma: _OutlineSigma = None,
    min_touching_area: _MinTouchingArea = None,
    min_touching_fraction: _MinTouchingFraction = None,
    scheduler: Optional[str] = typer.Option(
        None, help="'auto' (default: in this process for small maps, else 'local'), 'local', 'sync' or a scheduler address.",
    ),
    overwrite: Optional[bool] = typer.Option(None, "--overwrite/--no-overwrite", help="Replace OUT/labels/NAME."),
    block_timeout: Optional[float] = typer.Option(
        None, "--block-timeout", metavar="SECONDS", help="A block task running longer than this counts as failed."
    ),
    retries: Optional[int] = typer.Option(None, "--retries", help="Tries again per failed block (default 1)."),
    storage_options: Optional[str] = typer.Option(
        None, "--storage-options", metavar="JSON", help="fsspec options for OUT's URL; never written into the output."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Re-decode saved BCD maps with other thresholds or another decoder (no inference); the same command resumes."""
    from bigseg.config import load_config
    from bigseg.pipeline import decode

    bar = _Progress(progress)

    def run() -> Any:
        cfg = load_config(
            None, seed_foreground=seed_foreground, seed_contour=seed_contour, seed_distance=seed_distance,
            mask_foreground=mask_foreground, min_volume_um3=min_volume, stitch=stitch, scheduler=scheduler,
            decoder=decoder, spot_sigma_um=spot_sigma, outline_sigma_um=outline_sigma,
            min_touching_area=min_touching_area, min_touching_fraction=min_touching_fraction,
            overwrite=overwrite, block_timeout=block_timeout, retries=retries,
        )
        return decode(
            output, label_name=name, config=cfg, progress=bar, on_cluster=_announce,
            storage_options=parse_storage_options(storage_options),
        )

    _report(bar, run)


def register(app: typer.Typer) -> None:
    app.command("segment")(segment_command)
    app.command("decode")(decode_command)
