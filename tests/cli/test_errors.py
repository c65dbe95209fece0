"""One handler of bigseg's errors for every command: message on stderr, exit status 2."""

from __future__ import annotations

from typer.testing import CliRunner

from bigseg.cli import app


def test_train_reports_bad_input_like_every_command(tmp_path):
    res = CliRunner().invoke(app, ["train", str(tmp_path / "out"), "--image", "a.tif"])
    assert res.exit_code == 2
    assert "error: give one --labels per --image; got 1 images and 0 label files" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_train_config_errors_exit_2(tmp_path):
    res = CliRunner().invoke(app, ["train", str(tmp_path / "out"), "--architecture", "vnet"])
    assert res.exit_code == 2 and "error: unknown architecture 'vnet'" in res.output
    assert "choose one of ['basic_unet', 'cellsegnet', 'segresnet', 'swin_unetr', 'unet', 'wnet3d']" in res.output
    res = CliRunner().invoke(app, ["train", str(tmp_path / "out"), "--loss", "cellseg3d"])
    assert res.exit_code == 2 and "error: loss 'cellseg3d' is now called '3dcellseg'" in res.output
