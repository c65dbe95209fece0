"""Provisional object IDs: the block index in the high 32 bits, the block-local label in the low 32.

::

    provisional ID (uint64)
    ┌──────────────── 32 bits ───────────────┬──────────────── 32 bits ───────────────┐
    │          block_linear (0 .. 2**32-1)    │        local label (1 .. 2**32-1)        │
    └─────────────────────────────────────────┴─────────────────────────────────────────┘

Background (0) stays 0 in every block, so ``0`` never collides with a real ID.
Provisional IDs are unique across the volume without any coordination
between blocks, which is what lets every block label independently.
"""

from __future__ import annotations

import numpy as np

from bigseg.errors import InputError

__all__ = ["MAX_BLOCKS", "MAX_LOCAL", "SHIFT", "check_block_linear", "provisional_ids", "split_provisional"]

#: Block indices must be below this (they fill the high 32 bits).
MAX_BLOCKS = 2**32
#: Local labels must be at most this (they fill the low 32 bits).
MAX_LOCAL = 2**32 - 1
_LOW = np.uint64(0xFFFFFFFF)
#: Bits of the local label: a provisional ID is ``(block_linear << SHIFT) | local``.
SHIFT = np.uint64(32)


def check_block_linear(block_linear: int, *, name: str = "block_linear") -> int:
    """Return ``block_linear`` as an int after checking ``0 <= block_linear < 2**32``."""
    if isinstance(block_linear, (bool, np.bool_)) or not isinstance(block_linear, (int, np.integer)):
        raise InputError(f"`{name}` must be an int, got {block_linear!r}")
    b = int(block_linear)
    if not 0 <= b < MAX_BLOCKS:
        raise InputError(
            f"`{name}` must be in 0..{MAX_BLOCKS - 1} (it fills the high 32 bits of provisional IDs), got {b}; "
            "use a larger block_shape so that the grid has fewer than 2**32 blocks"
        )
    return b


def provisional_ids(local: np.ndarray, block_linear: int) -> np.ndarray:
    """Turn one block's local labels into volume-unique provisional IDs.

    Parameters
    ----------
    local : ndarray of uint32 (any shape)
        Block-local labels; 0 is background. Other unsigned or non-negative
        integer dtypes are accepted if every value fits in 32 bits.
    block_linear : int
        The block's row-major index (:attr:`bigseg.tiling.Block.linear`),
        ``0 <= block_linear < 2**32``.

    Returns
    -------
    ndarray of uint64, same shape as ``local``
        ``(block_linear << 32) | local`` where ``local != 0``, else 0.

    Examples
    --------
    >>> provisional_ids(np.array([0, 1, 7], np.uint32), 2).tolist()
    [0, 8589934593, 8589934599]
    """
    b = check_block_linear(block_linear)
    local = np.asarray(local)
    if local.dtype.kind not in "ui":
        raise InputError(f"`local` labels must have an integer dtype, got {local.dtype}")
    if local.dtype.itemsize > 4 or local.dtype.kind == "i":
        if local.size and (local.min() < 0 or local.max() > MAX_LOCAL):
            raise InputError(
                f"`local` labels must be in 0..{MAX_LOCAL} to fit the low 32 bits, got range "
                f"{local.min()}..{local.max()}; relabel the block to consecutive IDs first"
            )
    out = local.astype(np.uint64)
    if b:
        # Multiply by the 0/1 mask instead of fancy indexing: one pass, no index arrays.
        out |= (out != 0).astype(np.uint64) * np.uint64(b << 32)
    return out


def split_provisional(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split provisional IDs into ``(block_linear, local)``.

    Parameters
    ----------
    ids : ndarray of uint64 (any shape)

    Returns
    -------
    block_linear : ndarray of int64, same shape
    local : ndarray of uint32, same shape
        Background (0) gives block 0, local 0.
    """
    ids = np.asarray(ids)
    if ids.dtype != np.uint64:
        if ids.dtype.kind not in "ui" or (ids.size and ids.min() < 0):
            raise InputError(f"provisional IDs must be uint64 (or non-negative integers), got dtype {ids.dtype}")
        ids = ids.astype(np.uint64)
    return (ids >> SHIFT).astype(np.int64), (ids & _LOW).astype(np.uint32)
