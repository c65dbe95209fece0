"""Summaries of the nucleus table, read in batches: memory follows the batch, not the nucleus count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = ["TableSummary", "open_table", "summarize_table"]

# Columns the report needs, and how each histogram's values derive from them.
_COLUMNS = ("volume_um3", "mean_intensity", "elongation", "centroid_z_um", "centroid_y_um", "centroid_x_um",
            "touches_border", "bbox_z_min", "bbox_z_max", "bbox_y_min", "bbox_y_max", "bbox_x_min", "bbox_x_max")
HISTOGRAMS = ("volume_um3", "diameter_um", "mean_intensity", "elongation")
N_BINS = 40


@dataclass(frozen=True)
class TableSummary:
    """What the report shows of the table.

    Attributes
    ----------
    n : int
        Rows (nuclei).
    histograms : dict of name to (counts, edges)
        ``volume_um3``, ``diameter_um`` (equivalent-sphere), ``mean_intensity``, ``elongation``;
        ``N_BINS`` bins between the column's min and max (volume and diameter on a log scale).
    density : (counts, y_edges, x_edges)
        Nuclei per (y, x) bin, summed over z; edges in µm, tiling the volume's extent exactly.
    n_border : int
        Nuclei touching the volume border (possibly cut by it).
    n_halo_limit : int
        Nuclei whose box spans at least twice the halo along some axis: a block that holds one
        end of such a nucleus may not see the seed at its centre within its read ROI (write ROI
        + halo), so the nucleus may be cut or split.
    """

    n: int
    histograms: dict[str, tuple[np.ndarray, np.ndarray]]
    density: tuple[np.ndarray, np.ndarray, np.ndarray]
    n_border: int
    n_halo_limit: int


def open_table(url: str, columns: Sequence[str]) -> Iterator[Any]:
    """Record batches of ``columns`` (those present) of the table at ``url``: one Parquet file or
    a folder of them (``part-*.parquet``), read as one dataset."""
    import pyarrow.dataset as ds

    from bigseg.io import get_fs

    fs, path = get_fs(url)
    dataset = ds.dataset(path, filesystem=fs, format="parquet")
    names = [c for c in columns if c in dataset.schema.names]
    return iter(dataset.to_batches(columns=names))


def _batches(url: str, batch_rows: int) -> Iterator[dict[str, np.ndarray]]:
    for batch in open_table(url, _COLUMNS):
        for start in range(0, batch.num_rows, batch_rows):
            part = batch.slice(start, batch_rows)
            cols = {name: part.column(name).to_numpy(zero_copy_only=False) for name in part.schema.names}
            if "volume_um3" in cols:
                cols["diameter_um"] = np.cbrt(6.0 * cols["volume_um3"] / math.pi)
            yield cols


def _edges(lo: float, hi: float, log: bool) -> np.ndarray:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if log and lo > 0:
        return np.geomspace(lo, max(hi, lo * 1.01), N_BINS + 1)
    return np.linspace(lo, hi if hi > lo else lo + 1.0, N_BINS + 1)


def summarize_table(
    url: str,
    *,
    halo: tuple[int, int, int],
    extent_um: tuple[float, float, float],
    density_bin_um: float,
    batch_rows: int = 1 << 16,
) -> TableSummary:
    """Two passes over ``url`` (Parquet): ranges, then histograms, density and warning counts."""
    lo = {h: math.inf for h in HISTOGRAMS}
    hi = {h: -math.inf for h in HISTOGRAMS}
    n = 0
    for cols in _batches(url, batch_rows):
        n += len(next(iter(cols.values()), []))
        for h in HISTOGRAMS:
            v = cols.get(h)
            if v is not None and v.size:
                lo[h], hi[h] = min(lo[h], float(np.nanmin(v))), max(hi[h], float(np.nanmax(v)))
    edges = {h: _edges(lo[h], hi[h], h in ("volume_um3", "diameter_um")) for h in HISTOGRAMS}
    counts = {h: np.zeros(N_BINS, np.int64) for h in HISTOGRAMS}
    # Bins tile the extent exactly (about density_bin_um wide), so no bin hangs over the edge.
    y_edges, x_edges = (np.linspace(0.0, e, max(1, round(e / density_bin_um)) + 1) for e in extent_um[1:])
    density = np.zeros((len(y_edges) - 1, len(x_edges) - 1), np.int64)
    n_border = n_halo = 0
    for cols in _batches(url, batch_rows):
        for h in HISTOGRAMS:
            if h in cols:
                counts[h] += np.histogram(cols[h], edges[h])[0]
        if "centroid_y_um" in cols:
            density += np.histogram2d(cols["centroid_y_um"], cols["centroid_x_um"], (y_edges, x_edges))[0].astype(np.int64)
        if "touches_border" in cols:
            n_border += int(np.count_nonzero(cols["touches_border"]))
        if "bbox_z_min" in cols:
            spans = [cols[f"bbox_{a}_max"] - cols[f"bbox_{a}_min"] for a in "zyx"]
            n_halo += int(np.count_nonzero(np.any([s >= 2 * h for s, h in zip(spans, halo)], axis=0)))
    return TableSummary(n, {h: (counts[h], edges[h]) for h in HISTOGRAMS}, (density, y_edges, x_edges), n_border, n_halo)
