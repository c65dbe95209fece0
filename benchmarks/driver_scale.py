"""Driver memory and time at 10^6, 10^7 and 10^8 nuclei, on simulated per-block results.

Three parts, each size in a fresh process so that peak RSS is its own:

* ``old``: what the driver did before (``combine_stats`` over every block's
  partial statistics, then ``Renumbering.from_sizes``), 1,000 objects per
  block, 30 % of them cut by a face (two partial rows each).
* ``driver``: the real driver of ``bigseg.segment`` (``_run``: every stage, the
  prefix sums, the folds, the table split), with the block tasks replaced by
  functions returning what a block of 1,000 objects returns (counts; no wide
  objects). No I/O, no cluster: this is the driver's own cost.
* ``tasks``: the per-object work that moved into block tasks (roots from the
  pairs around a block, its numbering, combining statistics per owner, the
  final-ID lookup), run with the real functions on simulated blocks; time per
  object, and peak RSS of that process.

    python benchmarks/driver_scale.py                         # all parts, 10^6..10^8
    python benchmarks/driver_scale.py --parts driver --objects 1e6 1e7
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

PER_BLOCK = 1000  # objects per block
CUT = 0.3  # fraction of objects cut by a block face


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _grid_shape(n_blocks: int) -> tuple[int, int, int]:
    side = round(n_blocks ** (1 / 3))
    return (max(1, round(n_blocks / side / side)), side, side)


def _partials(n_objects: int, seed: int = 0) -> list[Any]:
    """Per-block partial statistics: each object once, CUT of them twice (cut by a face)."""
    from bigseg.measure import BlockStats

    rng = np.random.default_rng(seed)
    n_blocks = max(1, n_objects // PER_BLOCK)
    parts = []
    for b in range(n_blocks):
        own = np.arange(b * PER_BLOCK + 1, (b + 1) * PER_BLOCK + 1, dtype=np.uint64)
        cut = own[rng.random(PER_BLOCK) < CUT] if b + 1 < n_blocks else own[:0]
        ids = np.concatenate([own, cut + PER_BLOCK])  # a cut object also has a piece in the next block
        n = len(ids)
        f = rng.random(n)
        box = rng.integers(0, 1000, (n, 3))
        parts.append(BlockStats(ids, rng.integers(1, 300, n), f, f, f, f, f, box, box + 5, np.zeros(n, bool)))
    return parts


def run_old(n_objects: int) -> dict[str, float]:
    from bigseg.measure import combine_stats
    from bigseg.stitch import Renumbering

    parts = _partials(n_objects)
    t0 = time.perf_counter()
    stats = combine_stats(parts)
    Renumbering.from_sizes(stats.ids.astype(np.uint32), stats.count, min_size=20)
    return {"seconds": time.perf_counter() - t0, "objects": len(stats.ids)}


def run_driver(n_objects: int) -> dict[str, float]:
    """The real ``_run`` with the block tasks replaced by simulated results."""
    import bigseg.pipeline._segment as seg
    from bigseg.config import load_config
    from bigseg.measure import BlockStats
    from bigseg.pipeline import BlockRunner
    from bigseg.tiling import Grid, Halo

    pieces = int(PER_BLOCK * (1 + CUT))
    fakes = {
        "predict_task": lambda ctx, block, seeded: pieces,
        "seed_pairs_task": lambda ctx, block: int(PER_BLOCK * CUT),
        "resolve_task": lambda ctx, block, counts: (pieces - PER_BLOCK, np.zeros((0, 2), np.uint64)),
        "flood_task": lambda ctx, block, counts, offsets: (pieces, BlockStats.empty()),
        "measure_task": lambda ctx, block, active, offsets, far: PER_BLOCK - 50,  # 5 % below min size
        "relabel_task": lambda ctx, block, offsets, kept, mask: None,
        "table_task": lambda ctx, part, kept, voxel: len(part[1]) * (PER_BLOCK - 50),
        "remove_tree": lambda *a, **k: None,
        "_finalize": lambda *a, **k: None,  # metadata writes: O(1), and they need a real output
    }
    for name, fn in fakes.items():
        setattr(seg, name, fn)
    n_blocks = max(1, n_objects // PER_BLOCK)
    grid = Grid(tuple(g * 128 for g in _grid_shape(n_blocks)), (128, 128, 128), Halo.of(8))
    stub = SimpleNamespace(remove=lambda: None, finalize=lambda *a: None, url="x", storage_options=None)
    labels = SimpleNamespace(voxel_size=(5.0, 5.26, 5.26), url="x/labels/nuclei", name="nuclei", n_levels=1,
                             storage_options=None,
                             finalize=lambda *a: None)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = SimpleNamespace(grid=grid, image=None, labels=labels, maps=stub, scratch=stub, tissue=None,
                              decoder=SimpleNamespace(name="bcd"),
                              table_url=f"{tmp}/nuclei.parquet")
        plan = SimpleNamespace(params=SimpleNamespace(__dataclass_fields__={}), diameter_um=15.0,
                               diameter_estimate=None, grid=grid)
        cfg = load_config(environ={}, scheduler="sync", stitch="seeds")
        t0 = time.perf_counter()
        result = seg._run(cfg, ctx, plan, BlockRunner(None), tmp, predict=True)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "objects": result.n_objects, "blocks": grid.n_blocks}


def run_tasks(n_blocks_side: int = 4) -> dict[str, float]:
    """Per-object cost of the block-task side on a (side)^3 grid of simulated blocks."""
    from bigseg.measure import BlockStats, combine_stats
    from bigseg.stitch import Renumbering, local_numbering, owner_blocks, provisional_ids, resolve_roots

    rng = np.random.default_rng(1)
    shape = (n_blocks_side,) * 3
    n_blocks = math.prod(shape)
    m = int(PER_BLOCK * CUT / 3)  # objects cut by each high face
    base = PER_BLOCK - 3 * m
    # locals: [low-face pieces of z, y, x][high-face pieces of z, y, x][interior]
    index = np.stack(np.unravel_index(np.arange(n_blocks), shape), 1)

    def low(b: int, axis: int) -> int:
        return m if index[b][axis] > 0 else 0

    def high(b: int, axis: int) -> int:
        return m if index[b][axis] + 1 < shape[axis] else 0

    counts = np.array([sum(low(b, a) + high(b, a) for a in range(3)) + base for b in range(n_blocks)])
    pairs: dict[int, np.ndarray] = {}
    for b in range(n_blocks):
        out = []
        for a in range(3):
            if high(b, a):
                h = int(np.ravel_multi_index(tuple(index[b] + np.eye(3, dtype=int)[a]), shape))
                start_b = sum(low(b, k) for k in range(3)) + sum(high(b, k) for k in range(a)) + 1
                start_h = sum(low(h, k) for k in range(a)) + 1
                lo = np.arange(start_b, start_b + m, dtype=np.uint32)
                hi = rng.permutation(np.arange(start_h, start_h + m, dtype=np.uint32))
                out.append(np.stack([provisional_ids(lo, b), provisional_ids(hi, h)], 1))
        pairs[b] = np.concatenate(out) if out else np.zeros((0, 2), np.uint64)
    t = {"resolve": 0.0, "numbering": 0.0, "measure": 0.0, "relabel": 0.0}
    tables = {}
    for b in range(n_blocks):
        near = [pairs[c] for c in range(n_blocks) if np.all((index[c] >= index[b] - 2) & (index[c] <= index[b] + 1))]
        t0 = time.perf_counter()
        nonroot, roots, _ = resolve_roots(np.concatenate(near), b, shape)
        t["resolve"] += time.perf_counter() - t0
        tables[b] = (nonroot, roots)
    offsets = np.concatenate([[0], np.cumsum(counts - [len(tables[b][0]) for b in range(n_blocks)])])
    finals = {}
    for b in range(n_blocks):
        t0 = time.perf_counter()
        numbering = local_numbering(offsets, tables, [b])
        finals[b] = numbering.to_final(provisional_ids(np.arange(1, counts[b] + 1, dtype=np.uint32), b))
        t["numbering"] += time.perf_counter() - t0
    rows = {}
    for b in range(n_blocks):
        n = len(finals[b])
        f = rng.random(n)
        box = rng.integers(0, 1000, (n, 3))
        rows[b] = BlockStats(finals[b].astype(np.uint64), rng.integers(1, 300, n), f, f, f, f, f, box, box + 5,
                             np.zeros(n, bool))
    kept_ids = {}
    for r in range(n_blocks):
        t0 = time.perf_counter()
        parts = []
        for c in range(n_blocks):
            if np.all(np.abs(index[c] - index[r]) <= 1):
                own = owner_blocks(rows[c].ids, offsets) == r
                parts.append(BlockStats(**{k: getattr(rows[c], k)[own] for k in BlockStats.__slots__}))
        stats = combine_stats(parts)
        kept_ids[r] = stats.ids[stats.count >= 20]
        t["measure"] += time.perf_counter() - t0
    kept_offsets = np.concatenate([[0], np.cumsum([len(kept_ids[r]) for r in range(n_blocks)])])
    for b in range(n_blocks):
        t0 = time.perf_counter()
        present = np.unique(finals[b]).astype(np.int64)
        owner = owner_blocks(present, offsets)
        new = np.zeros(len(present), np.int64)
        for r in np.unique(owner):
            sel = owner == r
            kept = kept_ids[int(r)].astype(np.int64)
            pos = np.searchsorted(kept, present[sel])
            hit = pos < len(kept)
            hit[hit] = kept[pos[hit]] == present[sel][hit]
            new[sel] = np.where(hit, kept_offsets[r] + 1 + pos, 0)
        Renumbering(present.astype(np.uint32), new.astype(np.uint32), int(kept_offsets[-1]))
        t["relabel"] += time.perf_counter() - t0
    n_obj = int(offsets[-1])
    return {**{k: v / n_obj * 1e6 for k, v in t.items()}, "objects": n_obj}


def _child(part: str, n: int) -> dict[str, Any]:
    out = {"old": run_old, "driver": run_driver}[part](n) if part != "tasks" else run_tasks()
    out["peak_mib"] = _peak_mib()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["old", "driver", "tasks"])
    ap.add_argument("--objects", nargs="+", type=float, default=[1e6, 1e7, 1e8])
    ap.add_argument("--old-max", type=float, default=1e7, help="largest size for the old driver (2.6 GiB at 1e7)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], int(float(args.child[1])))))
        return
    print(f"{PER_BLOCK} objects per block, {CUT:.0%} cut by a face; each figure from its own process")
    for part in args.parts:
        sizes = [1] if part == "tasks" else [n for n in args.objects if part != "old" or n <= args.old_max]
        for n in sizes:
            res = subprocess.run([sys.executable, __file__, "--child", part, str(n)], capture_output=True, text=True)
            if res.returncode:
                print(f"{part} {n:.0e}: failed\n{res.stderr[-2000:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            if part == "tasks":
                per = ", ".join(f"{k} {r[k]:.2f}" for k in ("resolve", "numbering", "measure", "relabel"))
                print(f"tasks (per object, µs, one process): {per}; {r['objects']} objects, peak RSS "
                      f"{r['peak_mib']:.0f} MiB")
            else:
                print(f"{part:6s} {r['objects']:>11,.0f} objects: peak RSS {r['peak_mib']:7.0f} MiB, "
                      f"{r['seconds']:7.1f} s, {r['seconds'] / r['objects'] * 1e9:7.1f} ns/object"
                      + (f", {r['blocks']:,} blocks" if "blocks" in r else ""))


if __name__ == "__main__":
    main()
