"""Decoding is pure numpy: importing it must not import torch (or Dask)."""

from __future__ import annotations

import subprocess
import sys


def test_import_decode_does_not_import_torch():
    # A fresh interpreter: other tests have imported torch into this one already.
    code = "import sys, bigseg.decode; print(sorted(m for m in ('torch', 'distributed', 'dask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
