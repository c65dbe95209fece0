"""The founding papers' methods side by side: F1@0.5 / F1@0.75 and CPU seconds per Mvox.

Every method runs the full blockwise pipeline (`bigseg segment`, scheduler "sync") on every
labelled volume in ../shared/data (voxel size from its meta.json) and on synthetic volumes of the
`bigseg.synth` presets, with one diameter per volume: for real volumes the median equivalent-sphere
diameter of its labelled nuclei not cut by the border (the size a user states; it reads the labels,
so say so where the figures are quoted), for synthetic ones the preset's. Scores leave out objects touching the volume's faces on both sides
("interior" in benchmarks/real_data.py). Prints figures only, with the name of the model each row
measured and the load average around each run (seconds per Mvox mean little on a loaded machine).

    python benchmarks/methods.py --models DIR        # DIR/<name>/model from the table's train commands
    python benchmarks/methods.py --models DIR --methods bcd,tascan --json scores.json

Methods (their exact commands are printed too):

* ``bcd``: the shipped default model, NucMM's seeded watershed;
* ``wnet3d``: WNet3D trained self-supervised on the volume itself (no labels), then Voronoi-Otsu;
* ``semantic-unet``: a semantic U-Net trained on synthetic data, decoded by Voronoi-Otsu;
* ``tascan``: the default model's maps decoded by TASCAN;
* ``segresnet``, ``swin_unetr``: BCD heads trained on synthetic data, NucMM's watershed;
* ``cellsegnet``: 3DCellSegNet (semantic head, 3DCellSeg loss) trained on synthetic data, TASCAN.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from bigseg.evaluate import evaluate
from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.predict import DEFAULT_MODEL, load_model_package
from bigseg.synth import PRESETS, synthesize, truth_stats

ROOT = Path(__file__).resolve().parents[1]

# name → (model package under --models, or None for the shipped default; decoder, or None for the card's)
METHODS: dict[str, tuple[str | None, str | None]] = {
    "bcd": (None, None),
    "wnet3d": ("(trained on the volume)", None),
    "semantic-unet": ("semantic_unet", "voronoi-otsu"),
    "tascan": (None, "tascan"),
    "segresnet": ("segresnet", None),
    "swin_unetr": ("swin_unetr", None),
    "cellsegnet": ("cellsegnet", "tascan"),
}
# preset → (shape, seed): sized so that each holds 11-15 nuclei not touching the faces (scores leave those out)
SYNTH = {"confocal": ((64, 192, 192), 500), "dense": ((48, 160, 160), 501),
         "lightsheet-organoid": ((40, 320, 320), 500)}
WNET_TRAIN = [
    "--architecture", "wnet3d", "--model-diameter", "9", "--arch-kwargs", '{"channels": [8, 16], "strides": [2]}',
    "--steps", "300", "--batch-size", "2", "--patch-size", "32", "32", "32", "--infer-patch-size", "32", "32", "32",
    "--lr", "0.005", "--seed", "0",
]


def volumes(data: Path, tmp: Path) -> list[tuple[str, Path, np.ndarray, tuple[float, float, float], float | None]]:
    out = []
    for meta_path in sorted(data.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        labels = meta_path.parent / "labels.tif"
        if meta.get("labels") and labels.exists():
            out.append((meta["name"], meta_path.parent / "raw.tif", tifffile.imread(labels),
                        tuple(meta["voxel_size_um"]), None))
    for preset, (shape, seed) in SYNTH.items():
        image, labels = synthesize(shape, preset=preset, seed=seed)
        path = tmp / f"synth_{preset}.tif"
        tifffile.imwrite(path, image)
        params = PRESETS[preset]
        out.append((f"synth {preset}", path, labels, tuple(params.voxel_size), float(params.diameter_um)))
    return out


def _train_wnet(raw: Path, voxel: tuple[float, ...], diameter: float, out: Path) -> tuple[Path, float, str]:
    from typer.testing import CliRunner

    from bigseg.cli import app

    args = ["train", str(out), "--image", str(raw), "--voxel-size", *map(str, voxel), "--diameter", f"{diameter:.2f}",
            *WNET_TRAIN]
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, args)
    if res.exit_code != 0:
        raise RuntimeError(res.output)
    return out / "model", time.perf_counter() - t0, "bigseg " + " ".join(args)


def run_one(method: str, name: str, raw: Path, truth: np.ndarray, voxel: Any, known: float | None, models: Path,
            tmp: Path) -> dict:
    # Real volumes: the labels' median diameter; synthetic ones: the preset's (the truth's own).
    diameter = known if known is not None else float(truth_stats(truth, voxel, exclude_border=True)["median_diameter_um"])
    model, decoder = METHODS[method]
    train_s, train_cmd = None, ""
    if method == "wnet3d":
        package, train_s, train_cmd = _train_wnet(raw, voxel, diameter, tmp / f"wnet_{name.replace(' ', '_')}")
        model_arg: str | None = str(package)
    else:
        model_arg = None if model is None else str(models / model / "model")
    out = tmp / f"{method}_{name.replace(' ', '_')}.zarr"
    # Which weights this row measured (the default model may change between releases).
    card = load_model_package(model_arg if model_arg else DEFAULT_MODEL).card
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = segment(str(raw), str(out), voxel_size=voxel, scheduler="sync", model=model_arg, decoder=decoder,
                     diameter_um=diameter, block_shape=(128, 256, 256))
    seconds = time.perf_counter() - t0
    scores = evaluate(result.labels_url, truth, thresholds=(0.5, 0.75), voxel_size=voxel, ignore_border=True)
    cmd = (f"bigseg segment RAW OUT --voxel-size {' '.join(map(str, voxel))} --diameter {diameter:.2f}"
           + (f" --model {model_arg}" if model_arg else "") + (f" --decoder {decoder}" if decoder else ""))
    return dict(method=method, volume=name, diameter_um=diameter, n_pred=result.n_objects,
                f1_50=scores.at(0.5).f1, f1_75=scores.at(0.75).f1, seconds=seconds, model_name=card.name,
                load_before=load, load_after=os.getloadavg()[0],
                s_per_mvox=seconds / (truth.size / 1e6), train_s=train_s, command=cmd, train_command=train_cmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--models", type=Path, required=True, help="folder holding <name>/model for trained methods")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {list(METHODS)}")
    ap.add_argument("--volumes", default="", help="only volumes whose name contains one of these (comma-separated)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bigseg-methods-") as t:
        tmp = Path(t)
        vols = volumes(args.data, tmp)
        if args.volumes:
            vols = [v for v in vols if any(k in v[0] for k in args.volumes.split(","))]
        vols.sort(key=lambda v: v[2].size)  # smallest first: a stopped run keeps the most rows
        for method in args.methods.split(","):
            if method not in METHODS:
                raise SystemExit(f"unknown method {method!r}; choose from {list(METHODS)}")
            for name, raw, truth, voxel, known in vols:
                row = run_one(method, name, raw, truth, voxel, known, args.models, tmp)
                rows.append(row)
                print(f"{method:14s} {name:26s} d {row['diameter_um']:5.1f} pred {row['n_pred']:4d} "
                      f"F1@0.5 {row['f1_50']:.3f} F1@0.75 {row['f1_75']:.3f} {row['s_per_mvox']:7.1f} s/Mvox "
                      f"(load {row['load_before']:.1f}/{row['load_after']:.1f}; model {row['model_name']})"
                      + (f" (train {row['train_s']:.0f} s)" if row["train_s"] else ""), flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
