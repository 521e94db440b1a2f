"""A scriptable Executor for the jobs controller's tests (``skyplan.jobs.executor.Executor``).

``FakeExecutor`` launches "clusters" that exist only in memory. What each run
of a cluster does is scripted with ``Run``: how many status checks it answers
``run`` before its end shows, and what that end is (exit 0, a user exit code, a
setup failure, a preemption the cloud confirms, vanished processes, checks that
time out while the cloud says the node is running, a node lost with the cloud
unable to tell). Launches can be told to find no capacity (per region or for a
number of calls), to fail otherwise, or to wait on a gate (for cancel races).
Every call is journalled in ``calls`` so a test can assert the order of actions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from skyplan.catalog.model import CatalogInfo
from skyplan.errors import CleanupError, InputError, ProvisionFailed
from skyplan.jobs.executor import Check, CloudSays, RunLog
from skyplan.jobs.states import Placement
from skyplan.planner.candidates import Candidate
from skyplan.planner.plan import FORMAT_VERSION, Plan
from skyplan.spec.models import Task

#: The cloud name fake plans use (no real cloud: nothing branches on it).
FAKE_CLOUD = "fake"


def fake_plan(rows: Iterable[tuple[str, str | None, bool]], task: Task | None = None) -> Plan:
    """A Plan whose candidates are ``(region, zone, use_spot)`` rows, in rank order."""
    cands = tuple(Candidate(rank=i, cloud=FAKE_CLOUD, region=region, zone=zone, instance_type="fake-4",
                            use_spot=spot, vcpus=4, memory_gib=16, accelerators=(),
                            hourly_price=0.1 if spot else 0.3, hourly_cost=0.1 if spot else 0.3)
                  for i, (region, zone, spot) in enumerate(rows))
    return Plan(format_version=FORMAT_VERSION, created_at="2026-01-01T00:00:00Z", task=task or Task(),
                task_sha256="0" * 64, catalog=CatalogInfo("fake", "2026-01-01", "0" * 64), candidates=cands)


#: Three regions, spot first then on-demand: what ``FakeExecutor`` plans by default.
DEFAULT_ROWS = (("r1", "r1-a", True), ("r2", "r2-a", True), ("r3", "r3-a", True),
                ("r1", "r1-a", False), ("r2", "r2-a", False), ("r3", "r3-a", False))


@dataclass(frozen=True)
class Run:
    """One run of a cluster: ``checks`` checks answer ``run``, then ``end`` shows:

    * ``done``: the task exited 0;
    * ``exit:N``: the run exited N; ``setup:N``: the setup exited N;
    * ``preempt``: the node is lost and the cloud says GONE;
    * ``vanish``: the node holds no task and the cloud says GONE (local processes gone);
    * ``timeout``: every check times out while the cloud says RUNNING;
    * ``lost``: the node does not answer and the cloud cannot tell (UNKNOWN);
    * ``forever``: it keeps running.
    """

    checks: int = 1
    end: str = "done"


@dataclass
class FakeCluster:
    placement: Placement
    run: Run
    env: dict[str, str]
    checks: int = 0
    forced: str | None = None  # an end set now (``preempt()`` ...), whatever the script says


@dataclass
class FakeExecutor:
    """Implements ``skyplan.jobs.executor.Executor`` in memory (see the module docstring).

    ``runs``: cluster -> the scripts of its successive runs (the last repeats);
    ``default_run``: for clusters without a script. ``exhausted``: regions (or
    ``(region, use_spot)`` pairs) with no capacity; ``no_capacity``: how many
    launch calls (of any cluster) find nothing at all. ``launch_errors``:
    cluster -> exceptions its next launches raise (in order). ``gate``: when set,
    each launch waits until the gate is open. ``clock``: what checks are stamped with.
    """

    rows: Sequence[tuple[str, str | None, bool]] = DEFAULT_ROWS
    runs: dict[str, list[Run]] = field(default_factory=dict)
    default_run: Run = Run()
    exhausted: set[Any] = field(default_factory=set)
    no_capacity: int = 0
    launch_errors: dict[str, list[BaseException]] = field(default_factory=dict)
    teardown_errors: dict[str, list[BaseException]] = field(default_factory=dict)
    gate: threading.Event | None = None
    clock: Callable[[], float] = lambda: 0.0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.up: dict[str, FakeCluster] = {}
        self.calls: list[tuple[str, str]] = []  # (operation, cluster), in order
        self.launched: list[tuple[str, Placement, dict[str, str]]] = []
        self.plans: list[tuple[str, ...]] = []  # each launch's candidate order, as "region/zone/spot|od"
        self.ticks = 0
        self._run_no: dict[str, int] = {}
        self.launching = threading.Event()  # set while a launch waits on the gate

    # --- scripting ----------------------------------------------------------------

    def script(self, cluster: str, *runs: Run) -> None:
        self.runs[cluster] = list(runs)

    def preempt(self, cluster: str) -> None:
        """The cloud takes the node back now."""
        with self.lock:
            self.up[cluster].forced = "preempt"

    def finish(self, cluster: str, end: str = "done") -> None:
        with self.lock:
            self.up[cluster].forced = end

    # --- the Protocol -------------------------------------------------------------

    def plan(self, task: Task, options: dict) -> Plan:
        rows = list(self.rows)
        markets = {r.use_spot for r in task.resources.candidates}
        if options.get("use_spot") is not None:
            markets = {bool(options["use_spot"])}
        rows = [r for r in rows if r[2] in markets]
        return fake_plan(rows, task)

    def launch(self, cluster: str, plan: Plan, options: dict, log: RunLog, *,
               env: dict[str, str] | None = None, stop: Any = None) -> Placement:
        with self.lock:
            self.calls.append(("launch", cluster))
            self.plans.append(tuple(f"{c.region}/{c.zone}/{'spot' if c.use_spot else 'od'}" for c in plan.candidates))
            errors = self.launch_errors.get(cluster)
            error = errors.pop(0) if errors else None
        if self.gate is not None:
            self.launching.set()
            self.gate.wait(30)
        log.write(f"fake: launching {cluster}\n")
        if error is not None:
            raise error
        with self.lock:
            live = self.up.get(cluster)
            if live is not None and self._end(live) in (None, "forever"):
                # the real launch converges: a cluster that is up with the same task is ALREADY_UP
                return live.placement
            if self.no_capacity > 0:
                self.no_capacity -= 1
                raise ProvisionFailed(f"{cluster}: every candidate failed (capacity)", [])
            chosen = next((c for c in plan.candidates if c.region not in self.exhausted
                           and (c.region, c.use_spot) not in self.exhausted), None)
            if chosen is None:
                raise ProvisionFailed(f"{cluster}: every candidate failed (capacity)", [])
            n = self._run_no.get(cluster, 0)
            self._run_no[cluster] = n + 1
            script = self.runs.get(cluster)
            run = (script[min(n, len(script) - 1)] if script else self.default_run)
            placement = Placement(chosen.cloud, chosen.region, chosen.zone, chosen.instance_type, chosen.use_spot)
            self.up[cluster] = FakeCluster(placement, run, dict(env or {}))
            self.launched.append((cluster, placement, dict(env or {})))
        log.write(f"fake: up on {placement.region}\n")
        return placement

    def _end(self, c: FakeCluster) -> str | None:
        if c.forced is not None:
            return c.forced
        return c.run.end if c.checks > c.run.checks else None

    def check(self, cluster: str) -> Check:
        now = self.clock()
        with self.lock:
            self.calls.append(("check", cluster))
            c = self.up.get(cluster)
            if c is None:
                return Check(now, "absent", detail="no cluster")
            c.checks += 1
            end = self._end(c)
        if end is None or end == "forever":
            return Check(now, "run")
        if end == "done":
            return Check(now, "done", exit_code=0)
        if end.startswith(("exit:", "setup:")):
            phase, code = end.split(":")
            return Check(now, "failed", exit_code=int(code), failed_phase="setup" if phase == "setup" else "run")
        if end == "vanish":
            return Check(now, "absent", detail="processes gone")
        if end == "timeout":
            return Check(now, "timeout", detail="no answer within 20 s")
        return Check(now, "lost", detail="connection refused")  # preempt, lost

    def cloud_says(self, cluster: str) -> CloudSays:
        with self.lock:
            self.calls.append(("cloud_says", cluster))
            c = self.up.get(cluster)
            if c is None:
                return CloudSays.GONE
            end = self._end(c)
        if end in ("preempt", "vanish"):
            return CloudSays.GONE
        if end == "lost":
            return CloudSays.UNKNOWN
        return CloudSays.RUNNING

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        with self.lock:
            self.calls.append(("pump_logs", cluster))
            c = self.up.get(cluster)
            n = c.checks if c is not None else 0
        log.write(f"fake: output after check {n}\n")

    def teardown(self, cluster: str) -> None:
        with self.lock:
            self.calls.append(("teardown", cluster))
            errors = self.teardown_errors.get(cluster)
            if errors:
                raise errors.pop(0)
            self.up.pop(cluster, None)

    def tick(self) -> None:
        self.ticks += 1

    # --- for assertions -----------------------------------------------------------

    def ops(self, cluster: str, kinds: Iterable[str] = ("launch", "teardown")) -> list[str]:
        """The operations on ``cluster`` among ``kinds``, in order."""
        kinds = set(kinds)
        with self.lock:
            return [op for op, c in self.calls if c == cluster and op in kinds]


def input_error(message: str = "the workdir ./src is missing") -> InputError:
    return InputError(message, hint="restore it")


def cleanup_error(cluster: str) -> CleanupError:
    return CleanupError(f"{cluster}: a stack could not be emptied", stack=f"{cluster}-1")
