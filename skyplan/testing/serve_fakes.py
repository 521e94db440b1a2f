"""A scriptable ServeExecutor and load balancer for the service controller's tests.

``FakeServeExecutor`` (``skyplan.serve.executor.ServeExecutor``) launches
"replicas" that exist only in memory. Each replica's probes pass after
``ready_after`` failed ones (per cluster: ``ready_after_for``); a test then
disturbs it: ``preempt`` (the cloud says STOPPED, probes fail), ``crash`` (the
server's process exited: checks say failed, the cloud says running),
``unhealthy`` (probes fail, the process runs); with ``exits`` set, every
replica launched from then on is crashed from the start, with that exit code
(a task that ends at once, e.g. ``run: exit 3``). Launches can find no spot
capacity (``spot_out``, or zones in ``exhausted``), raise scripted errors, or
wait on a gate. Every call is journalled in ``calls``.

``FakeBalancer`` stands in for the daemon's load balancer adapter: it records
every READY set pushed (``pushes``), and answers ``wait_drained`` from a
scriptable in-flight count.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from skyplan.errors import ProvisionFailed
from skyplan.jobs.executor import Check, CloudSays, RunLog
from skyplan.jobs.states import Placement
from skyplan.planner.plan import Plan
from skyplan.spec.models import Task
from skyplan.testing.jobs_fakes import fake_plan

#: Two zones in each of two regions, spot and on-demand: what ``FakeServeExecutor`` plans by default.
SERVE_ROWS = (("r1", "r1-a", True), ("r1", "r1-b", True), ("r2", "r2-a", True),
              ("r1", "r1-a", False), ("r1", "r1-b", False), ("r2", "r2-a", False))


@dataclass
class FakeReplica:
    placement: Placement
    env: dict[str, str]
    probes: int = 0
    ready_after: int = 1
    state: str = "ok"  # ok | preempted | crashed | unhealthy
    exit_code: int = 1  # when crashed


@dataclass
class FakeServeExecutor:
    """Implements ``ServeExecutor`` in memory (see the module docstring)."""

    rows: Sequence[tuple[str, str | None, bool]] = SERVE_ROWS
    ready_after: int = 1
    spot_out: bool = False
    exhausted: set[Any] = field(default_factory=set)  # zones, or (zone, use_spot) pairs, with no capacity
    launch_errors: dict[str, list[BaseException]] = field(default_factory=dict)
    gate: threading.Event | None = None
    exits: int | None = None  # replicas launched from now on end at once with this exit code

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.up: dict[str, FakeReplica] = {}
        self.calls: list[tuple[str, str]] = []
        self.launched: list[tuple[str, Placement, dict[str, str]]] = []
        self.plans: list[tuple[str, ...]] = []
        self.ready_after_for: dict[str, int] = {}
        self.ticks = 0

    # --- scripting ----------------------------------------------------------------

    def preempt(self, cluster: str) -> None:
        with self.lock:
            self.up[cluster].state = "preempted"

    def crash(self, cluster: str, exit_code: int = 1) -> None:
        with self.lock:
            self.up[cluster].state = "crashed"
            self.up[cluster].exit_code = exit_code

    def unhealthy(self, cluster: str, on: bool = True) -> None:
        with self.lock:
            self.up[cluster].state = "unhealthy" if on else "ok"

    # --- the Protocol -------------------------------------------------------------

    def plan(self, task: Task, options: Mapping[str, Any]) -> Plan:
        markets = {r.use_spot for r in task.resources.candidates}
        if options.get("use_spot") is not None:
            markets = {bool(options["use_spot"])}
        return fake_plan([r for r in self.rows if r[2] in markets], task)

    def launch(self, cluster: str, plan: Plan, options: Mapping[str, Any], log: RunLog, *,
               env: Mapping[str, str] | None = None, stop: Callable[[], bool] | None = None) -> Placement:
        with self.lock:
            self.calls.append(("launch", cluster))
            self.plans.append(tuple(f"{c.zone}/{'spot' if c.use_spot else 'od'}" for c in plan.candidates))
            errors = self.launch_errors.get(cluster)
            error = errors.pop(0) if errors else None
        if self.gate is not None:
            self.gate.wait(30)
        log.write(f"fake: launching {cluster}\n")
        if error is not None:
            raise error
        with self.lock:
            live = self.up.get(cluster)
            if live is not None and live.state == "ok":
                return live.placement  # the real launch converges on a cluster that is up
            chosen = next((c for c in plan.candidates
                           if not (c.use_spot and self.spot_out) and c.zone not in self.exhausted
                           and (c.zone, c.use_spot) not in self.exhausted), None)
            if chosen is None:
                raise ProvisionFailed(f"{cluster}: every candidate failed (capacity)", [])
            placement = Placement(chosen.cloud, chosen.region, chosen.zone, chosen.instance_type, chosen.use_spot)
            self.up[cluster] = FakeReplica(placement, dict(env or {}),
                                           ready_after=self.ready_after_for.get(cluster, self.ready_after))
            if self.exits is not None:
                self.up[cluster].state, self.up[cluster].exit_code = "crashed", int(self.exits)
            self.launched.append((cluster, placement, dict(env or {})))
        log.write(f"fake: up on {placement.zone}\n")
        return placement

    def check(self, cluster: str) -> Check:
        with self.lock:
            self.calls.append(("check", cluster))
            r = self.up.get(cluster)
            state = r.state if r is not None else "absent"
        if state == "absent":
            return Check(0.0, "absent", detail="no cluster")
        if state == "crashed":
            return Check(0.0, "failed", exit_code=r.exit_code, failed_phase="run")
        if state == "preempted":
            return Check(0.0, "lost", detail="connection refused")
        return Check(0.0, "run")

    def cloud_says(self, cluster: str) -> CloudSays:
        with self.lock:
            self.calls.append(("cloud_says", cluster))
            r = self.up.get(cluster)
        if r is None:
            return CloudSays.GONE
        return CloudSays.STOPPED if r.state == "preempted" else CloudSays.RUNNING

    def endpoint(self, cluster: str, port: int) -> str | None:
        with self.lock:
            return f"http://{cluster}:{int(port)}" if cluster in self.up else None

    def probe(self, url: str, cfg: Any) -> bool:
        cluster = url.split("//", 1)[-1].rsplit(":", 1)[0]
        with self.lock:
            self.calls.append(("probe", cluster))
            r = self.up.get(cluster)
            if r is None or r.state != "ok":
                return False
            r.probes += 1
            return r.probes > r.ready_after

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        log.write(f"fake: output of {cluster}\n")

    def teardown(self, cluster: str) -> None:
        with self.lock:
            self.calls.append(("teardown", cluster))
            self.up.pop(cluster, None)

    def tick(self) -> None:
        self.ticks += 1

    # --- for assertions -----------------------------------------------------------

    def ops(self, cluster: str, kinds: Iterable[str] = ("launch", "teardown")) -> list[str]:
        kinds = set(kinds)
        with self.lock:
            return [op for op, c in self.calls if c == cluster and op in kinds]


@dataclass
class FakeMetrics:
    qps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    failures: int = 0
    inflight: dict[int, int] = field(default_factory=dict)


class FakeBalancer:
    """The controller's view of the load balancer (``controller.Balancer``), in memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pushes: list[dict[int, str]] = []
        self.current: dict[int, str] = {}
        self.qps = 0.0
        self.inflight: dict[int, int] = {}
        self.drain_waits: list[tuple[int, float]] = []
        #: The READY set current when each ``wait_drained`` began (the drained one must be out of it).
        self.sets_at_drain: list[dict[int, str]] = []

    def push(self, replicas: Mapping[int, str]) -> None:
        with self.lock:
            self.current = dict(replicas)
            self.pushes.append(dict(replicas))

    def wait_drained(self, replica_id: int, timeout_s: float) -> bool:
        with self.lock:
            self.drain_waits.append((replica_id, timeout_s))
            self.sets_at_drain.append(dict(self.current))
            return self.inflight.get(replica_id, 0) == 0

    def metrics(self) -> FakeMetrics:
        with self.lock:
            return FakeMetrics(qps=self.qps, inflight=dict(self.inflight))
