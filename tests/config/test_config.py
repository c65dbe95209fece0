from __future__ import annotations

import pytest

from bigseg.config import load_config
from bigseg.errors import InputError


def test_layers_yaml_then_env_then_flags(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("block_shape: [32, 64, 64]\ndiameter_um: 9\nstitch: iou\n")
    env = {"BIGSEG_DIAMETER_UM": "11", "BIGSEG_BLOCK_SHAPE": "[16, 16, 16]", "OTHER": "x"}
    cfg = load_config(job, environ=env, block_shape=(8, 8, 8), tta=None)
    assert cfg.block_shape == (8, 8, 8)  # flag wins
    assert cfg.diameter_um == 11  # env beats the file
    assert cfg.stitch == "iou"  # file beats the default
    assert cfg.tta is False  # an unset flag masks nothing


def test_errors_name_field_and_value(tmp_path):
    with pytest.raises(InputError, match="blok_shape.*Extra inputs"):
        load_config(environ={}, blok_shape=(1, 2, 3))
    with pytest.raises(InputError, match=r"halo.*>= 0.*\(-1, 0, 0\)"):
        load_config(environ={}, halo=(-1, 0, 0))
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="mapping"):
        load_config(bad, environ={})


def test_scheduler_is_validated(tmp_path):
    assert load_config(environ={}).scheduler == "auto"
    for ok in ("auto", "local", "sync", "tcp://10.0.0.5:8786", "scheduler-host:8786", "tls://[::1]:8786"):
        assert load_config(environ={}, scheduler=ok).scheduler == ok
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text("{}")
    assert load_config(environ={}, scheduler=str(scheduler_file)).scheduler == str(scheduler_file)
    for typo in ("lcoal", "tcp://host", "threads"):
        with pytest.raises(InputError, match=rf"`scheduler` must be 'auto', 'local', 'sync', a scheduler address .*got '{typo}'"):
            load_config(environ={}, scheduler=typo)


def test_the_renamed_stitch_mode_names_its_new_name():
    with pytest.raises(InputError, match=r"stitch mode 'overlap' is now called 'iou'.*--stitch iou"):
        load_config(environ={}, stitch="overlap")
