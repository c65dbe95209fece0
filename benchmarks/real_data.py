"""Segment every labelled volume in ../shared/data and print F1/AP per volume and their mean.

Voxel sizes come from each volume's meta.json; nothing is tuned per volume. Prints figures only.

    python benchmarks/real_data.py                            # the default predictor (shipped model)
    python benchmarks/real_data.py --predictor classical --diameter 8
    python benchmarks/real_data.py --data ../shared/data --json scores.json
    python benchmarks/real_data.py --diameter-from-labels   # each volume's median nucleus diameter
    python benchmarks/real_data.py --diameter auto          # each volume's diameter estimated from its image
    python benchmarks/real_data.py --only gonuclear_ovule_1135 qcanet_embryo_8cell

`--diameter-from-labels` gives each volume the median equivalent-sphere diameter of its labelled
nuclei not cut by the border: the size a user states when running bigseg on their own specimen.
It reads the labels, so say so wherever its figures are quoted. `--diameter auto` estimates each
volume's diameter from its image alone (LoG scale selection, `bigseg.diameter.volume_log_diameter`), as a model run
given no diameter does too; "d µm" is the diameter used and "est s" the seconds the estimate took
(included in "s").

Each segmentation is scored three ways (one segmentation, three views of the same labels):

* ``all``: every label and every predicted object, as the labels come;
* ``interior``: objects touching the volume's faces are left out on both sides (crops cut nuclei
  into fragments that no method can be expected to match);
* ``region``: only voxels within ``--region-um`` µm of a labelled voxel count, for volumes whose
  labels cover part of the field (objects far from every label are unlabelled, not false).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import edt
import numpy as np
import tifffile
from scipy import ndimage as ndi

from bigseg.diameter import AmbiguousDiameterError
from bigseg.evaluate import evaluate
from bigseg.io import open_group, open_volume
from bigseg.pipeline import segment
from bigseg.synth import truth_stats

ROOT = Path(__file__).resolve().parents[1]


def volumes(data: Path) -> list[tuple[str, Path, Path, tuple[float, float, float], dict]]:
    out = []
    for meta_path in sorted(data.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        labels = meta_path.parent / "labels.tif"
        if meta.get("labels") and labels.exists():
            out.append((meta["name"], meta_path.parent / "raw.tif", labels, tuple(meta["voxel_size_um"]), meta))
    return out


def _diameter(text: str) -> float | str:
    return "auto" if text.strip().lower() == "auto" else float(text)


def z_over_xy(labels: np.ndarray, voxel: tuple[float, float, float]) -> float:
    """Median over objects not touching a face of (z extent) / (mean of y and x extents), in µm."""
    ratios = []
    for box in ndi.find_objects(labels):
        if box is None or any(b.start == 0 or b.stop == n for b, n in zip(box, labels.shape)):
            continue
        z, y, x = ((b.stop - b.start) * v for b, v in zip(box, voxel))
        ratios.append(z / ((y + x) / 2))
    return float(np.median(ratios)) if ratios else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--predictor", default=None, help="'model' or 'classical' (default: bigseg's default)")
    ap.add_argument("--model", default=None, help="model package (default: the shipped model)")
    ap.add_argument("--diameter", type=_diameter, default=None, help="one diameter (µm) for every volume, or 'auto'")
    ap.add_argument("--diameter-from-labels", action="store_true", help="per-volume median diameter of the labels")
    ap.add_argument("--region-um", type=float, default=10.0, help="reach of the labelled region (µm) for `region`")
    ap.add_argument("--json", type=Path, default=None, help="also write the scores here")
    ap.add_argument("--only", nargs="+", default=None, help="only these volumes (names of folders in --data)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bigseg-real-") as tmp:
        for name, raw, labels, voxel, _ in volumes(args.data):
            if args.only is not None and name not in args.only:
                continue
            diameter = args.diameter
            truth = tifffile.imread(labels)
            if args.diameter_from_labels:
                stats = truth_stats(truth, voxel, exclude_border=True)
                diameter = float(stats["median_diameter_um"])
            t0 = time.perf_counter()
            try:
                result = segment(
                    str(raw), f"{tmp}/{name}.zarr", voxel_size=voxel, scheduler="sync", predictor=args.predictor,
                    model=args.model, diameter_um=diameter, block_shape=(128, 256, 256),
                )
            except AmbiguousDiameterError as exc:
                # The run refused to guess a diameter: nothing was segmented, scored as F1 0.
                print(f"{name}: refused: {exc}", flush=True)
                zero = dict(n_true=int(len(np.unique(truth)) - 1), f1_50=0.0, ap_50=0.0, f1_75=0.0, ap_75=0.0)
                rows.append(dict(volume=name + " (refused)", diameter_um=float("nan"), n_pred=0, estimate_s=None,
                                 seconds=time.perf_counter() - t0, aspect_true=z_over_xy(truth, voxel),
                                 aspect_pred=float("nan"), **{v: dict(zero) for v in ("all", "interior", "region")}))
                continue
            run = dict(open_group(result.labels_url).attrs)["bigseg"]["run"]
            estimate = run.get("diameter_estimate")
            region = edt.edt(truth == 0, anisotropy=voxel) <= args.region_um
            views = {"all": {}, "interior": {"ignore_border": True}, "region": {"mask": region}}
            pred = open_volume(result.labels_url).read_level(0)
            row = dict(volume=name, diameter_um=run["diameter_um"], n_pred=result.n_objects,
                       estimate_s=estimate["seconds"] if estimate else None, seconds=time.perf_counter() - t0,
                       aspect_true=z_over_xy(truth, voxel), aspect_pred=z_over_xy(pred, voxel))
            for view, kwargs in views.items():
                scores = evaluate(result.labels_url, truth, thresholds=(0.5, 0.75), voxel_size=voxel, **kwargs)
                m50, m75 = scores.at(0.5), scores.at(0.75)
                row[view] = dict(n_true=m50.tp + m50.fn, f1_50=m50.f1, ap_50=m50.ap, f1_75=m75.f1, ap_75=m75.ap)
            rows.append(row)
    for view in ("all", "interior", "region"):
        print(f"\n[{view}]")
        print(f"{'volume':26s} {'d µm':>5s} {'est s':>5s} {'pred':>5s} {'true':>5s} {'F1@0.5':>7s} {'AP@0.5':>7s} {'F1@0.75':>8s} "
              f"{'AP@0.75':>8s} {'s':>6s}")
        for r in rows:
            v = r[view]
            d = f"{r['diameter_um']:5.1f}"
            est = f"{r['estimate_s']:5.1f}" if r["estimate_s"] is not None else "    -"
            print(f"{r['volume']:26s} {d} {est} {r['n_pred']:5d} {v['n_true']:5d} {v['f1_50']:7.3f} {v['ap_50']:7.3f} "
                  f"{v['f1_75']:8.3f} {v['ap_75']:8.3f} {r['seconds']:6.1f}")
        if rows:
            mean = {k: float(np.mean([r[view][k] for r in rows])) for k in ("f1_50", "ap_50", "f1_75", "ap_75")}
            print(f"{'mean':26s} {'':5s} {'':5s} {'':5s} {'':5s} {mean['f1_50']:7.3f} {mean['ap_50']:7.3f} "
                  f"{mean['f1_75']:8.3f} {mean['ap_75']:8.3f}")
    print("\n[shape] median z extent / x-y extent (µm) of interior objects: how the labels are drawn")
    for r in rows:
        print(f"{r['volume']:26s} labels {r['aspect_true']:5.2f}   predictions {r['aspect_pred']:5.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
