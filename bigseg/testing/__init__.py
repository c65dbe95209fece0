"""Test helpers: known-answer volumes, partition comparison, tree digests."""

from bigseg.testing._helpers import balls_volume, same_partition, stop_processes, tree_digest, write_image

__all__ = ["balls_volume", "same_partition", "stop_processes", "tree_digest", "write_image"]
