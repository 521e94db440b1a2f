"""The local cloud's program: ``num_nodes`` sandboxes on this machine.

Exports (the stack's outputs):
  cloud, region, zone, instance_type  the placement ("local", "local", None, "local")
  sandbox   <SKYPLAN_HOME>/sandboxes/<stack>: one node-<rank> directory per node
  log       node 0's combined setup+run log
  nodes     [{rank, id, sandbox, pid, logs: {setup, run, combined}}]

The provider and the node helpers live in ``skyplan/clouds/local/provider.py``
(Pulumi pickles the provider by reference to an importable module).
"""

from __future__ import annotations

from skyplan.clouds.base import ProvisionRequest


def build(request: ProvisionRequest) -> None:
    """The inline program body: call inside a Pulumi program context."""
    from skyplan.clouds.local.provider import LocalNode, export_nodes, node_props, sandbox_root

    base = sandbox_root(request.stack)
    nodes = [
        LocalNode(f"node-{rank}", node_props(request, rank, base / f"node-{rank}"))
        for rank in range(max(1, int(request.num_nodes)))
    ]
    export_nodes(request, base, nodes)
