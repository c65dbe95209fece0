"""The CLI: exit codes, messages, and what it prints."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from bigseg.cli import app
from bigseg.testing import balls_volume, write_image

runner = CliRunner()


def test_segment_then_decode(tmp_path):
    image, _ = balls_volume((32, 64, 64), np.array([(16, 16, 16), (16, 48, 48)]), 6.0)
    src, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_image(src, image)
    args = ["segment", str(src), str(out), "--predictor", "classical", "--diameter", "12", "--scheduler", "sync",
            "--block-shape", "32", "32", "32", "--save-maps", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "found 2 nuclei" in res.output and "labels/nuclei.parquet" in res.output
    res = runner.invoke(app, ["decode", str(out), "--name", "again", "--scheduler", "sync", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "found 2 nuclei" in res.output
    res = runner.invoke(app, args)  # the same command on a complete output: nothing to do
    assert res.exit_code == 0 and "already complete (2 nuclei); nothing to do" in res.output
    res = runner.invoke(app, [*args, "--min-volume", "5"])  # another configuration
    assert res.exit_code == 2 and "min_volume_um3: recorded None, now 5.0" in res.output and "--overwrite" in res.output


def test_bad_input_exits_2_with_message(tmp_path):
    res = runner.invoke(app, ["segment", str(tmp_path / "missing.zarr"), str(tmp_path / "o.zarr"), "--scheduler", "sync"])
    assert res.exit_code == 2
    assert "missing.zarr" in res.output


def test_labels_only_then_decode_and_into_input_without_out(tmp_path):
    image, _ = balls_volume((32, 64, 64), np.array([(16, 16, 16), (16, 48, 48)]), 6.0)
    src, out = tmp_path / "in.zarr", tmp_path / "labels.zarr"
    write_image(src, image)
    common = ["--predictor", "classical", "--diameter", "12", "--scheduler", "sync", "--block-shape", "32", "32",
              "32", "--no-progress"]
    res = runner.invoke(app, ["segment", str(src), str(out), "--output-mode", "labels-only", "--save-maps", *common])
    assert res.exit_code == 0, res.output
    assert "found 2 nuclei" in res.output and "skipped" in res.output
    res = runner.invoke(app, ["decode", str(out), "--name", "again", "--scheduler", "sync", "--no-progress"])
    assert res.exit_code == 0 and "found 2 nuclei" in res.output, res.output
    res = runner.invoke(app, ["segment", str(src), *common])
    assert res.exit_code == 2 and "give an output" in res.output
    res = runner.invoke(app, ["segment", str(src), "--output-mode", "into-input", *common])
    assert res.exit_code == 0 and (src / "labels" / "nuclei").is_dir(), res.output


def test_decoders_by_name_and_an_unknown_one(tmp_path):
    """`bigseg segment --decoder` and `bigseg decode --decoder` re-decode the same maps; a wrong name lists the choices."""
    image, _ = balls_volume((32, 64, 64), np.array([(16, 16, 16), (16, 48, 48)]), 6.0)
    src, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_image(src, image)
    args = ["segment", str(src), str(out), "--predictor", "classical", "--diameter", "12", "--scheduler", "sync",
            "--block-shape", "32", "32", "32", "--save-maps", "--no-progress", "--decoder", "voronoi-otsu"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "found 2 nuclei" in res.output
    res = runner.invoke(app, ["decode", str(out), "--name", "tascan", "--decoder", "tascan", "--scheduler", "sync",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "found 2 nuclei" in res.output
    res = runner.invoke(app, [*args[:-1], "watershed", "--overwrite"])
    assert res.exit_code == 2
    assert "'bcd', 'voronoi-otsu' or 'tascan'" in res.output and "'watershed'" in res.output
