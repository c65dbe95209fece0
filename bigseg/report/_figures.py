"""The report's figures, each rendered to PNG bytes (matplotlib, Agg: no display needed).

Every figure is built from arrays the caller read: a coarse pyramid level (a few million voxels)
or a small full-resolution crop, never level 0 whole.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

__all__ = ["crops_figure", "density_figure", "histograms_figure", "projections_figure", "slices_figure"]

_OUTLINE = (1.0, 0.25, 0.1)  # outlines in orange-red over the grey image


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figure(n_cols: int, n_rows: int = 1, width: float = 4.0, height: float = 4.0):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows), squeeze=False)
    return fig, axes


def _stretch(image: np.ndarray) -> np.ndarray:
    """Image to [0, 1] between its 1st and 99.8th percentiles (shown the same in every panel)."""
    lo, hi = np.percentile(image, [1.0, 99.8]) if image.size else (0.0, 1.0)
    return np.clip((image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6), 0, 1)


def _overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(Y, X, 3) RGB: the stretched image in grey with label outlines on top."""
    from skimage.segmentation import find_boundaries

    rgb = np.repeat(image[..., None], 3, axis=-1)
    rgb[find_boundaries(labels, mode="inner")] = _OUTLINE
    return rgb


def _scalebar(ax, length_um: float, pixel_um: float) -> None:  # type: ignore[no-untyped-def]
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    ax.add_artist(AnchoredSizeBar(ax.transData, length_um / pixel_um, f"{length_um:g} µm", "lower right",
                                  pad=0.4, color="white", frameon=False, size_vertical=max(1.0, 0.01 / pixel_um)))


def nice_length(extent_um: float) -> float:
    """A round scale-bar length near a fifth of ``extent_um`` (1, 2 or 5 times a power of ten)."""
    target = max(extent_um / 5.0, 1e-6)
    power = 10 ** np.floor(np.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def slices_figure(image: np.ndarray, labels: np.ndarray, voxel_um: Sequence[float], z_planes: Sequence[int]) -> bytes:
    """Orthogonal mid-slices (xy, xz, yz) then the ``z_planes``, outlines over the image.

    ``image``, ``labels``: (Z, Y, X) of one coarse level; ``voxel_um`` its voxel size.
    """
    img = _stretch(image)
    z, y, x = (s // 2 for s in image.shape)
    vz, vy, vx = voxel_um
    panels = [
        (f"xy, z = {z}", img[z], labels[z], vx / vy, vx),
        (f"xz, y = {y}", img[:, y], labels[:, y], vz / vx, vx),
        (f"yz, x = {x}", img[:, :, x], labels[:, :, x], vz / vy, vy),
    ] + [(f"xy, z = {k}", img[k], labels[k], vx / vy, vx) for k in z_planes]
    n_cols = 3
    n_rows = (len(panels) + n_cols - 1) // n_cols
    fig, axes = _figure(n_cols, n_rows)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, im, lab, aspect, pixel) in zip(axes.ravel(), panels):
        ax.imshow(_overlay(im, lab), aspect=aspect, interpolation="nearest")
        ax.set_title(title)
        _scalebar(ax, nice_length(im.shape[1] * pixel), pixel)
    return _png(fig)


def crops_figure(crops: Sequence[tuple[str, np.ndarray, np.ndarray]], voxel_um: Sequence[float]) -> bytes:
    """Full-resolution (Y, X) crops with outlines, one panel per ``(title, image, labels)``."""
    fig, axes = _figure(len(crops))
    pixel = voxel_um[2]
    for ax, (title, im, lab) in zip(axes.ravel(), crops):
        ax.imshow(_overlay(_stretch(im), lab), aspect=voxel_um[2] / voxel_um[1], interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
        _scalebar(ax, nice_length(im.shape[1] * pixel), pixel)
    return _png(fig)


def projections_figure(image: np.ndarray, voxel_um: Sequence[float]) -> bytes:
    """Maximum-intensity projections along z, y and x of a (Z, Y, X) coarse level."""
    vz, vy, vx = voxel_um
    fig, axes = _figure(3)
    views = [("max over z (xy)", image.max(axis=0), vx / vy, vx), ("max over y (xz)", image.max(axis=1), vz / vx, vx),
             ("max over x (yz)", image.max(axis=2), vz / vy, vy)]
    for ax, (title, im, aspect, pixel) in zip(axes[0], views):
        ax.imshow(_stretch(im), cmap="gray", aspect=aspect, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
        _scalebar(ax, nice_length(im.shape[1] * pixel), pixel)
    return _png(fig)


def density_figure(counts: np.ndarray, y_edges: np.ndarray, x_edges: np.ndarray, depth_um: float) -> bytes:
    """Nuclei per mm³ in (y, x) columns through the whole depth, with a µm scale bar.

    ``counts`` (Y, X) per bin; ``y_edges``, ``x_edges`` the bin edges in µm.
    """
    dy, dx = float(y_edges[1] - y_edges[0]), float(x_edges[1] - x_edges[0])
    per_mm3 = counts / (dy * dx * depth_um) * 1e9
    fig, axes = _figure(1, width=6.0, height=5.0)
    ax = axes[0, 0]
    shown = ax.imshow(per_mm3, cmap="magma", interpolation="nearest", extent=(0, x_edges[-1], y_edges[-1], 0))
    fig.colorbar(shown, ax=ax, label="nuclei per mm³ (projected over z)")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    _scalebar(ax, nice_length(float(x_edges[-1])), 1.0)
    ax.set_title(f"density, {dy:.0f} × {dx:.0f} µm columns")
    return _png(fig)


_HIST_LABELS = {
    "volume_um3": ("volume (µm³)", True),
    "diameter_um": ("equivalent diameter (µm)", True),
    "mean_intensity": ("mean intensity", False),
    "elongation": ("elongation (principal-axis ratio)", False),
}


def histograms_figure(histograms: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """One panel per histogram (counts per bin, ``edges``)."""
    fig, axes = _figure(len(histograms), width=3.6, height=3.0)
    for ax, (name, (counts, edges)) in zip(axes[0], histograms.items()):
        label, log = _HIST_LABELS.get(name, (name, False))
        ax.stairs(counts, edges, fill=True, color="#4c72b0")
        if log:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # the labelled decades only: no overlapping labels
        ax.set_xlabel(label)
        ax.set_ylabel("nuclei")
    fig.tight_layout()
    return _png(fig)
