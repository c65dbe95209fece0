"""What an output folder holds: finished or not, how it was made, what it found (``bigseg info``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from bigseg.errors import InputError, VolumeNotFoundError
from bigseg.io import is_complete, join_url, normalize_url, open_group, path_exists
from bigseg.pipeline._outputs import LABEL_NAME

__all__ = ["OutputInfo", "describe_output"]
# The order `segment` runs its stages in (overlap stitching adds "decode"; `decode` replaces
# "predict" by "seeds"), so the stages done read in run order.
STAGE_ORDER = ("predict", "seeds", "decode", "pairs", "flood", "relabel", "pyramid", "table")


@dataclass(frozen=True)
class OutputInfo:
    """A summary of one bigseg output.

    Attributes
    ----------
    url : str
    complete : bool
        The run finished: labels and image metadata written last, nothing partial.
    parts : dict of str to bool
        Which parts are finished: ``image``, ``labels``, ``table``, ``maps`` (kept BCD maps).
    interrupted : bool
        Intermediate arrays of a run are still there (it stopped before the end).
    run : dict
        The run's record from the label metadata (configuration, decode thresholds, diameter,
        grid, counts, per-stage seconds); empty for an unfinished run.
    """

    url: str
    complete: bool
    parts: dict[str, bool]
    interrupted: bool
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def n_objects(self) -> int | None:
        n = self.run.get("n_objects")
        return int(n) if n is not None else None

    @property
    def stages_done(self) -> list[str]:
        """Stages of the recorded run, in run order (all of them: a run is recorded only when it ends)."""
        timings = self.run.get("timings_s", {})
        return [s for s in STAGE_ORDER if s in timings] + [s for s in timings if s not in STAGE_ORDER]

    def summary(self) -> str:
        """A few lines for a terminal."""
        state = "complete" if self.complete else "NOT complete"
        lines = [f"{self.url}: {state}"]
        lines.append("  parts: " + ", ".join(f"{k} {'done' if v else 'missing'}" for k, v in self.parts.items()))
        if self.interrupted:
            lines.append("  a run stopped before the end (intermediate arrays in .bigseg-work); "
                         "run `bigseg segment` again with --overwrite")
        if self.run:
            grid = self.run.get("grid", {})
            lines.append(f"  nuclei: {self.n_objects}   blocks: {self.run.get('n_blocks', '?')} "
                         f"({self.run.get('skipped_blocks', 0)} skipped, no tissue) of "
                         f"{grid.get('block_shape')} (halo {grid.get('halo')})   diameter: "
                         f"{self.run.get('diameter_um')} µm")
            timings = self.run.get("timings_s", {})
            lines.append("  stages done: " + ", ".join(f"{s} {timings[s]:.1f}s" for s in self.stages_done))
            cfg = self.run.get("config", {})
            lines.append("  configuration: " + ", ".join(f"{k}={v}" for k, v in cfg.items() if v is not None))
        return "\n".join(lines)


def _attrs(url: str) -> Mapping[str, Any] | None:
    try:
        return dict(open_group(url, mode="r").attrs)
    except (FileNotFoundError, ValueError, KeyError):
        return None


def describe_output(output: str) -> OutputInfo:
    """Read what ``output`` (a ``bigseg segment`` output) holds, without reading any image data.

    Raises
    ------
    VolumeNotFoundError
        Nothing exists at ``output``.
    InputError
        ``output`` exists but is not a bigseg output (no ``bigseg`` attributes).
    """
    url = normalize_url(output)
    if not path_exists(url):
        raise VolumeNotFoundError(f"no output at {url!r}; give the OUT folder of `bigseg segment IN OUT`")
    attrs = _attrs(url)
    if attrs is None or "bigseg" not in attrs:
        raise InputError(f"{url!r} is not a bigseg output (its zarr attributes have no 'bigseg' entry)")
    labels_url = join_url(url, "labels", LABEL_NAME)
    labels_attrs = _attrs(labels_url) or {}
    run = dict(labels_attrs.get("bigseg", {}).get("run", {})) if is_complete(labels_url) else {}
    table = run.get("table")
    parts = {
        "image": is_complete(url),
        "labels": is_complete(labels_url),
        "table": bool(table) and path_exists(join_url(url, "labels", str(table))),
    }
    if path_exists(join_url(url, "maps")):  # kept only with save_maps
        parts["maps"] = is_complete(join_url(url, "maps"))
    complete = parts["image"] and parts["labels"] and parts["table"]
    return OutputInfo(url, complete, parts, path_exists(join_url(url, ".bigseg-work")), run)
