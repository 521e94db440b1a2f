"""The sim cloud's dynamic provider: a scenario decides, then a local sandbox.

create():
  1. sleeps the scenario's ``latency_s``;
  2. node 0 asks the scenario what this placement does (the other nodes of a
     multi-node attempt depend on node 0, so one attempt is one decision and a
     ``times`` rule counts attempts, not nodes);
  3. a failure outcome raises ``Exception(<text>)``: the rule's message, or the
     target cloud's usual text for it (``skyplan.clouds.sim.texts``). The engine
     reports it as ``Exception calling application: <text>``;
  4. ``hang`` never returns: the driver's timeout ends it;
  5. ``ok`` records the resource in the ledger first (a sandbox never exists
     unaccounted for), then starts the sandbox exactly as the local cloud does.

delete() stops and removes the sandbox, then marks the ledger row deleted (a
preempted row too: its ``preempted_at`` stays).
Both steps are idempotent, so a repeated delete is harmless.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from skyplan import failpoints
from skyplan.clouds.local import runner
from skyplan.clouds.local.provider import INPUT_KEYS as LOCAL_INPUT_KEYS
from skyplan.clouds.local.provider import OUTPUT_KEYS as LOCAL_OUTPUT_KEYS
from skyplan.clouds.local.provider import inputs_of, node_props, replace_diff, spec_of

INPUT_KEYS = LOCAL_INPUT_KEYS + (
    "ledger",  # absolute path of the ledger database
    "scenario",  # absolute path of the scenario file
    "cloud",
    "region",
    "zone",
    "instance_type",
    "use_spot",
    "accelerators",
)
OUTPUT_KEYS = LOCAL_OUTPUT_KEYS + ("ledger_id", "created_at", "preempt_at")

_HANG_SLICE_S = 3600.0

if TYPE_CHECKING:
    from skyplan.clouds.base import ProvisionRequest


def placement_of(props: dict[str, Any]) -> dict[str, Any]:
    return {
        "cloud": props.get("cloud"),
        "region": props.get("region"),
        "zone": props.get("zone") or None,
        "instance_type": props.get("instance_type"),
        "use_spot": bool(props.get("use_spot")),
    }


def request_of(props: dict[str, Any]):
    """A ProvisionRequest for the target cloud's sample_error."""
    from skyplan.clouds.base import ProvisionRequest

    return ProvisionRequest(
        cluster=str(props.get("cluster") or ""),
        stack=str(props.get("stack") or ""),
        cloud=str(props.get("cloud") or ""),
        region=str(props.get("region") or ""),
        zone=props.get("zone") or None,
        instance_type=str(props.get("instance_type") or ""),
        use_spot=bool(props.get("use_spot")),
        num_nodes=int(props.get("num_nodes") or 1),
        accelerators={str(k): float(v) for k, v in (props.get("accelerators") or {}).items()},
        scenario=props.get("scenario"),
    )


class SimNodeProvider(ResourceProvider):
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        from skyplan.clouds.sim import ledger, scenario, texts

        scen = scenario.load(props["scenario"])
        if scen.latency_s > 0:
            time.sleep(scen.latency_s)
        placement = placement_of(props)
        spec = spec_of(props)
        db = props["ledger"]
        if spec["node_rank"] == 0:
            decision = scenario.decide(scen, placement, db=db)
            if decision.outcome == "hang":
                while True:
                    time.sleep(_HANG_SLICE_S)
            if decision.outcome in scenario.FAILURES:
                raise Exception(decision.message or texts.error_text(decision.outcome, request_of(props)))
        row = ledger.record_create(
            db,
            key=f"{spec['stack']}/node-{spec['node_rank']}",
            cluster=str(spec["cluster"] or ""),
            stack=str(spec["stack"] or ""),
            cloud=placement["cloud"],
            region=placement["region"],
            zone=placement["zone"],
            instance_type=placement["instance_type"],
            use_spot=placement["use_spot"],
            node_rank=spec["node_rank"],
            sandbox=props["root"],
            preempt_after_s=scenario.preempt_after(scen, placement),
        )
        try:
            info = runner.start(spec, props["root"])
        except BaseException:
            # create must be transactional: no sandbox, so no live resource.
            ledger.record_delete(db, row["id"])
            raise
        failpoints.hit("provider.created")  # the node exists; the engine does not know yet
        outs = {
            **inputs_of(props, INPUT_KEYS),
            **info,
            "ledger_id": row["id"],
            "created_at": row["created_at"],
            "preempt_at": row["preempt_at"],
        }
        return CreateResult(id_=row["id"], outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replace_diff(olds, news, INPUT_KEYS)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only the task changed (see ``replace_diff``): the placement stays, so the
        # scenario is not asked again and the ledger row is the same; the sandbox
        # re-runs the task.
        info = runner.start(spec_of(news), news["root"])
        kept = {k: olds.get(k) for k in ("ledger_id", "created_at", "preempt_at")}
        return UpdateResult(outs={**inputs_of(news, INPUT_KEYS), **info, **kept})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from skyplan.clouds.sim import ledger

        row = ledger.get(props.get("ledger"), id_) if props.get("ledger") else None
        if row is None or row["state"] == ledger.DELETED:
            return ReadResult(id_="", outs={})  # gone: refresh drops it
        # A preempted node stays, like a reclaimed spot VM that is stopped rather
        # than deleted: its sandbox (and logs) go when the stack is destroyed.
        return ReadResult(id_=id_, outs={**props, "state": row["state"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from skyplan.clouds.sim import ledger

        root = props.get("root")
        if root:
            runner.remove(root)
        if props.get("ledger"):
            ledger.record_delete(props["ledger"], props.get("ledger_id") or id_)


class SimNode(Resource, module="skyplan", name="SimNode"):
    """One node of a simulated cluster on a simulated cloud."""

    sandbox: pulumi.Output[str]
    pid: pulumi.Output[int]
    pgid: pulumi.Output[int]
    logs: pulumi.Output[dict]
    status_file: pulumi.Output[str]
    port: pulumi.Output[Optional[int]]
    ledger_id: pulumi.Output[str]
    created_at: pulumi.Output[float]
    preempt_at: pulumi.Output[Optional[float]]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(SimNodeProvider(), name, {**props, **{k: None for k in OUTPUT_KEYS}}, opts)


def sim_props(request: ProvisionRequest, rank: int, root: Path, ledger_db: Path) -> dict[str, Any]:
    if not request.scenario:
        from skyplan.errors import InputError

        raise InputError("the sim cloud needs a scenario file (--simulate FILE or SKYPLAN_SIMULATE)")
    return {
        **node_props(request, rank, root),
        "ledger": str(ledger_db.absolute()),
        "scenario": os.path.abspath(request.scenario),
        "cloud": request.cloud,
        "region": request.region,
        "zone": request.zone,
        "instance_type": request.instance_type,
        "use_spot": bool(request.use_spot),
        "accelerators": {k: float(v) for k, v in request.accelerators.items()},
    }
