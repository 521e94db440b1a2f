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


@contextlib.contextmanager
def cluster_lock(cluster: str, purpose: str = "apply") -> Iterator[None]:
    path = home.sub("locks") / f"{cluster}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            try:
                info = json.loads(os.pread(fd, 4096, 0) or b"{}")
                holder = f" (pid {info.get('pid')}, {info.get('purpose')} since {info.get('since')})"
            except (OSError, ValueError):
                pass
            raise LockedError(
                f"cluster '{cluster}' is locked by another skyplan process{holder}",
                hint="wait for it to finish" + (", or use another cluster name with -c" if purpose == "apply" else ""),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps({"pid": os.getpid(), "purpose": purpose, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(),
            0,
        )
        yield
    finally:
        os.close(fd)
