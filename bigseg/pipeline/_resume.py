"""What an existing output is, and whether this run may continue it.

A run records its *fingerprint* (kind, input URL, shape, dtype and voxel size,
the identity of the input's files, every configuration field that changes the
result, and the model's content hash) in the ``bigseg`` attributes of the group
it produces, when it creates it. Re-running on that output then:

- finishes it when the fingerprint is the same and it is not complete;
- does nothing when it is complete (a scheduled job exits 0 at once);
- refuses, naming every difference, when the fingerprint differs; the two
  ways out are ``--overwrite`` and another output.

Execution settings (scheduler, workers, window, timeouts, retries, device) are
not part of the fingerprint: a run may continue on another cluster.
Storage options (credentials) are never recorded.

The input's files are named by their :class:`~bigseg.io.FileIdentity` (size and
modification time; remote: also the ETag), taken once per run by the driver: a
TIFF's file, a zarr input's metadata documents (``zarr.json``; v2 ``.zattrs`` of
the OME group, ``.zarray`` of each level). An input written anew at the same URL
rewrites them, so a killed run is not continued on it. Chunks rewritten in place,
metadata untouched, are not detected: that would mean listing every chunk of the
input on each run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from bigseg.config import SegmentConfig
from bigseg.errors import OutputExistsError, OutputMismatchError
from bigseg.io import Volume, file_identity, is_local, open_group, path_exists
from bigseg.io._store import is_empty_dir
from bigseg.pipeline._lock import LOCK_NAME

__all__ = [
    "EXECUTION_FIELDS",
    "OutputState",
    "check_existing",
    "decode_fingerprint",
    "inspect_output",
    "segment_fingerprint",
]

EXECUTION_FIELDS = frozenset({
    "scheduler", "n_workers", "threads_per_worker", "memory_limit", "window", "gpu_resources", "overwrite",
    "block_timeout", "retries", "lock_stale_s", "device",
})


def _run_config(cfg: SegmentConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.model_dump(mode="json").items() if k not in EXECUTION_FIELDS}


def _model_identity(cfg: SegmentConfig) -> dict[str, Any] | None:
    """Name and content hash of the model the run uses (for prediction or for the diameter estimate)."""
    if cfg.predictor != "model" and cfg.diameter_um != "auto":
        return None
    from bigseg.predict import DEFAULT_MODEL, DEFAULT_MODELS, resolve_model  # imports torch: only for model runs

    name = (cfg.model or "default") if cfg.predictor == "model" else DEFAULT_MODEL
    digest = hashlib.sha256()
    # "default" picks one of the shipped pair from the volume and the diameter: both are the run's identity.
    for path in [resolve_model(m) for m in DEFAULT_MODELS] if name == "default" else [resolve_model(name)]:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in files:
            digest.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
            digest.update(p.read_bytes())
    return {"name": str(name), "sha256": digest.hexdigest()}


def segment_fingerprint(
    cfg: SegmentConfig, volume: Volume, input_url: str, predictor_spec: Any = None
) -> dict[str, Any]:
    """The fingerprint of a ``segment`` run (JSON-able; no storage options).

    A predictor of the caller's own (``predictor_spec``) is named by its ``repr``. The input's files
    are named by their identity (:meth:`~bigseg.io.FileIdentity.recorded`), so that an input written
    anew at the same URL is another input and a run is never resumed on it:

    - a TIFF: the file's size and modification time (remote: also its ETag), taken when it was opened;
    - a zarr / OME-Zarr input: those of its metadata documents (``input.metadata``, by path under the
      input URL; ``None`` for one that is absent), read here, once per run: the OME group's and each
      level array's ``zarr.json`` (v2: ``.zattrs``, ``.zarray``). Writing the image anew (an export
      re-run, ``zarr.create_array(..., overwrite=True)``) rewrites them. **Not detected**: chunks
      rewritten in place with the metadata left untouched (noticing those would mean listing every
      chunk of the input), and, on an object store, the same metadata bytes written again within
      the same second (the ETag is the bytes' hash and the time has whole seconds).
    """
    extra = {"predictor_spec": repr(predictor_spec)} if predictor_spec is not None else {}
    source: dict[str, Any] = {
        "url": input_url, "shape": list(volume.shape), "dtype": str(volume.dtype),
        "voxel_size": list(volume.voxel_size),
    }
    if volume.kind == "tiff" and volume.tiff_identity is not None:
        source["file"] = volume.tiff_identity.recorded()
    if volume.metadata_urls:
        source["metadata"] = _metadata_identity(volume)
    return {
        **extra,
        "kind": "segment",
        "input": source,
        "config": _run_config(cfg),
        "model": _model_identity(cfg),
    }


def _metadata_identity(volume: Volume) -> dict[str, list[Any] | None]:
    """``{path under the input URL: recorded identity}`` of the input's zarr metadata documents."""
    out: dict[str, list[Any] | None] = {}
    for url in volume.metadata_urls:
        name = url[len(volume.source) + 1:] if url.startswith(volume.source + "/") else url
        try:
            out[name] = file_identity(url, volume.storage_options).recorded()
        except FileNotFoundError:
            out[name] = None
    return out


def decode_fingerprint(cfg: SegmentConfig, maps_url: str, label_name: str) -> dict[str, Any]:
    """The fingerprint of a ``decode`` run into ``labels/<label_name>``."""
    return {"kind": "decode", "input": {"maps": maps_url, "label": label_name}, "config": _run_config(cfg)}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


_UNRECORDED = "(none)"


def _absent(key: str) -> Any:
    """What a field a fingerprint does not record reads as: a configuration field (one added by a later
    release) as unset, ``None``, whose value keeps the earlier behaviour; any other as ``'(none)'``."""
    return None if key.startswith("config.") else _UNRECORDED


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``field: recorded X, now Y`` for every field that differs (an unrecorded field: :func:`_absent`)."""
    a, b = _flat(json.loads(json.dumps(recorded))), _flat(json.loads(json.dumps(now)))

    def get(flat: dict[str, Any], k: str) -> Any:
        return flat.get(k, _absent(k))

    return [f"{k}: recorded {get(a, k)!r}, now {get(b, k)!r}" for k in sorted(set(a) | set(b)) if get(a, k) != get(b, k)]


@dataclass(frozen=True)
class OutputState:
    """What is at an output URL: nothing, an empty folder, a bigseg group, or something else."""

    kind: Literal["absent", "empty", "bigseg", "foreign"]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.kind == "bigseg" and self.attrs.get("complete") is True

    @property
    def fingerprint(self) -> dict[str, Any] | None:
        fp = self.attrs.get("fingerprint")
        return fp if isinstance(fp, dict) else None


def inspect_output(url: str, storage_options: Mapping[str, Any] | None = None) -> OutputState:
    """Look at ``url`` without changing it (a run's own lock does not count as content)."""
    if not path_exists(url, storage_options) or is_empty_dir(url, storage_options, ignore=(LOCK_NAME,)):
        return OutputState("absent" if not path_exists(url, storage_options) else "empty")
    if is_local(url) and not Path(url).is_dir():
        return OutputState("foreign")
    try:
        attrs = dict(open_group(url, storage_options, mode="r").attrs)
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return OutputState("foreign")
    meta = attrs.get("bigseg")
    if not isinstance(meta, Mapping) or "complete" not in meta:
        return OutputState("foreign")
    return OutputState("bigseg", dict(meta))


def check_existing(state: OutputState, fingerprint: Mapping[str, Any], url: str, *, overwrite: bool) -> bool:
    """True if ``url`` already holds this run, complete; raise if it holds anything this run may not continue.

    Nothing is deleted here.
    """
    if overwrite or state.kind in ("absent", "empty"):
        return False
    ways_out = "pass --overwrite (overwrite=True) to delete it and start again, or choose another output path"
    if state.kind == "foreign":
        raise OutputExistsError(
            f"output {url!r} already exists and is not a bigseg output (no bigseg run metadata); nothing was "
            f"changed; {ways_out}"
        )
    recorded = state.fingerprint
    if recorded is None:
        raise OutputMismatchError(
            f"output {url!r} is a bigseg output without a run fingerprint (written by an older bigseg or by "
            f"another tool), so this run cannot continue it; nothing was changed; {ways_out}"
        )
    diff = differences(recorded, fingerprint)
    if diff:
        what = "complete" if state.complete else "unfinished"
        unrecorded = any(_absent(k) == _UNRECORDED for k in set(_flat(json.loads(json.dumps(fingerprint))))
                         - set(_flat(recorded)))
        note = (f" ('{_UNRECORDED}': the output does not record that field, e.g. it was written by an older "
                "bigseg that did not, so it cannot be told to hold this run)" if unrecorded else "")
        raise OutputMismatchError(
            f"output {url!r} holds an {what} run of another input or configuration: {'; '.join(diff)}{note}. "
            f"Nothing was changed; {ways_out}"
        )
    return state.complete
