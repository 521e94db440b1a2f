"""How skyplan reaches the nodes of a cloud whose VMs it talks to over SSH
(``Capabilities.nodes_over_ssh``: AWS, GCP, Azure), from its stack's outputs.

The VM programs export, per stack: ``public_ips`` and ``private_ips`` (one per
rank), ``ssh_user``, ``ssh_port``, ``cluster`` and ``stack``. From these,
:func:`addresses` gives each node's ``NodeAddress``: the cluster's own key
(``skyplan.runtime.keys``), skyplan's per-cluster known_hosts file with the host
key recorded on first contact (a VM skyplan created), file mounts at their real
absolute paths (the boot script made them the login user's), and the sandbox
``~/.skyplan/sandboxes/<stack>/node-<rank>``.

:func:`log_source` is the clusters' ``LogSource`` (``skyplan.clouds.nodelogs``):
``skyplan logs``, ``status`` and ``apply`` read the task's output and state
through the node runtime, exactly as they read a local sandbox. Nothing here
prints; no cloud is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from skyplan.clouds.nodelogs import NodesLogSource
    from skyplan.runtime.protocol import NodeAddress


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


def log_source(outputs: Mapping[str, Any]) -> NodesLogSource | None:
    """The log source of a stack's outputs (``skyplan.clouds.nodelogs``), if they say how
    to reach its nodes."""
    from skyplan.clouds.nodelogs import NodesLogSource

    found = addresses(outputs)
    return NodesLogSource(found) if found else None
