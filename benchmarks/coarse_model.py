"""A coarse model for small nuclei against the fine default, and the rule that decides whether it ships.

    python benchmarks/coarse_model.py PACKAGE [--json OUT.json] [--fine-json FINE.json] [--device cpu]
    python benchmarks/coarse_model.py - --fine-json FINE.json       # the fine model's half only
    python benchmarks/coarse_model.py PACKAGE --choose-decoding OUT  # OUT: PACKAGE with thresholds for small nuclei

Nuclei only a few voxels across (whole-brain light-sheet at 5 µm voxels: 2-4 voxels) reach the
fine default model (``bcd_unet_synth_v2``, nuclei 12 voxels across) only after enlarging the data
about 4x per axis: 64 model voxels per data voxel. A coarse model (the shipped one: nuclei 9 voxels across,
trained on 5.4-14.4; the first three tried: 5, trained on 3-8; ``docs/models.md``, *A coarse model for nuclei
2-6 voxels across*) needs at most
2x per axis (``MAX_UPSAMPLE``). This script scores both on held-out synthetic volumes whose nuclei
are 2-6 voxels across (those a default would send to the coarse model: the fine model would
enlarge them more than 2x along every axis), each told ``factor x`` the true median diameter,
with its own card's decoding thresholds, border nuclei left out:

* the fine model without a cap (what the default does), and
* ``PACKAGE`` with the 2x cap.

The rule, fixed before the coarse model was measured:

* (a) at factor 1, on every volume, F1@0.5 of the coarse model >= the fine model's - 0.02;
* (b) mean F1@0.5 over the volumes at factors 0.6, 0.8, 1.25 and 1.6 >= the fine model's - 0.02
  (no less tolerant of a diameter error);
* (c) F1@0.5 >= 0.9 on the 3-voxels-per-diameter volume (the issue's size test).

It also prints each model's model voxels per data voxel and seconds per volume (the cost the
cap saves).

``--choose-decoding OUT`` writes a copy of ``PACKAGE`` whose card's decoding thresholds are chosen
(``bigseg.train.choose_decoding``, the criterion of every shipped card) on synthetic volumes of
the only kind a default would give the coarse model: nuclei 2-6 voxels across
(:func:`selection_volumes`, seeds apart from the rule's volumes and from training), over
:func:`small_grid`. ``bigseg train``'s own choice, made on the standard selection set of larger
nuclei brought down to 5 voxels, stays in the card's provenance. The small-nuclei selection set
was decided before the coarse model was measured; the grid after (with the standard grid the
best mean F1@0.5 was 0.14: no setting let seeds through the contour test, see :func:`small_grid`). Runs on one CPU thread unless ``--device cuda``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_tolerance import f1_at, size_volumes, true_diameter  # noqa: E402

FACTORS = (0.6, 0.8, 1.0, 1.25, 1.6)
# Decoding settings for nuclei ~5 model voxels across: most of such a nucleus' voxels touch its surface, so
# the contour map is high nearly everywhere in it and seeds must pass a looser contour test than the default
# grid's (at most 0.7, made for 12-voxel nuclei). The distance test asks a seed to lie SEED_DEPTHS voxels
# inside its nucleus, tanh(depth / alpha) with the card's alpha (at NucMM's alpha = 8: 0.03, 0.06, 0.10; the
# distance peaks near tanh(2.5 / 8) = 0.3 there), or not at all (-1).
SEED_DEPTHS = (0.25, 0.5, 0.8)


def small_grid(alpha: float) -> tuple[tuple[float, float, float, float], ...]:
    """The decoding grid for small nuclei, for a model whose distance target is ``tanh(d / alpha)``."""
    distances = (-1.0, 0.0) + tuple(round(float(np.tanh(d / alpha)), 2) for d in SEED_DEPTHS)
    return tuple(itertools.product((0.5, 0.65, 0.8), (0.5, 0.7, 0.8, 0.9, 0.95), distances, (0.2, 0.3, 0.4, 0.5)))


ERROR_FACTORS = (0.6, 0.8, 1.25, 1.6)


def small_volumes() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """Held-out volumes with nuclei 2-6 voxels across (seeds apart from training and selection)."""
    from bigseg.synth import PRESETS, synthesize

    meso = PRESETS["mesospim"].voxel_size
    out = []
    for name, seed, fraction in (("mesospim", 500, 0.03), ("mesospim-crowded", 501, 0.12)):
        image, labels = synthesize((40, 64, 64), preset="mesospim", seed=seed, volume_fraction=fraction)
        out.append((name, image, labels, meso))
    image, labels = synthesize((40, 64, 64), preset="mesospim", seed=502, volume_fraction=0.05, diameter_um=10.0)
    out.append(("mesospim-10um", image, labels, meso))
    image, labels = synthesize((48, 80, 80), preset="dense", seed=503, voxel_size=(1.0, 1.0, 1.0))
    out.append(("dense-1um", image, labels, (1.0, 1.0, 1.0)))
    out += [v for v in size_volumes() if v[0].startswith("3 ")]
    return out


def selection_volumes() -> list:
    """Decoding selection for the coarse model: synthetic nuclei 2-6 voxels across (seeds 600-605)."""
    from bigseg.synth import PRESETS, synthesize
    from bigseg.train import SelectionVolume

    meso = PRESETS["mesospim"].voxel_size
    specs = [("mesospim", (40, 64, 64), {"volume_fraction": 0.03}, meso, 15.0),
             ("mesospim", (40, 64, 64), {"volume_fraction": 0.12}, meso, 15.0),
             ("mesospim", (40, 64, 64), {"volume_fraction": 0.05, "diameter_um": 11.0}, meso, 11.0),
             ("dense", (48, 80, 80), {"voxel_size": (1.0, 1.0, 1.0)}, (1.0, 1.0, 1.0), 4.2),
             ("confocal", (40, 48, 48), {"voxel_size": (2.5, 2.5, 2.5), "diameter_um": 10.0, "volume_fraction": 0.1,
                                         "psf_sigma_um": (1.0, 0.5, 0.5), "haze": 0.0, "texture": 0.2,
                                         "intensity_cv": 0.15, "axial_stretch": 1.0}, (2.5, 2.5, 2.5), 10.0),
             ("mesospim", (40, 64, 64), {"volume_fraction": 0.08, "diameter_um": 20.0}, meso, 20.0)]
    out = []
    for i, (preset, shape, kw, voxel, d) in enumerate(specs):
        image, labels = synthesize(shape, preset=preset, seed=600 + i, **kw)
        out.append(SelectionVolume(f"{preset}-{600 + i}", image, labels, voxel, d))
    return out


def choose_small_decoding(package: str, out: Path) -> None:
    """Copy ``package`` to ``out`` with decoding thresholds chosen on :func:`selection_volumes`."""
    import dataclasses

    from bigseg.predict import MAX_UPSAMPLE, ModelSpec, get_predictor, load_model_package, save_model_package
    from bigseg.train import choose_decoding

    choice = choose_decoding(lambda v, d: get_predictor(ModelSpec(model=package, voxel_size=v, diameter_um=d,
                                                                  device="cpu", max_upsample=MAX_UPSAMPLE)),
                             selection_volumes(), grid=small_grid(load_model_package(package).card.targets.distance_alpha))
    print("decoding chosen on nuclei 2-6 voxels across:", json.dumps(choice.summary()), flush=True)
    loaded = load_model_package(package)
    card = loaded.card
    metrics = {**card.provenance.metrics, "decoding_selection_small_nuclei": choice.summary()}
    card = card.model_copy(update={"decoding": dataclasses.replace(choice.params, min_volume_um3=0.0),
                                   "provenance": card.provenance.model_copy(update={"metrics": metrics})})
    save_model_package(loaded.network, card, out)  # the same weights (safetensors of the same state)


def model_voxels_per_voxel(model: str, voxel: tuple[float, float, float], diameter: float,
                           max_upsample: float | None) -> float:
    from bigseg.predict import ModelSpec, get_predictor

    pred = get_predictor(ModelSpec(model=model, voxel_size=voxel, diameter_um=diameter, device="cpu",
                                   max_upsample=max_upsample))
    return float(np.prod([1.0 / s for s in pred.scale.step]))  # type: ignore[attr-defined]


def scores(model: str, cap: float | None, vols: list, device: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, image, labels, voxel in vols:
        d = true_diameter(labels, voxel)
        row: dict[str, Any] = {}
        for f in FACTORS:
            t0 = time.perf_counter()
            row[str(f)] = f1_at(model, image, labels, voxel, d * f, device=device, max_upsample=cap)["f1@0.5"]
            row[f"seconds x{f}"] = round(time.perf_counter() - t0, 2)
        row["model voxels per voxel"] = model_voxels_per_voxel(model, voxel, d, cap)
        out[name] = row
        print(f"{Path(model).name:>26s} cap={cap} {name:>24s} d={d:5.1f} µm ({d / voxel[-1]:.1f} vox)  F1@0.5 at "
              f"x{list(FACTORS)}: " + " ".join(f"{row[str(f)]:.2f}" for f in FACTORS)
              + f"  model vox/vox {row['model voxels per voxel']:.1f}  {row['seconds x1.0']:.1f} s", flush=True)
    return out


def rule(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    a = {n: (new[n]["1.0"], old[n]["1.0"]) for n in new}
    mean_new = float(np.mean([new[n][str(f)] for n in new for f in ERROR_FACTORS]))
    mean_old = float(np.mean([old[n][str(f)] for n in old for f in ERROR_FACTORS]))
    three = [n for n in new if n.startswith("3 ")]
    verdict = {
        "a_factor1_every_volume": all(nv >= ov - 0.02 for nv, ov in a.values()),
        "b_mean_under_error": [mean_new, mean_old, mean_new >= mean_old - 0.02],
        "c_3_voxels": [new[three[0]]["1.0"], new[three[0]]["1.0"] >= 0.9] if three else None,
    }
    verdict["ship"] = bool(verdict["a_factor1_every_volume"] and verdict["b_mean_under_error"][2]
                           and verdict["c_3_voxels"] and verdict["c_3_voxels"][1])
    return verdict


def main() -> None:
    import torch

    from bigseg.predict import DEFAULT_MODEL, MAX_UPSAMPLE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="the coarse model package (folder, .zip or shipped name); '-': none")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write every figure and the verdict here")
    ap.add_argument("--fine-json", default=None,
                    help="the fine model's figures: read from this file where it exists, else measured and written "
                         "there (they do not depend on PACKAGE)")
    ap.add_argument("--choose-decoding", default=None, type=Path, metavar="OUT",
                    help="write PACKAGE to OUT with decoding thresholds chosen for small nuclei, then stop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.choose_decoding is not None:
        choose_small_decoding(args.package, args.choose_decoding)
        return
    vols = small_volumes()
    fine_file = Path(args.fine_json) if args.fine_json else None
    if fine_file is not None and fine_file.is_file():
        fine = json.loads(fine_file.read_text())
    else:
        fine = scores(DEFAULT_MODEL, None, vols, args.device)
        if fine_file is not None:
            fine_file.write_text(json.dumps(fine, indent=1))
    if args.package == "-":
        return
    report = {"coarse": scores(args.package, MAX_UPSAMPLE, vols, args.device), "fine": fine}
    report["verdict"] = rule(report["coarse"], report["fine"])
    print("verdict:", json.dumps(report["verdict"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
