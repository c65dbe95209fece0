"""Nuclei cut by the volume's faces and the size filter: F1 against every true object, cut ones included.

Each synthetic crop (about five nuclei across, so that many nuclei are cut by its faces) is
segmented once by ``bigseg segment`` with the default model, the preset's own diameter and no
size filter; the size filter (a tenth of a nucleus' volume) is then applied afterwards two ways:

* ``filtered``: every object under the size is dropped, cut or not;
* ``cut kept``: objects touching a face of the volume are kept whatever their size (the
  pipeline's rule).

Sizes and face contact are the run's own object table (``voxel_count``, ``touches_border``).

Both are scored at IoU 0.5 and 0.75 against every true object of the crop, fragments at the
faces included (how a labelled crop is scored when nothing is left out).

Usage::

    python benchmarks/face_cut.py                              # dense and confocal, seeds 900-905
    python benchmarks/face_cut.py --presets dense --seeds 900 901
"""

from __future__ import annotations

import argparse
import math
import tempfile

import numpy as np
import pyarrow.parquet as pq
import tifffile

from bigseg.evaluate import evaluate
from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.synth import synthesize
from bigseg.synth._api import resolve_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["dense", "confocal"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(900, 906)))
    args = ap.parse_args()
    sums: dict[str, list[float]] = {}
    print(f"{'preset':10s} {'seed':>4s} {'true':>5s}  {'filtered F1@0.5 / 0.75 (n)':>28s}  {'cut kept F1@0.5 / 0.75 (n)':>28s}")
    with tempfile.TemporaryDirectory(prefix="bigseg-face-") as tmp:
        for preset in args.presets:
            params = resolve_params(preset)
            vs, d = params.voxel_size, params.diameter_um
            shape = tuple(min(max(int(round(5 * d / v)), 24), 160) for v in vs)
            for seed in args.seeds:
                image, truth = synthesize(shape, preset=preset, seed=seed)
                src = f"{tmp}/{preset}-{seed}.tif"
                tifffile.imwrite(src, image)
                result = segment(src, f"{tmp}/{preset}-{seed}.zarr", voxel_size=vs, scheduler="sync",
                                 diameter_um=d, min_volume_um3=0.0)
                pred = open_volume(result.labels_url).read_level(0)
                table = pq.read_table(result.table_url, columns=["id", "voxel_count", "touches_border"])
                ids = table["id"].to_numpy()
                big = table["voxel_count"].to_numpy() >= 0.1 * math.pi / 6 * d**3 / float(np.prod(vs))
                cut = table["touches_border"].to_numpy()
                cells = []
                for name, keep in (("filtered", big), ("cut kept", big | cut)):
                    lut = np.zeros(int(pred.max(initial=0)) + 1, dtype=np.uint32)
                    lut[ids[keep]] = ids[keep]
                    scores = evaluate(lut[pred], truth, thresholds=(0.5, 0.75), voxel_size=vs)
                    f50, f75 = scores.at(0.5).f1, scores.at(0.75).f1
                    sums.setdefault(f"{preset} {name}", []).extend([f50, f75])
                    cells.append(f"{f50:6.3f} / {f75:5.3f} ({int(keep.sum()):3d})")
                print(f"{preset:10s} {seed:4d} {len(np.unique(truth)) - 1:5d}  {cells[0]:>28s}  {cells[1]:>28s}",
                      flush=True)
    for key, values in sums.items():
        print(f"mean {key:20s} F1@0.5 {np.mean(values[0::2]):.3f}  F1@0.75 {np.mean(values[1::2]):.3f}")


if __name__ == "__main__":
    main()
