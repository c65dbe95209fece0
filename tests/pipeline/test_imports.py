"""A run with the classical predictor never imports torch, in the driver or in a worker (about 1.5 s of
CPU per process, and a worker that has imported it takes seconds to exit); a model run loads it."""

from __future__ import annotations

import subprocess
import sys


def _fresh(code: str) -> list[str]:
    # A fresh interpreter: other tests have imported torch into this one already.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_block_tasks_and_the_classical_predictor_do_not_import_torch():
    code = (
        "import sys, bigseg.pipeline._tasks, bigseg.predict as p; p.get_predictor(p.ClassicalSpec((1., 1., 1.), 8.));"
        "print('torch' in sys.modules); p.ModelSpec; print('torch' in sys.modules)"
    )
    assert _fresh(code) == ["False", "True"]  # and the model side loads on first use


def test_a_classical_run_does_not_import_torch_in_the_driver(tmp_path):
    code = (
        "import sys, numpy as np; from bigseg.testing import balls_volume, write_image;"
        "from bigseg.pipeline import segment;"
        f"write_image({str(tmp_path / 'in.zarr')!r}, balls_volume((16, 32, 32), [(8, 16, 16)], 4.0)[0]);"
        f"r = segment({str(tmp_path / 'in.zarr')!r}, {str(tmp_path / 'out.zarr')!r}, scheduler='sync',"
        " predictor='classical', diameter_um=8.0);"
        "print(r.n_objects, 'torch' in sys.modules)"
    )
    assert _fresh(code) == ["1", "False"]
