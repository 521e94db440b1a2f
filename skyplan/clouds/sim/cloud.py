"""The sim cloud: stands in for the simulatable clouds (``registry.simulatable()``) under a scenario file.

``program(request)`` builds ``request.cloud``'s placement as sandboxes on this
machine (``stacks/sim``), with ``request.scenario`` deciding what each create
does. The errors it raises are the target cloud's own texts, so the failover
classifies them with the target cloud's classifier; ``classify`` here only
delegates, for callers that hold the Sim rather than the target.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Mapping

from skyplan.clouds.capabilities import Capabilities, CloudBase
from skyplan.errors import Classification, Kind, Scope

if TYPE_CHECKING:
    from skyplan.clouds.base import LogSource, PreflightResult, ProvisionRequest


class Sim(CloudBase):
    name = "sim"
    display = "Sim"
    # Its placements are the simulated clouds' (their offers, zones and markets);
    # it is never planned for by name, and it runs here like the local cloud.
    capabilities = Capabilities(
        runs_here=True,
        simulator=True,
        from_catalog=False,
        default_candidate=False,
        has_log_source=True,
        proves_interrupted=True,
        reruns_in_place=True,
        # Its nodes are the local cloud's sandboxes: buckets are directories here too.
        bucket_store="dir",
        # Its nodes are sandboxes here: each task with ports gets its own free loopback port.
        loopback_ports=True,
    )

    def __init__(self, target: str | None = None, *, ledger_db: str | None = None) -> None:
        """``target``: the cloud whose classifier ``classify`` uses; without one,
        each target's classifier is tried in turn and the first that recognises
        the text wins. ``ledger_db`` overrides ``<SKYPLAN_HOME>/sim/ledger.db``."""
        self.target = target
        self.ledger_db = ledger_db

    def classify(self, message: str) -> Classification:
        from skyplan.clouds import registry

        names = (self.target,) if self.target else registry.simulatable()
        for name in names:
            try:
                c = registry.get(name).classify(message)
            except Exception:  # a target without a classifier yet must not crash failover
                continue
            if c.kind != Kind.UNKNOWN or self.target:
                return c
        return Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", message)

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        ledger_db = self.ledger_db

        def run() -> None:
            from skyplan.clouds import programs

            programs.load(self.name).build(request, ledger_db)

        return run

    def preflight(self) -> PreflightResult:
        from skyplan.clouds.base import PreflightResult

        # Nothing to install, no credentials: the scenario is checked when it is loaded.
        return PreflightResult(True, details={"credentials": "none needed"})

    def resolve_interrupted(self, op: Any) -> bool:
        """For ``StackDriver.destroy_and_remove(resolve_interrupted=...)``: make sure
        a sim node whose create was cut off (timeout, hang, a killed apply) is gone.

        The create may have stopped anywhere: before the scenario decided,
        after the ledger row was written, or with the sandbox running. The
        node's inputs name its sandbox and ledger, so both are cleaned: the
        sandbox is removed and every live ledger row made under the node's
        key (``<stack>/node-<rank>``) is marked deleted. True means done; False:
        not a sim node, or its inputs do not say where it lives.
        """
        if not str(getattr(op, "type", "")).endswith(":SimNode"):
            return False
        inputs = getattr(op, "inputs", None) or {}
        root, db, stack = inputs.get("root"), inputs.get("ledger"), inputs.get("stack")
        if not root or not db or not stack:
            return False
        from skyplan.clouds.sim import ledger
        from skyplan.clouds.local import runner

        runner.remove(root)
        for row in ledger.live_by_key(db, f"{stack}/node-{int(inputs.get('node_rank') or 0)}"):
            ledger.record_delete(db, row["id"])
        return True

    def leftovers(self, stack_prefix: str) -> tuple[tuple[str, str], ...]:
        """Ledger rows not yet deleted (live or preempted) of the matching stacks:
        the simulated cloud's own account of what exists, whatever Pulumi recorded
        (a provider killed mid-create leaves a row Pulumi never heard of)."""
        return tuple((r["stack"], f"{r['id']} ({r['cloud']} {r['zone'] or r['region']} {r['instance_type']}, "
                                  f"{r['state']})") for r in self._held(stack_prefix))

    def remove_leftovers(self, stacks: Iterable[str]) -> None:
        from skyplan.clouds.local import runner
        from skyplan.clouds.sim import ledger

        wanted = set(stacks)
        db = self.ledger_db or ledger.default_path()
        for r in self._held(""):
            if r["stack"] in wanted:
                if r["sandbox"]:
                    runner.remove(r["sandbox"])
                ledger.record_delete(db, r["id"])

    def _held(self, stack_prefix: str) -> list[dict[str, Any]]:
        from skyplan.clouds.sim import ledger

        return ledger.held(self.ledger_db or ledger.default_path(), stack_prefix)

    def own_offers(self) -> tuple:
        return ()  # it has no offers of its own: it takes the simulated clouds'

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        from skyplan.clouds.local.logs import sandbox_logs

        return sandbox_logs(outputs)

    def node_state(self, outputs: Mapping[str, Any]) -> str:
        """The ledger's word on the stack's nodes (its ``nodes[].ledger_id``): a
        preempted row is a reclaimed spot VM (``stopped``), a deleted or missing
        one ``gone``; ``running`` when every node is live."""
        from skyplan.clouds.sim import ledger

        db = outputs.get("ledger") or self.ledger_db
        ids = [n.get("ledger_id") for n in outputs.get("nodes") or () if isinstance(n, Mapping)]
        if not db or not ids or not all(ids):
            return "unknown"
        states = []
        for rid in ids:
            row = ledger.get(db, rid)
            states.append(row["state"] if row is not None else ledger.DELETED)
        if ledger.PREEMPTED in states:
            return "stopped"
        if ledger.DELETED in states:
            return "gone"
        return "running"

    def tick(self) -> list[dict[str, Any]]:
        """The scenario preemptions that are due, carried out now (``preempt.preempt_due``)."""
        from skyplan.clouds.sim import ledger
        from skyplan.clouds.sim.preempt import preempt_due

        return preempt_due(db=self.ledger_db or ledger.default_path())

    def node_addresses(self, outputs: Mapping[str, Any]) -> list[Any]:
        from skyplan.clouds.local.logs import sandbox_addresses

        return sandbox_addresses(outputs)

    def release_buckets(self, owner: str, since: float, zones: Any) -> tuple[str, ...]:
        # Its nodes are sandboxes here: its buckets are the local cloud's directories.
        from skyplan.clouds.buckets import release_here

        return release_here(owner, since)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        from skyplan.clouds.sim.texts import error_text

        return error_text(outcome, request)
