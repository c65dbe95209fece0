"""Decoding: maps → instance labels within one block (pure numpy: NucMM's seeded watershed, Voronoi-Otsu, TASCAN)."""

from bigseg.decode._decoder import DECODERS, Decoder, DecoderName, make_decoder
from bigseg.decode._tascan import TascanParams, merge_supervoxels, supervoxels, tascan_block, touching_areas
from bigseg.decode._voronoi import (
    HISTOGRAM_BINS,
    gaussian_support,
    otsu_from_histogram,
    outline_histogram,
    smooth,
    voronoi_flood,
    voronoi_otsu,
    voronoi_seed_mask,
    voronoi_sigmas,
)
from bigseg.decode._watershed import flood_block, foreground_mask, seed_mask, watershed_block
from bigseg.maps import DecodeParams

__all__ = [
    "DECODERS",
    "HISTOGRAM_BINS",
    "DecodeParams",
    "Decoder",
    "DecoderName",
    "TascanParams",
    "flood_block",
    "foreground_mask",
    "gaussian_support",
    "make_decoder",
    "merge_supervoxels",
    "otsu_from_histogram",
    "outline_histogram",
    "seed_mask",
    "smooth",
    "supervoxels",
    "tascan_block",
    "touching_areas",
    "voronoi_flood",
    "voronoi_otsu",
    "voronoi_seed_mask",
    "voronoi_sigmas",
    "watershed_block",
]
