"""``bigseg demo OUT``: synthesize a volume, segment it on a local Dask cluster, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]

# A moderately dense confocal-like volume (the settings of tests/pipeline's accuracy test, larger).
DIAMETER_UM = 10.0
DEMO: dict[str, Any] = dict(
    voxel_size=(1.0, 1.0, 1.0), volume_fraction=0.10, psf_sigma_um=(1.0, 0.5, 0.5), haze=0.0, texture=0.2,
    intensity_cv=0.15, axial_stretch=1.0,
)


def demo_command(
    out: Path = typer.Argument(Path("demo-output"), help="Folder for the synthetic input and the result."),
    shape: tuple[int, int, int] = typer.Option((96, 256, 256), "--shape", help="Volume shape Z Y X (voxels)."),
    block_shape: tuple[int, int, int] = typer.Option((64, 128, 128), "--block-shape", help="Block shape Z Y X."),
    n_workers: int = typer.Option(2, "--n-workers", help="Workers of the embedded local Dask cluster."),
    predictor: str = typer.Option("model", help="'model' (the shipped default) or 'classical'."),
    seed: int = typer.Option(0, help="Seed of the synthetic volume."),
) -> None:
    """Synthesize a nuclei volume with ground truth, segment it on a local Dask cluster, score it."""
    from bigseg.evaluate import evaluate
    from bigseg.pipeline import segment
    from bigseg.synth import write_synthetic

    from bigseg.cli._segment import _Progress, _announce

    out.mkdir(parents=True, exist_ok=True)
    src, dst = out / "synthetic.ome.zarr", out / "segmented.ome.zarr"
    t0 = time.perf_counter()
    synth = write_synthetic(src, shape, preset="confocal", seed=seed, overwrite=True, diameter_um=DIAMETER_UM, **DEMO)
    t_synth = time.perf_counter() - t0
    typer.echo(f"synthesized {synth.n_nuclei} nuclei, {synth.shape} voxels of {synth.voxel_size} µm "
               f"in {t_synth:.1f}s -> {src}")
    bar = _Progress(True)
    try:
        result = segment(
            str(src), str(dst), predictor=predictor, diameter_um=DIAMETER_UM, block_shape=block_shape,
            scheduler="local", n_workers=n_workers, overwrite=True, progress=bar, on_cluster=_announce,
        )
    finally:
        bar.close()
    scores = evaluate(result.labels_url, synth.labels_url, ignore_border=True, thresholds=(0.5, 0.75))
    typer.echo(result.summary())
    m50, m75 = scores.at(0.5), scores.at(0.75)
    typer.echo(
        f"against the ground truth ({synth.n_nuclei} nuclei; nuclei cut by the volume border not scored): "
        f"F1@0.5 {m50.f1:.3f}, AP@0.5 {m50.ap:.3f}, F1@0.75 {m75.f1:.3f}"
    )
    typer.echo(f"open in napari: napari --plugin napari-ome-zarr {dst}   (labels/nuclei; table labels/nuclei.parquet)")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
