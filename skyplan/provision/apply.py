"""The engine room of a launch: preflight, the failover loop over real Pulumi
stacks, the journal and the cluster row.

Callers use ``skyplan.provision.launch`` (``launch()`` / ``down()``), which runs
an :class:`Applier` per call. This module wires the pure failover loop
(``failover.py``) to a stack driver (any ``protocol.Driver``), the clouds'
classifiers and the state database. It never prints: every step is reported
through ``emit`` as a typed event (``events.py``, which also documents the JSON
lines ``apply --json`` writes).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from skyplan import failpoints
from skyplan.clouds import registry
from skyplan.clouds.base import ProvisionRequest
from skyplan.errors import (
    CleanupError,
    Classification,
    InputError,
    Kind,
    PreflightError,
    ProvisionFailed,
    Scope,
)
from skyplan.planner.candidates import Candidate
from skyplan.planner.plan import Plan
from skyplan.provision.events import AttemptDone, EventSink, Launching, Preflight, attempt_json
from skyplan.provision.failover import Attempt, AttemptResult, Blocklist, Outcome, Policy, run_failover
from skyplan.provision import progress, reap
from skyplan.provision.protocol import Driver, InterruptedOp
from skyplan.spec.parse import CLUSTER_NAME_RULE, is_cluster_name, suggest_cluster_name
from skyplan.state import StateDB, cluster_lock

if TYPE_CHECKING:
    from skyplan.clouds.base import LogSource

DEFAULT_TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True)
class LaunchResult:
    """How a launch ended (a failed one raises instead; see ``launch.py``).

    ``status``: UP, or ALREADY_UP when the cluster was up with the same task.
    ``placement`` is the candidate that came up, ``stack`` its stack and
    ``outputs`` that stack's outputs. ``attempts`` is the failover history and
    ``stacks`` every stack this launch created, in order (the failed ones are
    destroyed and removed). ``simulated``: the simulator stood in for the cloud.
    ``action``: what the apply did to the cluster (``converge``): ``create``,
    ``none`` (ALREADY_UP), ``rerun`` (the task re-ran on the same nodes) or
    ``replace`` (a new placement, then the old one destroyed); ``changes`` the
    task's changed fields.
    """

    status: str
    cluster: str
    placement: Candidate | None
    stack: str | None
    outputs: dict
    attempts: tuple[Attempt, ...]
    stacks: tuple[str, ...] = ()
    simulated: bool = False
    action: str = "create"
    changes: tuple[Any, ...] = ()

    def summary(self, *, task: dict[str, Any] | None = None, exit_code: int = 0) -> dict[str, Any]:
        """The ``summary`` JSON line (``events.summary_json``), with the task outcome
        (``outcome.TaskOutcome.to_json``) and the exit code the CLI ends with."""
        from skyplan.provision.events import summary_json

        return summary_json(status="UP" if self.status in ("UP", "ALREADY_UP") else self.status,
                            cluster=self.cluster, placement=self.placement, stack=self.stack,
                            attempts=[attempt_json(a) for a in self.attempts], task=task, exit_code=exit_code,
                            action=self.action)

    def log_source(self) -> LogSource | None:
        """The task's output, when the cloud that ran it can read it from here."""
        if self.placement is None or registry.find(self.placement.cloud) is None:
            return None
        return registry.runner(self.placement.cloud, self.simulated).log_source(self.outputs)


#: The name before ``launch.py`` existed.
ApplyResult = LaunchResult


def default_cluster_name(plan: Plan) -> str:
    """The task's name, which the loader has checked is a valid cluster name
    ("sp" for a task without one). A name that is not valid (a task built in
    code, or a plan file written before names were checked) is refused with a
    suggestion, never rewritten: the cluster must be the one the user names."""
    name = plan.task.name
    if name is None:
        return "sp"
    if not is_cluster_name(name):
        better = suggest_cluster_name(name)
        raise InputError(
            f"the task's name '{name}' is not a valid cluster name ({CLUSTER_NAME_RULE})",
            hint=(f"rename the task to '{better}', or " if better else "rename the task, or ")
            + "give the cluster a name with --cluster/-c",
        )
    return name


def valid_cluster_name(name: str) -> str:
    if not is_cluster_name(name):
        better = suggest_cluster_name(name)
        raise InputError(
            f"invalid cluster name '{name}'",
            hint=f"use {CLUSTER_NAME_RULE}" + (f", e.g. '{better}'" if better and better != name else ""),
        )
    return name


def stack_name(cluster: str, cand: Candidate, number: int) -> str:
    from skyplan.provision.names import stack_name as _name

    return _name(cluster, cand.cloud, cand.region, cand.zone, cand.instance_type, cand.use_spot, number)


def resolve_interrupted(op: InterruptedOp) -> bool:
    """Clouds that declare ``proves_interrupted`` (those that run here) can prove an
    interrupted create left nothing behind; each resolver checks the resource
    type and declines others. Real clouds cannot, so their interrupted creates
    surface as a CleanupError."""
    return reap.resolve_interrupted(op)


def quota_families(c: Candidate) -> frozenset[str]:
    """The quota families ``c`` draws on, as its cloud knows them (for family blocks)."""
    cloud = registry.find(c.cloud)
    return cloud.quota_families(c.instance_type, dict(c.accelerators)) if cloud is not None else frozenset()


def attempt_event(a: Attempt) -> dict[str, Any]:
    """The ``attempt`` JSON line of one attempt (``events.AttemptDone.to_json``)."""
    return attempt_json(a)


def task_workdir(plan: Plan) -> str | None:
    """The task's workdir as an absolute path: relative to the task file it came
    from (else the current directory), ``~`` expanded."""
    workdir = plan.task.workdir
    if not workdir:
        return None
    base = os.path.dirname(plan.source) if plan.source else os.getcwd()
    return os.path.abspath(os.path.join(base, os.path.expanduser(workdir)))


def task_file_mounts(plan: Plan) -> tuple[dict[str, str], list[str]]:
    """The task's ``file_mounts`` with a local source, as destination -> absolute
    source path (relative to the task file, ``~`` expanded, like the workdir), and
    the destinations of the others (URLs, and named mounts in COPY mode), which a
    node on this machine cannot reach. Buckets (``{name, mode: MOUNT}``) are
    neither: ``skyplan.clouds.buckets``."""
    from skyplan.clouds.buckets import is_bucket
    from skyplan.spec.known import is_url

    base = os.path.dirname(plan.source) if plan.source else os.getcwd()
    local: dict[str, str] = {}
    remote: list[str] = []
    for m in plan.task.file_mounts:
        if is_bucket(m):
            continue
        if m.source is not None and not is_url(m.source):
            local[m.dst] = os.path.abspath(os.path.join(base, os.path.expanduser(m.source)))
        else:
            remote.append(m.dst)
    return local, remote


def request_for(plan: Plan, cand: Candidate, cluster: str, stack: str, scenario: str | None) -> ProvisionRequest:
    """The provision request for one candidate. Disk, ports and labels are the
    candidate's own (from the any_of/ordered entry it came from), never the
    first entry's. Secret values go in ``secrets`` only (``launch`` has made sure
    every one is given)."""
    from skyplan.clouds.base import SecretValues
    from skyplan.clouds.buckets import task_buckets
    from skyplan.spec.secrets import revealed

    task = plan.task
    workdir = task_workdir(plan)
    return ProvisionRequest(
        cluster=cluster,
        stack=stack,
        cloud=cand.cloud,
        region=cand.region,
        zone=cand.zone,
        instance_type=cand.instance_type,
        use_spot=cand.use_spot,
        num_nodes=max(1, int(task.num_nodes or 1)),
        accelerators=dict(cand.accelerators),
        disk_size=cand.disk_size,
        ports=tuple(cand.ports),
        labels=dict(cand.labels),
        envs=task_envs(task, cand),
        workdir=workdir,
        file_mounts=task_file_mounts(plan)[0],
        buckets=tuple(b.to_json() for b in task_buckets(task)),
        setup=task.setup,
        run=task.run,
        scenario=os.path.abspath(scenario) if scenario else None,
        secrets=SecretValues(revealed(task)),
        **_entry_asks(plan, cand),
    )


def task_envs(task: Any, cand: Candidate) -> dict[str, str]:
    """The task's envs, and ``SKYPLAN_PORT`` (its first declared port) when the
    candidate declares ports: the port a service's replica listens on, on every
    cloud. Clouds whose nodes share this machine give a free loopback port
    instead, when the node starts (``skyplan.clouds.local.provider.node_props``)."""
    envs = dict(task.envs)
    if cand.ports:
        envs["SKYPLAN_PORT"] = str(cand.ports[0])
    return envs


def _entry_asks(plan: Plan, cand: Candidate) -> dict[str, Any]:
    """The cpus, memory and restart budgets of the request entry ``cand`` came from
    (an ordered entry's own; else the first entry that states them)."""
    reqs = plan.task.resources.candidates
    idx = cand.preference[0] if 0 <= cand.preference[0] < len(reqs) else 0
    first = reqs[idx]
    budgets = next((r for r in reqs if r.max_restarts_on_errors is not None or r.backoff_limit is not None), first)
    return {
        "cpus": first.cpus.value if first.cpus is not None else None,
        "memory_gib": first.memory.value if first.memory is not None else None,
        "backoff_limit": budgets.backoff_limit,
        "max_restarts_on_errors": budgets.max_restarts_on_errors,
    }


def preflight(candidates: tuple[Candidate, ...], *, simulate: str | None, emit: EventSink) -> tuple[Candidate, ...]:
    """Drop the candidates of clouds that cannot be reached, with one event each."""
    clouds = list(dict.fromkeys(c.cloud for c in candidates))
    usable = set()
    for name in clouds:
        if simulate and registry.is_simulatable(name):
            usable.add(name)
            continue
        res = registry.get(name).preflight()
        emit(Preflight(name, res.ok, res.reason, res.fix))
        if res.ok:
            usable.add(name)
    kept = tuple(c for c in candidates if c.cloud in usable)
    if not kept:
        raise PreflightError(
            "no cloud among the plan's candidates is usable here (" + ", ".join(clouds) + ")",
            hint="set up credentials (see `skyplan doctor`), run on this machine with `cloud: local`, "
            "or rehearse the failover with `--simulate SCENARIO.yaml`",
        )
    return kept


def _ignore(event: Any) -> None:
    pass


class Applier:
    """Runs one launch: holds the driver, the state and the event sink.

    One Applier per launch; several may run at once in threads for distinct
    clusters (each has its own state connection unless one is passed in, and
    the driver is safe to share)."""

    def __init__(self, *, backend: str | None = None, simulate: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, policy: Policy = Policy(), emit: EventSink = _ignore,
                 driver: Driver | None = None, db: StateDB | None = None,
                 sleep: Callable[[float], None] = time.sleep, fresh: bool = False, replace: bool = False,
                 rerun: bool = False) -> None:
        if simulate and not os.path.exists(simulate):
            raise InputError(f"scenario file not found: {simulate}")
        if simulate:
            from skyplan.clouds.sim.scenario import load_scenario

            load_scenario(simulate)  # fail early, before any stack exists
        self.simulate = simulate
        self.timeout_s = timeout_s
        self.policy = policy
        self.emit = emit
        #: Receives the progress events (``progress.py``): ``launch`` sets it from
        #: ``LaunchOptions.on_progress``.
        self.progress: progress.ProgressSink = progress.ignore
        self.sleep = sleep
        #: Ignore what earlier launches learnt about capacity (``--fresh``).
        self.fresh = fresh
        #: A cluster that is up may be replaced (confirmed, or ``--yes``); else refused.
        self.replace = replace
        #: Re-run the task even if nothing changed (``--rerun``).
        self.rerun = rerun
        #: How long an attempt on a cloud whose nodes are reached over SSH waits for
        #: them to answer and boot (``nodes.DEFAULT_WAIT_S``).
        from skyplan.provision.nodes import DEFAULT_WAIT_S

        self.node_wait_s = DEFAULT_WAIT_S
        self._offset = 0  # attempt numbers already used by the cluster's live stack (a replacement)
        self._workdir_sha: str | None = None
        self._revision: str | None = None
        self._driver = driver
        self._backend_arg = backend
        self.db = db or StateDB()
        self._made: list[str] = []  # stacks created by the current apply()
        self._journal: dict[str, int] = {}  # their attempt ids
        self._placed: dict[str, Candidate] = {}  # their candidates
        self._candidates: tuple[Candidate, ...] = ()  # the current failover's, for the progress bound
        self._learned: list[Attempt] = []  # the current apply()'s attempts, for the capacity memory

    @property
    def driver(self) -> Driver:
        """Created on first use, so commands that fail early never need the engine."""
        if self._driver is None:
            from skyplan.provision import housekeeping
            from skyplan.provision.driver import StackDriver

            self._driver = StackDriver(self._backend_arg)
            housekeeping.note_run_and_rotate()  # one run: keep the engine logs of the last 20
        return self._driver

    @property
    def backend(self) -> str:
        return self.driver.backend_url

    # --- recovery -------------------------------------------------------------

    def recover(self, cluster: str, listed: list[str] | None = None, keep: tuple[str, ...] = ()) -> None:
        """Destroy every stack of ``cluster`` an earlier run left on the backend, whatever
        the journal says (``reap.recover``; ``listed``: the backend's stacks of the cluster),
        but those in ``keep`` (the live stack of a cluster being replaced)."""
        reap.recover(self.driver, self.db, cluster, self.emit, listed, keep=keep)

    def _check_backend(self, cluster: str) -> list[str]:
        """One cheap call before any stack exists: an unreachable backend is a
        configuration error, not a failed (and possibly leaking) attempt. Returns
        the cluster's stacks on the backend, for the recovery."""
        from skyplan.errors import EngineError
        from skyplan.provision.names import cluster_stack_prefix

        try:
            return self.driver.list_stacks(cluster_stack_prefix(cluster))
        except EngineError as exc:
            raise InputError(
                f"cannot use the Pulumi backend {self.backend}: {exc.message}",
                hint="check --backend / SKYPLAN_BACKEND and the backend's credentials; nothing was created",
            ) from None

    # --- one attempt ----------------------------------------------------------

    def _attempt(self, plan: Plan, cluster: str, cand: Candidate, number: int) -> AttemptResult:
        from skyplan.provision import converging

        stack = stack_name(cluster, cand, number + self._offset)
        req = dataclasses.replace(request_for(plan, cand, cluster, stack, self.simulate), revision=self._revision)
        cloud = registry.get(cand.cloud)
        runner = registry.runner(cand.cloud, bool(self.simulate))
        over_ssh = runner.capabilities.nodes_over_ssh
        if over_ssh:  # its nodes accept the cluster's own key (made on first use)
            from skyplan.provision import nodes

            req = nodes.with_key(req)
        # The stack also records what the cluster runs, for a machine that shares the backend.
        program = converging.with_record(runner.program(req), converging.record_for(
            plan, cluster, cand, self.simulate, self._workdir_sha))
        aid = self.db.start_attempt(cluster, number + self._offset, stack, self.backend, cand)  # journal first
        self._made.append(stack)
        self._journal[stack] = aid
        self._placed[stack] = cand
        failpoints.hit("attempt.after-journal")
        self.emit(Launching(number, cand, stack))
        phases = progress.AttemptPhases(self.progress, number, self._bound(cand, number), cand, stack,
                                        then=reap.up_events())
        phases.start()
        try:
            res = self.driver.up(stack, program, timeout_s=self.timeout_s, on_event=phases)
        except BaseException:
            # Interrupted (Ctrl-C) or the driver itself failed: never leave the stack behind.
            self._cleanup(aid, stack, stopping=cand)
            raise
        failpoints.hit("attempt.after-up")
        cls: Classification | None = None
        if res.ok and over_ssh:
            # Up only once its task runs: wait for the nodes over SSH, sync, start.
            cls = self._start_nodes(req, dict(res.outputs), phases)
        if res.ok and cls is None:
            self.db.end_attempt(aid, "up")
            failpoints.hit("attempt.after-record-up")
            return AttemptResult(True, None, {"stack": stack, "outputs": dict(res.outputs)})
        if cls is not None:
            pass
        elif res.program_error:
            # The program itself raised: every other placement runs the same program.
            cls = Classification(Kind.INVALID, Scope.ALL, "ProgramError", res.error or "the Pulumi program failed")
        elif res.timed_out:
            cls = Classification(Kind.TIMEOUT, Scope.ZONE, "timeout",
                                 f"no answer within {self.timeout_s:g}s (attempt timeout)")
        else:
            cls = cloud.classify(res.error or "")
        self.db.end_attempt(aid, "failed", kind=cls.kind.value, scope=cls.scope.value, code=cls.code,
                            message=cls.message)
        failpoints.hit("cleanup.before-destroy")
        phases.cleaning_up()
        self._cleanup(aid, stack, point="cleanup.after-destroy", on_event=phases)
        return AttemptResult(False, cls, {"stack": stack})

    def _start_nodes(self, req: ProvisionRequest, outputs: dict, phases: progress.AttemptPhases) -> Classification | None:
        """``nodes.start_task`` for an attempt that is up; None when the task was
        started, else how failover reads the failure (the caller cleans up)."""
        from skyplan.provision import nodes
        from skyplan.runtime.protocol import RuntimeFailure

        try:
            nodes.start_task(req, outputs, on_phase=phases.enter, wait_s=self.node_wait_s, sleep=self.sleep)
        except RuntimeFailure as exc:
            return nodes.classify(exc)
        return None

    def _cleanup(self, aid: int, stack: str, point: str | None = None, on_event: Any = None,
                  stopping: Candidate | bool | None = None) -> None:
        """Destroy, check and remove the attempt's stack, then remove what the clouds
        that can see it still hold for the stack (a provider that died mid-create
        leaves a resource Pulumi never recorded). ``stopping``: the launch is being
        stopped (an interrupt, an unexpected error; the stack's candidate, or True):
        the cleanup is reported as ``progress.Cleanup`` events."""
        report = stopping is not None and stopping is not False
        cand = stopping if isinstance(stopping, Candidate) else None
        # Called from an except block: the exception being handled says why.
        reason = "interrupted" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "error"
        if report:
            self.progress(progress.Cleanup(stack, cand, reason))
        try:
            self.driver.destroy_and_remove(stack, resolve_interrupted=resolve_interrupted, on_event=on_event)
            if point is not None:
                failpoints.hit(point)
            reap.release_leftovers([stack])
        except CleanupError as exc:
            self.db.set_attempt_status(aid, "leaked")
            if report:
                self.progress(progress.Cleanup(stack, cand, reason, done=True, ok=False, error=exc.message))
            raise
        self.db.set_attempt_status(aid, "cleaned")
        if report:
            self.progress(progress.Cleanup(stack, cand, reason, done=True))

    def _release_unfinished(self, cluster: str) -> None:
        """After an interrupt or an unexpected error: destroy the stacks of this run's
        attempts that are neither cleaned nor known leaked (one that came up while
        the cluster never did, one whose cleanup was cut short). A failed cleanup
        is left to the next run's recovery, which lists the backend."""
        status = {a.id: a.status for a in self.db.attempts(cluster)}
        for stack, aid in self._journal.items():
            if status.get(aid) not in ("cleaned", "leaked"):
                try:
                    self._cleanup(aid, stack, stopping=self._placed.get(stack, True))
                except CleanupError:
                    pass

    def _bound(self, cand: Candidate, number: int) -> int:
        """``progress.Phase.bound``: the most attempts this launch can still make, attempt
        ``number`` on ``cand`` included (the candidates from ``cand`` on that no block
        made so far covers). 0 (unknown) when nobody listens to progress."""
        if self.progress is progress.ignore:
            return 0
        try:
            i = self._candidates.index(cand)
        except ValueError:
            return 0
        blocks = Blocklist(tuple(a.block for a in self._learned if a.block is not None))
        return number - 1 + sum(1 for c in self._candidates[i:] if blocks.covers(c, quota_families(c)) is None)

    def _attempt_done(self, a: Attempt) -> None:
        """The one place each finished attempt (up, or failed and cleaned up) is
        reported: the event, and anything that learns from attempts (the capacity
        memory keeps the capacity and quota failures, written once when failover ends;
        ``fresh`` only stops reading it, failures are still worth remembering)."""
        self._learned.append(a)
        self.emit(AttemptDone(a))

    def _remember(self) -> None:
        """Write this apply's capacity and quota failures to the capacity memory beside
        the backend's state. A memory is a hint: failing to write it never fails the apply."""
        from datetime import datetime, timezone

        from skyplan.errors import SkyplanError
        from skyplan.provision import memory

        learned, self._learned = self._learned, []
        try:
            memory.remember(memory.store_for(self.backend, self.driver), learned, datetime.now(timezone.utc))
        except (SkyplanError, OSError):
            pass

    # --- the whole launch ------------------------------------------------------

    def _converge(self, plan: Plan, cluster: str, existing: Any) -> LaunchResult | None:
        """A cluster that is up: nothing to do, re-run in place (both return the
        result), or a replacement (returns None: the caller launches; refused
        unless ``replace``). See ``converge`` and ``converging``."""
        from skyplan.provision import converging
        from skyplan.provision.converge import InPlace, NoChange

        action = converging.assess(plan, existing, simulate=self.simulate, rerun=self.rerun,
                                   workdir_sha256=self._workdir_sha)
        if not isinstance(action, NoChange) or converging.stale_stacks(self.db, cluster, existing.stack):
            converging.retire_stale(self, cluster, existing)  # a replacement cut short: finish it first
        if isinstance(action, NoChange):
            simulated = bool(existing.simulate) and registry.is_simulatable(existing.cloud)
            # The placement as planned (vCPUs, memory, accelerators), not just where it is.
            placed = converging.placed_candidate(plan, existing) or _cand_from_row(existing)
            return LaunchResult("ALREADY_UP", cluster, placed, existing.stack, existing.outputs,
                                (), simulated=simulated, action="none")
        if isinstance(action, InPlace):
            return converging.rerun(self, plan, cluster, existing, action, self._workdir_sha)
        if not self.replace:
            raise converging.refuse_replacement(cluster, action)
        self._changes = action.changes
        return None

    def apply(self, plan: Plan, cluster: str) -> LaunchResult:
        from skyplan.provision import converging

        valid_cluster_name(cluster)
        self._made = []
        self._changes: tuple[Any, ...] = ()
        with cluster_lock(cluster, "apply"):
            self._workdir_sha = converging.task_workdir_digest(plan)
            self._revision = converging.revision(plan, self._workdir_sha)
            existing = self.db.get_cluster(cluster)
            candidates = listed = None
            if existing is None:
                # No row here: another machine sharing the backend (a CI job) may have
                # launched it. Its stack's record makes it this cluster's row.
                candidates = preflight(plan.candidates, simulate=self.simulate, emit=self.emit)
                listed = self._check_backend(cluster)
                existing = converging.adopt(self, cluster, listed) if listed and not self.db.attempts(cluster) \
                    else None
            replacing = existing if existing is not None and existing.status == "UP" else None
            if replacing is not None:
                done = self._converge(plan, cluster, replacing)
                if done is not None:
                    return done
            if candidates is None:
                candidates = preflight(plan.candidates, simulate=self.simulate, emit=self.emit)
            if listed is None or replacing is not None:
                listed = self._check_backend(cluster)
            keep = (replacing.stack,) if replacing is not None else ()
            if replacing is not None:  # the new stacks' names must not meet the live one's
                self._offset = max([a.number for a in self.db.attempts(cluster)]
                                   + [converging.attempt_number(s) for s in listed], default=0)
            self.recover(cluster, listed, keep=keep)
            if replacing is None:
                self.db.upsert_cluster(cluster, status="PROVISIONING", backend=self.backend,
                                       simulate=self.simulate, task_sha256=plan.task_sha256,
                                       task=plan.to_json()["task"])
            # A replacement leaves the row UP on the old stack until the new one is up.
            try:
                self._candidates = tuple(candidates)
                outcome: Outcome = run_failover(
                    candidates,
                    lambda c, n: self._attempt(plan, cluster, c, n),
                    policy=self.policy,
                    sleep=self.sleep,
                    on_attempt=self._attempt_done,
                    families=quota_families,
                )
            except BaseException:
                # Interrupted, or a cleanup failed: the cluster is not up (a cluster
                # being replaced still is, on its old stack), and `skyplan status`
                # must not show it provisioning forever; nor may a stack of it keep running.
                if replacing is None:
                    self.db.upsert_cluster(cluster, status="FAILED")
                self._release_unfinished(cluster)
                raise
            finally:
                self._remember()
            if outcome.chosen is None:
                hint = _failure_hint(outcome)
                if replacing is None:
                    self.db.upsert_cluster(cluster, status="FAILED")
                else:
                    hint = f"cluster '{cluster}' still runs its old placement, untouched; {hint}"
                raise ProvisionFailed(_failure_message(outcome, len(candidates)), list(outcome.attempts),
                                      hint=hint)
            last = outcome.attempts[-1]
            c = outcome.chosen
            if replacing is not None:
                failpoints.hit("replace.after-up")  # both placements up; the row still names the old one
            self.db.upsert_cluster(cluster, status="UP", cloud=c.cloud, region=c.region, zone=c.zone,
                                   instance_type=c.instance_type, use_spot=c.use_spot, hourly_cost=c.hourly_cost,
                                   stack=last.detail.get("stack"), outputs=last.detail.get("outputs", {}),
                                   backend=self.backend, simulate=self.simulate, task_sha256=plan.task_sha256,
                                   task=plan.to_json()["task"], workdir_sha256=self._workdir_sha)
            if replacing is not None:
                failpoints.hit("replace.after-switch")  # the row names the new stack; the old one still runs
                converging.retire(self, cluster, [replacing.stack])
            return LaunchResult("UP", cluster, c, last.detail.get("stack"), last.detail.get("outputs", {}),
                                outcome.attempts, stacks=tuple(self._made),
                                simulated=bool(self.simulate) and registry.is_simulatable(c.cloud),
                                action="replace" if replacing is not None else "create", changes=self._changes)

    def down(self, cluster: str) -> list[str]:
        """Destroy every stack of ``cluster`` on the backend and what the clouds that
        can prove it hold for it, check that nothing is left, and forget the
        cluster (``reap.down``). Returns the stacks destroyed."""
        with cluster_lock(cluster, "down") as lock:
            stacks = reap.down(self.driver, self.db, cluster)
            if stacks is None:
                from skyplan.errors import NotFoundError

                raise NotFoundError(f"no cluster named '{cluster}'", hint="see `skyplan status`")
            lock.forget()  # the cluster is gone: so is its lock file
            return stacks


def _cand_from_row(row) -> Candidate:
    return Candidate(rank=1, cloud=row.cloud, region=row.region, zone=row.zone, instance_type=row.instance_type,
                     use_spot=row.use_spot, vcpus=0.0, memory_gib=0.0, accelerators=(),
                     hourly_price=row.hourly_cost or 0.0, hourly_cost=row.hourly_cost or 0.0)


def _failure_message(outcome: Outcome, n: int) -> str:
    if outcome.stopped_by is not None:
        a = outcome.stopped_by
        # The provider's text is the attempt's (its event and the log carry it whole): said once, not here too.
        code = a.classification.code if a.classification else "invalid"
        return (f"stopped after attempt {a.number}: {registry.display(a.candidate.cloud)} rejected the request "
                f"itself as invalid (code {code}, in {a.candidate.location}), so no other placement can do better")
    return (f"failed to provision on all {n} candidates ({len(outcome.attempts)} attempts, "
            f"{outcome.skipped} skipped by blocks)")


def _failure_hint(outcome: Outcome) -> str:
    if outcome.stopped_by is not None:
        return "fix the request (instance type, image, disk, ports) and apply again"
    kinds = {a.classification.kind for a in outcome.attempts if a.classification}
    if Kind.QUOTA in kinds:
        return "request a quota increase, or widen the request (more regions, clouds or accelerators)"
    return "widen the request (more regions, clouds or accelerators), try spot/on-demand, or retry later"
