"""An ssh cluster's nodes as the node runtime reaches them, and its log source
(``skyplan.clouds.nodelogs``, shared with the VM clouds).

A host is written down (in resource inputs, stack outputs and the ledger) as a
plain record, ``host_record``: everything needed to reach it without the
config file, which may have changed since. The node's sandbox on the host is
``~/.skyplan/sandboxes/<stack>/node-<rank>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

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


def log_source(outputs: Mapping[str, Any]) -> Any:
    """The cluster's task output and state through the node runtime, as for VM clusters
    (``skyplan.clouds.nodelogs``); None when the outputs name no node."""
    from skyplan.clouds.nodelogs import NodesLogSource

    nodes = addresses(outputs)
    return NodesLogSource(nodes) if nodes else None
