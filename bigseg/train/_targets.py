"""Training targets from instance labels: NucMM's BCD maps.

For a ``(Z, Y, X)`` instance-label volume (0 = background) the three targets are::

    foreground  labels > 0                                   {0, 1}
    contour     voxels on an instance border (both sides)     {0, 1}
    distance    tanh(d_in / alpha) inside an instance         (0, 1)
                -tanh(d_out / beta) in the background         (-1, 0]

``d_in`` is the distance (voxels) to the nearest voxel of *another* label
(background or a touching nucleus), so touching nuclei are separated by a
valley of the distance map; ``d_out`` is the distance to the nearest nucleus.
``alpha = 8`` and ``beta = 50`` follow NucMM (pytorch_connectomics'
``edt_semantic``), made instance-aware here.
"""

from __future__ import annotations

import edt
import numpy as np

from bigseg.errors import InputError

__all__ = ["DISTANCE_ALPHA", "DISTANCE_BETA", "bcd_targets"]

DISTANCE_ALPHA = 8.0
DISTANCE_BETA = 50.0


def _thick_boundaries(lab: np.ndarray) -> np.ndarray:
    """Voxels with a 6-neighbour of another label, on both sides (skimage's ``mode="thick"``)."""
    out = np.zeros(lab.shape, dtype=bool)
    for ax in range(lab.ndim):
        lo = [slice(None)] * lab.ndim
        hi = [slice(None)] * lab.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        diff = lab[tuple(lo)] != lab[tuple(hi)]
        out[tuple(lo)] |= diff
        out[tuple(hi)] |= diff
    return out


def bcd_targets(
    labels: np.ndarray,
    *,
    alpha: float = DISTANCE_ALPHA,
    beta: float = DISTANCE_BETA,
    anisotropy: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """BCD targets of an instance-label volume.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        Instance labels, 0 = background.
    alpha, beta : float
        Distance scales (in units of ``anisotropy``, voxels by default) inside
        and outside nuclei.
    anisotropy : 3 floats
        Voxel spacing used by the distance transform.

    Returns
    -------
    (3, Z, Y, X) ndarray of float32
        Foreground, contour and signed distance targets.
    """
    if labels.ndim != 3:
        raise InputError(f"`labels` must be a (Z, Y, X) volume, got shape {labels.shape}")
    if alpha <= 0 or beta <= 0:
        raise InputError(f"`alpha` and `beta` must be > 0, got alpha={alpha}, beta={beta}")
    lab = np.ascontiguousarray(labels, dtype=np.uint32)
    fg = lab > 0
    out = np.empty((3, *lab.shape), dtype=np.float32)
    out[0] = fg
    out[1] = _thick_boundaries(lab)
    # black_border=False: a nucleus cut by the patch edge is not bounded there.
    d_in = edt.edt(lab, anisotropy=anisotropy, black_border=False)
    if fg.all():
        d_out = np.zeros(lab.shape, dtype=np.float32)
    elif not fg.any():
        d_out = np.full(lab.shape, np.inf, dtype=np.float32)
    else:
        d_out = edt.edt(~fg, anisotropy=anisotropy, black_border=False)
    out[2] = np.where(fg, np.tanh(d_in / alpha), -np.tanh(d_out / beta))
    return out
