"""A self-contained HTML quality report of a finished output (``bigseg report OUT``)."""

from bigseg.report._html import write_report

__all__ = ["write_report"]
