"""Housekeeping: files that runs leave behind and nothing reads again.

* **Engine logs.** The pulumi CLI writes one gzipped log per command to
  ``<PULUMI_HOME>/logs``. Each ``StackDriver`` (one per apply, down or gc) marks
  a run in ``<SKYPLAN_HOME>/logs/engine-runs``; the logs of all but the last
  ``KEEP_RUNS`` (20) runs are deleted, and never more than ``MAX_LOG_BYTES``
  (64 MiB) are kept, oldest deleted first. Only in skyplan's own Pulumi home: a
  ``$PULUMI_HOME`` the user set is theirs, and left alone.
* **skyplan.log** (internal errors, the engine children's own output) is rotated
  at ``MAX_SKYPLAN_LOG_BYTES`` (4 MiB) to ``skyplan.log.1``; one old file is kept.
* **A file:// backend.** Removing a stack leaves ``<stack>.json.bak`` (a full copy
  of its last checkpoint, the task's envs included) with its ``.attrs``, an empty
  history directory and an empty lock directory. ``tidy_backend`` removes these
  for attempt stacks (``names.is_attempt_stack``) that no longer exist; ``down``
  calls it for its cluster (under the cluster lock), ``gc`` for every cluster it
  can lock. Other backends keep no such files where skyplan can reach them.
* **Cluster lock files** of clusters that are down: ``down`` and ``gc`` unlink
  them while holding the lock (see ``skyplan.state.lock``).

Every function here is best effort: a file that vanished or cannot be removed is
skipped, never an error.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from skyplan import home
from skyplan.provision.names import is_attempt_stack

KEEP_RUNS = 20
ATTRS = ".attrs"  # gocloud fileblob keeps a blob's metadata beside it
MAX_LOG_BYTES = 64 << 20
MAX_SKYPLAN_LOG_BYTES = 4 << 20
_RUNS_FILE = "engine-runs"


# --- logs ----------------------------------------------------------------------------


def engine_log_dir() -> Path | None:
    """Where the engine writes its logs, when skyplan owns that place (else None)."""
    if os.environ.get("PULUMI_HOME"):
        return None
    return home.home() / "pulumi-home" / "logs"


def note_run_and_rotate(now: float | None = None) -> int:
    """Mark the start of a run and delete the engine logs of runs before the last
    ``KEEP_RUNS``, then the oldest past ``MAX_LOG_BYTES``; rotate skyplan.log.
    Returns how many files were deleted."""
    now = time.time() if now is None else now
    starts = _note_run(now)
    removed = 0
    logs = engine_log_dir()
    if logs is not None:
        removed += prune_logs(logs, starts[-KEEP_RUNS] if len(starts) >= KEEP_RUNS else None, MAX_LOG_BYTES)
    _rotate_skyplan_log()
    return removed


def prune_logs(directory: Path, older_than: float | None, max_bytes: int) -> int:
    """Delete the files in ``directory`` last written before ``older_than``, then the
    oldest until the rest fit in ``max_bytes``. Returns how many were deleted."""
    files = []
    try:
        with os.scandir(directory) as it:
            for e in it:
                try:
                    if e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        files.append((st.st_mtime, st.st_size, e.path))
                except OSError:
                    continue
    except OSError:
        return 0
    files.sort()
    removed = 0
    total = sum(size for _, size, _ in files)
    for mtime, size, path in files:
        if (older_than is not None and mtime < older_than) or total > max_bytes:
            if _unlink(path):
                removed += 1
                total -= size
    return removed


def _note_run(now: float) -> list[float]:
    """Append ``now`` to the runs file; return the recorded run starts, oldest first.
    Concurrent runs append whole lines (O_APPEND); the file is compacted when long."""
    path = home.sub("logs") / _RUNS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{now:.3f}\n".encode())
    finally:
        os.close(fd)
    try:
        starts = sorted(float(x) for x in path.read_text().split() if _is_float(x))
    except OSError:
        return [now]
    if len(starts) > 2 * KEEP_RUNS:
        starts = starts[-KEEP_RUNS:]
        tmp = path.with_name(f".{_RUNS_FILE}.{os.getpid()}")
        try:
            tmp.write_text("".join(f"{s:.3f}\n" for s in starts))
            os.replace(tmp, path)
        except OSError:
            _unlink(str(tmp))
    return starts


def _rotate_skyplan_log() -> None:
    path = home.log_file()
    try:
        if path.stat().st_size > MAX_SKYPLAN_LOG_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except OSError:
        pass


# --- a file:// backend -----------------------------------------------------------------


def backend_dir(backend_url: str) -> Path | None:
    """The directory of a ``file://`` backend (None for any other backend)."""
    if not backend_url.startswith("file://"):
        return None
    local = backend_url[len("file://"):].split("?", 1)[0]
    return Path(os.path.expanduser(local)) if local else None


def untidy_stacks(backend_url: str, project: str | None = None) -> list[str]:
    """Removed attempt stacks that still have files on a file:// backend (see ``tidy_backend``)."""
    root = backend_dir(backend_url)
    if root is None:
        return []
    base = root / ".pulumi"
    project = project or _project()
    live, baks = _stack_files(base / "stacks" / project)
    names = set(baks) | {d.name for d in _listdir(base / "history" / project) if d.is_dir()}
    names |= {d.name for d in _listdir(base / "locks" / "organization" / project) if d.is_dir()}
    return sorted(n for n in names if n not in live and is_attempt_stack(n))


def tidy_backend(backend_url: str, *, prefix: str = "", project: str | None = None,
                 lock_wait_s: float = 15.0) -> list[str]:
    """Remove what removed attempt stacks whose names start with ``prefix`` left on a
    file:// backend: ``.json.bak`` files (and their ``.attrs``), history directories
    and lock directories, with any lock whose holder on this host has exited
    (waiting up to ``lock_wait_s`` for one that is winding down). Call it holding
    the lock of the cluster(s) that ``prefix`` covers: the stacks directory is read
    here, and a launch of the cluster must not be creating a stack meanwhile.
    Returns the paths removed."""
    root = backend_dir(backend_url)
    if root is None:
        return []
    project = project or _project()
    base = root / ".pulumi"
    live, baks = _stack_files(base / "stacks" / project)

    def gone(stack: str) -> bool:
        return stack.startswith(prefix) and is_attempt_stack(stack) and stack not in live

    removed: list[str] = []
    for stack, files in baks.items():
        if gone(stack):
            removed += [str(f) for f in files if _unlink(str(f))]
    for d in _listdir(base / "history" / project):
        if d.is_dir() and gone(d.name):
            for f in _listdir(d):
                if f.is_file() and _unlink(str(f)):
                    removed.append(str(f))
            if _rmdir(d):
                removed.append(str(d))
    for d in _listdir(base / "locks" / "organization" / project):
        if d.is_dir() and gone(d.name):
            removed += _stale_locks(d, lock_wait_s)
            if _rmdir(d):  # a lock held by a live process elsewhere stays, and so does its directory
                removed.append(str(d))
    return removed


def _stale_locks(directory: Path, wait_s: float) -> list[str]:
    """Remove the lock files in a removed stack's lock directory whose holder is gone.

    A pulumi CLI orphaned by a killed skyplan winds down for a few seconds (its
    watchdog's grace period) and may hold the lock of a stack it has just
    removed: wait up to ``wait_s`` for such a holder on this host to exit. A
    holder on another host is left alone: nothing here can tell if it lives."""
    import json
    import socket

    from skyplan.provision import forked

    removed = []
    me = socket.gethostname()
    for f in _listdir(directory):
        if f.name.endswith(ATTRS):
            continue
        try:
            info = json.loads(f.read_text())
            pid, host = int(info.get("pid") or 0), str(info.get("hostname") or "")
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        if host != me:
            continue
        end = time.monotonic() + wait_s
        while pid and forked.pulumi_alive(pid) and time.monotonic() < end:
            time.sleep(0.1)
        if not (pid and forked.pulumi_alive(pid)) and _unlink(str(f)):
            removed.append(str(f))
    # A lock's metadata is written before the lock and deleted after it (gocloud's
    # fileblob): a CLI killed in between leaves a ``.attrs`` with no lock, which
    # would keep the directory forever.
    for f in _listdir(directory):
        if f.name.endswith(ATTRS) and not (directory / f.name[: -len(ATTRS)]).exists() and _unlink(str(f)):
            removed.append(str(f))
    return removed


def _project() -> str:
    from skyplan.provision.settings import PROJECT

    return PROJECT


def _stack_files(stacks_dir: Path) -> tuple[set[str], dict[str, list[Path]]]:
    """(stacks that exist, {stack: its .bak files and write leftovers}) in a backend's
    stacks directory. gocloud's fileblob writes ``<file>.<random hex>.tmp`` and renames
    it: a pulumi CLI killed in between leaves the temporary file (e.g.
    ``<stack>.json.bak.18ed57caddecbccf.tmp``), which belongs to ``<stack>`` and never
    makes a stack exist."""
    live: set[str] = set()
    baks: dict[str, list[Path]] = {}
    for entry in _listdir(stacks_dir):
        name = entry.name
        stem = name[: -len(".attrs")] if name.endswith(".attrs") else name
        tmp = _WRITE_LEFTOVER.match(stem)
        if tmp is not None:
            stem = tmp.group(1)
            stem = stem[: -len(".bak")] if stem.endswith(".bak") else stem
            baks.setdefault(_stack_of(stem), []).append(entry)
        elif stem.endswith(".bak"):
            baks.setdefault(_stack_of(stem[: -len(".bak")]), []).append(entry)
        else:
            live.add(_stack_of(stem))
    return live, baks


#: A file being written by gocloud's fileblob (``<file>.<random hex>.tmp``), then renamed.
_WRITE_LEFTOVER = re.compile(r"^(.+)\.[0-9a-f]{8,}\.tmp$")


def _stack_of(stem: str) -> str:
    for ext in (".json.gz", ".json"):
        if stem.endswith(ext):
            return stem[: -len(ext)]
    return stem


def _listdir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except OSError:
        return False


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
