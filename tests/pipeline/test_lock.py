"""One run per output: the lock refuses a second run, names the owner, and is taken over when stale."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from bigseg.errors import InputError, OutputLockedError
from bigseg.pipeline._executor import KILL_AT_ENV
from bigseg.pipeline._lock import LOCK_NAME, RunLock

from .test_resume import product_files, run, reference, source  # noqa: F401  (fixtures)


def test_second_run_is_refused_while_the_first_runs(source, reference, tmp_path):  # noqa: F811
    out = tmp_path / "out.zarr"
    pid = os.fork()
    if pid == 0:  # the first run, frozen (SIGSTOP) in the middle of flood, then let go
        try:
            os.setpgid(0, 0)
            os.environ[KILL_AT_ENV] = "flood:3:done:stop"
            run(source, out)
        finally:
            os._exit(0)
    try:
        _, status = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        with pytest.raises(OutputLockedError, match=rf"another bigseg run \(host '{socket.gethostname()}', "
                                                    rf"process {pid}, started 20\d\d-.*Z, last heartbeat"):
            run(source, out)
        with pytest.raises(OutputLockedError, match="being written by another bigseg run"):
            run(source, out, overwrite=True)  # not even --overwrite deletes a running output
    finally:
        os.killpg(pid, signal.SIGCONT)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert product_files(out) == product_files(reference)  # the first run's output is unharmed


def _write_lock(out, **owner):
    out.mkdir(parents=True, exist_ok=True)
    (out / LOCK_NAME).write_text(json.dumps({"host": "node-elsewhere", "pid": 4242, "started": "2026-01-01T00:00:00Z",
                                             "token": "theirs", **owner}))


def test_stale_lock_of_a_killed_run_is_taken_over(source, reference, tmp_path, caplog):  # noqa: F811
    out = tmp_path / "out.zarr"
    _write_lock(out, heartbeat=time.time() - 3600)
    with caplog.at_level("WARNING", logger="bigseg.pipeline._lock"):
        run(source, out)
    assert "heartbeat stopped 3600s ago (stale after 120s)" in caplog.text
    assert product_files(out) == product_files(reference) and not (out / LOCK_NAME).exists()


def test_live_lock_of_another_host_is_respected(source, tmp_path):  # noqa: F811
    out = tmp_path / "out.zarr"
    _write_lock(out, heartbeat=time.time())
    with pytest.raises(OutputLockedError, match=r"host 'node-elsewhere', process 4242, started 2026-01-01T00:00:00Z"):
        run(source, out)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written


def test_stale_rules(tmp_path):
    lock = RunLock(str(tmp_path), stale_after=60)
    now = time.time()
    here = socket.gethostname()
    assert lock.stale_reason({"host": here, "pid": os.getpid(), "heartbeat": now}, now) is None
    assert "no heartbeat" in lock.stale_reason({}, now)
    assert "stopped 61s ago" in lock.stale_reason({"host": "x", "pid": 1, "heartbeat": now - 61}, now)
    dead = _dead_pid()
    assert f"process {dead} on this host no longer exists" in lock.stale_reason(
        {"host": here, "pid": dead, "heartbeat": now}, now)


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_heartbeat_keeps_the_lock_and_notices_a_takeover(tmp_path):
    lock = RunLock(str(tmp_path), stale_after=0.4)
    with lock:
        time.sleep(0.6)  # longer than stale_after: only the heartbeat keeps it fresh
        with pytest.raises(OutputLockedError, match="being written by another bigseg run"):
            RunLock(str(tmp_path), stale_after=0.4).acquire()
        owner = json.loads((tmp_path / LOCK_NAME).read_text())
        (tmp_path / LOCK_NAME).write_text(json.dumps({**owner, "token": "someone else", "host": "intruder"}))
        time.sleep(0.3)
        with pytest.raises(OutputLockedError, match="taken over by host 'intruder'.*this run stops"):
            lock.check()
    assert (tmp_path / LOCK_NAME).exists()  # not ours any more: left alone


def test_unwritable_output_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot be written"):
        RunLock(str(blocker / "out.zarr")).acquire()
