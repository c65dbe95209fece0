"""`bigseg segment --diameter`: a number of µm or `auto`."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from bigseg.cli import app
from bigseg.testing import write_image

runner = CliRunner()


def test_bad_diameter_exits_2_and_names_auto(tmp_path):
    src = tmp_path / "in.zarr"
    write_image(src, np.zeros((8, 8, 8), np.uint8))
    res = runner.invoke(app, ["segment", str(src), str(tmp_path / "o.zarr"), "--diameter", "large", "--scheduler", "sync"])
    assert res.exit_code == 2
    assert "diameter_um" in res.output and "'auto'" in res.output and "'large'" in res.output


def test_diameter_auto_on_an_empty_image_exits_2_with_the_fix(tmp_path):
    src = tmp_path / "in.zarr"
    write_image(src, np.zeros((8, 8, 8), np.uint8))
    res = runner.invoke(app, ["segment", str(src), str(tmp_path / "o.zarr"), "--diameter", "auto", "--scheduler", "sync",
                              "--predictor", "classical", "--no-progress"])
    assert res.exit_code == 2
    assert "--diameter" in res.output
