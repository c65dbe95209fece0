"""`bigseg --version`, `bigseg info OUT`, `bigseg report OUT`, `bigseg tls DIR`, and the exit codes in --help."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import bigseg
from bigseg.cli import app
from bigseg.errors import BlockFailedError
from bigseg.io import create_image
from bigseg.testing import balls_volume, write_image

runner = CliRunner()


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    image, _ = balls_volume((32, 64, 64), np.array([(16, 16, 16), (16, 48, 48), (16, 16, 48)]), 6.0)
    root = tmp_path_factory.mktemp("cli-info")
    write_image(root / "in.zarr", image)
    res = runner.invoke(app, ["segment", str(root / "in.zarr"), str(root / "out.zarr"), "--predictor", "classical",
                              "--diameter", "12", "--scheduler", "sync", "--block-shape", "32", "32", "32",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    return root / "out.zarr"


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"bigseg {bigseg.__version__}"


def test_help_documents_exit_codes():
    res = runner.invoke(app, ["--help"])
    text = " ".join(res.output.split())
    assert "0 success" in text and "2 bad input" in text and "1 failure" in text


def test_info_of_a_complete_output(output):
    res = runner.invoke(app, ["info", str(output)])
    assert res.exit_code == 0, res.output
    assert f"{output}: complete" in res.output
    assert "nuclei: 3" in res.output and "blocks: 4" in res.output
    assert "stages done: predict" in res.output and "table" in res.output.split("stages done:")[1]
    assert "predictor=classical" in res.output and "diameter_um=12.0" in res.output


def test_info_of_an_unfinished_output_exits_1(tmp_path):
    create_image(tmp_path / "partial.zarr", shape=(8, 16, 16), dtype="uint16", voxel_size=(1, 1, 1), chunk_shape=8)
    (tmp_path / "partial.zarr" / ".bigseg-work").mkdir()
    res = runner.invoke(app, ["info", str(tmp_path / "partial.zarr")])
    assert res.exit_code == 1
    assert "NOT complete" in res.output and "image missing" in res.output and "stopped before the end" in res.output


def test_info_of_a_non_output_exits_2(tmp_path):
    res = runner.invoke(app, ["info", str(tmp_path / "nothing.zarr")])
    assert res.exit_code == 2 and "no output at" in res.output
    import zarr

    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", attributes={"note": "not from bigseg"})
    res = runner.invoke(app, ["info", str(tmp_path / "plain.zarr")])
    assert res.exit_code == 2 and "is not a bigseg output" in res.output


def test_failed_run_exits_1(tmp_path, monkeypatch):
    def fail(output):
        raise BlockFailedError("predict failed on block (0, 0, 0): RuntimeError: CUDA out of memory")

    monkeypatch.setattr("bigseg.pipeline.describe_output", fail)
    res = runner.invoke(app, ["info", str(tmp_path)])
    assert res.exit_code == 1 and "error: predict failed on block" in res.output


def test_report_command_writes_where_asked(output, tmp_path):
    res = runner.invoke(app, ["report", str(output), "--output", str(tmp_path / "qc.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "qc.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_tls_prints_exports_for_private_files(tmp_path):
    res = runner.invoke(app, ["tls", str(tmp_path / "certs")])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert all(line.startswith("export DASK_DISTRIBUTED__COMM__") for line in lines)
    assert f"export DASK_DISTRIBUTED__COMM__TLS__CA_FILE={tmp_path / 'certs' / 'ca.pem'}" in lines
