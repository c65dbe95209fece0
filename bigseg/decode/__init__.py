"""Decoding: BCD maps → instance labels within one block; the nucleus diameter from decoded objects."""

from bigseg.decode._diameter import (
    CandidateScore,
    DiameterEstimate,
    candidate_grid,
    estimate_diameter,
    estimate_volume_diameter,
)
from bigseg.decode._watershed import DecodeParams, flood_block, foreground_mask, seed_mask, watershed_block

__all__ = [
    "CandidateScore",
    "DecodeParams",
    "DiameterEstimate",
    "candidate_grid",
    "estimate_diameter",
    "estimate_volume_diameter",
    "flood_block",
    "foreground_mask",
    "seed_mask",
    "watershed_block",
]
