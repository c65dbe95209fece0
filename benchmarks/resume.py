"""Re-running after a kill at about 60 % of a run, versus a full run.

1. A full ``bigseg segment`` run (a fresh process, like a scheduled job), timed
   per stage.
2. The stage and block at which about ``--at`` (default 0.6) of the block work
   is done, from those stage times (block work spread evenly within a stage).
3. The same command killed there (``BIGSEG_KILL_AT``, kill -9 of its process
   group), then run again: the re-run is timed.

Prints the full and re-run wall times, their ratio, and what it should
approach: the unfinished fraction of the block work plus the start-up (a run
of the same command on the complete output, which only starts and checks).
No asserts.

    python benchmarks/resume.py                      # 64 x 256 x 256, blocks 32^3, classical, sync
    python benchmarks/resume.py --shape 96 384 384 --scheduler local --n-workers 2
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bigseg.synth import synthesize
from bigseg.testing import write_image


def segment_cmd(src: Path, out: Path, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "bigseg", "segment", str(src), str(out), "--predictor", "classical",
        "--diameter", "8", "--block-shape", *map(str, args.block), "--scheduler", args.scheduler,
        *(["--n-workers", str(args.n_workers)] if args.n_workers else []), "--no-progress",
    ]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          start_new_session=True)
    return time.perf_counter() - t0, proc


def stage_times(summary: str) -> dict[str, float]:
    """``stages: predict 1.2s, pairs 0.1s, ...`` of a run's summary."""
    line = next(x for x in summary.splitlines() if x.strip().startswith("stages:"))
    return {k: float(v) for k, v in re.findall(r"([\w-]+) ([\d.]+)s", line)}


def kill_point(times: dict[str, float], n_blocks: int, n_pyramid: int, at: float) -> tuple[str, int, float]:
    """(stage, block index, fraction of the block work done when it is killed there)."""
    order = [s for s in ("predict", "pairs", "resolve", "flood", "measure", "relabel", "pyramid") if s in times]
    total = sum(times[s] for s in order)
    before = 0.0
    for stage in order:
        if before + times[stage] >= at * total:
            n = n_pyramid if stage == "pyramid" else n_blocks
            k = min(n - 1, max(0, int((at * total - before) / times[stage] * n)))
            name = "pyramid-1" if stage == "pyramid" else stage
            return name, k, (before + times[stage] * (k + 1) / n) / total
        before += times[stage]
    raise ValueError(f"no stage reaches {at:.0%} of {times}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256))
    parser.add_argument("--block", type=int, nargs=3, default=(32, 32, 32))
    parser.add_argument("--at", type=float, default=0.6, help="Fraction of the block work done at the kill.")
    parser.add_argument("--scheduler", default="sync")
    parser.add_argument("--n-workers", type=int, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bigseg-resume-"))
    try:
        src = work / "in.ome.zarr"
        image, _ = synthesize(tuple(args.shape), seed=1)
        write_image(src, image, chunk_shape=tuple(args.block), n_levels=2)
        full_out, killed_out = work / "full.zarr", work / "killed.zarr"
        t_full, full = timed(segment_cmd(src, full_out, args))
        if full.returncode:
            raise SystemExit(full.stderr[-3000:])
        times = stage_times(full.stdout)
        n_blocks = int(re.search(r"\((\d+) blocks of", full.stdout).group(1))  # type: ignore[union-attr]
        level1 = sorted(full_out.glob("labels/nuclei/1/c/**/*"))
        n_pyramid = max(1, sum(1 for p in level1 if p.is_file()) * 2)  # labels and image units of level 1
        stage, k, done = kill_point(times, n_blocks, n_pyramid, args.at)
        _, killed = timed(segment_cmd(src, killed_out, args), env={"BIGSEG_KILL_AT": f"{stage}:{k}:done"})
        if killed.returncode != -signal.SIGKILL:
            raise SystemExit(f"the run was not killed at {stage}:{k} (exit {killed.returncode})\n{killed.stderr[-3000:]}")
        t_resume, resumed = timed(segment_cmd(src, killed_out, args))
        if resumed.returncode:
            raise SystemExit(resumed.stderr[-3000:])
        t_noop, _ = timed(segment_cmd(src, killed_out, args))
        block_work = sum(times.values())
        print(f"volume {tuple(args.shape)}, blocks {tuple(args.block)} ({n_blocks}), scheduler {args.scheduler}")
        print(f"full run:            {t_full:7.2f} s  (stages {block_work:.2f} s: "
              + ", ".join(f"{s} {v:.2f}" for s, v in times.items()) + ")")
        print(f"killed at:           {stage} block {k} (~{done:.0%} of the stage time done)")
        print(f"re-run after kill:   {t_resume:7.2f} s")
        print(f"no-op on complete:   {t_noop:7.2f} s  (start-up and check only)")
        print(f"ratio re-run / full: {t_resume / t_full:.2f}")
        expected = ((1 - done) * block_work + t_noop) / t_full
        print(f"expected about:      {expected:.2f}  (unfinished fraction of the stage time + start-up, over full)")
        print("resumed line:        " + next((x.strip() for x in resumed.stdout.splitlines() if "resumed:" in x), "-"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
