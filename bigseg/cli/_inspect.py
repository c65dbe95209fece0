"""``bigseg info OUT``, ``bigseg report OUT`` (look at an output) and ``bigseg tls DIR`` (job certificates)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def info_command(
    output: str = typer.Argument(..., help="An output of `bigseg segment` (folder or URL)."),
) -> None:
    """Whether OUT is complete, the run's configuration, counts and the stages done.

    Exits 1 when OUT is not complete (so scripts can test it), 2 when it is not a bigseg output.
    """
    from bigseg.pipeline import describe_output

    info = describe_output(output)
    typer.echo(info.summary())
    if not info.complete:
        raise typer.Exit(1)


def report_command(
    output: str = typer.Argument(..., help="An output of `bigseg segment` (folder or URL)."),
    to: Optional[Path] = typer.Option(
        None, "--output", "-o", help="HTML file to write (default: OUT/labels/nuclei.report.html)."
    ),
) -> None:
    """Write a self-contained HTML quality report of OUT (one file, images embedded).

    Slices with label outlines, projections, density, histograms, timings, configuration and
    warnings; built from coarse pyramid levels, crops and the table (level 0 is never read whole).
    """
    from bigseg.report import write_report

    typer.echo(f"report: {write_report(output, to)}")


def tls_command(
    directory: Path = typer.Argument(..., help="New folder for the certificate (created with mode 0700)."),
) -> None:
    """Write a fresh TLS certificate for one job's Dask cluster; print its settings as shell exports.

    The settings make the job's scheduler, workers and clients require the certificate:
    eval "$(bigseg tls DIR)" before starting them.
    """
    from bigseg.pipeline import tls_environment, write_job_certificates

    for key, value in tls_environment(write_job_certificates(directory)).items():
        typer.echo(f"export {key}={shlex.quote(value)}")


def register(app: typer.Typer) -> None:
    app.command("info")(info_command)
    app.command("report")(report_command)
    app.command("tls")(tls_command)
