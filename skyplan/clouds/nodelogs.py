"""A cluster's ``LogSource`` read through the node runtime: for every cloud whose
nodes skyplan reaches with ``skyplan.runtime`` rather than as sandboxes on this
machine (VMs over SSH: ``vmnodes``; a cloud of one's own machines may use it too).

One connection per node, reused (``sync_api.open_node``); every node is asked at
once on the runtime's one event loop, so reading 100 nodes holds no thread per
node. ``status()`` has the shape local sandboxes give
(``skyplan.clouds.local.logs.JobStatus.to_json``: ``phase``, ``returncode``,
``nodes``), each node also carrying its runtime ``state`` and ``detail``. A node
that does not answer is ``lost`` at the cluster's level (the task's fate there is
unknown, so ``apply`` does not call it a success) while its own ``state`` stays
``unreachable`` (what ``status --json`` lists, and the jobs controller reads as a
possible preemption). Nothing here prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from skyplan.runtime.protocol import NodeAddress, NodeRuntime, NodeStatus

#: A node state (``NodeStatus.state``) as a LogSource phase.
PHASES = {"starting": "starting", "running": "run", "succeeded": "done", "failed": "failed", "stopped": "stopped",
          "unreachable": "lost", "absent": "absent"}


def status_dict(states: list[NodeStatus]) -> dict[str, Any]:
    """Node statuses -> ``{"phase", "returncode", "nodes": [...]}``: the cluster's phase is
    the first of failed, lost, stopped (any node), run, starting (any), absent (any), done."""
    nodes = [{"node_rank": s.rank, "phase": PHASES.get(s.state, s.state), "returncode": s.exit_code,
              "state": s.state, "detail": s.detail, "failed_phase": s.failed_phase} for s in states]
    if not nodes:
        return {"phase": "absent", "returncode": None, "nodes": []}
    phases = [n["phase"] for n in nodes]
    for bad in ("failed", "lost", "stopped"):
        if bad in phases:
            rc = next((n["returncode"] for n in nodes if n["phase"] == bad), None)
            return {"phase": bad, "returncode": rc, "nodes": nodes}
    for going in ("run", "starting"):
        if going in phases:
            return {"phase": going, "returncode": None, "nodes": nodes}
    if "absent" in phases:
        return {"phase": "absent", "returncode": None, "nodes": nodes}
    return {"phase": "done", "returncode": 0, "nodes": nodes}


class NodesLogSource:
    """The task output and state of the nodes at ``addresses`` (by rank).
    Satisfies ``skyplan.clouds.base.LogSource``."""

    def __init__(self, addresses: list[NodeAddress]) -> None:
        self.addresses = addresses

    def _open(self, address: NodeAddress) -> NodeRuntime:
        from skyplan.runtime import sync_api

        return sync_api.open_node(address)

    def node(self, rank: int) -> "NodesLogSource | None":
        only = [a for a in self.addresses if a.rank == rank]
        return NodesLogSource(only) if only else None

    def _prefix(self, rank: int) -> str:
        return f"(node-{rank}) " if len(self.addresses) > 1 else ""

    def node_states(self) -> list[NodeStatus]:
        """Each node's status, all asked at once (each bounded by the runtime's timeout)."""
        import asyncio

        from skyplan.runtime import sync_api

        async def ask() -> list[NodeStatus]:
            return list(await asyncio.gather(*(self._open(a).status() for a in self.addresses)))

        return sync_api.run(ask())

    def status(self) -> dict[str, Any] | None:
        return status_dict(self.node_states())

    def lines(self) -> Iterator[str]:
        """Every node's output as it is now, node by node (an unreachable node gives none)."""
        import asyncio

        from skyplan.runtime import sync_api
        from skyplan.runtime.protocol import RuntimeFailure

        failures: list[str] = []

        async def read_all(node: NodeRuntime) -> bytes:
            out, offset = b"", 0
            try:
                while True:
                    data, offset = await node.read_log(offset)
                    if not data:
                        return out
                    out += data
            except RuntimeFailure as exc:
                failures.append(f"node {node.address.rank}: {exc}")
                return out

        async def every() -> list[bytes]:
            return list(await asyncio.gather(*(read_all(self._open(a)) for a in self.addresses)))

        for a, data in zip(self.addresses, sync_api.run(every())):
            for line in data.decode("utf-8", "replace").splitlines(keepends=True):
                yield self._prefix(a.rank) + (line if line.endswith("\n") else line + "\n")
        if failures:  # what could be read was printed; silence would read as "no output"
            raise _unreachable(failures)

    def follow(self) -> Iterator[str]:
        """Every node's output, interleaved as written, until the task has ended on
        every node (or its node no longer answers)."""
        import asyncio
        import queue

        from skyplan.runtime.sync_api import loop

        q: queue.Queue[tuple[int, bytes | None]] = queue.Queue()

        from skyplan.runtime.protocol import RuntimeFailure

        failures: list[str] = []

        async def pump(a: NodeAddress) -> None:
            try:
                async for chunk in self._open(a).follow(0):
                    q.put((a.rank, chunk))
            except RuntimeFailure as exc:  # noted before the end marker: the consumer reads it after
                failures.append(f"node {a.rank}: {exc}")
            finally:
                q.put((a.rank, None))

        futures = [asyncio.run_coroutine_threadsafe(pump(a), loop()) for a in self.addresses]
        bufs: dict[int, bytes] = {a.rank: b"" for a in self.addresses}
        running = len(futures)
        try:
            while running:
                rank, chunk = q.get()
                if chunk is None:
                    running -= 1
                    if bufs[rank]:
                        yield self._prefix(rank) + bufs[rank].decode("utf-8", "replace") + "\n"
                        bufs[rank] = b""
                    continue
                bufs[rank] += chunk
                *done, bufs[rank] = bufs[rank].split(b"\n")
                for line in done:
                    yield self._prefix(rank) + line.decode("utf-8", "replace") + "\n"
        finally:
            for f in futures:  # the pumps run on the runtime's loop thread; a consumer that stops early ends them
                f.cancel()
        for f in futures:
            exc = f.exception() if f.done() and not f.cancelled() else None
            if exc is not None:
                raise exc
        if failures:
            raise _unreachable(failures)


def _unreachable(failures: list[str]) -> Exception:
    from skyplan.errors import NodeUnreachable

    return NodeUnreachable("could not read the task's output: " + "; ".join(failures),
                           hint="check that the machine is up and reachable over SSH (`skyplan status --json` "
                                "shows each node's state), then run the command again")
