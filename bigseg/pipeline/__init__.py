"""Composition of the stages into block-wise runs on Dask."""

from bigseg.pipeline._executor import BlockRunner, open_client
from bigseg.pipeline._segment import SegmentResult, decode, segment

__all__ = ["BlockRunner", "SegmentResult", "decode", "open_client", "segment"]
