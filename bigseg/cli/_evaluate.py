"""``bigseg evaluate PRED GT``: score predicted labels against ground truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import typer

from bigseg.cli._common import cluster

__all__ = ["register"]


def _values(values: Optional[list[Any]], name: str, n: int = 3) -> Any:
    if not values:
        return None
    if len(values) == 1:
        return (values[0],) * n
    if len(values) != n:
        raise typer.BadParameter(f"{name} takes 1 or {n} values (z y x), got {len(values)}: {values}")
    return tuple(values)


def evaluate_command(
    pred: str = typer.Argument(..., help="Predicted labels: OME-Zarr label group (out.zarr/labels/nuclei), zarr or TIFF."),
    gt: str = typer.Argument(..., help="Ground-truth labels, same shape as PRED."),
    threshold: Optional[list[float]] = typer.Option(
        None, "--threshold", "-t", help="IoU threshold for matching (repeat for several); default 0.1 ... 0.9."
    ),
    mask: Optional[str] = typer.Option(None, "--mask", help="Only score where this image is nonzero."),
    ignore_border: bool = typer.Option(
        False, "--ignore-border/--no-ignore-border", help="Leave objects touching the volume border out of object scores."
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write all scores to this JSON file."),
    block_shape: Optional[list[int]] = typer.Option(None, "--block-shape", help="Block shape z y x (1 or 3 values)."),
    voxel_size: Optional[list[float]] = typer.Option(
        None, "--voxel-size", help="Voxel size z y x in µm for both inputs; skips the metadata comparison."
    ),
    scheduler: Optional[str] = typer.Option(None, help="'sync' (default), 'local' or a scheduler address (tcp://host:8786)."),
    n_workers: Optional[int] = typer.Option(None, "--n-workers", help="Workers of the local cluster (--scheduler local)."),
) -> None:
    """Score PRED against GT: matching at IoU thresholds, Dice, adapted Rand error, VI."""
    from bigseg.evaluate import DEFAULT_THRESHOLDS, evaluate

    with cluster(scheduler, n_workers) as client:
        result = evaluate(
            pred, gt, thresholds=threshold or DEFAULT_THRESHOLDS, mask=mask, ignore_border=ignore_border,
            block_shape=_values(block_shape, "--block-shape") or 128, client=client,
            voxel_size=_values(voxel_size, "--voxel-size"),
        )
    typer.echo(result.to_table())
    if json_out is not None:
        report = {"pred": pred, "gt": gt, "mask": mask, **result.to_dict()}
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"scores written to {json_out}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
    logging.getLogger(__name__).debug("registered evaluate")
