"""One run per output: a lock object in OUT with an owner and a heartbeat.

``OUT/.bigseg-lock`` is a small JSON object::

    {"host": "node17", "pid": 4242, "started": "2026-11-29T16:40:00Z",
     "heartbeat": 1796575200.5, "token": "9f2c..."}

The driver refreshes ``heartbeat`` (seconds since the epoch) every
``stale_after / 4`` seconds. Another run takes the lock over only when it is
*stale*:

- its heartbeat is older than ``stale_after`` seconds (the owner stopped:
  killed, node lost, network cut), or
- it names this host and a process id that no longer exists (a run killed
  on this machine is taken over at once instead of after the timeout).

Acquiring: a local lock is created with ``O_CREAT | O_EXCL`` (atomic); a
stale one is replaced by a rename. Object stores have neither, so the lock
object is PUT and read back after a short pause; the run holds it only if
its own token is there. The race this leaves: two runs whose PUT and
read-back interleave within that pause both believe they hold it. Each
heartbeat re-reads the lock, so the loser finds another token within one
heartbeat interval and stops with :class:`OutputLockedError` before its next
block starts (its blocks so far are identical to the winner's, so nothing is
corrupted).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bigseg.errors import InputError, OutputLockedError
from bigseg.io import get_fs, is_local, join_url

__all__ = ["LOCK_NAME", "RunLock"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".bigseg-lock"
_REMOTE_SETTLE_S = 0.5


def _now_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunLock:
    """The lock of one output; use as a context manager around the whole run."""

    out_url: str
    storage_options: dict[str, Any] | None = field(default=None, repr=False)
    stale_after: float = 120.0
    _token: str = field(default_factory=lambda: uuid.uuid4().hex, init=False)
    _owner: dict[str, Any] = field(default_factory=dict, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    lost: str | None = field(default=None, init=False)
    _made_folder: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return join_url(self.out_url, LOCK_NAME)

    # -------------------------------------------------------------- storage

    def _read(self) -> dict[str, Any] | None:
        try:
            if is_local(self.url):
                with open(self.url, "rb") as f:
                    raw = f.read()
            else:
                fs, path = get_fs(self.url, self.storage_options)
                fs.invalidate_cache(path)
                raw = fs.cat_file(path)
        except FileNotFoundError:
            return None
        try:
            owner = json.loads(raw)
        except ValueError:
            return {}  # half-written by a killed run: no owner, no heartbeat
        return owner if isinstance(owner, dict) else {}

    def _write(self, owner: dict[str, Any], *, exclusive: bool) -> bool:
        data = json.dumps(owner).encode()
        if not is_local(self.url):
            fs, path = get_fs(self.url, self.storage_options)
            fs.pipe_file(path, data)
            return True
        os.makedirs(self.out_url, exist_ok=True)
        if exclusive:
            try:
                fd = os.open(self.url, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        tmp = f"{self.url}.{self._token}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.url)
        return True

    def _delete(self) -> None:
        if is_local(self.url):
            try:
                os.remove(self.url)
            except FileNotFoundError:
                pass
            return
        fs, path = get_fs(self.url, self.storage_options)
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass

    # -------------------------------------------------------------- rules

    def stale_reason(self, owner: dict[str, Any], now: float) -> str | None:
        """Why ``owner``'s lock may be taken over, or None while it is held."""
        beat = owner.get("heartbeat")
        if not isinstance(beat, (int, float)):
            return "it has no heartbeat (left half-written)"
        if now - beat > self.stale_after:
            return f"its heartbeat stopped {now - beat:.0f}s ago (stale after {self.stale_after:.0f}s)"
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            if not _pid_alive(owner["pid"]):
                return f"process {owner['pid']} on this host no longer exists"
        return None

    @staticmethod
    def describe(owner: dict[str, Any]) -> str:
        return (
            f"host {owner.get('host')!r}, process {owner.get('pid')}, started {owner.get('started')}, "
            f"last heartbeat {_now_iso(owner['heartbeat']) if isinstance(owner.get('heartbeat'), (int, float)) else '?'}"
        )

    def _refuse(self, owner: dict[str, Any]) -> OutputLockedError:
        return OutputLockedError(
            f"output {self.out_url!r} is being written by another bigseg run ({self.describe(owner)}); "
            f"wait for it to finish, or, if it is dead, remove {self.url!r} (a lock whose heartbeat is older "
            f"than {self.stale_after:.0f}s is taken over automatically)"
        )

    # -------------------------------------------------------------- api

    def acquire(self) -> None:
        """Take the lock or raise :class:`OutputLockedError` naming the owner.

        Raises :class:`InputError` if OUT cannot be written (read-only disk or bucket).
        """
        now = time.time()
        self._owner = {
            "host": socket.gethostname(), "pid": os.getpid(), "started": _now_iso(now),
            "heartbeat": now, "token": self._token,
        }
        self._made_folder = is_local(self.out_url) and not os.path.exists(self.out_url)
        try:
            self._take(now)
        except PermissionError as exc:
            raise InputError(
                f"output {self.out_url!r} is not writable ({exc}); choose a writable output path or fix its permissions"
            ) from None
        except OSError as exc:
            if isinstance(exc, (FileNotFoundError, IsADirectoryError)):
                raise
            raise InputError(f"output {self.out_url!r} cannot be written ({exc}); choose another output path") from None
        self._thread = threading.Thread(target=self._beat, name="bigseg-lock-heartbeat", daemon=True)
        self._thread.start()

    def _take(self, now: float) -> None:
        current = self._read()
        if current is None and is_local(self.url):
            if self._write(self._owner, exclusive=True):
                return
            current = self._read() or {}
        if current is not None:
            reason = self.stale_reason(current, now)
            if reason is None:
                raise self._refuse(current)
            logger.warning("taking over the lock of %s: %s (%s)", self.out_url, reason, self.describe(current))
        self._write(self._owner, exclusive=False)
        if not is_local(self.url):
            time.sleep(_REMOTE_SETTLE_S)
        mine = self._read() or {}
        if mine.get("token") != self._token:
            raise self._refuse(mine)

    def _beat(self) -> None:
        interval = max(0.05, self.stale_after / 4)
        while not self._stop.wait(interval):
            try:
                current = self._read() or {}
                if current.get("token") != self._token:
                    self.lost = f"the lock was taken over by {self.describe(current)}"
                    logger.error("output %s: %s", self.out_url, self.lost)
                    return
                self._owner["heartbeat"] = time.time()
                self._write(self._owner, exclusive=False)
            except Exception as exc:  # a missed beat is retried; staleness needs many
                logger.warning("lock heartbeat of %s failed: %s", self.out_url, exc)

    def check(self) -> None:
        """Raise :class:`OutputLockedError` if another run took the lock over."""
        if self.lost is not None:
            raise OutputLockedError(f"output {self.out_url!r}: {self.lost}; this run stops")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = self._read()
        if current is not None and current.get("token") == self._token:
            self._delete()
        if self._made_folder:  # a run refused before writing anything leaves no empty output folder
            try:
                os.rmdir(self.out_url)
            except OSError:
                pass  # not empty: the run wrote its output

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
