"""The sim cloud's program: the local program's sandboxes, as SimNodes.

``request.cloud`` (a simulatable cloud) is the cloud being simulated and
``request.scenario`` the scenario file. Exports what the local program exports
plus ``scenario``, ``ledger``, ``preempt_at`` (node 0's, or None) and, per node,
``ledger_id`` and ``preempt_at``. The provider lives in
``skyplan/clouds/sim/provider.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skyplan.clouds.base import ProvisionRequest


def build(request: ProvisionRequest, ledger_db: str | os.PathLike[str] | None = None) -> None:
    """The inline program body: call inside a Pulumi program context."""
    import pulumi

    from skyplan.clouds.local.provider import export_nodes, sandbox_root
    from skyplan.clouds.sim import ledger
    from skyplan.clouds.sim.provider import SimNode, sim_props

    db = Path(ledger_db) if ledger_db is not None else ledger.default_path()
    base = sandbox_root(request.stack)
    nodes: list[Any] = []
    for rank in range(max(1, int(request.num_nodes))):
        # Nodes after the first wait for it: node 0 carries the scenario's decision.
        opts = pulumi.ResourceOptions(depends_on=[nodes[0]]) if nodes else None
        nodes.append(SimNode(f"node-{rank}", sim_props(request, rank, base / f"node-{rank}", db), opts))
    export_nodes(request, base, nodes, extra=("ledger_id", "preempt_at"))
    pulumi.export("scenario", os.path.abspath(request.scenario or ""))
    pulumi.export("ledger", str(db.absolute()))
    pulumi.export("preempt_at", nodes[0].preempt_at)
