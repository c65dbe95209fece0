from __future__ import annotations

import pytest

from bigseg.config import load_config
from bigseg.errors import InputError


def test_layers_yaml_then_env_then_flags(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("block_shape: [32, 64, 64]\ndiameter_um: 9\nstitch: overlap\n")
    env = {"BIGSEG_DIAMETER_UM": "11", "BIGSEG_BLOCK_SHAPE": "[16, 16, 16]", "OTHER": "x"}
    cfg = load_config(job, environ=env, block_shape=(8, 8, 8), tta=None)
    assert cfg.block_shape == (8, 8, 8)  # flag wins
    assert cfg.diameter_um == 11  # env beats the file
    assert cfg.stitch == "overlap"  # file beats the default
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
