"""``bigseg synth OUT``: write a synthetic nuclei volume with ground-truth labels."""

from __future__ import annotations

import logging
from typing import Any, Optional

import typer

from bigseg.cli._common import cluster

__all__ = ["register"]


def synth_command(
    output: str = typer.Argument(..., help="Output OME-Zarr path or URL; labels go to OUT/labels/truth."),
    shape: tuple[int, int, int] = typer.Option((128, 256, 256), "--shape", help="Volume shape Z Y X (voxels)."),
    voxel_size: Optional[tuple[float, float, float]] = typer.Option(
        None, "--voxel-size", help="Voxel size Z Y X in µm; default: the preset's."
    ),
    preset: str = typer.Option("confocal", "--preset", help="mesospim, confocal, lightsheet-organoid, dense or em-like."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same volume (whatever the blocking)."),
    block_shape: tuple[int, int, int] = typer.Option((128, 128, 128), "--block-shape", help="Block shape Z Y X."),
    tissue: Optional[str] = typer.Option(
        None, "--tissue", help="'none' (default), 'ellipsoid' or 'brain': nuclei only inside that tissue, in a dark box."
    ),
    outside_background: Optional[float] = typer.Option(
        None, "--outside-background", help="Background level outside the tissue (default 0: camera noise only)."
    ),
    n_levels: int = typer.Option(1, "--n-levels", help="Resolution levels to write."),
    ngff_version: str = typer.Option("0.5", "--ngff-version", help="'0.5' (zarr v3) or '0.4' (zarr v2)."),
    scheduler: Optional[str] = typer.Option(
        None, help="'threads' (default, this process), 'local' (a local cluster) or a scheduler address."
    ),
    n_workers: Optional[int] = typer.Option(None, "--n-workers", help="Workers of the local cluster (--scheduler local)."),
    overwrite: bool = typer.Option(False, "--overwrite/--no-overwrite", help="Replace an existing output."),
) -> None:
    """Write a synthetic 3D nuclei image with exact instance labels (OME-Zarr)."""
    from bigseg.synth import write_synthetic

    extra: dict[str, Any] = {
        k: v for k, v in (("tissue", tissue), ("outside_background", outside_background)) if v is not None
    }
    with cluster(scheduler, n_workers) as client:
        result = write_synthetic(
            output, shape, voxel_size=voxel_size, preset=preset, seed=seed, block_shape=block_shape,
            client=client, overwrite=overwrite, n_levels=n_levels, ngff_version=ngff_version, **extra,
        )
    vs = " x ".join(f"{v:g}" for v in result.voxel_size)
    typer.echo(
        f"wrote {result.n_nuclei} nuclei ({result.preset}, seed {result.seed}) in a "
        f"{' x '.join(map(str, result.shape))} volume at {vs} µm"
    )
    typer.echo(f"image:  {result.url}")
    typer.echo(f"labels: {result.labels_url}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_command)
    logging.getLogger(__name__).debug("registered synth")
