"""The ``bigseg`` command line: one Typer app, one module per sub-command.

Each module in :data:`COMMAND_MODULES` defines ``register(app)``, which adds
its command(s). Only the CLI configures logging handlers and progress bars.
"""

from __future__ import annotations

import importlib
import logging

import typer

__all__ = ["COMMAND_MODULES", "app", "main"]

COMMAND_MODULES = [
    "bigseg.cli._segment",
    "bigseg.cli._demo",
    "bigseg.cli._evaluate",
    "bigseg.cli._train",
    "bigseg.cli._synth",
]

app = typer.Typer(
    name="bigseg",
    help="Whole-organ 3D nuclei segmentation on Dask: OME-Zarr in, labels + nucleus table out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."),
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bigseg").setLevel(level)
    # Dask's own INFO chatter (workers joining and leaving) only with -vv.
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point of the ``bigseg`` console script."""
    app()
