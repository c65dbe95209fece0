"""Writing the nucleus table (Parquet) to a local path or fsspec URL."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from bigseg.io import get_fs, is_local

__all__ = ["clear_table", "write_table"]


def write_table(table: pa.Table, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``table`` to ``url`` in one piece: locally via a temporary file and an atomic rename,
    on an object store as one PUT (no rename there)."""
    if is_local(url):
        folder = os.path.dirname(url)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".parquet.tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, url)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    fs, path = get_fs(url, storage_options)
    fs.pipe_file(path, buf.getvalue().to_pybytes())


def clear_table(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Remove a previous table at ``url`` (a partitioned folder, or one file of an older run)."""
    if is_local(url):
        if os.path.isdir(url):
            shutil.rmtree(url)
        elif os.path.exists(url):
            os.remove(url)
        return
    fs, path = get_fs(url, storage_options)
    if fs.exists(path):
        fs.rm(path, recursive=True)
