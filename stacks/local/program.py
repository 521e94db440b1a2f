"""The local cloud's program: ``num_nodes`` sandboxes on this machine.

Exports (the stack's outputs):
  cloud, region, zone, instance_type  the placement ("local", "local", None, "local")
  sandbox   <SKYPLAN_HOME>/sandboxes/<stack>: one node-<rank> directory per node
  log       node 0's combined setup+run log
  nodes     [{rank, id, sandbox, pid, logs: {setup, run, combined}}]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skyplan.clouds.base import ProvisionRequest


def sandbox_root(stack: str, home: str | os.PathLike[str] | None = None) -> Path:
    """``<SKYPLAN_HOME>/sandboxes/<stack>``: where a stack's nodes live."""
    if home is None:
        from skyplan import home as _home

        return _home.home() / "sandboxes" / stack
    return Path(home) / "sandboxes" / stack


def node_props(request: ProvisionRequest, rank: int, root: Path) -> dict[str, Any]:
    """A node's inputs: plain JSON values, absolute paths."""
    return {
        "root": str(root.absolute()),
        "cluster": request.cluster,
        "stack": request.stack,
        "task_id": request.stack,
        "node_rank": rank,
        "num_nodes": max(1, int(request.num_nodes)),
        # The request's workdir is made absolute here, in the apply process, whose
        # cwd is the user's; the provider process runs elsewhere.
        "workdir": os.path.abspath(os.path.expanduser(request.workdir)) if request.workdir else None,
        "setup": request.setup,
        "run": request.run,
        "envs": dict(request.envs),
    }


def export_nodes(request: ProvisionRequest, base: Path, nodes: list[Any], extra: tuple[str, ...] = ()) -> None:
    """Export the placement and each node; ``extra`` names more node outputs to list."""
    import pulumi

    pulumi.export("cloud", request.cloud)
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("sandbox", str(base.absolute()))
    pulumi.export("log", nodes[0].logs.apply(lambda logs: logs["combined"]))
    pulumi.export(
        "nodes",
        [
            {
                "rank": rank,
                "id": n.id,
                "sandbox": n.sandbox,
                "pid": n.pid,
                "logs": n.logs,
                **{key: getattr(n, key) for key in extra},
            }
            for rank, n in enumerate(nodes)
        ],
    )


def build(request: ProvisionRequest) -> None:
    """The inline program body: call inside a Pulumi program context."""
    from stacks.local.provider import LocalNode

    base = sandbox_root(request.stack)
    nodes = [
        LocalNode(f"node-{rank}", node_props(request, rank, base / f"node-{rank}"))
        for rank in range(max(1, int(request.num_nodes)))
    ]
    export_nodes(request, base, nodes)
