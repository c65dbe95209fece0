"""Done records: what lets a killed run continue where it stopped.

Layout under the run's work folder (``OUT/.bigseg-work`` for ``segment``)::

    records/
    ├── done/<stage>/<item>     one small object per finished block of a stage,
    │                           holding the task's (small) result
    └── named/<name>            driver-side results between stages (numbering, ...)

The rule that keeps them honest: a task's output is durable *before* its
record is written, and a record is written in one piece (a local file is
written under a temporary name, synced and renamed; an object store PUT is
atomic and there is no rename). A missing record means "redo the block in
full", so a half-written chunk can never be read as done; a stale or lagging
listing can only make a block be redone, never skipped.

Records hold numbers only (``.npz`` of arrays, no pickles): ``None``, ints,
floats, arrays, tuples of them, and dataclasses of bigseg whose fields are
such values.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import os
import tempfile
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from bigseg.io import get_fs, is_local, join_url

__all__ = ["RecordStore", "decode_value", "encode_value"]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------ codec


def _flatten(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON description of ``value``; its arrays go into ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return {"v": value}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"float": float(value)}
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"array": key}
    if isinstance(value, (tuple, list)):
        return {"tuple" if isinstance(value, tuple) else "list": [_flatten(v, arrays) for v in value]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith("bigseg."):
            raise TypeError(f"cannot record a {cls.__module__}.{cls.__qualname__}: only bigseg dataclasses")
        body = {f.name: _flatten(getattr(value, f.name), arrays) for f in dataclasses.fields(value) if f.init}
        return {"class": f"{cls.__module__}:{cls.__qualname__}", "fields": body}
    raise TypeError(f"cannot record a value of type {type(value).__name__}; return arrays, numbers or dataclasses")


def _unflatten(desc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Any:
    if "v" in desc:
        return desc["v"]
    if "int" in desc:
        return int(desc["int"])
    if "float" in desc:
        return float(desc["float"])
    if "array" in desc:
        return arrays[desc["array"]]
    if "tuple" in desc:
        return tuple(_unflatten(d, arrays) for d in desc["tuple"])
    if "list" in desc:
        return [_unflatten(d, arrays) for d in desc["list"]]
    module, _, name = str(desc["class"]).partition(":")
    if not module.startswith("bigseg."):
        raise ValueError(f"record names class {desc['class']!r} outside bigseg")
    cls = getattr(importlib.import_module(module), name)
    return cls(**{k: _unflatten(d, arrays) for k, d in desc["fields"].items()})


def encode_value(value: Any) -> bytes:
    """``value`` as the bytes of an ``.npz`` (no pickles)."""
    arrays: dict[str, np.ndarray] = {}
    desc = _flatten(value, arrays)
    buf = io.BytesIO()
    save: Any = np.savez
    save(buf, __desc__=np.array(json.dumps(desc)), **arrays)
    return buf.getvalue()


def decode_value(data: bytes) -> Any:
    """The value :func:`encode_value` stored."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__desc__"}
        desc = json.loads(str(z["__desc__"]))
    return _unflatten(desc, arrays)


# ------------------------------------------------------------------ store


@dataclasses.dataclass(frozen=True)
class RecordStore:
    """Done records and named results of one run, under ``url`` (picklable)."""

    url: str
    storage_options: dict[str, Any] | None = dataclasses.field(default=None, compare=False, hash=False, repr=False)

    def _url(self, *parts: str) -> str:
        return join_url(self.url, *parts)

    def _put(self, url: str, data: bytes) -> None:
        if is_local(url):
            folder = os.path.dirname(url)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, url)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
            return
        fs, path = get_fs(url, self.storage_options)
        fs.pipe_file(path, data)  # one PUT: the object appears whole or not at all

    def _get_many(self, urls: list[str]) -> list[bytes]:
        if not urls:
            return []
        if is_local(urls[0]):
            out = []
            for u in urls:
                with open(u, "rb") as f:
                    out.append(f.read())
            return out
        fs, _ = get_fs(urls[0], self.storage_options)
        paths = [get_fs(u, self.storage_options)[1] for u in urls]
        got = fs.cat(paths, on_error="raise")  # concurrent GETs
        return [got[p] for p in paths]

    def _names(self, url: str) -> list[str]:
        if is_local(url):
            return [n for n in os.listdir(url) if not n.startswith(".tmp-")] if os.path.isdir(url) else []
        fs, path = get_fs(url, self.storage_options)
        fs.invalidate_cache(path)  # workers wrote these: never trust this process's listing cache
        try:
            listed = fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return [str(n).rstrip("/").rsplit("/", 1)[-1] for n in listed]

    # -------------------------------------------------------------- blocks

    def mark_done(self, stage: str, item: int, result: Any) -> None:
        """Record that item ``item`` of ``stage`` is durable, with its small ``result``."""
        self._put(self._url("done", stage, str(item)), encode_value(result))

    def done(self, stage: str) -> set[int]:
        """Items of ``stage`` with a done record (one listing)."""
        return {int(n) for n in self._names(self._url("done", stage)) if n.isdigit()}

    def results(self, stage: str, items: Iterable[int], *, batch: int = 64) -> Iterator[tuple[int, Any]]:
        """``(item, recorded result)`` for ``items`` of ``stage``, read ``batch`` at a time
        (concurrently on object stores), so memory holds one batch, not every result."""
        items = list(items)
        for start in range(0, len(items), batch):
            part = items[start:start + batch]
            blobs = self._get_many([self._url("done", stage, str(i)) for i in part])
            yield from ((i, decode_value(b)) for i, b in zip(part, blobs))

    # -------------------------------------------------------------- named

    def save(self, name: str, value: Any) -> None:
        """Persist a driver-side result between stages."""
        self._put(self._url("named", name), encode_value(value))

    def load(self, name: str) -> tuple[bool, Any]:
        """``(True, value)`` if ``name`` was saved, else ``(False, None)``."""
        if name not in self._names(self._url("named")):
            return False, None
        return True, decode_value(self._get_many([self._url("named", name)])[0])
