"""Per-nucleus measurements accumulated block by block."""

from bigseg.measure._table import BlockStats, block_stats, combine_stats, object_table

__all__ = ["BlockStats", "block_stats", "combine_stats", "object_table"]
