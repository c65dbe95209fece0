"""Real I/O errors are raised, never read as "nothing there" (which would skip the overwrite guard)."""

from __future__ import annotations

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from bigseg.io import create_image, path_exists


class _NoPermission(MemoryFileSystem):
    """A remote store that answers every listing with an error that is not "not found"."""

    protocol = "bigseg-denied"
    store: dict = {}
    pseudo_dirs = [""]

    def exists(self, path, **kwargs):
        raise PermissionError(f"access denied: {path}")

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"access denied: {path}")


@pytest.fixture
def denied():
    fsspec.register_implementation("bigseg-denied", _NoPermission, clobber=True)
    return "bigseg-denied://bucket/out.zarr"


def test_path_exists_raises_real_errors(denied):
    with pytest.raises(PermissionError, match="access denied"):
        path_exists(denied)
    assert path_exists("memory://bigseg-nothing-here/x.zarr") is False


def test_overwrite_guard_is_not_skipped_on_an_error(denied):
    with pytest.raises(PermissionError, match="access denied"):
        create_image(denied, shape=(4, 4, 4), dtype="uint8", voxel_size=(1, 1, 1), chunk_shape=(4, 4, 4))
