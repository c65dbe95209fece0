"""`bigseg segment` on the mesoSPIM crop, a picture of three slices with outlines, and an
independent LoG blob count of the same crop.

Usage::

    python benchmarks/mesospim_check.py --data ../shared/data --png docs/img/mesospim_c5.png [--max-upsample 2]

Runs the default command (no diameter: estimated; with ``--max-upsample 2``, the capped run that
picks the coarse model), prints the diameter used, the number of
objects, and ``skimage.feature.blob_log`` counts of the percentile-normalised crop at a
few thresholds (blobs 1-4 voxels in sigma): how many fall inside our objects, how many of our
objects hold one, and how bright the blobs inside and outside are. Draws three thin z slabs (maximum
projection of 3 planes) with the outlines of our objects (red) and the LoG blobs (cyan circles,
radius sqrt(2) sigma; middle threshold) within 3 planes of each slab's centre.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import tifffile

    from bigseg.io import open_group, open_volume
    from bigseg.pipeline import segment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--thresholds", type=float, nargs="+", default=(0.05, 0.1, 0.2))
    ap.add_argument("--max-upsample", type=float, default=None,
                    help="bigseg segment's --max-upsample (2: the coarse model for these small nuclei)")
    args = ap.parse_args()
    src = args.data / "cellseg3d_mesospim_c5" / "raw.tif"
    voxel = tuple(json.loads((src.parent / "meta.json").read_text())["voxel_size_um"])
    image = tifffile.imread(src).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        result = segment(str(src), f"{tmp}/o.zarr", scheduler="sync", voxel_size=voxel, max_upsample=args.max_upsample)
        labels = np.asarray(open_volume(result.labels_url).read_level(0))
        run = dict(open_group(result.labels_url).attrs)["bigseg"]["run"]
    print(f"bigseg segment: diameter {run['diameter_um']:.2f} µm (estimated), {result.n_objects} objects")
    print(f"diameter evidence: {run.get('diameter_estimate')}")
    from skimage.feature import blob_log

    lo, hi = np.percentile(image, [1, 99.8])
    norm = np.clip((image - lo) / (hi - lo), 0, 1)
    blobs = {}
    shape = np.array(labels.shape)
    for t in args.thresholds:
        blobs[t] = blob_log(norm, min_sigma=1.0, max_sigma=4.0, num_sigma=7, threshold=t)
        at = tuple(np.clip(np.round(blobs[t][:, :3]).astype(int), 0, shape - 1).T)
        hit = labels[at]
        found = hit > 0
        n_obj_with = len(np.unique(hit[found]))
        peak = norm[at]
        print(f"LoG blobs (skimage.feature.blob_log, threshold {t}): {len(blobs[t])}; {int(found.sum())} of them "
              f"inside one of our objects; {n_obj_with} of our {result.n_objects} objects hold one or more; "
              f"median normalised peak of the blobs inside {np.median(peak[found]) if found.any() else 0:.2f}, "
              f"outside {np.median(peak[~found]) if (~found).any() else 0:.2f}")
    if args.png:
        _draw(norm, labels, blobs[sorted(blobs)[len(blobs) // 2]], args.png)
        print(f"picture: {args.png}")


def _draw(norm: np.ndarray, labels: np.ndarray, blobs: np.ndarray, png: Path, half: int = 1, reach: int = 3) -> None:
    """Three thin slabs: the image's maximum projection over 2 * half + 1 planes, and the outlines of
    our objects (red, projected) and the LoG blobs (cyan, radius sqrt(2) sigma) within ``reach``
    planes of the slab's centre: the axial blur (FWHM about 6 planes) shows a cell several planes
    from its centre, so marks from the slab alone would leave visible cells unmarked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    zs = [labels.shape[0] // 4, labels.shape[0] // 2, 3 * labels.shape[0] // 4]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6))
    for ax, z in zip(axes, zs):
        ax.imshow(norm[z - half: z + half + 1].max(axis=0), cmap="gray", vmin=0, vmax=0.7)
        edge = find_boundaries(labels[z - reach: z + reach + 1].max(axis=0), mode="inner")
        overlay = np.zeros((*edge.shape, 4))
        overlay[edge] = (1, 0.15, 0.15, 1)
        ax.imshow(overlay)
        for b in blobs:
            if abs(b[0] - z) <= reach + 0.5:
                ax.add_patch(plt.Circle((b[2], b[1]), np.sqrt(2) * b[3], fill=False, color="cyan", lw=0.6))
        ax.set_title(f"z {z - half}-{z + half} (max projection); marks z {z - reach}-{z + reach}", fontsize=9)
        ax.axis("off")
    fig.suptitle("cellseg3d_mesospim_c5: bigseg segment (red outlines), skimage blob_log blobs (cyan)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)


if __name__ == "__main__":
    main()
