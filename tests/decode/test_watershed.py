from __future__ import annotations

import numpy as np
import pytest

from bigseg.decode import DecodeParams, flood_block, seed_mask, watershed_block
from bigseg.errors import InputError


def two_touching_balls():
    """Foreground: two balls of radius 6 touching at x = 24; distance peaks at their centres."""
    z, y, x = np.ogrid[:24, :24, :48]
    d1 = np.sqrt((z - 12) ** 2 + (y - 12) ** 2 + (x - 18) ** 2)
    d2 = np.sqrt((z - 12) ** 2 + (y - 12) ** 2 + (x - 30) ** 2)
    fg = ((d1 <= 6) | (d2 <= 6)).astype(np.float32)
    dist = np.clip(6 - np.minimum(d1, d2), -6, 6) / 6
    return np.stack([fg, np.zeros_like(fg), dist.astype(np.float32)])


def test_two_touching_balls_give_two_objects():
    labels = watershed_block(two_touching_balls(), DecodeParams(seed_distance=0.5))
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert labels[12, 12, 18] != labels[12, 12, 30]
    assert labels[12, 12, 2] == 0  # background stays background


def test_flood_keeps_marker_ids_and_seed_rule():
    maps = two_touching_balls()
    markers = np.zeros(maps.shape[1:], np.uint32)
    markers[12, 12, 18], markers[12, 12, 30] = 7, 4_000_000_000
    out = flood_block(maps, markers, DecodeParams())
    assert set(np.unique(out)) == {0, 7, 4_000_000_000}
    seeds = seed_mask(maps, DecodeParams(seed_distance=0.9))
    assert seeds[12, 12, 18] and not seeds[12, 12, 24]


def test_bad_maps_and_params():
    with pytest.raises(InputError, match=r"\(3, Z, Y, X\)"):
        seed_mask(np.zeros((2, 4, 4, 4)), DecodeParams())
    with pytest.raises(InputError, match="seed_foreground.*got 1.5"):
        DecodeParams(seed_foreground=1.5)
    with pytest.raises(InputError, match="markers"):
        flood_block(np.zeros((3, 4, 4, 4), np.float32), np.zeros((4, 4, 5), np.uint32), DecodeParams())
