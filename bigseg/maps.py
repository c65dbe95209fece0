"""The BCD maps every predictor writes and the decoder reads (torch-free).

A predictor turns an image block into three per-voxel maps, stacked on a
leading channel axis::

    maps (3, Z, Y, X) float32
    maps[FOREGROUND]  foreground probability  [0, 1]
    maps[CONTOUR]     contour probability     [0, 1]
    maps[DISTANCE]    signed distance         [-1, 1]  (> 0 inside nuclei, 1 at centres)
"""

from __future__ import annotations

__all__ = ["CONTOUR", "DISTANCE", "FOREGROUND", "MAP_CHANNELS"]

MAP_CHANNELS = ("foreground", "contour", "distance")
FOREGROUND, CONTOUR, DISTANCE = 0, 1, 2
