"""An ssh cluster's nodes as the node runtime reaches them, and its log source.

A host is written down (in resource inputs, stack outputs and the ledger) as a
plain record, ``host_record``: everything needed to reach it without the
config file, which may have changed since. The node's sandbox on the host is
``~/.skyplan/sandboxes/<stack>/node-<rank>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping

from skyplan.runtime.protocol import NodeAddress

if TYPE_CHECKING:
    from skyplan.clouds.ssh.pools import Host

RECORD_KEYS = ("pool", "zone", "key", "host", "port", "user", "identity_file", "known_hosts")


def sandbox_path(stack: str, rank: int) -> str:
    return f"~/.skyplan/sandboxes/{stack}/node-{rank}"


#: The "sandbox" of a command run on a host outside any node (a probe, a login check):
#: never created, so the runtime's ``exec`` runs it in the login's home.
NO_SANDBOX = "~/.skyplan/no-sandbox"


def host_record(host: Host) -> dict[str, Any]:
    return {"pool": host.pool, "zone": host.zone, "key": host.key, "host": host.host, "port": host.port,
            "user": host.user, "identity_file": host.identity_file, "known_hosts": host.known_hosts}


def host_address(host: Host, *, rank: int, sandbox: str) -> NodeAddress:
    return record_address(host_record(host), rank=rank, sandbox=sandbox)


def record_address(record: Mapping[str, Any], *, rank: int, sandbox: str) -> NodeAddress:
    """The runtime address of a host record: a user's machine, so its host key is
    checked strictly against the pool's known_hosts (never recorded)."""
    return NodeAddress(transport="ssh", rank=rank, sandbox=sandbox, host=str(record["host"]),
                       port=int(record.get("port") or 22), user=str(record.get("user") or ""),
                       identity_file=record.get("identity_file") or None,
                       known_hosts=record.get("known_hosts") or None, record_host_key=False)


def addresses(outputs: Mapping[str, Any]) -> list[NodeAddress]:
    """Each node's address, by rank, from an ssh stack's ``nodes`` output."""
    out = []
    for n in sorted(outputs.get("nodes") or [], key=lambda n: int(n.get("rank") or 0)):
        out.append(record_address(n, rank=int(n.get("rank") or 0), sandbox=str(n.get("sandbox") or "")))
    return out


class NodesLogSource:
    """A cluster's task output and state, read through the node runtime (one
    connection per node, reused). Satisfies ``skyplan.clouds.base.LogSource``."""

    def __init__(self, nodes: list[NodeAddress]) -> None:
        self.nodes = nodes

    def _open(self, address: NodeAddress) -> Any:
        from skyplan.runtime.sync_api import open_node

        return open_node(address)

    def _prefix(self, rank: int) -> str:
        return f"(node-{rank}) " if len(self.nodes) > 1 else ""

    def lines(self) -> Iterator[str]:
        from skyplan.runtime.sync_api import run

        for a in self.nodes:
            node = self._open(a)
            offset, buf = 0, b""
            while True:
                chunk, offset = run(node.read_log(offset))
                if not chunk:
                    break
                buf += chunk
            for line in buf.decode("utf-8", "replace").splitlines(keepends=True):
                yield self._prefix(a.rank) + (line if line.endswith("\n") else line + "\n")

    def follow(self) -> Iterator[str]:
        """Every node's output, interleaved as written, until the task has ended on
        every node (or a node became unreachable)."""
        import asyncio
        import queue

        from skyplan.runtime.sync_api import loop

        q: queue.Queue[tuple[int, bytes | None]] = queue.Queue()

        async def pump(a: NodeAddress) -> None:
            try:
                async for chunk in self._open(a).follow(0):
                    q.put((a.rank, chunk))
            finally:
                q.put((a.rank, None))

        futures = [asyncio.run_coroutine_threadsafe(pump(a), loop()) for a in self.nodes]
        bufs: dict[int, bytes] = {a.rank: b"" for a in self.nodes}
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

    def node_states(self) -> list[Any]:
        """Each node's ``NodeStatus``, all asked at once (each bounded by the runtime's timeout)."""
        import asyncio

        from skyplan.runtime.sync_api import run

        async def all_() -> list[Any]:
            return list(await asyncio.gather(*(self._open(a).status() for a in self.nodes)))

        return run(all_())

    def status(self) -> dict[str, Any] | None:
        """The local shape (``phase``, ``returncode``, ``nodes``), each node also with
        its runtime ``state`` and ``detail``."""
        states = self.node_states()
        return status_dict(states)


_PHASE = {"starting": "starting", "running": "run", "succeeded": "done", "failed": "failed", "stopped": "stopped",
          "unreachable": "lost", "absent": "absent"}


def status_dict(states: list[Any]) -> dict[str, Any]:
    """NodeStatus list -> ``{"phase", "returncode", "nodes": [...]}`` as ``JobStatus.to_json``
    (an unreachable node counts as lost: the task's fate there is unknown)."""
    nodes = [{"node_rank": s.rank, "phase": _PHASE.get(s.state, s.state), "returncode": s.exit_code,
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


def log_source(outputs: Mapping[str, Any]) -> NodesLogSource | None:
    nodes = addresses(outputs)
    return NodesLogSource(nodes) if nodes else None
