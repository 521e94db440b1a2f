"""Per-cluster exclusive locks.

``fcntl.flock`` locks die with their process, so a kill -9 never leaves a
cluster locked; a second apply of the same cluster fails at once instead of
waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from typing import Iterator

from skyplan import home
from skyplan.errors import LockedError


class HeldLock:
    """A cluster lock this process holds. ``forget()`` asks for its file to be
    unlinked before it is released (a cluster that is down needs no lock file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._forget = False

    def forget(self) -> None:
        self._forget = True


def lock_path(cluster: str) -> str:
    return str(home.sub("locks") / f"{cluster}.lock")


@contextlib.contextmanager
def cluster_lock(cluster: str, purpose: str = "apply") -> Iterator[HeldLock]:
    """Hold ``cluster``'s lock for the block; LockedError at once if another process holds it.

    Lock files may be unlinked (``HeldLock.forget``, while held), so after taking
    the flock we check that the path still names the file we locked: a process
    that opened the file before it was unlinked would otherwise hold a lock on a
    file nobody else can see, beside a newcomer's lock on a new file.
    """
    path = lock_path(cluster)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            try:
                info = json.loads(os.pread(fd, 4096, 0) or b"{}")
                holder = f" (pid {info.get('pid')}, {info.get('purpose')} since {info.get('since')})"
            except (OSError, ValueError):
                pass
            os.close(fd)
            raise LockedError(
                f"cluster '{cluster}' is locked by another skyplan process{holder}",
                hint="wait for it to finish" + (", or use another cluster name with -c" if purpose == "apply" else ""),
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # unlinked meanwhile: lock the file that is there now
    held = HeldLock(path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps({"pid": os.getpid(), "purpose": purpose, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(),
            0,
        )
        yield held
    finally:
        if held._forget:
            try:
                os.unlink(path)  # before the release: nobody can lock the old file after this
            except OSError:
                pass
        os.close(fd)
