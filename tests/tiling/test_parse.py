"""The parse_* family: one validator per kind of value, each naming the argument and the value."""

from __future__ import annotations

import math

import pytest

from bigseg.errors import InputError
from bigseg.tiling import parse_shape, parse_triple, parse_voxel_size


def test_parse_shape_broadcasts_and_checks_the_minimum():
    assert parse_shape(4, name="block_shape") == (4, 4, 4)
    assert parse_shape([1, 2, 3, 4], name="shape", ndim=4) == (1, 2, 3, 4)
    with pytest.raises(InputError, match=r"`halo` values must be >= 0, got \(1, -1, 1\)"):
        parse_shape((1, -1, 1), name="halo", minimum=0)
    with pytest.raises(InputError, match=r"`shape` must have 3 values \(z, y, x\), got 2"):
        parse_shape((1, 2), name="shape")
    with pytest.raises(InputError, match="`shape` must be an int or 3 ints, got True"):
        parse_shape(True, name="shape")


def test_parse_triple_and_voxel_size():
    assert parse_voxel_size([2, 0.5, 0.5]) == (2.0, 0.5, 0.5)
    assert parse_voxel_size(0.5) == (0.5, 0.5, 0.5)
    assert parse_triple((0, 1, 2), name="psf_sigma_um", strict=False) == (0.0, 1.0, 2.0)
    with pytest.raises(InputError, match=r"`voxel_size` must be 3 finite numbers > 0 \(z, y, x\) in µm, got \[1, 0, 1\]"):
        parse_voxel_size([1, 0, 1])
    with pytest.raises(InputError, match=r"`psf_sigma_um` must be 3 finite numbers >= 0 .*got \(1, -1, 1\)"):
        parse_triple((1, -1, 1), name="psf_sigma_um", strict=False)
    with pytest.raises(InputError, match=r"`voxel_size_um` must be 3 numbers \(z, y, x\) in µm, got 'big'"):
        parse_voxel_size("big", name="voxel_size_um")
    with pytest.raises(InputError, match=r"`step` must be 3 finite numbers > 0 \(z, y, x\), got"):
        parse_triple((1.0, math.nan, 1.0), name="step", unit=None)
