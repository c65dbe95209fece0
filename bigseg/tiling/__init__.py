"""Block-wise tiling vocabulary, the base every stage may import.

:class:`Roi`, :class:`Halo`, :class:`Grid`, :class:`Block`, and the
``parse_*`` validators of shapes, triples and voxel sizes.
"""

from bigseg.tiling._grid import Block, Grid
from bigseg.tiling._parse import parse_shape, parse_triple, parse_voxel_size
from bigseg.tiling._roi import Halo, Roi

__all__ = ["Block", "Grid", "Halo", "Roi", "parse_shape", "parse_triple", "parse_voxel_size"]
