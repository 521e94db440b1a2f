"""Converging apply, the acting half: observe a cluster, assess a plan against it,
re-run a task in place, retire a replaced stack, adopt a cluster from the backend.

``converge.classify`` decides; this module gathers what it needs (the cluster's
row, or the record its stack exports, the workdir's digest, what the cluster's
cloud can do) and carries out the two actions that are not a plain launch:

* **re-run in place** (``rerun``): ``pulumi up`` on the cluster's own stack with
  the new task. Clouds whose nodes are sandboxes here (capability
  ``reruns_in_place``) update a node in place: the runner stops the task,
  re-syncs the workdir and starts setup and run again. On VMs reached over SSH
  (``nodes_over_ssh``) the same is done through the node runtime after the ``up``
  (``nodes.start_task``). The cluster is marked
  PROVISIONING first (journal before acting): a crash mid-update leaves a
  cluster that is not UP, which the next apply recovers and launches afresh.
* **replace**: ``Applier.apply`` launches the new placement while the old one
  keeps running (the row stays UP on the old stack until the new one is up),
  then switches the row and retires the old stack (``retire``). A stack of the
  cluster that came up but is not the row's (a replacement cut short on either
  side of the switch) is *stale*, and every later apply retires it first
  (``retire_stale``); ``down`` destroys every stack anyway.

Nothing here prints; every function runs under the cluster's lock (the caller's).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from skyplan import failpoints
from skyplan.clouds import registry
from skyplan.errors import ProvisionFailed, UsageError
from skyplan.provision import converge
from skyplan.provision.converge import Action, Create, InPlace, NoChange, Placement, Replace
from skyplan.spec import task_sha256 as _task_sha256
from skyplan.spec import task_to_dict

if TYPE_CHECKING:
    from skyplan.planner.candidates import Candidate
    from skyplan.planner.plan import Plan
    from skyplan.provision.apply import Applier, LaunchResult
    from skyplan.state.db import ClusterRow, StateDB

#: Attempt statuses whose stack may hold a running placement.
LIVE = ("up", "retiring")


def row_placement(row: ClusterRow) -> Placement:
    nodes = int((row.task or {}).get("num_nodes") or 1)
    return Placement(row.cloud or "", row.region or "", row.zone, row.instance_type or "", bool(row.use_spot),
                     nodes, row.hourly_cost, bool(row.simulate) and registry.is_simulatable(row.cloud))


def candidate_placement(c: Candidate, num_nodes: int, simulate: str | None) -> Placement:
    return Placement(c.cloud, c.region, c.zone, c.instance_type, c.use_spot, num_nodes, c.hourly_cost,
                     bool(simulate) and registry.is_simulatable(c.cloud))


def reruns_in_place(row: ClusterRow) -> bool:
    """Can the cloud that really runs this cluster re-run a task on its nodes?"""
    cloud = registry.find(row.cloud)
    return cloud is not None and registry.runner(row.cloud, bool(row.simulate)).capabilities.reruns_in_place


#: Why a cluster of VMs reached over SSH is replaced rather than re-run from this machine.
NO_KEY_REASON = ("its nodes accept only the SSH key made on the machine that launched it, which is not on this "
                 "one: the cluster is replaced instead")


def reachable_from_here(row: ClusterRow) -> bool:
    """False for a cluster of VMs reached over SSH whose key pair is not on this machine
    (adopted from a shared backend, a CI runner's fresh home): re-running in place would
    need its nodes, and authorising a new key would rebuild them anyway."""
    if not registry.runner(row.cloud, bool(row.simulate)).capabilities.nodes_over_ssh:
        return True
    from skyplan.runtime import keys

    return keys.public_key(row.name) is not None


def matching_candidate(plan: Plan, row: ClusterRow) -> Candidate | None:
    """The plan's candidate for the placement the cluster is on (disk, ports and
    labels come from it), if the plan still has it."""
    for c in plan.candidates:
        if (c.cloud, c.region, c.zone, c.instance_type, c.use_spot) == (
                row.cloud, row.region, row.zone, row.instance_type, bool(row.use_spot)):
            return c
    return None


def placed_candidate(plan: Plan, row: ClusterRow) -> Candidate | None:
    """The candidate the cluster runs on, with its hardware: the plan's for that
    placement, else the one its stack recorded (``converge.stack_record``)."""
    found = matching_candidate(plan, row)
    if found is not None:
        return found
    rec = converge.read_record(row.outputs or {})
    if rec is not None:
        from skyplan.planner.candidates import Candidate

        try:
            return Candidate.from_json(rec["placement"])
        except (KeyError, TypeError, ValueError):
            return None
    return None


def last_task(row: ClusterRow) -> tuple[str | None, int | None]:
    """The state of the task the cluster last ran, from its nodes: ``(phase,
    returncode)`` as its log source reports them (``failed``, ``stopped``,
    ``lost``, ``done``, ``run`` ...), or ``(None, None)`` when it cannot be read
    from here (a cloud without a log source, nodes that do not answer)."""
    if registry.find(row.cloud) is None:
        return None, None
    try:
        source = registry.runner(row.cloud, bool(row.simulate)).log_source(row.outputs or {})
        status = source.status() if source is not None else None
    except Exception:  # noqa: BLE001 - unreadable is unknown: the comparison must not fail on it
        return None, None
    if not status:
        return None, None
    code = status.get("returncode")
    return status.get("phase"), code if isinstance(code, int) else None


def task_workdir_digest(plan: Plan) -> str | None:
    from skyplan.provision.apply import task_workdir

    return converge.workdir_digest(task_workdir(plan))


def assess(plan: Plan, row: ClusterRow | None, *, simulate: str | None, rerun: bool = False,
           workdir_sha256: str | None = None) -> Action:
    """What applying ``plan`` to the cluster in ``row`` would do. ``rerun``: re-run
    even when nothing changed (``apply --rerun``: a secret's value alone changed)."""
    nodes = max(1, int(plan.task.num_nodes or 1))
    new = candidate_placement(plan.chosen, nodes, simulate) if plan.candidates else None
    if row is None:
        return Create(new, "no such cluster")
    if row.status != "UP":
        return Create(new, f"the cluster is {row.status}")
    can_rerun = reruns_in_place(row)
    keyless = can_rerun and not reachable_from_here(row)
    can_rerun = can_rerun and not keyless
    action = converge.classify(row.task or {}, task_to_dict(plan.task), row_placement(row), new_placement=new,
                               old_workdir=row.workdir_sha256, new_workdir=workdir_sha256,
                               rerun_in_place=can_rerun)
    if isinstance(action, NoChange) and not keyless:  # read only when it decides: a VM's nodes are remote
        action = converge.rerun_if_tainted(action, *last_task(row), row_placement(row), new_placement=new,
                                           rerun_in_place=can_rerun)
    if isinstance(action, NoChange) and rerun:
        requested = converge.Change(converge.RERUN_REQUESTED, None, "requested (--rerun)")
        action = InPlace((requested,)) if can_rerun else \
            Replace((requested,), row_placement(row), new, converge.NO_RERUN_REASON)
    if keyless and isinstance(action, Replace) and action.reason == converge.NO_RERUN_REASON:
        action = dataclasses.replace(action, reason=NO_KEY_REASON)
    if isinstance(action, InPlace) and matching_candidate(plan, row) is None:
        action = Replace(action.changes, row_placement(row), new,
                         "the cluster's placement is no longer among the plan's candidates")
    return action


def revision(plan: Plan, workdir_sha256: str | None) -> str:
    """Changes whenever the task or its workdir's contents do: a node input, so that
    a workdir whose contents alone changed still re-runs the task."""
    import hashlib

    return hashlib.sha256(f"{plan.task_sha256}:{workdir_sha256 or ''}".encode()).hexdigest()[:16]


def record_for(plan: Plan, cluster: str, cand: Candidate, simulate: str | None,
               workdir_sha256: str | None) -> dict[str, Any]:
    return converge.stack_record(cluster, task_to_dict(plan.task), plan.task_sha256, workdir_sha256,
                                 cand.to_json(), max(1, int(plan.task.num_nodes or 1)), simulate)


def with_record(program: Callable[[], None], record: dict[str, Any]) -> Callable[[], None]:
    """The cloud's program, plus the cluster record as a stack output."""

    def run() -> None:
        program()
        import pulumi

        pulumi.export(converge.RECORD_OUTPUT, record)

    return run


# --- re-run in place ---------------------------------------------------------------------


def rerun(applier: Applier, plan: Plan, cluster: str, row: ClusterRow, action: InPlace,
          workdir_sha256: str | None) -> LaunchResult:
    """Update the cluster's stack with the new task (see the module docstring)."""
    from skyplan.provision.apply import LaunchResult, request_for

    cand = matching_candidate(plan, row)
    assert cand is not None  # assess() made it a replacement otherwise
    simulate = row.simulate  # the scenario the cluster was launched with, whatever this run passes
    rev = revision(plan, workdir_sha256)
    if converge.forced(action):  # same inputs (a task that failed, --rerun): a new revision re-runs it
        import uuid

        rev = f"{rev}.{uuid.uuid4().hex[:8]}"
    req = dataclasses.replace(request_for(plan, cand, cluster, row.stack, simulate), revision=rev)
    runner = registry.runner(cand.cloud, bool(simulate))
    over_ssh = runner.capabilities.nodes_over_ssh
    if over_ssh:  # the same key as the nodes were given
        from skyplan.provision import nodes

        req = nodes.with_key(req)
    program = runner.program(req)
    record = record_for(plan, cluster, cand, simulate, workdir_sha256)
    applier.db.upsert_cluster(cluster, status="PROVISIONING")  # journal first: see the module docstring
    failpoints.hit("rerun.after-journal")
    try:
        res = applier.driver.up(row.stack, with_record(program, record), timeout_s=applier.timeout_s)
    except BaseException:
        applier.db.upsert_cluster(cluster, status="FAILED")
        raise
    if not res.ok:
        applier.db.upsert_cluster(cluster, status="FAILED")
        raise ProvisionFailed(
            f"re-running the task on cluster '{cluster}' failed: {res.error}", [],
            hint=f"fix the task and apply again (the cluster is launched afresh), or `skyplan down {cluster}`")
    if over_ssh:
        # VMs reached over SSH: the runtime's sync stops the old task and replaces its
        # sandbox, then the new task starts on the same nodes.
        from skyplan.runtime.protocol import RuntimeFailure

        try:
            nodes.start_task(req, dict(res.outputs), wait_s=applier.node_wait_s, sleep=applier.sleep)
        except RuntimeFailure as exc:
            applier.db.upsert_cluster(cluster, status="FAILED")
            raise ProvisionFailed(
                f"re-running the task on cluster '{cluster}' failed: {exc}", [],
                hint=f"apply again (the cluster is launched afresh), or `skyplan down {cluster}`") from None
    applier.db.upsert_cluster(cluster, status="UP", task_sha256=plan.task_sha256, task=plan.to_json()["task"],
                              workdir_sha256=workdir_sha256, outputs=dict(res.outputs))
    simulated = bool(simulate) and registry.is_simulatable(cand.cloud)
    return LaunchResult("UP", cluster, cand, row.stack, dict(res.outputs), (), simulated=simulated,
                        action="rerun", changes=action.changes)


# --- replacing ---------------------------------------------------------------------------


def refuse_replacement(cluster: str, action: Replace) -> UsageError:
    return UsageError(
        f"cluster '{cluster}' is up, and applying would replace it ({action.reason})",
        hint=f"review the change with `skyplan plan TASK -c {cluster}`, then apply with --yes "
             "(or confirm on a terminal)")


def retire(applier: Applier, cluster: str, stacks: list[str]) -> None:
    """Destroy the stacks of ``cluster`` that are not its current one (a replaced
    placement), marking their journal rows as they go."""
    from skyplan.provision import reap

    rows = {a.stack: a for a in applier.db.attempts(cluster)}
    for stack in stacks:
        row = rows.get(stack)
        if row is not None:
            applier.db.set_attempt_status(row.id, "retiring")
        applier.driver.destroy_and_remove(stack, resolve_interrupted=reap.resolve_interrupted)
        reap.release_leftovers([stack])
        if row is not None:
            applier.db.set_attempt_status(row.id, "cleaned")


def stale_stacks(db: StateDB, cluster: str, current: str | None) -> list[str]:
    """Stacks the journal says came up for ``cluster`` that are not its current one."""
    return list(dict.fromkeys(a.stack for a in db.attempts(cluster) if a.status in LIVE and a.stack != current))


def retire_stale(applier: Applier, cluster: str, row: ClusterRow) -> None:
    """Finish a replacement cut short: retire the stale stacks the backend still holds
    (no engine call when the journal names none)."""
    stale = stale_stacks(applier.db, cluster, row.stack)
    if not stale:
        return
    from skyplan.provision.names import cluster_stack_prefix

    listed = set(applier.driver.list_stacks(cluster_stack_prefix(cluster)))
    for a in applier.db.attempts(cluster):
        if a.stack in stale and a.stack not in listed:
            applier.db.set_attempt_status(a.id, "cleaned")
    retire(applier, cluster, [s for s in stale if s in listed])


# --- a cluster another machine launched ----------------------------------------------------


def backend_row(driver: Any, cluster: str, listed: list[str]) -> tuple[ClusterRow, list[str]] | None:
    """The cluster as the backend records it: the newest stack of ``listed`` whose
    outputs hold a cluster record (``converge.stack_record``), and the other stacks.
    None when no stack holds one."""
    import time

    from skyplan.provision.names import is_attempt_stack
    from skyplan.state.db import ClusterRow

    for stack in sorted((s for s in listed if is_attempt_stack(s)), key=attempt_number, reverse=True):
        try:
            outputs = driver.outputs(stack)
        except Exception:  # noqa: BLE001 - an unreadable stack is not the cluster; recovery handles it
            continue
        rec = converge.read_record(outputs)
        if rec is None or rec.get("cluster") != cluster:
            continue
        p = rec["placement"]
        now = time.time()
        row = ClusterRow(
            name=cluster, status="UP", cloud=p.get("cloud"), region=p.get("region"), zone=p.get("zone"),
            instance_type=p.get("instance_type"), use_spot=bool(p.get("use_spot")),
            hourly_cost=p.get("hourly_cost"), stack=stack, backend=driver.backend_url, simulate=rec.get("simulate"),
            task_sha256=rec.get("task_sha256"), task=rec["task"], outputs=dict(outputs), created_at=now,
            updated_at=now, workdir_sha256=rec.get("workdir_sha256"))
        return row, [s for s in listed if s != stack]
    return None


def adopt(applier: Applier, cluster: str, listed: list[str]) -> ClusterRow | None:
    """A cluster this machine has no row (nor journal) for, that another machine launched on the
    same backend (a CI job with a fresh skyplan home): record it here as UP, so the
    apply converges instead of launching it twice. Other stacks of the cluster stay
    for the recovery (or retirement) to destroy."""
    found = backend_row(applier.driver, cluster, listed)
    if found is None:
        return None
    row, _ = found
    applier.db.upsert_cluster(cluster, status="UP", cloud=row.cloud, region=row.region, zone=row.zone,
                              instance_type=row.instance_type, use_spot=row.use_spot,
                              hourly_cost=row.hourly_cost, stack=row.stack, backend=row.backend,
                              simulate=row.simulate, task_sha256=row.task_sha256, task=row.task,
                              workdir_sha256=row.workdir_sha256, outputs=row.outputs)
    return applier.db.get_cluster(cluster)


def attempt_number(stack: str) -> int:
    try:
        return int(stack.split(".", 2)[1][1:])
    except (IndexError, ValueError):
        return 0


def observe(cluster: str, *, backend: str | None = None, db: StateDB | None = None) -> ClusterRow | None:
    """The cluster as this machine knows it (its row), else as the backend records
    it (read-only: ``plan -c`` on a CI runner with a fresh home). The backend is
    asked only when there is no row, and only if the engine is installed."""
    from skyplan.errors import EngineError
    from skyplan.state import StateDB

    row = (db or StateDB()).get_cluster(cluster)
    if row is not None:
        return row
    try:
        from skyplan.provision.driver import StackDriver
        from skyplan.provision.names import cluster_stack_prefix

        driver = StackDriver(backend)
        found = backend_row(driver, cluster, driver.list_stacks(cluster_stack_prefix(cluster)))
    except EngineError:
        return None
    return found[0] if found else None


def adopted_backend(backend: str | None, db: StateDB | None, cluster: str) -> str | None:
    """The backend a launch of ``cluster`` works on: the one asked for, else the one
    its row says it was launched on (a cluster is converged where it lives)."""
    from skyplan.config import setting

    if backend or setting("backend"):
        return backend
    from skyplan.state import StateDB

    row = (db or StateDB()).get_cluster(cluster)
    return row.backend if row is not None and row.status == "UP" else None
