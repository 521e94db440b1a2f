"""Reading a local (or sim) cluster's sandboxes: log paths, following, job status.

For the CLI (``skyplan logs``, ``skyplan status``); never prints. A sandbox
root is either a stack's directory (``<SKYPLAN_HOME>/sandboxes/<stack>``, the
``sandbox`` output) holding ``node-<rank>`` directories, or one node directory.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping


@dataclass(frozen=True)
class NodeLogs:
    rank: int
    sandbox: str
    setup: str
    run: str
    combined: str


@dataclass(frozen=True)
class JobStatus:
    """``phase``: absent | starting | setup | run | done | failed | stopped | lost.

    The cluster's phase is the first of: failed, lost, stopped (any node),
    setup/run/starting (any node still going), done (all nodes).
    """

    phase: str
    returncode: int | None
    nodes: tuple[dict[str, Any], ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "failed", "stopped", "lost", "absent")

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "returncode": self.returncode, "nodes": list(self.nodes)}


def _node_dirs(sandbox_root: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    root = Path(sandbox_root)
    if (root / "node.json").exists() or (root / "logs").is_dir():
        rank = int(root.name.rsplit("-", 1)[-1]) if root.name.startswith("node-") else 0
        return [(rank, root)]
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("node-") and d.name[5:].isdigit():
            out.append((int(d.name[5:]), d))
    return sorted(out)


def log_paths(sandbox_root: str | os.PathLike[str]) -> list[NodeLogs]:
    """Each node's log files, by rank. Empty when the sandbox is gone."""
    out = []
    for rank, d in _node_dirs(sandbox_root):
        logs = d / "logs"
        out.append(
            NodeLogs(rank, str(d), str(logs / "setup.log"), str(logs / "run.log"), str(logs / "combined.log"))
        )
    return out


def follow(
    path: str | os.PathLike[str],
    stop: Callable[[], bool],
    *,
    poll_s: float = 0.2,
    from_start: bool = True,
) -> Iterator[str]:
    """Yield the lines of ``path`` as they are written, without their newline.

    Waits for the file to appear. Ends once ``stop()`` is true and everything
    written so far has been yielded (a last unterminated line included), so a
    caller passing "the job has finished" loses no output.
    """
    p = Path(path)
    f = None
    buf = b""
    try:
        while f is None:
            try:
                f = open(p, "rb")
            except FileNotFoundError:
                if stop():
                    return
                time.sleep(poll_s)
        if not from_start:
            f.seek(0, os.SEEK_END)
        while True:
            # Decide before reading, so that output written just before stop()
            # turned true is still read below.
            stopping = stop()
            chunk = f.read(65536)
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
                continue
            if stopping:
                if buf:
                    yield buf.decode("utf-8", errors="replace")
                return
            time.sleep(poll_s)
    finally:
        if f is not None:
            f.close()


def follow_many(
    paths: list[str],
    stop: Callable[[], bool],
    *,
    poll_s: float = 0.2,
) -> Iterator[tuple[int, str]]:
    """Yield ``(index, line)`` for the lines of every file in ``paths``, interleaved
    in the order they are read, without their newline.

    Each file is read from its start once it appears. Ends once ``stop()`` is
    true and everything written so far has been yielded (last unterminated lines
    included), like :func:`follow`."""
    files: list[Any] = [None] * len(paths)
    bufs = [b""] * len(paths)
    try:
        while True:
            stopping = stop()  # before reading: output written just before is still read below
            progressed = False
            for i, path in enumerate(paths):
                if files[i] is None:
                    try:
                        files[i] = open(path, "rb")
                    except FileNotFoundError:
                        continue
                chunk = files[i].read(65536)
                if not chunk:
                    continue
                progressed = True
                bufs[i] += chunk
                *lines, bufs[i] = bufs[i].split(b"\n")
                for line in lines:
                    yield i, line.decode("utf-8", errors="replace")
            if progressed:
                continue
            if stopping:
                for i, rest in enumerate(bufs):
                    if rest:
                        yield i, rest.decode("utf-8", errors="replace")
                return
            time.sleep(poll_s)
    finally:
        for f in files:
            if f is not None:
                f.close()


def job_status(sandbox_root: str | os.PathLike[str]) -> JobStatus:
    """The cluster's task state, from each node's status.json."""
    from skyplan.clouds.local import runner

    nodes = tuple(runner.status(d) for _, d in _node_dirs(sandbox_root))
    if not nodes:
        return JobStatus("absent", None, ())
    phases = [n.get("phase") for n in nodes]
    for bad in ("failed", "lost", "stopped"):
        if bad in phases:
            rc = next((n.get("returncode") for n in nodes if n.get("phase") == bad), None)
            return JobStatus(bad, rc, nodes)
    for going in ("setup", "run", "starting"):
        if going in phases:
            return JobStatus(going, None, nodes)
    return JobStatus("done", 0, nodes)


class SandboxLogs:
    """The LogSource of a cluster whose nodes are sandboxes here (local, sim):
    ``sandbox`` is the stack's ``sandbox`` output."""

    def __init__(self, sandbox: str) -> None:
        self.sandbox = sandbox

    def lines(self) -> Iterator[str]:
        """Every node's combined log as it is now, node by node."""
        nodes = log_paths(self.sandbox)
        for n in nodes:
            prefix = f"(node-{n.rank}) " if len(nodes) > 1 else ""
            try:
                with open(n.combined, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        yield prefix + (line if line.endswith("\n") else line + "\n")
            except FileNotFoundError:
                continue

    def follow(self) -> Iterator[str]:
        """Every node's combined log, interleaved as written, until the task has
        finished on every node. With several nodes each line starts with its
        node's rank, ``(node-1) ...``, as in :meth:`lines`."""
        nodes = log_paths(self.sandbox)
        if not nodes:
            return
        prefixes = [f"(node-{n.rank}) " if len(nodes) > 1 else "" for n in nodes]
        for i, line in follow_many([n.combined for n in nodes], lambda: job_status(self.sandbox).finished):
            yield prefixes[i] + line + "\n"

    def status(self) -> dict[str, Any] | None:
        return job_status(self.sandbox).to_json()

    def node(self, rank: int) -> "SandboxLogs | None":
        found = [d for r, d in _node_dirs(self.sandbox) if r == rank]
        return SandboxLogs(str(found[0])) if found else None


def sandbox_addresses(outputs: Mapping[str, Any]) -> list[Any]:
    """Each node's ``NodeAddress`` on this machine (its sandbox), by rank."""
    from skyplan.runtime.protocol import NodeAddress

    sandbox = outputs.get("sandbox")
    if not sandbox:
        return []
    return [NodeAddress("local", rank=rank, sandbox=str(d)) for rank, d in _node_dirs(sandbox)]


def sandbox_logs(outputs: Mapping[str, Any]) -> SandboxLogs | None:
    """The log source for a stack's outputs, if they name a sandbox."""
    sandbox = outputs.get("sandbox")
    return SandboxLogs(str(sandbox)) if sandbox else None
