"""``bigseg report OUT``: one self-contained HTML file to judge a segmentation by eye.

Built from a coarse pyramid level (at most ``max_voxels`` voxels, read whole), a few
full-resolution crops around nuclei from the table, and the table read in batches, so a whole
brain reports in seconds to minutes and level 0 is never loaded whole. Images are embedded as
base64 PNG: the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import datetime
import html
import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bigseg.errors import InputError
from bigseg.io import Volume, is_local, join_url, open_volume
from bigseg.pipeline import OutputInfo, describe_output
from bigseg.report import _figures as figs
from bigseg.report._stats import TableSummary, open_table, summarize_table
from bigseg.tiling import Roi

__all__ = ["write_report"]

logger = logging.getLogger(__name__)

_CSS = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}
h1{font-size:1.5em} h2{border-bottom:1px solid #ccc;margin-top:1.5em}
figure{margin:0.5em 0} figure img{max-width:100%} figcaption{color:#555;font-size:0.9em}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
.warn{background:#fff3cd;border:1px solid #e0b000;padding:0.5em 1em;margin:0.3em 0}
.bad{background:#f8d7da;border-color:#c00} .count{font-size:2em;font-weight:bold}"""


def _coarse_level(volume: Volume, max_voxels: int) -> int:
    """The finest level with at most ``max_voxels`` voxels (else the coarsest)."""
    for level, shape in enumerate(volume.level_shapes):
        if math.prod(shape) <= max_voxels:
            return level
    return volume.n_levels - 1


def _crop_rois(summary_rows: list[tuple[str, tuple[float, float, float]]], volume: Volume, size: int) -> list[tuple[str, Roi]]:
    out = []
    vs = volume.level_voxel_sizes[0]
    for title, centre_um in summary_rows:
        c = [int(round(u / v)) for u, v in zip(centre_um, vs)]
        shape = (1, min(size, volume.shape[1]), min(size, volume.shape[2]))
        off = [min(max(0, ci - s // 2), n - s) for ci, s, n in zip(c, shape, volume.shape)]
        out.append((title, Roi(tuple(off), shape)))
    return out


def _pick_nuclei(table_url: str, n: int) -> list[tuple[str, tuple[float, float, float]]]:
    """Centres of the nuclei at the 10th, 50th and 90th volume percentiles of the table's first
    batch (enough to pick typical nuclei; memory bounded by the batch)."""
    first = next(open_table(table_url, ["volume_um3", "centroid_z_um", "centroid_y_um", "centroid_x_um"]), None)
    if first is None or first.num_rows == 0:
        return []
    vol = first.column("volume_um3").to_numpy()
    order = np.argsort(vol)
    picks = []
    for q in (0.1, 0.5, 0.9)[:n]:
        i = int(order[min(len(order) - 1, int(q * len(order)))])
        centre = tuple(float(first.column(f"centroid_{a}_um")[i].as_py()) for a in "zyx")
        picks.append((f"{int(q * 100)}th-percentile volume ({vol[i]:.0f} µm³)", centre))
    return picks  # type: ignore[return-value]


def _img(data: bytes, fig_id: str, caption: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure id="{fig_id}"><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _rows(pairs: Sequence[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                               for k, v in pairs) + "</table>"


def _warnings(info: OutputInfo, summary: TableSummary | None) -> list[str]:
    out = []
    if not info.complete:
        out.append('<div class="warn bad"><b>Output not complete.</b> The run did not finish ('
                   + ", ".join(k for k, v in info.parts.items() if not v) + " missing); counts and images "
                   "below are missing or partial. Run <code>bigseg segment</code> again.</div>")
    est = info.run.get("diameter_estimate")
    if isinstance(est, dict) and not est.get("self_consistent", True):
        out.append('<div class="warn"><b>Diameter estimate with weak evidence.</b> No candidate diameter was '
                   f"self-consistent; {est.get('diameter_um')} µm was taken as the closest. Check the sizes below "
                   "and pass <code>--diameter</code> if they look wrong.</div>")
    if summary is not None and summary.n_halo_limit:
        out.append(f'<div class="warn"><b>{summary.n_halo_limit} nuclei reach the halo limit</b> (their box spans '
                   f"at least twice the halo, {info.run.get('grid', {}).get('halo')} voxels, along some axis): a block "
                   "holding one end may not see the seed at the centre, so they may be cut or split at block borders. Increase <code>--halo</code> or check the diameter.</div>")
    if summary is not None and summary.n_border:
        out.append(f'<div class="warn"><b>{summary.n_border} nuclei touch the volume border</b> and may be '
                   "cut by it (their volumes are lower bounds).</div>")
    return out


def _figure_sections(info: OutputInfo, max_voxels: int, crop_size: int, density_bins: int) -> tuple[list[str], TableSummary]:
    """The figures (HTML sections) of a finished output, and the table summary behind them."""
    image, labels = open_volume(info.url), open_volume(join_url(info.url, "labels", "nuclei"))
    level = _coarse_level(labels, max_voxels)
    vs = labels.level_voxel_sizes[level]
    img_l, lab_l = image.read_level(level), labels.read_level(level)
    extent = tuple(s * v for s, v in zip(labels.shape, labels.voxel_size))
    # Bins of at least two nucleus diameters, so a bin's count is a density, not 0 or 1.
    bin_um = max(max(extent[1:]) / density_bins, 2 * float(info.run.get("diameter_um") or 0))
    table_url = join_url(info.url, "labels", str(info.run.get("table", "nuclei.parquet")))
    halo = tuple(info.run.get("grid", {}).get("halo", (0, 0, 0)))
    summary = summarize_table(table_url, halo=halo, extent_um=extent, density_bin_um=bin_um)  # type: ignore[arg-type]
    z_planes = [int(k) for k in np.linspace(0, img_l.shape[0] - 1, 5)[1:-1]]
    sections = ["<h2>Slices</h2>" + _img(figs.slices_figure(img_l, lab_l, vs, z_planes), "fig-slices",
                f"Orthogonal mid-slices and z-slices of level {level} (voxel {tuple(round(v, 3) for v in vs)} µm), "
                "label outlines over the image.")]
    crops = [(f"{title}, z = {roi.offset[0]}", image.read(roi)[0], labels.read(roi)[0])
             for title, roi in _crop_rois(_pick_nuclei(table_url, 3), labels, crop_size)]
    if crops:
        sections.append(_img(figs.crops_figure(crops, labels.voxel_size), "fig-crops",
                             f"Full-resolution crops ({crop_size} voxels) around nuclei of typical sizes."))
    sections.append("<h2>Maximum projections</h2>" + _img(figs.projections_figure(img_l, vs), "fig-projections",
                    f"Maximum-intensity projections of level {level}."))
    depth = extent[0]
    sections.append("<h2>Density</h2>" + _img(figs.density_figure(*summary.density, depth), "fig-density",
                    f"Nuclei per mm³ in columns of about {bin_um:.0f} µm through the whole depth ({depth:.0f} µm), "
                    "from the table's centroids."))
    sections.append("<h2>Distributions</h2>" + _img(figs.histograms_figure(summary.histograms), "fig-histograms",
                    "Volume, equivalent-sphere diameter, mean intensity and elongation of every nucleus."))
    return sections, summary


def _run_section(info: OutputInfo) -> str:
    timings, grid = info.run.get("timings_s", {}), info.run.get("grid", {})
    return "<h2>Run</h2>" + _rows([
        ("complete", info.complete), ("blocks", info.run.get("n_blocks")),
        ("blocks skipped (no tissue)", info.run.get("skipped_blocks", 0)),
        ("blocks failed", "0 (a failed block stops the run)" if info.complete else "unknown: the run did not finish"),
        ("block shape / halo (voxels)", f"{grid.get('block_shape')} / {grid.get('halo')}"),
        ("diameter (µm)", info.run.get("diameter_um")),
        *[(f"stage {s} (s)", f"{timings[s]:.2f}") for s in info.stages_done],
        ("total (s)", f"{sum(timings.values()):.2f}" if timings else None),
    ])


def write_report(
    output: str,
    path: str | os.PathLike[str] | None = None,
    *,
    max_voxels: int = 1 << 23,
    crop_size: int = 192,
    density_bins: int = 64,
) -> Path:
    """Write the HTML quality report of ``output`` (a ``bigseg segment`` output); return its path.

    Parameters
    ----------
    output : str
        The output folder or URL.
    path : path, optional
        Where to write; default ``<output>/labels/nuclei.report.html`` (local outputs only).
    max_voxels : int
        Largest pyramid level read whole (the finest level below this is used).
    crop_size : int
        Full-resolution crops are ``crop_size`` voxels square (one z plane each).
    density_bins : int
        Bins across the longer of y and x in the density map.
    """
    info = describe_output(output)
    if path is None:
        if not is_local(info.url):
            raise InputError(f"{info.url!r} is not a local folder; pass the report path (CLI: --output report.html)")
        path = Path(join_url(info.url, "labels", "nuclei.report.html"))
    path = Path(path)
    sections: list[str] = []
    summary = None
    if info.parts["labels"] and info.parts["image"]:
        sections, summary = _figure_sections(info, max_voxels, crop_size, density_bins)
    n = info.n_objects
    body = [f"<h1>bigseg report: {html.escape(info.url)}</h1>",
            f'<p><span class="count" id="count">{n if n is not None else "?"}</span> nuclei'
            + (f" &middot; {summary.n} rows in the table" if summary is not None else "") + "</p>",
            *_warnings(info, summary), *sections, _run_section(info),
            "<h2>Configuration</h2>" + _rows(sorted(info.run.get("config", {}).items())),
            f"<p><small>written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by bigseg "
            f"{_version()}</small></p>"]
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>bigseg report</title><style>{_CSS}</style>'
            f"</head><body>{''.join(body)}</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info("report written to %s", path)
    return path


def _version() -> str:
    import bigseg

    return str(bigseg.__version__)
