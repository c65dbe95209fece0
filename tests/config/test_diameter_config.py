"""`diameter_um`: a number of µm or "auto", from any layer."""

from __future__ import annotations

import pytest

from bigseg.config import load_config
from bigseg.errors import InputError


def test_diameter_accepts_numbers_and_auto(tmp_path):
    assert load_config(environ={}, diameter_um=" Auto").diameter_um == "auto"
    assert load_config(environ={}, diameter_um="12.5").diameter_um == 12.5
    assert load_config(environ={"BIGSEG_DIAMETER_UM": "auto"}).diameter_um == "auto"
    job = tmp_path / "job.yaml"
    job.write_text("diameter_um: auto\n")
    assert load_config(job, environ={}).diameter_um == "auto"
    assert load_config(environ={}).diameter_um is None


@pytest.mark.parametrize("bad", ["big", "nan", 0, -3, True])
def test_bad_diameter_says_number_or_auto(bad):
    with pytest.raises(InputError, match=rf"diameter_um.*> 0 or 'auto'.*--diameter auto.*\(got {bad!r}\)"):
        load_config(environ={}, diameter_um=bad)
