"""Real volumes beside the matching synthetic preset, for judging realism.

For each folder of ``shared/data`` (raw.tif, meta.json, labels.tif where
present) this writes ``docs/img/synth_vs_<name>.png`` (mid z and mid y slices,
real | synthetic, same voxel size and field of view) and prints a Markdown
table of intensity and nucleus statistics, real beside synthetic. Presets
without a real counterpart (``em-like``) get ``docs/img/synth_<preset>.png``. Where a
real volume has labels, each panel shows the z plane with most labelled
voxels (and its busiest y row), real and synthetic alike; otherwise the mid
planes.

    python benchmarks/synth_vs_real.py [--data ../shared/data] [--out docs/img] [--seed 0]

Large volumes are cut to at most ``--max-yx`` voxels in y and x around the
centre of their labels (the organoid crop is mostly empty), before anything
is computed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tifffile  # noqa: E402

from bigseg.synth import PRESETS, preset, synthesize, truth_stats  # noqa: E402

# real volume -> the preset modelled on it
MATCH = {
    "cellseg3d_mesospim_c5": "mesospim",
    "gonuclear_ovule_1135": "dense",
    "lstree_organoid_T0301": "lightsheet-organoid",
    "qcanet_embryo_8cell": "confocal",
}
_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load(folder: Path, max_yx: int) -> tuple[dict, np.ndarray, np.ndarray | None]:
    meta = json.loads((folder / "meta.json").read_text())
    raw = tifffile.imread(folder / "raw.tif").astype(np.float64)
    labels = tifffile.imread(folder / "labels.tif") if (folder / "labels.tif").exists() else None
    centre = [s // 2 for s in raw.shape]
    if labels is not None and labels.any():
        centre = [int(np.mean(np.nonzero(labels.any(axis=tuple(a for a in range(3) if a != ax)))[0])) for ax in range(3)]
    cut = [slice(None)]
    for ax in (1, 2):
        n = raw.shape[ax]
        lo = min(max(0, centre[ax] - max_yx // 2), max(0, n - max_yx))
        cut.append(slice(lo, lo + max_yx))
    raw = raw[tuple(cut)]
    labels = labels[tuple(cut)] if labels is not None else None
    return meta, raw, labels


def noise_sd(img: np.ndarray) -> float:
    """Noise sd from x-neighbour differences in the darkest 30 % (flat background)."""
    d = np.diff(img, axis=2) / math.sqrt(2)
    dark = img[:, :, 1:] <= np.percentile(img, 30)
    return float(d[dark].std())


def describe(img: np.ndarray, labels: np.ndarray | None, vs: tuple[float, float, float]) -> dict[str, str]:
    p1, p50, p99 = np.percentile(img, [1, 50, 99])
    row = {
        "p1 / median / p99": f"{p1:.0f} / {p50:.0f} / {p99:.0f}",
        "noise sd (background)": f"{noise_sd(img):.1f}",
        "nucleus mean (median over nuclei)": "-",
        "nuclei (count)": "-",
        "density (1/mm³)": "-",
        "volume fraction": "-",
        "median eq. diameter (µm, inner)": "-",
        "touching fraction (inner)": "-",
    }
    if labels is None:
        return row
    st = truth_stats(labels, vs, exclude_border=True)
    ids = np.unique(labels[labels > 0])
    means = [img[labels == i].mean() for i in ids]
    row.update({
        "nucleus mean (median over nuclei)": f"{np.median(means):.0f}" if means else "-",
        "nuclei (count)": str(st["count"]),
        "density (1/mm³)": f"{st['density_per_mm3']:.3g}",
        "volume fraction": f"{st['volume_fraction']:.3f}",
        "median eq. diameter (µm, inner)": f"{st['median_diameter_um']:.1f}" if st["n_measured"] else "-",
        "touching fraction (inner)": f"{st['touching_fraction']:.2f}" if st["n_measured"] else "-",
    })
    return row


def busiest(labels: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, int]:
    """The z plane with most labelled voxels and, in it, the busiest y row (mid planes without labels)."""
    if labels is None or not labels.any():
        return shape[0] // 2, shape[1] // 2
    z = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    return z, int(np.argmax((labels[z] > 0).sum(axis=1)))


def figure(panels: list[tuple[str, np.ndarray, np.ndarray | None, bool]], vs: tuple, out: Path) -> None:
    """One column per ``(title, volume, labels used to pick the planes, is_labels)``: z plane over y plane."""
    shape = panels[0][1].shape
    ratio = min(2.0, shape[0] * vs[0] / (shape[2] * vs[2]))
    width = 3.2 * len(panels)
    fig, axes = plt.subplots(2, len(panels), figsize=(width, 3.5 + 3.2 * ratio), squeeze=False)
    for col, (title, vol, pick, is_labels) in enumerate(panels):
        z, y = busiest(pick, vol.shape)
        if is_labels:
            shown = np.where(vol > 0, (vol.astype(np.int64) * 2654435761 % 251) + 5, 0)  # scramble IDs into colours
            kw = {"cmap": "nipy_spectral", "vmin": 0, "vmax": 256}
        else:
            lo, hi = np.percentile(vol, [0.5, 99.8])
            shown, kw = vol, {"cmap": "gray", "vmin": lo, "vmax": hi}
        axes[0, col].imshow(shown[z], interpolation="nearest", **kw)
        axes[0, col].set_title(f"{title}\nz = {z} (yx)", fontsize=8)
        axes[1, col].imshow(shown[:, y], aspect=vs[0] / vs[2], interpolation="nearest", **kw)
        axes[1, col].set_title(f"y = {y} (zx)", fontsize=8)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=72)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=_DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-yx", type=int, default=256)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, str]] = {}
    for folder in sorted(p for p in args.data.iterdir() if (p / "meta.json").exists()):
        meta, real, labels = load(folder, args.max_yx)
        name, vs = meta["name"], tuple(meta["voxel_size_um"])
        pname = MATCH.get(name, "confocal")
        img, truth = synthesize(real.shape, preset=preset(pname, voxel_size=vs), seed=args.seed)
        img = img.astype(np.float64)
        pick = truth if labels is not None else None
        panels = [(f"real: {name}", real, labels, False), (f"synthetic: {pname}", img, pick, False),
                  ("synthetic truth", truth, pick, True)]
        figure(panels, vs, args.out / f"synth_vs_{name}.png")
        rows[f"{name} (real)"] = describe(real, labels, vs)
        rows[f"{pname} (synthetic)"] = describe(img, truth, vs)
    for pname in sorted(set(PRESETS) - set(MATCH.values())):
        vs = PRESETS[pname].voxel_size
        img, truth = synthesize((48, 128, 128), preset=pname, seed=args.seed)
        img = img.astype(np.float64)
        figure([(f"synthetic: {pname}", img, truth, False), ("synthetic truth", truth, truth, True)],
               vs, args.out / f"synth_{pname}.png")
        rows[f"{pname} (synthetic)"] = describe(img, truth, vs)
    keys = list(next(iter(rows.values())))
    print("| volume | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for vol, row in rows.items():
        print(f"| {vol} | " + " | ".join(row[k] for k in keys) + " |")


if __name__ == "__main__":
    main()
