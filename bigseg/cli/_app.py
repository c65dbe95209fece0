"""The ``bigseg`` command line: one Typer app, one module per sub-command.

Each module in :data:`COMMAND_MODULES` defines ``register(app)``, which adds
its command(s). Only the CLI configures logging handlers and progress bars.
Bad input (any :class:`~bigseg.errors.BigsegError`) is handled once, here,
for every command: its message on stderr and exit status 2 (1 for a
:class:`~bigseg.errors.BlockFailedError`: the run failed, not the input).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import typer
from typer.core import TyperGroup

from bigseg.errors import BigsegError, BlockFailedError

__all__ = ["COMMAND_MODULES", "app", "main"]

COMMAND_MODULES = [
    "bigseg.cli._segment",
    "bigseg.cli._demo",
    "bigseg.cli._evaluate",
    "bigseg.cli._train",
    "bigseg.cli._synth",
    "bigseg.cli._inspect",
]

EXIT_CODES = (
    "Exit status: 0 success; 2 bad input (a path, option or file that cannot work; the message "
    "says what to change); 1 failure (a block, the cluster or the machine failed; the output is "
    "not marked complete)."
)


class _Commands(TyperGroup):
    """The sub-commands, with the one handler of bigseg's errors."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click)
        try:
            return super().invoke(ctx)
        except BlockFailedError as exc:  # the run failed, not the input: see EXIT_CODES
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except BigsegError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    name="bigseg",
    help="Whole-organ 3D nuclei segmentation on Dask: OME-Zarr in, labels + nucleus table out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog=EXIT_CODES,
)


def _print_version(value: bool) -> None:
    if value:
        from bigseg import __version__

        typer.echo(f"bigseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
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
