"""Labels with compactly stored BCD maps (float16) against float32 maps (prints figures).

Segments each volume twice with the default model, in this process, changing only
``maps_dtype``, and compares the float16 labels with the float32 ones: object counts,
F1 of the object matching at IoU 0.5 and 0.9 (float32 labels as the reference), and the fraction
of foreground voxels whose label differs (after matching). Synthetic volumes unless
``--skip-synthetic``; the labelled volumes of ``--data`` (raw.tif + meta.json per folder), smallest
first, when given.

    python benchmarks/maps_precision.py
    python benchmarks/maps_precision.py --data ../shared/data --skip-synthetic
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bigseg.evaluate import evaluate
from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.synth import write_synthetic

DTYPES = ("float32", "float16")
SYNTH = [  # (preset, shape, voxel µm, diameter µm, seed)
    ("confocal", (64, 160, 160), (1.0, 1.0, 1.0), 10.0, 1),
    ("lightsheet-organoid", (64, 160, 160), (2.0, 1.0, 1.0), 10.0, 2),
    ("dense", (64, 160, 160), (1.0, 1.0, 1.0), 10.0, 4),
]


def _changed_fraction(ref: np.ndarray, other: np.ndarray) -> float:
    """Foreground voxels (of either) not in the best-overlapping pair of their reference object."""
    fg = (ref > 0) | (other > 0)
    if not fg.any():
        return 0.0
    pairs, counts = np.unique(np.stack([ref[fg], other[fg]]), axis=1, return_counts=True)
    best: dict[int, int] = {}
    for (a, _b), c in zip(pairs.T, counts):
        if a and c > best.get(int(a), 0):
            best[int(a)] = int(c)
    return 1.0 - sum(best.values()) / int(fg.sum())


def _compare(name: str, src: str, work: Path, **options: object) -> None:
    labels = {}
    for dtype in DTYPES:
        res = segment(src, str(work / f"{dtype}.zarr"), scheduler="sync", maps_dtype=dtype, overwrite=True, **options)
        labels[dtype] = open_volume(res.labels_url).read_level(0)
    ref = labels["float32"]
    for dtype in DTYPES[1:]:
        scores = evaluate(labels[dtype], ref, thresholds=(0.5, 0.9))
        f1 = {t: scores.at(t).f1 for t in (0.5, 0.9)}
        print(f"{name:<28} {dtype:<8} objects {len(np.unique(ref)) - 1:>5} → {len(np.unique(labels[dtype])) - 1:>5}  "
              f"F1@0.5 {f1[0.5]:.4f}  F1@0.9 {f1[0.9]:.4f}  changed voxels {_changed_fraction(ref, labels[dtype]):.2e}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="folder of labelled volumes (raw.tif + meta.json)")
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bigseg-maps-") as tmp:
        work = Path(tmp)
        for preset, shape, voxel, diameter, seed in [] if args.skip_synthetic else SYNTH:
            src = work / f"synth-{seed}.zarr"
            write_synthetic(src, shape, voxel_size=voxel, preset=preset, diameter_um=diameter, seed=seed, overwrite=True)
            _compare(f"synth {preset} {shape} s{seed}", str(src), work, diameter_um=diameter, block_shape=(32, 64, 64))
        metas = [json.loads(p.read_text()) | {"_dir": p.parent} for p in args.data.glob("*/meta.json")] if args.data else []
        for meta in sorted((m for m in metas if m.get("labels")), key=lambda m: int(np.prod(m["shape"]))):
            _compare(meta["name"], str(meta["_dir"] / "raw.tif"), work, voxel_size=tuple(meta["voxel_size_um"]))


if __name__ == "__main__":
    main()
