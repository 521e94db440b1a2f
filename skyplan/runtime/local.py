"""The node runtime on this machine: the sandbox runner behind the protocol.

``address.sandbox`` is the node's directory (``<SKYPLAN_HOME>/sandboxes/<stack>/node-<rank>``).
``sync`` is the runner's ``prepare`` (a fresh sandbox: workdir and plain-path
file mounts copied in under the workdir's link policy), ``start`` its
``launch``. Blocking file work runs in the loop's default executor so that it
never holds up other nodes watched from the same loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

from skyplan.clouds.local import runner
from skyplan.runtime.protocol import (
    DEFAULT_STATUS_TIMEOUT_S,
    ExecResult,
    NodeAddress,
    NodeStatus,
    RuntimeFailure,
    TaskSpec,
    drain,
)

#: How much of a log one ``read_log`` returns at most.
READ_CHUNK = 1 << 20


def node_status(rank: int, st: Mapping[str, Any]) -> NodeStatus:
    """A runner ``status`` (its ``phase``) as the protocol's ``NodeStatus``."""
    phase = st.get("phase")
    rc = st.get("returncode")
    if phase == "absent":
        return NodeStatus(rank, "absent")
    if phase == "starting":
        return NodeStatus(rank, "starting")
    if phase in ("setup", "run"):
        return NodeStatus(rank, "running")
    if phase == "done":
        return NodeStatus(rank, "succeeded", 0 if rc is None else int(rc))
    if phase == "failed":
        return NodeStatus(rank, "failed", None if rc is None else int(rc), st.get("failed_phase"))
    if phase == "stopped":
        return NodeStatus(rank, "stopped", None if rc is None else int(rc))
    if phase == "lost":
        return NodeStatus(rank, "failed", None, None,
                          "the task's processes ended without recording an exit (killed from outside, or a reboot)")
    return NodeStatus(rank, "failed", None, None, f"unknown phase {phase!r}")


def spec_json(address: NodeAddress, task: TaskSpec) -> dict[str, Any]:
    """The runner's node spec for ``task`` on the node at ``address``."""
    spec: dict[str, Any] = {
        "cluster": task.cluster,
        "stack": task.stack,
        "task_id": task.stack,
        "node_rank": address.rank,
        "num_nodes": task.num_nodes,
        "setup": task.setup,
        "run": task.run,
        "envs": dict(task.envs),
        "secrets": dict(task.secrets),
    }
    if task.node_ips:
        spec["node_ips"] = list(task.node_ips)
    if task.buckets:
        spec["buckets"] = [dict(b) for b in task.buckets]
    if address.mounts_at_root:
        spec["mounts_at_root"] = True
    return spec


def read_from(path: str | os.PathLike[str], offset: int, limit: int = READ_CHUNK) -> tuple[bytes, int]:
    """Bytes of ``path`` from ``offset`` (at most ``limit``), and the next offset."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


class LocalNode:
    """A node that is a sandbox directory on this machine."""

    def __init__(self, address: NodeAddress) -> None:
        if not address.sandbox:
            raise RuntimeFailure("NodeAddressInvalid", "a local node's address needs its sandbox directory")
        self.address = address
        self.root = Path(address.sandbox)

    async def sync(self, workdir: str | None, file_mounts: Mapping[str, str]) -> None:
        try:
            await asyncio.to_thread(runner.prepare, self.root, workdir, dict(file_mounts))
        except runner.SandboxError as e:
            raise RuntimeFailure("NodeSyncFailed", str(e)) from None

    async def start(self, task: TaskSpec) -> None:
        try:
            await asyncio.to_thread(runner.launch, spec_json(self.address, task), self.root)
        except runner.SandboxError as e:
            raise RuntimeFailure("NodeStartFailed", str(e)) from None

    async def status(self, timeout_s: float = DEFAULT_STATUS_TIMEOUT_S) -> NodeStatus:
        try:
            st = await asyncio.wait_for(asyncio.to_thread(runner.status, self.root), timeout_s)
        except asyncio.TimeoutError:
            return NodeStatus(self.address.rank, "unreachable", detail=f"status took longer than {timeout_s:g} s")
        return node_status(self.address.rank, st)

    async def read_log(self, offset: int = 0) -> tuple[bytes, int]:
        return read_from(self.root / "logs" / "combined.log", offset)

    async def follow(self, offset: int = 0, poll_s: float = 0.5) -> AsyncIterator[bytes]:
        while True:
            # Decide before reading, so output written just before the end is still read.
            finished = (await self.status()).finished
            data, offset = await self.read_log(offset)
            while data:
                yield data
                data, offset = await self.read_log(offset)
            if finished:
                return
            await asyncio.sleep(poll_s)

    async def exec(self, command: str, timeout_s: float | None = None,
                   on_output: Callable[[bytes], None] | None = None) -> ExecResult:
        """``on_output``, if given, gets each chunk of output as it arrives (on
        the loop's thread) and the result's ``output`` is empty."""
        workdir = self.root / "workdir"
        if not workdir.is_dir():
            raise RuntimeFailure("NodeExecFailed", f"node {self.address.rank} has no sandbox at {self.root}")
        env = {k: os.environ[k] for k in runner.BASE_ENV if k in os.environ}
        env.setdefault("PATH", os.defpath)
        env["SKYPLAN_FS_ROOT"] = str(self.root / "fs")
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", command, cwd=str(workdir), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(asyncio.gather(drain(proc.stdout, on_output), proc.wait()), timeout_s)
        except asyncio.TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            raise RuntimeFailure("NodeExecTimeout", f"`{command}` did not finish within {timeout_s:g} s") from None
        return ExecResult(proc.returncode if proc.returncode is not None else -1, output)

    async def stop(self) -> NodeStatus:
        st = await asyncio.to_thread(runner.stop, self.root)
        return node_status(self.address.rank, st)

    async def remove(self) -> None:
        await asyncio.to_thread(runner.remove, self.root)

    async def close(self) -> None:
        return None
