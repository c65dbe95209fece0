"""Decoding: BCD maps → instance labels within one block (pure numpy: seeds, masks, watershed)."""

from bigseg.decode._watershed import flood_block, foreground_mask, seed_mask, watershed_block
from bigseg.maps import DecodeParams

__all__ = [
    "DecodeParams",
    "flood_block",
    "foreground_mask",
    "seed_mask",
    "watershed_block",
]
