"""The ``parse_*`` validators: one per kind of value, used at every entry.

Each returns the value in canonical form (tuples of ``int`` or ``float``) or
raises :class:`~bigseg.errors.InputError` naming the argument, the value
received and what is expected.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from bigseg.errors import InputError

__all__ = ["parse_shape", "parse_triple", "parse_voxel_size"]


def parse_shape(value: int | Iterable[int], *, name: str, ndim: int = 3, minimum: int = 1) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ``ndim`` ints (voxels), each ``>= minimum``.

    A single int is broadcast to every axis.
    """
    if isinstance(value, bool):
        raise InputError(f"`{name}` must be an int or {ndim} ints, got {value!r}")
    if isinstance(value, int):
        out = (int(value),) * ndim
    else:
        try:
            out = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise InputError(f"`{name}` must be an int or {ndim} ints, got {value!r}") from None
    if len(out) != ndim:
        raise InputError(f"`{name}` must have {ndim} values (z, y, x), got {len(out)}: {value!r}")
    for v in out:
        if v < minimum:
            raise InputError(f"`{name}` values must be >= {minimum}, got {out}")
    return out


def parse_triple(
    value: Any, *, name: str, minimum: float = 0.0, strict: bool = True, unit: str | None = "µm"
) -> tuple[float, float, float]:
    """Return ``value`` as three finite floats (z, y, x), each ``> minimum`` (``strict``) or ``>= minimum``.

    A single number is broadcast to every axis. ``unit`` only words the message.

    Examples
    --------
    >>> parse_triple(2, name="psf_sigma_um")
    (2.0, 2.0, 2.0)
    """
    where = f" (z, y, x) in {unit}" if unit else " (z, y, x)"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,) * 3
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"`{name}` must be 3 numbers{where}, got {value!r}") from None
    if len(out) != 3:
        raise InputError(f"`{name}` must be 3 numbers{where}, got {len(out)}: {value!r}")
    if not all(math.isfinite(v) and (v > minimum if strict else v >= minimum) for v in out):
        raise InputError(f"`{name}` must be 3 finite numbers {'>' if strict else '>='} {minimum:g}{where}, got {value!r}")
    return out  # type: ignore[return-value]


def parse_voxel_size(value: Any, *, name: str = "voxel_size") -> tuple[float, float, float]:
    """``value`` as a voxel size: 3 finite floats > 0 (z, y, x) in µm (one number: isotropic)."""
    return parse_triple(value, name=name, minimum=0.0, strict=True, unit="µm")
