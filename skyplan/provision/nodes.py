"""After ``up``, for clouds whose VMs skyplan reaches over SSH
(``Capabilities.nodes_over_ssh``): wait for the nodes, then sync and start the task
through the node runtime.

An attempt on such a cloud is up only once its task has been started:

1. ``with_key``: before the stack exists, the cluster's own key pair is made (or
   reused) under the skyplan home and its public half put in the request
   (``skyplan.runtime.keys``), which the program authorises for the login user;
2. ``start_task``, once ``up`` has returned the stack's outputs
   (``skyplan.clouds.vmnodes.addresses``):
   - every node answers over SSH (its host key recorded in skyplan's known_hosts
     file of the cluster on first contact) and its boot script has left its marker
     (``skyplan.clouds.vm.BOOT_MARKER``: the root work it does at boot is done),
     within ``wait_s`` in all, polled, with a progress phase per round;
   - the workdir and the plain-path file mounts are synced to every node;
   - the task is started on every node (``TaskSpec``: setup then run, detached,
     envs and secrets on the runtime's stdin, ``SKYPLAN_NODE_IPS`` the private addresses).

A node that never answers, refuses the key or changes its host key fails the
attempt like a provider error (``classify``: a zone-scoped timeout or unknown
error, so failover moves on and repeated unknowns widen), and its stack is
destroyed like any failed attempt's. Nothing here prints, and no cloud is named.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from skyplan.errors import Classification, Kind, Scope

if TYPE_CHECKING:
    from skyplan.clouds.base import ProvisionRequest
    from skyplan.runtime.protocol import NodeAddress, NodeRuntime, RuntimeFailure

#: How long the launch waits, in all, for every node to answer over SSH and finish
#: its boot script (a GPU image can take minutes to boot), seconds.
DEFAULT_WAIT_S = 600.0
#: Between two rounds of asking the nodes that have not answered yet, seconds.
POLL_S = 5.0

#: The progress phases of this step (``progress.Phase.phase``), after ``booting``.
WAITING = "waiting for SSH"
SYNCING = "syncing"
STARTING = "starting the task"

#: Failures that mean "the node did not answer in time": a zone-scoped timeout.
_TIMEOUTS = ("SshUnreachable", "RuntimeTimeout", "NodeExecTimeout", "NodeBootTimeout")

PhaseSink = Callable[[str, str], None]


def _ignore(phase: str, detail: str) -> None:
    pass


def with_key(request: ProvisionRequest) -> ProvisionRequest:
    """``request`` with the cluster's SSH public key (the pair made on first use)."""
    from skyplan.runtime import keys

    return dataclasses.replace(request, ssh_public_key=keys.ensure_key(request.cluster))


def classify(failure: RuntimeFailure) -> Classification:
    """How failover reads a node that could not be brought up: a timeout blocks the
    zone; anything else is an unknown zone-scoped error, shown verbatim (the same
    one in a second zone widens to the region, as for any unknown error)."""
    text = str(failure)
    if failure.code in _TIMEOUTS:
        return Classification(Kind.TIMEOUT, Scope.ZONE, failure.code, text)
    return Classification(Kind.UNKNOWN, Scope.ZONE, failure.code, text)


def _names(ranks: list[int]) -> str:
    shown = ", ".join(f"node-{r}" for r in ranks[:4])
    return shown + (f" and {len(ranks) - 4} more" if len(ranks) > 4 else "")


class _Waiter:
    """Polls the nodes not ready yet, on the launching thread (progress events are
    emitted there), until all are ready or the shared deadline passes."""

    def __init__(self, nodes: list[NodeRuntime], deadline: float, poll_s: float, on_phase: PhaseSink,
                 clock: Callable[[], float], sleep: Callable[[float], None], started: float) -> None:
        self.nodes, self.deadline, self.poll_s = nodes, deadline, poll_s
        self.on_phase, self.clock, self.sleep, self.started = on_phase, clock, sleep, started

    def until(self, ready: Callable[[NodeRuntime, float], Any], what: str, code: str) -> None:
        """``ready(node, timeout_s)`` is a coroutine giving None when the node is
        ready, else why not; raises RuntimeFailure(``code``) past the deadline."""
        from skyplan.runtime import sync_api
        from skyplan.runtime.protocol import RuntimeFailure

        pending = {n.address.rank: n for n in self.nodes}
        why: dict[int, str] = {}
        while pending:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                rank = min(pending)
                addr = pending[rank].address
                raise RuntimeFailure(code, f"node-{rank} ({addr.user}@{addr.host}:{addr.port}) {what} within "
                                     f"{self.clock() - self.started:.0f} s" + (f": {why[rank]}" if why.get(rank) else ""))

            async def ask() -> list[Any]:
                return list(await asyncio.gather(*(ready(n, remaining) for n in pending.values())))

            for (rank, _), answer in zip(list(pending.items()), sync_api.run(ask())):
                if answer is None:
                    del pending[rank]
                else:
                    why[rank] = str(answer)
            if pending:
                self.on_phase(WAITING, f"{_names(sorted(pending))} ({self.clock() - self.started:.0f}s)")
                self.sleep(max(0.0, min(self.poll_s, self.deadline - self.clock())))


async def _answers(node: NodeRuntime, timeout_s: float) -> str | None:
    """None once the node answers over SSH (its runtime can report a state); else why not.
    A changed host key is not waited out: it raises at once."""
    from skyplan.runtime.protocol import DEFAULT_STATUS_TIMEOUT_S, RuntimeFailure

    st = await node.status(timeout_s=min(DEFAULT_STATUS_TIMEOUT_S, max(1.0, timeout_s)))
    if st.state != "unreachable":
        return None
    if "SshHostKeyChanged" in st.detail:
        raise RuntimeFailure("SshHostKeyChanged", st.detail)
    return st.detail or "unreachable"


async def _booted(node: NodeRuntime, timeout_s: float) -> str | None:
    """None once the node's boot script has left its marker; else why not."""
    from skyplan.clouds.vm import BOOT_MARKER
    from skyplan.runtime.protocol import DEFAULT_STATUS_TIMEOUT_S, RuntimeFailure

    try:
        res = await node.exec(f"test -e {BOOT_MARKER}", timeout_s=min(DEFAULT_STATUS_TIMEOUT_S, max(1.0, timeout_s)))
    except RuntimeFailure as exc:
        if exc.code == "SshHostKeyChanged":
            raise
        return str(exc)
    return None if res.exit_code == 0 else "its boot script has not finished"


def task_spec(request: ProvisionRequest, outputs: Mapping[str, Any]) -> Any:
    from skyplan.clouds.vmnodes import private_ips
    from skyplan.runtime.protocol import TaskSpec

    return TaskSpec(cluster=request.cluster, stack=request.stack, num_nodes=max(1, int(request.num_nodes)),
                    setup=request.setup, run=request.run,
                    envs={str(k): "" if v is None else str(v) for k, v in request.envs.items()},
                    secrets=dict(request.secrets), node_ips=private_ips(outputs))


def start_task(request: ProvisionRequest, outputs: Mapping[str, Any], *, on_phase: PhaseSink = _ignore,
               wait_s: float = DEFAULT_WAIT_S, poll_s: float = POLL_S,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait for every node of a stack that is up, then sync and start the task on
    each (see the module docstring). Raises RuntimeFailure when a node cannot be
    brought up; ``classify`` reads it for failover."""
    from skyplan.clouds.vmnodes import addresses
    from skyplan.runtime import sync_api
    from skyplan.runtime.protocol import RuntimeFailure

    found: list[NodeAddress] = addresses(outputs)
    wanted = max(1, int(request.num_nodes))
    missing = [a.rank for a in found if not a.host]
    if len(found) != wanted or missing:
        raise RuntimeFailure("NodeAddressMissing", f"the stack's outputs give {len(found) - len(missing)} public "
                             f"address(es) for {wanted} node(s): skyplan cannot reach " +
                             (_names(missing) if missing else "every node"))
    nodes = [sync_api.open_node(a) for a in found]
    started = clock()
    waiter = _Waiter(nodes, started + wait_s, poll_s, on_phase, clock, sleep, started)
    on_phase(WAITING, _names([a.rank for a in found]))
    waiter.until(_answers, "did not answer over SSH", "SshUnreachable")
    waiter.until(_booted, "did not finish its boot script", "NodeBootTimeout")

    on_phase(SYNCING, _names([a.rank for a in found]))

    async def sync_all() -> None:
        await asyncio.gather(*(n.sync(request.workdir, dict(request.file_mounts)) for n in nodes))

    sync_api.run(sync_all())

    on_phase(STARTING, _names([a.rank for a in found]))
    spec = task_spec(request, outputs)

    async def start_all() -> None:
        await asyncio.gather(*(n.start(spec) for n in nodes))

    sync_api.run(start_all())
