"""Run a function in a forked child, in a session of its own, with a hard time limit.

This is the process machinery under ``skyplan.provision.driver`` (which explains
why it exists): the child runs one Pulumi operation, streams JSON messages back
over a pipe, and everything it starts (the ``pulumi`` CLI, provider plugins in
their own process groups) stays in its session, so stopping the session stops
all of it. No pulumi import here.

Protocol (JSON lines, child to parent): ``{"k": "event", "e": {...}}`` any
number of times, then ``{"k": "result", "v": value}`` or ``{"k": "fail", "type":
"<module>.<class>", "text", "tb"}``.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import stat
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyplan import home

Emit = Callable[[dict[str, Any]], None]

#: Held around every fork (and by callers that import modules a child will
#: need): a child forked while another thread is between ``pipe()`` and closing
#: its write end would hold that end open and keep the other operation's reader
#: waiting, and a child forked mid-import would find the module locked forever.
fork_lock = threading.Lock()
_open_reads: set[int] = set()  # read ends of operations in flight in this process


@dataclass
class ChildResult:
    """How a child ended. ``error`` is ``{"type", "text", "tb"}`` if ``fn`` raised;
    ``killed`` means it never replied (stopped, or it crashed); ``status`` is its
    exit code (negative: the signal that ended it)."""

    value: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    killed: bool = False
    status: int = 0


def run(
    fn: Callable[[Emit], Any],
    *,
    timeout_s: float | None,
    grace_s: float,
    on_event: Emit | None = None,
    on_timeout: Callable[[], None] | None = None,
) -> ChildResult:
    """Run ``fn(emit)`` in a forked child; ``emit(dict)`` reaches ``on_event`` here.

    At ``timeout_s`` the child's session is stopped (``stop_session``). If this
    process is interrupted (Ctrl-C) or ``on_event`` raises, the session is
    stopped too before the exception propagates: nothing is left running.
    """
    parent = os.getpid()
    with fork_lock:
        rfd, wfd = os.pipe()
        # The child must never finalize an object it inherited: another thread may hold
        # a C library's lock at the fork (SQLite's allocator mutex: the jobs controller's
        # threads use SQLite all the time), and a finalizer run by the child's garbage
        # collector would wait for it forever. Frozen objects are never collected.
        gc.freeze()
        try:
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            raise
        if pid == 0:
            _child_main(fn, wfd, rfd, parent, grace_s, others=tuple(_open_reads))
        gc.unfreeze()
        os.close(wfd)
        _open_reads.add(rfd)
    result = ChildResult()
    got_reply = False
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    sel = selectors.DefaultSelector()
    sel.register(rfd, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            wait = 1.0
            if deadline is not None and not result.timed_out:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
                if wait == 0.0:
                    result.timed_out = True
                    if on_timeout is not None:
                        on_timeout()
                    result.killed = stop_session(pid, grace_s)
                    continue
            if not sel.select(wait):
                continue
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                msg = json.loads(line)
                if msg["k"] == "event":
                    if on_event is not None:
                        on_event(msg["e"])
                elif msg["k"] == "result":
                    got_reply, result.value = True, msg["v"]
                else:
                    got_reply = True
                    result.error = {"type": msg["type"], "text": msg["text"], "tb": msg.get("tb", "")}
    except BaseException:
        stop_session(pid, grace_s)
        raise
    finally:
        sel.close()
        with fork_lock:
            _open_reads.discard(rfd)
            os.close(rfd)
        _, status = os.waitpid(pid, 0)
        result.status = os.waitstatus_to_exitcode(status)
    if not got_reply and not result.timed_out:
        result.killed = True
    return result


def stop_session(sid: int, grace_s: float, *, exclude: Iterable[int] = ()) -> bool:
    """SIGINT the session's ``pulumi`` CLIs (their graceful cancel), wait up to
    ``grace_s`` for them to exit, then SIGKILL every process left in the session.

    Returns True if something had to be killed (a killed CLI leaves its stack
    lock behind). Without /proc only the process group ``sid`` is reachable.
    """
    skip = set(exclude)
    clis = [p for p in _session_pids(sid) if p not in skip and (proc_stat(p) or ("",))[0] == "pulumi"]
    for p in clis:
        _signal(p, signal.SIGINT)
    end = time.monotonic() + grace_s
    while clis and time.monotonic() < end:
        clis = [p for p in clis if (proc_stat(p) or ("", "Z"))[1] != "Z"]
        if clis:
            time.sleep(0.05)
    killed = False
    for _ in range(5):  # rescan: a process may have been starting while we killed
        left = [p for p in _session_pids(sid) if p not in skip]
        if not left:
            break
        for p in left:
            killed = True
            _signal(p, signal.SIGKILL)
        time.sleep(0.02)
    if not os.path.isdir("/proc"):
        try:
            os.killpg(sid, signal.SIGKILL)
            killed = True
        except (ProcessLookupError, PermissionError):
            pass
    return killed


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, session id) of a process, from /proc; None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = raw.rpartition(")")
    fields = rest.split()
    comm = head.split("(", 1)[1] if "(" in head else ""
    return comm, fields[0], int(fields[3])


def pulumi_alive(pid: int) -> bool:
    """Is ``pid`` a live process that could be a pulumi CLI? Unknown counts as alive."""
    st = proc_stat(pid)
    if st is not None:
        return st[1] != "Z" and st[0].startswith("pulumi")
    if os.path.isdir("/proc"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- internals -----------------------------------------------------------------------


def _session_pids(sid: int) -> list[int]:
    if not os.path.isdir("/proc"):
        return [sid]
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[2] == sid and st[1] != "Z":
                out.append(int(name))
    return out


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _child_main(fn: Callable[[Emit], Any], wfd: int, rfd: int, parent: int, grace_s: float,
                others: tuple[int, ...] = ()) -> None:
    """Runs in the forked child; never returns. ``others``: read ends of other
    operations of the parent (other threads), closed here: they are not ours."""
    code = 1
    lock = threading.Lock()

    def send(msg: dict[str, Any]) -> None:
        data = (json.dumps(msg, default=str) + "\n").encode()
        with lock:
            try:
                while data:
                    data = data[os.write(wfd, data) :]
            except OSError:
                pass  # the parent is gone; the watchdog stops us

    try:
        os.setsid()
        os.close(rfd)
        for fd in others:
            try:
                os.close(fd)
            except OSError:
                pass
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        try:
            logfd = os.open(home.log_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            logfd = devnull
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        _drop_inherited_files(devnull, keep={0, 1, 2, wfd, devnull, logfd})
        # A handler, not SIG_IGN: an ignored signal would be inherited by the CLI
        # and everything it starts (a local task could then not be interrupted).
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

        def watchdog() -> None:
            # Orphaned (the parent died, even by kill -9): stop what we started.
            while True:
                if os.getppid() != parent:
                    stop_session(os.getsid(0), grace_s, exclude=[os.getpid()])
                    os._exit(3)
                time.sleep(0.2)

        threading.Thread(target=watchdog, daemon=True).start()
        value = fn(lambda e: send({"k": "event", "e": e}))
        send({"k": "result", "v": value})
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        send({"k": "fail", "type": kind, "text": str(exc), "tb": traceback.format_exc()})
    finally:
        os._exit(code)


def _drop_inherited_files(devnull: int, keep: set[int]) -> None:
    """Point every inherited regular-file descriptor at /dev/null.

    The parent's flock()s (skyplan's cluster lock) belong to open file
    descriptions the fork shared with us; if the parent dies they must die with
    it, not linger for our grace period. Overwriting (not closing) keeps the fd
    numbers valid for any inherited object that closes them later. Sockets,
    pipes and epoll fds are left alone: gRPC may own them.
    """
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd in keep:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.dup2(devnull, fd)
        except OSError:
            pass
