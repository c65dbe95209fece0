"""Block-wise tiling vocabulary: :class:`Roi`, :class:`Halo`, :class:`Grid`, :class:`Block`."""

from bigseg.tiling._grid import Block, Grid
from bigseg.tiling._roi import Halo, Roi, parse_shape

__all__ = ["Block", "Grid", "Halo", "Roi", "parse_shape"]
