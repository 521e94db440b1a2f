"""How skyplan reaches the nodes of a cloud whose VMs it talks to over SSH
(``Capabilities.nodes_over_ssh``: AWS, GCP, Azure), from its stack's outputs.

The VM programs export, per stack: ``public_ips`` and ``private_ips`` (one per
rank), ``ssh_user``, ``ssh_port``, ``cluster`` and ``stack``. From these,
:func:`addresses` gives each node's ``NodeAddress``: the cluster's own key
(``skyplan.runtime.keys``), skyplan's per-cluster known_hosts file with the host
key recorded on first contact (a VM skyplan created), file mounts at their real
absolute paths (the boot script made them the login user's), and the sandbox
``~/.skyplan/sandboxes/<stack>/node-<rank>``.

:class:`RuntimeLogs` is the clusters' ``LogSource``: ``skyplan logs``,
``status`` and ``apply`` read the task's output and state through the node
runtime, exactly as they read a local sandbox. Nothing here prints; no
cloud is named.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Iterator, Mapping

if TYPE_CHECKING:
    from skyplan.runtime.protocol import NodeAddress, NodeRuntime, NodeStatus

#: The LogSource phase of each node state (``skyplan.clouds.local.logs.JobStatus``'s
#: vocabulary, which ``provision.outcome`` reads). ``unreachable`` stays itself: the
#: task's fate is unknown (the jobs controller reads it as a possible preemption).
PHASES = {"starting": "starting", "running": "run", "succeeded": "done", "failed": "failed",
          "stopped": "stopped", "unreachable": "unreachable", "absent": "absent"}

#: How often ``follow`` polls the nodes, seconds.
POLL_S = 1.0


def addresses(outputs: Mapping[str, Any]) -> list[NodeAddress]:
    """Each node's address, by rank; [] when the outputs do not say how to reach
    the nodes (a stack from before SSH access). A node without a public address
    keeps ``host`` empty, which the runtime refuses with a clear failure."""
    from skyplan.runtime import keys
    from skyplan.runtime.protocol import NodeAddress
    from skyplan.runtime.ssh import remote_sandbox

    cluster, stack, user = outputs.get("cluster"), outputs.get("stack"), outputs.get("ssh_user")
    ips = outputs.get("public_ips") or []
    if not (cluster and stack and user and isinstance(ips, (list, tuple)) and ips):
        return []
    port = int(outputs.get("ssh_port") or 22)
    return [NodeAddress("ssh", rank=rank, host=str(ip or ""), port=port, user=str(user),
                        identity_file=str(keys.key_path(cluster, create=False)),
                        known_hosts=str(keys.known_hosts_path(cluster, create=False)), record_host_key=True,
                        mounts_at_root=True, sandbox=remote_sandbox(str(stack), rank))
            for rank, ip in enumerate(ips)]


def private_ips(outputs: Mapping[str, Any]) -> tuple[str, ...]:
    """The nodes' private addresses by rank (``SKYPLAN_NODE_IPS``), else their public ones."""
    ips = outputs.get("private_ips") or outputs.get("public_ips") or []
    return tuple(str(ip or "") for ip in ips)


def cluster_phase(nodes: list[NodeStatus]) -> tuple[str, int | None]:
    """The cluster's phase and exit code from its nodes', as local sandboxes have it:
    the first of failed, stopped (any node), unreachable (any), running or starting
    (any), done (all); absent when no node has a task."""
    phases = [PHASES.get(n.state, "failed") for n in nodes]
    if not nodes or all(p == "absent" for p in phases):
        return "absent", None
    for bad in ("failed", "stopped"):
        for n, p in zip(nodes, phases):
            if p == bad:
                return bad, n.exit_code
    if "unreachable" in phases:
        return "unreachable", None
    for going in ("run", "starting", "absent"):
        if going in phases:
            return ("starting" if going == "absent" else going), None
    return "done", 0


class RuntimeLogs:
    """The LogSource of a cluster whose nodes are reached through the node runtime."""

    def __init__(self, addresses: list[NodeAddress]) -> None:
        self.addresses = addresses

    def _nodes(self) -> list[NodeRuntime]:
        from skyplan.runtime import sync_api

        return [sync_api.open_node(a) for a in self.addresses]

    def _prefix(self, rank: int) -> str:
        return f"(node-{rank}) " if len(self.addresses) > 1 else ""

    def node_statuses(self) -> list[NodeStatus]:
        """Every node's status, asked at once (each bounded by the runtime's timeout)."""
        from skyplan.runtime import sync_api

        async def ask() -> list[NodeStatus]:
            return list(await asyncio.gather(*(n.status() for n in self._nodes())))

        return sync_api.run(ask())

    def status(self) -> dict[str, Any] | None:
        nodes = self.node_statuses()
        phase, rc = cluster_phase(nodes)
        return {"phase": phase, "returncode": rc,
                "nodes": [{"node_rank": n.rank, "phase": PHASES.get(n.state, "failed"), "returncode": n.exit_code,
                           "state": n.state, "detail": n.detail} for n in nodes]}

    def _read_all(self, offsets: list[int]) -> list[tuple[bytes, int]]:
        """Each node's output from its offset up to what is written now (an
        unreachable node gives nothing)."""
        from skyplan.runtime import sync_api
        from skyplan.runtime.protocol import RuntimeFailure

        async def one(node: NodeRuntime, offset: int) -> tuple[bytes, int]:
            out = b""
            try:
                while True:
                    data, nxt = await node.read_log(offset)
                    if not data:
                        return out, offset
                    out, offset = out + data, nxt
            except RuntimeFailure:
                return out, offset

        async def all_nodes() -> list[tuple[bytes, int]]:
            return list(await asyncio.gather(*(one(n, o) for n, o in zip(self._nodes(), offsets))))

        return sync_api.run(all_nodes())

    def lines(self) -> Iterator[str]:
        """Every node's output as it is now, node by node."""
        for addr, (data, _) in zip(self.addresses, self._read_all([0] * len(self.addresses))):
            for line in data.decode("utf-8", errors="replace").splitlines(keepends=True):
                yield self._prefix(addr.rank) + (line if line.endswith("\n") else line + "\n")

    def follow(self, poll_s: float = POLL_S) -> Iterator[str]:
        """Every node's output, interleaved as read, until the task has ended on
        every node (or its node is unreachable: nothing more can be read)."""
        import time

        offsets = [0] * len(self.addresses)
        partial = [b""] * len(self.addresses)
        while True:
            # Decide before reading, so output written just before the end is still read below.
            ended = all(s.finished or s.state == "unreachable" for s in self.node_statuses())
            for i, (data, nxt) in enumerate(self._read_all(offsets)):
                offsets[i] = nxt
                *whole, partial[i] = (partial[i] + data).split(b"\n")
                for line in whole:
                    yield self._prefix(self.addresses[i].rank) + line.decode("utf-8", errors="replace") + "\n"
            if ended:
                for i, rest in enumerate(partial):
                    if rest:
                        yield self._prefix(self.addresses[i].rank) + rest.decode("utf-8", errors="replace") + "\n"
                return
            time.sleep(poll_s)


def log_source(outputs: Mapping[str, Any]) -> RuntimeLogs | None:
    """The log source of a stack's outputs, if they say how to reach its nodes."""
    found = addresses(outputs)
    return RuntimeLogs(found) if found else None
