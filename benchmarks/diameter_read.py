"""The diameter estimate of a volume larger than one read: through the pipeline's reader against the whole image.

Usage::

    python benchmarks/diameter_read.py

For synthetic lightsheet-organoid volumes the size of the shared lstree volume (76 x 546 x 585
voxels of 2 x 0.26 x 0.26 µm, 24 Mvoxels, more than one read of 2^22) with chromatin texture,
prints the labels' median diameter (nuclei not cut by the border) and, as ratios to it: the
estimate on the whole image (``log_diameter``), through the pipeline's reader
(``volume_log_diameter`` on the volume written to a temporary zarr: boxes on the whole image's
working grid, pooled) and, for comparison, one box of one read examined at its own (finer)
working grid, as the reader did until 2026-11-30. Synthetic volumes only.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bigseg.diameter import AmbiguousDiameterError, LogDiameterEstimate, log_diameter, volume_log_diameter
from bigseg.diameter import _log, _volume
from bigseg.io import Levels, crop_box, crop_centres, open_volume, volume_levels
from bigseg.synth import synthesize, truth_stats
from bigseg.testing import write_image

SHAPE = (76, 546, 585)
VOXEL = (2.0, 0.26, 0.26)
CASES = ((0.1, 0.4), (0.1, 0.6), (0.2, 0.4))  # (volume fraction, texture)


def _ratio(fn, true: float) -> str:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    try:
        est: LogDiameterEstimate = fn()
    except AmbiguousDiameterError as exc:
        return f"refused ({len(exc.candidates)} candidates: {', '.join(f'{c:.3g}' for c in exc.candidates[:3])} µm)"
    return f"{est.diameter_um / true:.2f} ({est.diameter_um:.2f} µm, {time.perf_counter() - t0:.1f} s)"


def main() -> None:
    for fraction, texture in CASES:
        image, labels = synthesize(SHAPE, preset="lightsheet-organoid", voxel_size=VOXEL, seed=3,
                                   volume_fraction=fraction, texture=texture)
        true = float(truth_stats(labels, VOXEL, exclude_border=True)["median_diameter_um"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "v.zarr"
            write_image(path, image, voxel_size=VOXEL)
            levels = volume_levels(open_volume(str(path)))
            box = _volume._boxes(levels, 0, _log._work_voxel(SHAPE, VOXEL))
            print(f"lightsheet-organoid {SHAPE} fill {fraction} texture {texture}: true {true:.2f} µm; "
                  f"{len(box)} reads of {[s.stop - s.start for s in box[0]]} voxels", flush=True)
            print(f"  whole image     {_ratio(lambda: log_diameter(image, VOXEL), true)}", flush=True)
            print(f"  pipeline reads  {_ratio(lambda: volume_log_diameter(open_volume(str(path))), true)}",
                  flush=True)
            old = _old_box(levels)
            print(f"  one box at its own grid (the reader before 2026-11-30) "
                  f"{_ratio(lambda: log_diameter(image[old], VOXEL), true)}", flush=True)


def _old_box(levels: Levels) -> tuple[slice, ...]:
    """The box the reader used until 2026-11-30: one read's worth of level 0 around the brightest region
    (axes shorter than a cube's side whole), examined at its own working grid."""
    shape, voxel = levels.shapes[0], levels.voxel_sizes[0]
    side_vox = [0, 0, 0]
    left, free = float(_volume._READ_VOXELS), [0, 1, 2]
    for ax in sorted(range(3), key=lambda a: shape[a]):
        side_vox[ax] = min(shape[ax], int(left ** (1 / len(free))))
        left /= max(side_vox[ax], 1)
        free.remove(ax)
    side = tuple(n * v for n, v in zip(side_vox, voxel))
    lo, hi = crop_box(crop_centres(levels, 1)[0], side, levels.extent_um)  # type: ignore[arg-type]
    return tuple(slice(int(a / v), max(int(a / v) + 1, min(n, int(round(b / v)))))
                 for a, b, v, n in zip(lo, hi, voxel, shape))


if __name__ == "__main__":
    main()
