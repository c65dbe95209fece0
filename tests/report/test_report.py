"""`bigseg report OUT`: a self-contained HTML file whose figures render, built without reading level 0 whole."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from bigseg.io import Volume, create_image
from bigseg.pipeline import segment
from bigseg.report import write_report
from bigseg.testing import balls_volume, write_image

FIGURES = ("fig-slices", "fig-crops", "fig-projections", "fig-density", "fig-histograms")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """48×96×96 voxels, 2 pyramid levels, 9 balls of radius 5 (one cut by the volume border)."""
    rng = np.random.default_rng(4)
    centres = np.array([(24, y, x) for y in (20, 48, 76) for x in (20, 48, 76)]) + rng.uniform(-2, 2, (9, 3))
    centres[0] = (24, 2, 30)  # half outside: touches the border
    image, _ = balls_volume((48, 96, 96), centres, 5.0, seed=5)
    root = tmp_path_factory.mktemp("report")
    write_image(root / "in.zarr", image, n_levels=2, voxel_size=(2.0, 1.0, 1.0))
    out = root / "out.zarr"
    segment(str(root / "in.zarr"), str(out), scheduler="sync", predictor="classical", diameter_um=10.0,
            block_shape=(24, 48, 48))
    return out


def _embedded_pngs(page: str) -> dict[str, np.ndarray]:
    found = re.findall(r'<figure id="([\w-]+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return {fid: np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")) for fid, b64 in found}


def _non_blank(rgb: np.ndarray) -> bool:
    """More than a frame of one colour: some pixels differ from the most common colour, in many colours."""
    flat = rgb.reshape(-1, rgb.shape[-1])
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    return len(colours) > 16 and counts.max() < 0.98 * len(flat)


def test_report_is_self_contained_with_every_section(output):
    path = write_report(str(output))
    assert path == output / "labels" / "nuclei.report.html"  # by default next to the labels
    page = path.read_text(encoding="utf-8")
    assert not re.search(r'src="(?!data:)', page) and "<link" not in page  # nothing loaded from elsewhere
    pngs = _embedded_pngs(page)
    assert set(pngs) == set(FIGURES)
    for fid, rgb in pngs.items():
        assert _non_blank(rgb), fid
    assert re.search(r'id="count">9<', page)
    assert "touch the volume border" in page and "Output not complete" not in page
    for stage in ("predict", "pairs", "flood", "relabel", "pyramid", "table"):
        assert f"stage {stage} (s)" in page
    assert "<th>block_shape</th><td>[24, 48, 48]</td>" in page


def test_level_0_is_never_read_whole(output, tmp_path, monkeypatch):
    whole_reads = []
    original = Volume.read_level

    def spy(self, level, roi=None):
        if roi is None:
            whole_reads.append(level)
        return original(self, level, roi)

    monkeypatch.setattr(Volume, "read_level", spy)
    write_report(str(output), tmp_path / "r.html", max_voxels=48 * 96 * 96 // 2)
    assert whole_reads and 0 not in whole_reads


def test_incomplete_output_says_so(tmp_path):
    create_image(tmp_path / "partial.zarr", shape=(8, 16, 16), dtype="uint16", voxel_size=(1, 1, 1), chunk_shape=8)
    page = write_report(str(tmp_path / "partial.zarr"), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Output not complete" in page and "image, labels, table missing" in page


_PROBE = """<script>
document.body.setAttribute('data-figures', JSON.stringify(Array.from(document.querySelectorAll('figure')).map(f => {
  const img = f.querySelector('img'), r = img.getBoundingClientRect();
  return {id: f.id, ok: img.complete && img.naturalWidth > 0, x: r.left, y: r.top + window.scrollY,
          w: r.width, h: r.height};
})));
document.body.setAttribute('data-height', document.documentElement.scrollHeight);
</script>"""


def _chromium(*args: str, profile) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(output, tmp_path):
    page = write_report(str(output), tmp_path / "r.html").read_text(encoding="utf-8")
    # A copy with a probe that records where each figure's image landed and whether it decoded.
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    width = 1280
    dom = _chromium(f"--window-size={width},2000", "--dump-dom", probe.as_uri(), profile=tmp_path / "p1")
    figures = json.loads(re.search(r"data-figures=\"([^\"]*)\"", dom.stdout).group(1).replace("&quot;", '"'))
    height = int(re.search(r'data-height="(\d+)"', dom.stdout).group(1))
    assert [f["id"] for f in figures] == list(FIGURES)
    assert all(f["ok"] and f["w"] > 100 and f["h"] > 100 for f in figures), figures
    shot = tmp_path / "shot.png"
    _chromium(f"--window-size={width},{height}", f"--screenshot={shot}", probe.as_uri(), profile=tmp_path / "p2")
    rgb = np.asarray(Image.open(shot).convert("RGB"))
    assert rgb.shape[:2] == (height, width)
    for f in figures:
        crop = rgb[int(f["y"]):int(f["y"] + f["h"]), int(f["x"]):int(f["x"] + f["w"])]
        assert _non_blank(crop), f["id"]


def test_table_summary_counts_and_bins(output):
    from bigseg.report._stats import summarize_table

    table = str(output / "labels" / "nuclei.parquet")
    wide = summarize_table(table, halo=(100, 100, 100), extent_um=(96.0, 96.0, 96.0), density_bin_um=30.0, batch_rows=4)
    tight = summarize_table(table, halo=(1, 1, 1), extent_um=(96.0, 96.0, 96.0), density_bin_um=30.0, batch_rows=4)
    assert wide.n == tight.n == 9
    # Balls of radius 5 span ~11 voxels: far below twice a halo of 100, far above twice a halo of 1.
    assert wide.n_halo_limit == 0 and tight.n_halo_limit == 9
    assert wide.n_border == 1  # the ball half outside the volume
    counts, y_edges, x_edges = wide.density
    assert counts.sum() == 9 and y_edges[-1] == x_edges[-1] == 96.0 and len(y_edges) == 4  # 3 bins of 32 µm
    for name, (c, edges) in wide.histograms.items():
        assert c.sum() == 9 and len(edges) == len(c) + 1, name
