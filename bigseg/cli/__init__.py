"""Command-line interface (``bigseg ...``)."""

from bigseg.cli._app import app, main

__all__ = ["app", "main"]
