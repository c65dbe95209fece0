"""A worker running the classical predictor never imports torch (about 1.5 s of CPU per process, and a
worker that has imported it takes seconds to exit)."""

from __future__ import annotations

import subprocess
import sys


def test_block_tasks_and_the_classical_predictor_do_not_import_torch():
    # A fresh interpreter: other tests have imported torch into this one already.
    code = (
        "import sys, bigseg.pipeline._tasks, bigseg.predict as p; p.get_predictor(p.ClassicalSpec((1., 1., 1.), 8.));"
        "print('torch' in sys.modules); p.ModelSpec; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr  # and the model side loads on use
