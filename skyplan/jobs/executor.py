"""The Executor: how the jobs controller acts on the world.

The controller (``controller.py``) decides; an Executor does. Everything that
touches a cloud, a node or a log file goes through this Protocol, so the
controller's decisions are tested with a fake (``skyplan.testing.jobs_fakes``)
and run for real over ``skyplan.provision.launch`` and the node runtime.

This module holds the Protocol and the small values it exchanges (``Check``,
``CloudSays``, ``RunLog``), and the real implementation, ``ProvisionExecutor``:
every launch goes through ``skyplan.provision.launch`` (the same planner,
failover loop, journal and Pulumi stacks as ``apply``), every teardown through
``launch.down`` (destroyed, checked empty, removed); a running task is watched
through its cloud's log source (sandboxes here, or the node runtime for VMs);
whether the cloud still holds a node is the cloud's ``node_state`` hook
(``CloudBase``: the sim reads its ledger, the local cloud its sandbox
processes), or, for a cloud that declares ``instance_state`` (AWS, GCP, Azure),
its stack refreshed and read (``skyplan.clouds.instancestate``); whatever cannot
tell answers "unknown" and the grace period decides.

Every run of a managed task gets ``run_env``'s variables (``SKYPLAN_TASK_ID``,
the same across recoveries; ``SKYPLAN_JOB_ID``; ``SKYPLAN_NUM_RECOVERIES``):
``launch(..., env=run_env(...))``, or, without ``env``, ``ProvisionExecutor``
reads them from its store for a cluster named ``job-<job_id>-<task_index>``.
Nothing here prints; a launch's events go to the run log as text lines.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from skyplan.errors import SkyplanError
from skyplan.jobs.states import Placement

if TYPE_CHECKING:
    from skyplan.planner.plan import Plan
    from skyplan.spec.models import Task
    from skyplan.state import StateDB

#: A Check's phase: a LogSource phase (``run``, ``starting``, ``done``, ``failed``,
#: ``lost``, ``stopped``, ``absent``) or ``timeout`` (the check itself got no answer in time).
PHASES = ("run", "starting", "done", "failed", "lost", "stopped", "absent", "timeout")


@dataclass(frozen=True)
class Check:
    """One status check of a task's cluster, through the node runtime.

    ``exit_code`` is set once the task has ended (``done``: 0; ``failed``: the
    code). ``failed_phase`` is ``setup`` or ``run`` for a failed task. ``detail``
    says why a node did not answer (refused, timed out ...), for the event.
    """

    at: float  # unix time the check was made
    phase: str
    exit_code: int | None = None
    failed_phase: str | None = None
    detail: str = ""


class CloudSays(str, enum.Enum):
    """What the cloud itself says of a cluster's node (sim ledger, local processes,
    the provider's instance state)."""

    RUNNING = "running"
    GONE = "gone"  # preempted, terminated, deleted
    STOPPED = "stopped"
    UNKNOWN = "unknown"  # the cloud cannot tell: only the grace period decides

    @classmethod
    def parse(cls, value: str | None) -> "CloudSays":
        """A ``node_state`` hook's answer; anything it does not know is UNKNOWN."""
        try:
            return cls(str(value or "unknown").lower())
        except ValueError:
            return cls.UNKNOWN


class RunLog(Protocol):
    """One run's log file (``logs.py``): the launch's events and the task's output."""

    path: str

    def write(self, text: str) -> None:
        """Append ``text`` (one or more whole lines) to the run's log."""
        ...


class Executor(Protocol):
    """What the controller needs done. Every method may be called from the
    controller's worker threads at once for distinct clusters; each is bounded
    in time (``check`` by a few seconds, ``cloud_says`` by a few, or by one
    bounded Pulumi refresh for a cloud that declares ``instance_state``)."""

    def plan(self, task: Task, options: dict) -> Plan:
        """The task planned against the catalog (``options``: simulate, backend,
        catalog, use_spot override)."""
        ...

    def launch(self, cluster: str, plan: Plan, options: dict, log: RunLog, *,
               env: dict[str, str] | None = None, stop: Callable[[], bool] | None = None) -> Placement:
        """Bring ``cluster`` up on the first candidate of ``plan`` that works and
        start its task; blocking. ``env`` (``run_env``) joins the task's envs (an
        implementation may derive it when None). Writes the launch's events to ``log``. Raises
        ProvisionFailed / NoCandidatesError (no resource), InputError (the task
        cannot run as written), CleanupError (an attempt could not be cleaned).
        ``stop`` is asked after each failed attempt (cleaned up by then): True ends
        the failover there with LaunchStopped (a job cancelled mid-failover must not
        go on creating machines for every candidate left)."""
        ...

    def check(self, cluster: str) -> Check:
        """The task's phase on ``cluster``, through the node runtime, bounded."""
        ...

    def cloud_says(self, cluster: str) -> CloudSays:
        """What the cloud says of the cluster's node(s)."""
        ...

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        """Append the task's new output to ``log``."""
        ...

    def teardown(self, cluster: str) -> None:
        """Destroy ``cluster`` and verify nothing is left (``launch.down``); a
        cluster that is not there is fine. Raises CleanupError when it cannot."""
        ...

    def tick(self) -> None:
        """Called once per controller pass (the sim's scenario preemptions due now)."""
        ...


class LaunchStopped(SkyplanError):
    """A launch ended between two attempts because its ``stop`` said so (a cancel)."""


#: Seconds one status check may take before it is a ``timeout`` (not a preemption:
#: the controller asks the cloud, then waits out the grace period).
CHECK_TIMEOUT_S = 20.0
#: Bounds the Pulumi refresh that asks a provider cloud about a suspect node.
REFRESH_TIMEOUT_S = 90.0


def note(log: RunLog, line: str) -> None:
    """One line of skyplan's own into a run log (time-stamped by a ``logs.RunLogFile``)."""
    from skyplan.jobs.logs import note as _note

    _note(log, line)


def run_env(task_id: str, job_id: int, recoveries: int) -> dict[str, str]:
    """The variables every run of a managed task gets (the task's own envs cannot
    override them): ``SKYPLAN_TASK_ID`` (the same across recoveries),
    ``SKYPLAN_JOB_ID`` and ``SKYPLAN_NUM_RECOVERIES``."""
    return {"SKYPLAN_TASK_ID": task_id, "SKYPLAN_JOB_ID": str(job_id), "SKYPLAN_NUM_RECOVERIES": str(recoveries)}


#: The cluster of a managed task (``controller.py`` names them so).
_CLUSTER = re.compile(r"^job-(\d+)-(\d+)$")


class ProvisionExecutor:
    """The real Executor, over ``skyplan.provision.launch`` and the clouds' hooks.

    ``backend``/``simulate``/``catalog`` of a job come from its ``options``
    (``jobs launch`` records them); ``db``: a shared state database (default
    one per call); ``store``: the jobs store, to derive ``run_env`` when the
    caller passes no ``env``. ``check_timeout_s`` bounds each status check,
    ``refresh_timeout_s`` each refresh of a stack (``cloud_says``); ``driver_for``
    makes the ``StackDriver`` of a backend (tests pass a fake).
    """

    def __init__(self, *, store: Any = None, db: StateDB | None = None, check_timeout_s: float = CHECK_TIMEOUT_S,
                 attempt_timeout_s: float | None = None, max_checks: int = 32,
                 refresh_timeout_s: float = REFRESH_TIMEOUT_S, driver_for: Any = None) -> None:
        self.store = store
        self.db = db
        self.check_timeout_s = check_timeout_s
        self.refresh_timeout_s = refresh_timeout_s
        self._driver_for = driver_for
        self.attempt_timeout_s = attempt_timeout_s
        # Status checks run here so that one that hangs (an SSH node that stopped
        # answering mid-read) costs a thread for a while, never the controller's loop.
        self._checks = concurrent.futures.ThreadPoolExecutor(max_workers=max_checks,
                                                             thread_name_prefix="jobs-check")
        self._lock = threading.Lock()
        #: cluster -> the run log its last launch wrote to (teardown pumps it first).
        self._logs: dict[str, RunLog] = {}

    # --- planning and launching -------------------------------------------------

    def plan(self, task: Task, options: Mapping[str, Any]) -> Plan:
        from skyplan.catalog import load_catalog
        from skyplan.planner import make_plan
        from skyplan.provision.memory import for_planning

        use_spot = options.get("use_spot")
        if use_spot is not None:
            task = with_use_spot(task, bool(use_spot))
        return make_plan(task, load_catalog(options.get("catalog")), memory=for_planning(options.get("backend")))

    def launch(self, cluster: str, plan: Plan, options: Mapping[str, Any], log: RunLog, *,
               env: Mapping[str, str] | None = None, stop: Callable[[], bool] | None = None) -> Placement:
        from skyplan.provision.launch import LaunchOptions, LaunchRequest, launch

        if env is None:
            env = self._env_of(cluster)
        if env:
            plan = with_env(plan, env)
        with self._lock:
            self._logs[cluster] = log
        note(log, f"launching {cluster}: {len(plan.candidates)} candidate(s), first "
                 f"{_describe(plan.candidates[0]) if plan.candidates else '-'}")
        kwargs: dict[str, Any] = {}
        if self.attempt_timeout_s is not None:
            kwargs["timeout_s"] = self.attempt_timeout_s
        def on_event(e: Any) -> None:
            note(log, event_line(e))
            a = getattr(e, "attempt", None)
            if stop is not None and a is not None and not a.ok and stop():
                # Between attempts: the failed one is cleaned up, the next not begun.
                raise LaunchStopped(f"{cluster}: stopped after attempt {a.number} (the job was cancelled)")

        opts = LaunchOptions(backend=options.get("backend"), simulate=options.get("simulate"),
                             on_event=on_event, db=self.db, **kwargs)
        try:
            result = launch(LaunchRequest(plan, cluster, opts))
        except Exception as exc:
            note(log, f"launch failed: {getattr(exc, 'message', None) or exc}")
            raise
        c = result.placement
        placement = Placement(c.cloud, c.region, c.zone, c.instance_type, bool(c.use_spot)) if c is not None \
            else Placement("unknown", None, None, None, False)
        note(log, f"up on {describe(placement)}{' (simulated)' if result.simulated else ''}; stack {result.stack}")
        return placement

    def _env_of(self, cluster: str) -> dict[str, str] | None:
        """``run_env`` of the managed task whose cluster this is, from the store."""
        m = _CLUSTER.match(cluster)
        if m is None or self.store is None:
            return None
        job = self.store.job(int(m.group(1)))
        task = next((t for t in (job.tasks if job else ()) if t.task_index == int(m.group(2))), None)
        return run_env(task.task_id, job.job_id, task.recoveries) if task is not None else None

    # --- watching ---------------------------------------------------------------

    def _row(self, cluster: str) -> Any:
        from skyplan.provision.apply import valid_cluster_name
        from skyplan.state import StateDB

        return (self.db or StateDB()).get_cluster(valid_cluster_name(cluster))

    def _runner(self, row: Any) -> Any:
        from skyplan.clouds import registry

        if row is None or registry.find(row.cloud) is None:
            return None
        return registry.runner(row.cloud, bool(row.simulate))

    def check(self, cluster: str) -> Check:
        now = time.time()
        row = self._row(cluster)
        if row is None or row.status != "UP":
            return Check(now, "absent", detail=f"cluster is {row.status}" if row is not None else "no cluster")
        cloud = self._runner(row)
        source = cloud.log_source(row.outputs) if cloud is not None else None
        if source is None:
            return Check(now, "absent", detail=f"{row.cloud}: no log source here")
        future = self._checks.submit(source.status)
        try:
            status = future.result(timeout=self.check_timeout_s)
        except concurrent.futures.TimeoutError:
            return Check(now, "timeout", detail=f"no answer within {self.check_timeout_s:g} s")
        except Exception as exc:  # a transport error is an unanswered check, not a crash of the controller
            return Check(now, "timeout", detail=f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")
        return check_of(status, now)

    def cloud_says(self, cluster: str) -> CloudSays:
        row = self._row(cluster)
        if row is None:
            return CloudSays.GONE
        cloud = self._runner(row)
        if cloud is None:
            return CloudSays.UNKNOWN
        try:
            spec = getattr(cloud, "instance_state", None)
            if spec is not None:
                return self._refreshed(row, spec)
            return CloudSays.parse(cloud.node_state(row.outputs))
        except Exception:  # a hook that fails cannot confirm anything: grace decides
            return CloudSays.UNKNOWN

    def _refreshed(self, row: Any, spec: Any) -> CloudSays:
        """The cluster's stack refreshed and read: one engine run, made only when
        a check has failed (the controller asks the cloud only then). No stack
        recorded, or none left in the backend, tells nothing."""
        from skyplan.clouds.instancestate import cluster_state

        if not row.stack:
            return CloudSays.UNKNOWN
        if self._driver_for is not None:
            driver = self._driver_for(row.backend)
        else:
            from skyplan.provision.driver import StackDriver

            driver = StackDriver(row.backend)
        state = driver.refreshed_state(row.stack, timeout_s=self.refresh_timeout_s)
        return CloudSays.parse(cluster_state(state, spec)) if state is not None else CloudSays.UNKNOWN

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        row = self._row(cluster)
        cloud = self._runner(row)
        source = cloud.log_source(row.outputs) if cloud is not None else None
        if source is None:
            return
        from skyplan.jobs.logs import pump

        try:
            pump(log, source.lines())
        except Exception as exc:  # an unreachable node: what was read is kept; try again next poll
            note(log, f"could not read the task's output: {getattr(exc, 'message', None) or exc}")

    def teardown(self, cluster: str) -> None:
        from skyplan.errors import NotFoundError
        from skyplan.provision.launch import down

        with self._lock:
            log = self._logs.pop(cluster, None)
        if log is not None:
            self.pump_logs(cluster, log)
        try:
            result = down(cluster, db=self.db)
        except NotFoundError:
            if log is not None:
                note(log, f"{cluster}: nothing to tear down")
            self._release_buckets(cluster, log)
            return
        if log is not None:
            note(log, f"torn down {cluster}: {len(result.stacks)} stack(s) destroyed, checked empty and removed")
        self._release_buckets(cluster, log)

    def _release_buckets(self, cluster: str, log: RunLog | None) -> None:
        """After the last teardown of a job (each of its tasks ended, or being
        cancelled): the buckets made for it are deleted (``skyplan.jobs.buckets``;
        the ones the user named are kept). Idempotent: a teardown done again after
        a controller restart asks again."""
        from skyplan.jobs.buckets import release
        from skyplan.jobs.states import TERMINAL, Status

        m = _CLUSTER.match(cluster)
        if m is None or self.store is None:
            return
        try:
            job = self.store.job(int(m.group(1)))
            if job is None or any(t.status not in TERMINAL and t.status is not Status.CANCELLING
                                  for t in job.tasks):
                return
            placements = [r.placement for r in self.store.runs(job.job_id)] + [t.placement for t in job.tasks]
            gone = release(job.job_id, since=job.submitted_at, placements=placements,
                           simulate=bool(self.store.options(job.job_id).get("simulate")))
        except Exception as exc:  # noqa: BLE001 - the teardown itself is done; the buckets wait for the next
            if log is not None:
                note(log, f"could not release job {m.group(1)}'s buckets: {exc}")
            return
        if gone and log is not None:
            note(log, f"deleted the bucket(s) made for job {job.job_id}: {', '.join(gone)}")

    def adopt(self, cluster: str, log: RunLog) -> None:
        """After a controller restart: ``log`` is the run log of ``cluster``'s current run."""
        with self._lock:
            self._logs[cluster] = log

    def tick(self) -> None:
        from skyplan.clouds import registry

        for name in registry.names():
            cloud = registry.find(name)
            if cloud is not None:
                cloud.tick()  # CloudBase's default does nothing; the simulator preempts what is due

    def close(self) -> None:
        self._checks.shutdown(wait=False, cancel_futures=True)


# --- helpers (pure) ------------------------------------------------------------------


def check_of(status: Mapping[str, Any] | None, at: float) -> Check:
    """A LogSource ``status()`` as a Check."""
    if not status:
        return Check(at, "absent", detail="no status")
    phase = str(status.get("phase") or "absent")
    if phase == "setup":
        phase = "run"
    if phase not in PHASES:
        phase = "lost"
    rc = status.get("returncode")
    failed_phase = None
    detail = ""
    for n in status.get("nodes") or ():
        if isinstance(n, Mapping) and n.get("phase") == phase:
            failed_phase = n.get("failed_phase") or failed_phase
            detail = str(n.get("detail") or "")
            if rc is None:
                rc = n.get("returncode")
            break
    try:
        code = None if rc is None else int(rc)
    except (TypeError, ValueError):
        code = None
    return Check(at, phase, code, failed_phase, detail)


def with_use_spot(task: Task, use_spot: bool) -> Task:
    """``task`` with every resource candidate's market set to ``use_spot`` (``--use-spot``)."""
    res = task.resources
    cands = tuple(dataclasses.replace(c, use_spot=use_spot) for c in res.candidates)
    return dataclasses.replace(task, resources=dataclasses.replace(res, candidates=cands))


def with_env(plan: Plan, env: Mapping[str, str]) -> Plan:
    """``plan`` whose task has ``env`` over its own envs."""
    envs = dict(plan.task.envs)
    envs.update({str(k): str(v) for k, v in env.items()})
    return dataclasses.replace(plan, task=dataclasses.replace(plan.task, envs=tuple(envs.items())))


def describe(p: Placement | None) -> str:
    """``sim:gcp us-central1-a n1-standard-4 [spot]``-like, one line."""
    if p is None:
        return "no placement"
    where = p.zone or p.region or "-"
    return f"{p.cloud} {where} {p.instance_type or '-'} [{'spot' if p.use_spot else 'on-demand'}]"


def _describe(c: Any) -> str:
    return f"{c.cloud} {c.zone or c.region} {c.instance_type} [{'spot' if c.use_spot else 'on-demand'}]"


def event_line(e: Any) -> str:
    """One launch event as one text line of the run log."""
    from skyplan.provision import events as ev

    if isinstance(e, ev.Launching):
        return f"attempt {e.number}: launching on {_describe(e.candidate)} (stack {e.stack})"
    if isinstance(e, ev.AttemptDone):
        a = e.attempt
        if a.ok:
            return f"attempt {a.number}: up on {_describe(a.candidate)}"
        cls = a.classification
        why = f"{cls.kind.value}: {cls.message}" if cls is not None else "failed"
        block = f"; blocked {a.block.describe()}" if a.block is not None else ""
        return f"attempt {a.number}: failed on {_describe(a.candidate)}: {why}{block}"
    if isinstance(e, ev.Preflight):
        return f"preflight {e.cloud}: {'ok' if e.ok else e.reason}"
    if isinstance(e, ev.Recover):
        return f"cleaning an earlier stack {e.stack} ({e.status})"
    return str(e)
