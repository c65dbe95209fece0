"""URLs, zarr stores and per-process array handles.

A URL is a local path, a ``file://`` URL or any fsspec URL (``s3://``,
``gs://``, ``https://``, ``memory://``). Local paths use
:class:`zarr.storage.LocalStore`, everything else
:class:`zarr.storage.FsspecStore`.

Values that travel to Dask workers (:class:`~bigseg.io.Volume`,
:class:`~bigseg.io.ImageWriter`) hold URLs only; each process opens an array
once and keeps the handle in :data:`_HANDLES`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import zarr
import zarr.storage

from bigseg.errors import InputError

__all__ = [
    "FileIdentity",
    "FrozenOptions",
    "file_identity",
    "forget_handles",
    "freeze_options",
    "get_fs",
    "is_local",
    "join_url",
    "local_path",
    "make_store",
    "normalize_url",
    "open_array",
    "open_group",
    "path_exists",
    "remove_tree",
]

log = logging.getLogger(__name__)

FrozenOptions = tuple[tuple[str, Any], ...]

_HANDLES: dict[tuple[str, FrozenOptions, str], Any] = {}
_LOCK = threading.Lock()


def normalize_url(url: str | os.PathLike[str]) -> str:
    """Return ``url`` as an absolute local path or an fsspec URL, without a trailing ``/``."""
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise InputError(f"`url` must be a non-empty path or URL string, got {url!r}")
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" in url:
        return url.rstrip("/")
    return str(Path(url).expanduser().absolute())


def is_local(url: str) -> bool:
    """True for a (normalized) local path."""
    return "://" not in url


def local_path(url: str) -> Path:
    """The local path of a normalized local ``url``."""
    return Path(url)


def join_url(url: str, *parts: str) -> str:
    """``url`` with ``parts`` appended, separated by ``/``."""
    out = url.rstrip("/")
    for p in parts:
        p = p.strip("/")
        if p:
            out = f"{out}/{p}"
    return out


def freeze_options(storage_options: Mapping[str, Any] | None) -> FrozenOptions:
    """A hashable, order-independent form of ``storage_options`` (used as a cache key)."""
    if not storage_options:
        return ()
    return tuple(sorted((str(k), json.dumps(v, sort_keys=True, default=repr)) for k, v in storage_options.items()))


def get_fs(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem and path of a non-local ``url``."""
    import fsspec

    return fsspec.core.url_to_fs(url, **dict(storage_options or {}))


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What tells the file now at a URL from one written there before (see :func:`file_identity`).

    Attributes
    ----------
    size : int or None
        Bytes.
    modified : int or None
        Local: modification time in ns. Remote: whole seconds since the epoch (an object store's
        listing and its HEAD answer give the time at different precisions), ``None`` where the
        filesystem gives no time.
    tag : str
        Remote: the ETag where the filesystem gives one (S3: a hash of the bytes, so the same bytes
        written again keep it; only ``modified`` changes), else ``""``.
    inode : int or None
        Local only.
    """

    size: int | None
    modified: int | None
    tag: str = ""
    inode: int | None = None

    def recorded(self) -> list[Any]:
        """``[size, modified]`` (remote with an ETag: ``[size, modified, tag]``), as a run's fingerprint
        records it: without the inode, so a file copied back with its times kept (``cp -p``) is the same."""
        return [self.size, self.modified, self.tag] if self.tag else [self.size, self.modified]


_TAG_KEYS = ("ETag", "etag")
_TIME_KEYS = ("LastModified", "last_modified", "mtime", "updated", "created")


def file_identity(url: str, storage_options: Mapping[str, Any] | None = None) -> FileIdentity:
    """The :class:`FileIdentity` of the file at ``url``: inode, size and modification time (ns) of a local
    file; size, ETag and modification time (s) of a remote one, as the filesystem reports them.

    Raises
    ------
    FileNotFoundError
        Nothing is at ``url``.
    """
    if is_local(url):
        st = os.stat(url)
        return FileIdentity(st.st_size, st.st_mtime_ns, inode=st.st_ino)
    fs, path = get_fs(url, storage_options)
    info = fs.info(path)
    tag = next((str(info[k]) for k in _TAG_KEYS if info.get(k)), "")
    when = next((info[k] for k in _TIME_KEYS if info.get(k)), None)
    size = info.get("size")
    return FileIdentity(None if size is None else int(size), _whole_seconds(when), tag)


def _whole_seconds(when: Any) -> int | None:
    """A remote modification time (datetime, epoch number or ISO text) as whole seconds since the epoch."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(when, datetime):
        return int(when.timestamp())
    if isinstance(when, (int, float)):
        return int(when)
    return None


def make_store(url: str, storage_options: Mapping[str, Any] | None = None, *, read_only: bool) -> Any:
    """A zarr store rooted at ``url``."""
    if is_local(url):
        return zarr.storage.LocalStore(url, read_only=read_only)
    return zarr.storage.FsspecStore.from_url(url, storage_options=dict(storage_options or {}), read_only=read_only)


def path_exists(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether anything (file or folder) exists at ``url``.

    Only "not found" answers False: any other error (no permission, no network, bad
    credentials) is raised, since treating it as "nothing there" could skip the
    overwrite guard or misreport the input.
    """
    if is_local(url):
        return local_path(url).exists()
    fs, path = get_fs(url, storage_options)
    try:
        return bool(fs.exists(path))
    except FileNotFoundError:
        return False


def open_array(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    mode: str = "r",
    expect: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> Any:
    """The zarr array at ``url``, opened once per process and ``mode``.

    ``expect`` is ``(shape, chunks)``: a cached handle whose metadata differs
    (the tree was removed and written anew, e.g. with ``overwrite``, by another
    process) is dropped and the array opened again.
    """
    key = (url, freeze_options(storage_options), mode)
    arr = _HANDLES.get(key)
    if arr is not None and expect is not None and (tuple(arr.shape), tuple(arr.chunks)) != expect:
        arr = None
    if arr is None:
        store = make_store(url, storage_options, read_only=(mode == "r"))
        arr = zarr.open_array(store, mode=mode)
        with _LOCK:
            _HANDLES[key] = arr
    return arr


def open_group(url: str, storage_options: Mapping[str, Any] | None = None, *, mode: str = "r") -> Any:
    """The zarr group at ``url`` (not cached: groups are opened for metadata only)."""
    store = make_store(url, storage_options, read_only=(mode == "r"))
    return zarr.open_group(store, mode=mode)  # type: ignore[arg-type]


def forget_handles(url_prefix: str) -> None:
    """Drop cached handles under ``url_prefix`` (after a tree is removed or rewritten)."""
    prefix = url_prefix.rstrip("/")
    with _LOCK:
        for key in [k for k in _HANDLES if k[0] == prefix or k[0].startswith(prefix + "/")]:
            del _HANDLES[key]


_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs")


def _listing(url: str, storage_options: Mapping[str, Any] | None) -> list[str]:
    if is_local(url):
        p = local_path(url)
        return sorted(c.name for c in p.iterdir()) if p.is_dir() else []
    fs, path = get_fs(url, storage_options)
    try:
        return sorted(str(n).rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(path, detail=False))
    except FileNotFoundError:  # nothing there; any other error is real and raised
        return []


def is_empty_dir(url: str, storage_options: Mapping[str, Any] | None = None, *, ignore: Sequence[str] = ()) -> bool:
    """True if ``url`` is an existing folder with nothing in it but the names in ``ignore``."""
    if is_local(url):
        p = local_path(url)
        return p.is_dir() and not any(c.name not in ignore for c in p.iterdir())
    return path_exists(url, storage_options) and not [n for n in _listing(url, storage_options) if n not in ignore]


def remove_tree(url: str, storage_options: Mapping[str, Any] | None = None, *, keep: Sequence[str] = ()) -> None:
    """Delete the zarr tree at ``url``; refuse anything that is not a zarr folder.

    ``keep``: names at its root to leave (the folder itself then stays).

    Raises
    ------
    InputError
        If ``url`` is a file or a folder without zarr metadata at its root.
    """
    names = _listing(url, storage_options)
    if not any(m in names for m in _ZARR_MARKERS):
        raise InputError(
            f"refusing to overwrite {url!r}: it is not a zarr folder (no zarr.json/.zgroup/.zarray at its root; "
            f"found {names[:5]}{'...' if len(names) > 5 else ''}); remove it yourself or choose another output path"
        )
    log.info("removing existing output %s", url)
    forget_handles(url)
    if keep:
        for name in names:
            if name not in keep:
                _remove_any(join_url(url, name), storage_options)
        return
    _remove_any(url, storage_options)


def _remove_any(url: str, storage_options: Mapping[str, Any] | None) -> None:
    if is_local(url):
        p = local_path(url)
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    else:
        fs, path = get_fs(url, storage_options)
        fs.rm(path, recursive=True)
