"""Decoding: BCD maps → instance labels within one block (pure numpy: seeds, masks, watershed)."""

from bigseg.decode._watershed import DecodeParams, flood_block, foreground_mask, seed_mask, watershed_block

__all__ = [
    "DecodeParams",
    "flood_block",
    "foreground_mask",
    "seed_mask",
    "watershed_block",
]
