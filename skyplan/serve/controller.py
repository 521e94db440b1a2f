"""The service controller: one loop per service that probes, decides and acts.

It decides through the pure functions (``autoscaler.autoscale``,
``reconcile.reconcile``, ``reconcile.order_spot``) and acts only through a
``ServeExecutor`` (``executor.py``) and the load balancer (``Balancer``: the
daemon's adapter over ``lb.LoadBalancer``). One pass (``step``), in order:

  1. ``executor.tick()`` (the sim's scenario preemptions due now);
  2. the launches and teardowns that finished since the last pass are
     recorded (a launched replica is STARTING with its endpoint; a torn-down
     one is gone; a failed spot launch sets the spot retry time, backing off);
  3. the service and its replicas are read from the store;
  4. every STARTING, READY and NOT_READY replica due a probe is probed (all at
     once, each bounded); a failed probe makes the replica suspect: its
     cluster is checked and the cloud asked. The verdicts are recorded:
     STARTING -> READY; READY -> NOT_READY; a spot replica the cloud says is
     stopped or gone -> PREEMPTED (its zone avoided for a while); a task that
     ended, a node gone, STARTING past the probe's initial delay, NOT_READY for
     too long -> FAILED. A failure of the replica's own (not a preemption, a
     node the cloud took, or no capacity) spends its version's failure budget
     (``budget.py``): the replacement backs off, and a version that fails
     ``max_failures`` times in a row with no replica ever READY is given up;
  5. the READY set is pushed to the load balancer at once when it changed;
  6. ``serve down``: every replica is drained and torn down, then the service
     is gone and the loop ends;
  7. a version given up: with an older version READY the update is abandoned
     (its replicas drained, the older version kept as the one to reconcile);
     without, the service is FAILED and every replica drained, nothing
     launched until ``serve update``. Then the autoscaler's target from the
     load balancer's qps; ``reconcile``'s decision: the replicas to drain are
     marked SHUTTING_DOWN and the READY set pushed without them (5 again), the
     new replicas (unless their version backs off) recorded PENDING, then
     PROVISIONING, and their launches handed to the bounded pool, each trying
     the first ``max_attempts`` candidates of its ordered plan;
  8. every replica that is leaving (SHUTTING_DOWN, FAILED, PREEMPTED) with
     nothing in flight gets its drain and teardown handed to the pool: the
     load balancer's ``wait_drained`` (bounded by the drain timeout), then
     ``executor.teardown``, then (next pass) ``store.gone``;
  9. the service's status: READY with a replica READY, FAILED once given up,
     else NO_REPLICA.

Journal before acting: each transition is recorded in the store before the
push, launch or teardown it calls for, so a controller killed at any point
finds in the store what it was doing. After a restart (``resume``: the first
pass) every replica's cluster is looked at before anything is decided: the
probes of the first pass are all waited for, so READY replicas that still
answer stay READY (and are pushed), PROVISIONING ones are launched again (the
launch API converges on a cluster that is up), leaving ones torn down again.

Only this loop writes replica states; the pool's workers return results that
the loop records. Nothing here prints; the store logs every transition it
records (``skyplan.serve.events``: the controller log), the loop logs the rest
to ``skyplan.serve.controller`` and each replica's own events to its log.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from skyplan.errors import InputError, NoCandidatesError, PreflightError, ProvisionFailed
from skyplan.jobs.executor import CloudSays, LaunchStopped, RunLog
from skyplan.jobs.states import Placement
from skyplan.serve.replicas import (cluster_name, first_candidates, no_resource, resources_line, resources_of,
                                    task_cloud, torn_down_why, where)
from skyplan.serve.settings import Balancer, ServeSettings
from skyplan.serve.states import LEAVING, LIVE, ReplicaRecord, ReplicaStatus, ServiceRecord, ServiceStatus

log = logging.getLogger("skyplan.serve.controller")

#: Seconds a pass waits at most for its probes (each is bounded by the probe's
#: timeout too); one still running is judged at a later pass, which it wakes.
POLL_WAIT_S = 2.0
#: Seconds the loop sleeps at most between two passes when nothing wakes it.
MAX_NAP_S = 1.0
#: Seconds a replica plan is reused for the next launches of its version and market (the
#: capacity memory it ranks with changes as launches fail and replicas are preempted).
PLAN_TTL_S = 10.0


@dataclass
class _Rep:
    """What this process knows of a replica beyond the store (rebuilt by ``resume``)."""

    action: cf.Future | None = None
    kind: str = ""  # "launch" | "teardown"
    probe: cf.Future | None = None
    next_probe_at: float = 0.0
    since: float | None = None  # STARTING: when it began; NOT_READY: the failing streak's start
    retry_at: float | None = None  # a failed teardown's next try
    cancel: threading.Event = field(default_factory=threading.Event)
    log: RunLog | None = None
    #: One copy of the task's output into ``log`` at a time (a probe's and the teardown's).
    pump_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class _Done:
    """What a worker returns (judged on the loop's thread)."""

    placement: Placement | None = None
    endpoint: str | None = None
    resources: str = ""
    error: BaseException | None = None


@dataclass(frozen=True)
class _Probe:
    ok: bool
    phase: str = "run"  # the check's phase after a failed probe
    exit_code: int | None = None
    says: CloudSays | None = None
    endpoint: str | None = None  # found now (it was not known at launch)
    failed_phase: str | None = None  # "setup" or "run" for a task that failed


def _pump(ex: Any, cluster: str | None, rep: _Rep) -> None:
    """Copy the task's new output into the replica's log (never raises: a node that
    does not answer now is read again at the next probe)."""
    if rep.log is None or not cluster:
        return
    with rep.pump_lock:
        try:
            ex.pump_logs(cluster, rep.log)
        except Exception:  # noqa: BLE001
            log.debug("pump %s failed", cluster, exc_info=True)


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = text.strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ServeController:
    """Drives one service of ``store`` through ``executor`` and ``lb`` (see the module docstring).

    ``clock`` is injected for tests; ``open_log(replica_id)`` gives a replica's
    log (default: ``$SKYPLAN_HOME/serve/<name>/replica-<id>.log``).
    """

    def __init__(self, name: str, store: Any, executor: Any, lb: Balancer, settings: ServeSettings | None = None,
                 *, clock: Callable[[], float] = time.time, poll_wait_s: float = POLL_WAIT_S,
                 open_log: Callable[[int], RunLog] | None = None) -> None:
        self.name = name
        self.store = store
        self.executor = executor
        self.lb = lb
        self.settings = settings or ServeSettings()
        self.clock = clock
        self.poll_wait_s = poll_wait_s
        self._open_log = open_log
        self._pool = cf.ThreadPoolExecutor(max_workers=max(1, int(self.settings.workers)),
                                           thread_name_prefix=f"serve-{name}-act")
        self._probes = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"serve-{name}-probe")
        self._reps: dict[int, _Rep] = {}
        self._wake = threading.Event()
        self._tasks: dict[int, Any] = {}  # version -> parsed Task
        self._cfgs: dict[int, Any] = {}  # version -> ServiceConfig
        self._plans: dict[tuple[int, bool], tuple[float, Any]] = {}  # (version, spot) -> (when, Plan)
        self._pushed: dict[int, str] | None = None
        self._scaler: Any = None
        self._resumed = False
        self.spot_retry_at: float | None = None
        self._spot_failures = 0
        self.avoid: dict[str, float] = {}  # zone -> until (a preempted spot replica's zone)
        self.finished = False  # the service is down and gone
        from skyplan.serve.budget import FailureBudget

        self.budget = FailureBudget(self.settings.replace_backoff_s, self.settings.max_failures)
        #: versions given up -> the older version kept serving (None: the service FAILED)
        self.gave_up: dict[int, int | None] = {}
        self._version: int | None = None  # the newest version seen

    # --- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set or the service is down and gone;
        then waits for the launches and teardowns in flight and returns."""
        try:
            while not stop.is_set() and not self.finished:
                try:
                    self.step()
                except Exception:  # the database went away for a moment, a bug in one pass: go on
                    log.exception("service %s: controller pass failed", self.name)
                    stop.wait(min(5.0, float(self.settings.poll_s)))
                if self.finished:
                    break
                self._wake.wait(self._nap())
                self._wake.clear()
        finally:
            self.close()

    def close(self) -> None:
        """Wait for the launches and teardowns in flight, record them, stop the pools."""
        self._pool.shutdown(wait=True)
        self._probes.shutdown(wait=False, cancel_futures=True)
        try:
            if not self.finished:
                self._harvest({r.id: r for r in self.store.replicas(self.name)})
        except Exception:  # the next controller's resume picks it up
            log.exception("service %s: recording the last actions failed", self.name)

    def wait_actions(self, timeout: float = 30.0) -> bool:
        """Wait until no launch or teardown is in flight (tests); True if none is."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [r.action for r in self._reps.values() if r.action is not None and not r.action.done()]
            if not pending:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cf.wait(pending, timeout=left)

    def _nap(self) -> float:
        now = self.clock()
        due = [r.next_probe_at for r in self._reps.values() if r.probe is None and r.action is None]
        due += [r.retry_at for r in self._reps.values() if r.retry_at is not None]
        if self.spot_retry_at is not None:
            due.append(self.spot_retry_at)
        due += self.budget.due()
        nap = min([MAX_NAP_S, float(self.settings.poll_s)] + [max(0.0, t - now) for t in due])
        return max(0.05, nap)

    def step(self) -> None:
        """One pass (see the module docstring)."""
        try:
            self.executor.tick()
        except Exception:
            log.exception("service %s: executor tick failed", self.name)
        svc = self.store.service(self.name)
        if svc is None:
            self.finished = True
            return
        reps = {r.id: r for r in svc.replicas}
        if self._harvest(reps):
            svc = self.store.service(self.name) or svc
            reps = {r.id: r for r in svc.replicas}
        if self._version is not None and svc.version != self._version:  # recorded by ``serve update``
            log.info("service %s: version %d added: rolling it out", self.name, svc.version)
        self._version = svc.version
        first = not self._resumed
        self._resumed = True
        if first:
            self._resume(list(reps.values()))
        cfg = self._cfg(svc.version)
        if self._probe(reps, cfg, wait_all=first):
            svc = self.store.service(self.name) or svc
            reps = {r.id: r for r in svc.replicas}
        self._sync_lb(reps.values())
        if svc.down_requested:
            self._down(svc, reps)
            return
        self._scale(svc, cfg, reps)
        svc = self.store.service(self.name) or svc
        reps = {r.id: r for r in svc.replicas}
        self._sync_lb(reps.values())
        self._dispatch_leaving(reps.values(), cfg)
        self._service_status(svc, reps.values())
        for rid in [k for k, r in self._reps.items() if k not in reps and r.action is None and r.probe is None]:
            self._reps.pop(rid, None)

    # --- resume --------------------------------------------------------------------------

    def _resume(self, replicas: list[ReplicaRecord]) -> None:
        """The first pass: replicas whose launch this process did not start are
        launched again (PENDING, PROVISIONING); every other one is probed in this
        pass (``_probe(wait_all=True)``) before anything is decided."""
        self._scaler = None
        try:  # versions an earlier controller gave up stay given up (until ``serve update``)
            from skyplan.serve.budget import given_up

            self.gave_up.update(given_up((e.status, e.reason) for e in self.store.events(self.name, limit=5000)
                                         if e.replica_id is None))
        except Exception:  # noqa: BLE001 - without them, the budget is spent again first
            log.exception("service %s: reading the versions given up failed", self.name)
        for r in replicas:
            rep = self._rep(r.id)
            adopt = getattr(self.executor, "adopt", None)
            if adopt is not None and rep.log is not None:
                adopt(r.cluster, rep.log)
            if r.status in (ReplicaStatus.STARTING, ReplicaStatus.NOT_READY):
                rep.since = self.clock() if r.status is ReplicaStatus.NOT_READY else (r.launched_at or self.clock())
            if r.status in (ReplicaStatus.PENDING, ReplicaStatus.PROVISIONING):
                if r.status is ReplicaStatus.PENDING:
                    self.store.set_replica(self.name, r.id, ReplicaStatus.PROVISIONING,
                                           "launching again after a controller restart")
                self._launch(r, resumed=True)

    # --- probes and verdicts ---------------------------------------------------------------

    def _probe(self, reps: dict[int, ReplicaRecord], cfg: Any, *, wait_all: bool) -> bool:
        """Probe every replica due; judge those that answered. True if anything was recorded."""
        now = self.clock()
        ex = self.executor
        watched = (ReplicaStatus.STARTING, ReplicaStatus.READY, ReplicaStatus.NOT_READY)
        for r in reps.values():
            rep = self._rep(r.id)
            if r.status not in watched or rep.action is not None or rep.probe is not None or now < rep.next_probe_at:
                continue
            port = self._cfg(r.version).port

            def work(r: ReplicaRecord = r, port: int = port, rep: _Rep = rep) -> _Probe:
                # The task's new output joins the replica's log on every probe, so `serve logs
                # NAME ID` (and --follow) shows a live replica's output, not only after teardown.
                _pump(ex, r.cluster, rep)
                url = r.endpoint
                found = None
                if not url:
                    url = found = ex.endpoint(r.cluster, port)
                ok = False
                if url:
                    try:
                        ok = bool(ex.probe(url, self._cfg(r.version)))
                    except Exception:  # noqa: BLE001 - a probe that raises failed
                        ok = False
                if ok:
                    return _Probe(True, endpoint=found)
                failed_phase = None
                try:
                    c = ex.check(r.cluster)
                    phase, code, failed_phase = c.phase, c.exit_code, getattr(c, "failed_phase", None)
                except Exception:  # noqa: BLE001
                    phase, code = "timeout", None
                says = None
                if phase not in ("run", "starting"):
                    try:
                        says = ex.cloud_says(r.cluster)
                    except Exception:  # noqa: BLE001
                        says = CloudSays.UNKNOWN
                return _Probe(False, phase, code, says, found, failed_phase)

            rep.probe = self._probes.submit(work)
            rep.probe.add_done_callback(lambda _f: self._wake.set())
        pending = [rep.probe for rep in self._reps.values() if rep.probe is not None]
        if pending:
            timeout = max(float(cfg.probe_timeout_s) * 2 + 25.0, self.poll_wait_s) if wait_all else self.poll_wait_s
            cf.wait(pending, timeout=timeout)
        changed = False
        for rid, rep in list(self._reps.items()):
            if rep.probe is None or not rep.probe.done():
                continue
            result: _Probe = rep.probe.result()
            rep.probe = None
            rep.next_probe_at = self.clock() + float(self.settings.poll_s)
            r = reps.get(rid)
            if r is None or r.status not in watched or rep.action is not None:
                continue
            try:
                changed |= self._judge(r, rep, result)
            except Exception:
                log.exception("service %s: replica %s", self.name, rid)
        return changed

    def _judge(self, r: ReplicaRecord, rep: _Rep, p: _Probe) -> bool:
        now = self.clock()
        cfg = self._cfg(r.version)
        fields: dict[str, Any] = {"endpoint": p.endpoint} if p.endpoint else {}
        if p.ok:
            rep.since = None
            if r.status is ReplicaStatus.READY:
                if fields:
                    self.store.set_replica(self.name, r.id, ReplicaStatus.READY, "endpoint found", **fields)
                return bool(fields)
            was = "its probe passes again" if r.status is ReplicaStatus.NOT_READY else "its probe passed"
            self._set(r, ReplicaStatus.READY, f"{was} ({cfg.probe_path})", ready_at=now, **fields)
            self.budget.ready(r.version)
            return True
        # A failed probe: the cloud's and the node's word first.
        if p.says in (CloudSays.STOPPED, CloudSays.GONE):
            if r.use_spot:
                self._preempted(r, f"the cloud says its node is {p.says.value}")
            else:  # the cloud took it: no failure of the replica's own (the budget is not spent)
                self._fail(r, f"its node is {p.says.value} (the cloud says so)", counts=False)
            return True
        if p.phase in ("failed", "done"):
            code = p.exit_code if p.exit_code is not None else "?"
            what = "its setup failed" if p.failed_phase == "setup" else "its task ended"
            self._fail(r, f"{what} (exit {code})" if p.phase == "failed"
                       else "its task ended (exit 0): a server must keep running")
            return True
        if r.status is ReplicaStatus.STARTING:
            started = rep.since if rep.since is not None else (r.launched_at or now)
            rep.since = started
            if now - started > float(cfg.probe_initial_delay_s):
                self._fail(r, f"not ready within the probe's initial delay ({cfg.probe_initial_delay_s:g} s)")
                return True
            if fields:
                self.store.set_replica(self.name, r.id, ReplicaStatus.STARTING, "endpoint found", **fields)
                return True
            return False
        if r.status is ReplicaStatus.READY:
            rep.since = now
            self._set(r, ReplicaStatus.NOT_READY, f"its probe failed ({cfg.probe_path}; node {p.phase})")
            return True
        if rep.since is None:
            rep.since = now
        if now - rep.since > float(self.settings.not_ready_s):
            self._fail(r, f"not ready for {self.settings.not_ready_s:g} s")
            return True
        return False

    def _preempted(self, r: ReplicaRecord, reason: str) -> None:
        """PREEMPTED (out of the READY set at the next push, in this pass), its zone avoided."""
        self._set(r, ReplicaStatus.PREEMPTED, reason)
        if r.zone or r.region:
            self.avoid[r.zone or r.region or ""] = self.clock() + float(self.settings.avoid_s)
            self._remember(r)

    def _remember(self, r: ReplicaRecord) -> None:
        """The preempted zone in the capacity memory (``skyplan.provision.memory``),
        for a short while, so every plan of spot there ranks it last."""
        try:
            from datetime import datetime, timedelta, timezone

            from skyplan.provision import memory
            from skyplan.provision.driver import resolve_backend_url
            from skyplan.provision.failover import Block

            url = resolve_backend_url(self._options().get("backend"))
            now = datetime.now(timezone.utc)
            rec = memory.Record(Block(cloud=r.cloud, region=r.region, zone=r.zone, use_spot=True,
                                      reason=f"spot replica {r.id} of {self.name} preempted"),
                                "capacity", "preempted", now, now + timedelta(seconds=float(self.settings.avoid_s)))
            memory.local_store(url).update(lambda m: m.prune(now).merge([rec]))
        except Exception:  # a hint lost; ``avoid`` still orders this controller's spot launches
            log.exception("service %s: recording the preempted zone failed", self.name)

    # --- the load balancer ---------------------------------------------------------------

    def _sync_lb(self, replicas: Any) -> None:
        """Push the READY set when it changed (never on a timer)."""
        ready = {r.id: r.endpoint for r in replicas if r.status is ReplicaStatus.READY and r.endpoint}
        if ready == self._pushed:
            return
        self.lb.push(dict(ready))
        log.info("service %s: READY set %s", self.name, sorted(ready) or "empty")
        self._pushed = ready

    # --- deciding -----------------------------------------------------------------------

    def _scale(self, svc: ServiceRecord, cfg: Any, reps: dict[int, ReplicaRecord]) -> None:
        from skyplan.serve.autoscaler import ScalerState, autoscale
        from skyplan.serve.reconcile import reconcile

        now = self.clock()
        try:
            m = self.lb.metrics()
            qps = float(getattr(m, "qps", 0.0) or 0.0)
            self.store.set_metrics(self.name, {"qps": qps, "p50_ms": getattr(m, "p50_ms", None),
                                               "p99_ms": getattr(m, "p99_ms", None),
                                               "requests": getattr(m, "requests", None),
                                               "failures": getattr(m, "failures", None)})
        except Exception:  # noqa: BLE001 - no metrics this pass: the target holds
            log.exception("service %s: reading the load balancer's metrics failed", self.name)
            qps = None
        if self._scaler is None:
            # After a restart the service keeps the size it had, within the policy.
            have = sum(1 for r in reps.values() if r.status.live and not r.fallback and r.version == svc.version)
            self._scaler = ScalerState(target=min(max(have, int(cfg.min_replicas)), int(cfg.max_replicas)))
        # The failure budget: a version that keeps failing, none of its replicas ever READY, is given up.
        version = svc.version
        if any(r.status is ReplicaStatus.READY and r.version == version for r in reps.values()):
            self.budget.of(version).ever_ready = True  # READY before a restart: this controller did not see it
        if version not in self.gave_up and self.budget.exhausted(version):
            self._give_up(svc, reps)
            reps = {r.id: r for r in self.store.replicas(self.name)}
        if version in self.gave_up:
            serving = self.gave_up[version]
            if serving is None:  # the service FAILED: nothing launches until ``serve update``
                self._drain_all(reps, lambda r: True, f"the service FAILED: version {version} was given up")
                return
            # An abandoned update: the older version keeps serving, and is kept as it would be.
            self._drain_all(reps, lambda r: r.version == version, f"update to version {version} abandoned")
            version, cfg = serving, self._cfg(serving)
        if qps is not None:
            self._scaler = autoscale(cfg, qps, self._scaler, now)
        if self.spot_retry_at is not None and now >= self.spot_retry_at:
            self.spot_retry_at = None
        decision = reconcile(cfg, version, int(self._scaler.target), list(reps.values()), now,
                             spot_retry_at=self.spot_retry_at)
        for rid, reason in decision.drain:
            r = reps.get(rid)
            if r is None or not r.status.live:
                continue
            self._set(r, ReplicaStatus.SHUTTING_DOWN, reason)
            self._rep(rid).cancel.set()  # a launch in flight stops after its attempt; torn down once it returns
        if decision.drain:
            self._sync_lb(self.store.replicas(self.name))
        for want in decision.launch:
            if self.budget.held(int(want.version), now):
                continue  # a replica of this version just failed: its replacement backs off
            task = self._task(want.version)
            spot = bool(want.use_spot)
            plan = self._plan(int(want.version), spot)
            first = plan.candidates[0] if plan is not None and plan.candidates else None
            # RESOURCES as the seed shows it from PROVISIONING on: the first candidate's cloud and size
            # (the placement's, once up).
            resources = resources_line(task.num_nodes, first.cloud if first else task_cloud(task), spot,
                                       first.vcpus if first else None)
            r = self.store.add_replica(self.name, version=int(want.version), use_spot=spot,
                                       fallback=bool(want.fallback), resources=resources)
            what = "a spot" if spot else ("an on-demand fallback" if want.fallback else "an on-demand")
            self.store.set_replica(self.name, r.id, ReplicaStatus.PROVISIONING, f"launching {what} replica "
                                   f"(version {want.version})", launched_at=now)
            self._launch(self.store_replica(r.id) or r, plan=plan)

    def _give_up(self, svc: ServiceRecord, reps: dict[int, ReplicaRecord]) -> None:
        """The current version spent its failure budget: with an older version still READY
        the update is abandoned (an event says so; the old one keeps serving), else the
        service is FAILED; either way its replicas are drained and nothing of it launches."""
        from skyplan.serve.budget import abandoned_reason, failed_reason

        v = svc.version
        serving = max((r.version for r in reps.values() if r.status is ReplicaStatus.READY and r.version != v),
                      default=None)
        last = self.budget.of(v).last_replica
        step = (f"see `skyplan serve logs {self.name} {last}`, fix the service file, then "
                f"`skyplan serve update {self.name} SERVICE.yaml`")
        self.gave_up[v] = serving
        if serving is None:
            self.store.set_service(self.name, status=ServiceStatus.FAILED,
                                   reason=failed_reason(v, self.budget.verdict(v), step))
        else:
            self.store.note_service(self.name, abandoned_reason(v, serving, self.budget.verdict(v), step))

    def _drain_all(self, reps: dict[int, ReplicaRecord], which: Callable[[ReplicaRecord], bool],
                   reason: str) -> None:
        """Drain every live replica ``which`` picks (out of the READY set at once)."""
        drained = False
        for r in reps.values():
            if r.status.live and which(r):
                self._set(r, ReplicaStatus.SHUTTING_DOWN, reason)
                self._rep(r.id).cancel.set()
                drained = True
        if drained:
            self._sync_lb(self.store.replicas(self.name))

    def _plan(self, version: int, spot: bool) -> Any:
        """The plan of a version's replicas in one market, reused for ``PLAN_TTL_S`` (a scale-up
        plans once); None when it cannot be made here (the launch plans again and reports why)."""
        key = (version, spot)
        now = self.clock()
        hit = self._plans.get(key)
        if hit is not None and now - hit[0] < PLAN_TTL_S:
            return hit[1]
        options = dict(self._options())
        options["use_spot"] = spot
        try:
            plan = self.executor.plan(self._task(version), options)
        except Exception:  # noqa: BLE001 - NoCandidatesError and the like: the launch says it
            return None
        self._plans[key] = (now, plan)
        return plan

    def store_replica(self, rid: int) -> ReplicaRecord | None:
        return next((r for r in self.store.replicas(self.name) if r.id == rid), None)

    def _down(self, svc: ServiceRecord, reps: dict[int, ReplicaRecord]) -> None:
        """``serve down``: drain and tear down every replica; then the service is gone."""
        if svc.status is not ServiceStatus.SHUTTING_DOWN:
            self.store.set_service(self.name, status=ServiceStatus.SHUTTING_DOWN, reason="serve down requested")
        for r in reps.values():
            if r.status.live:
                self._set(r, ReplicaStatus.SHUTTING_DOWN, "serve down")
                self._rep(r.id).cancel.set()
        fresh = self.store.replicas(self.name)
        self._sync_lb(fresh)
        self._dispatch_leaving(fresh, self._cfg(svc.version))
        busy = any(rep.action is not None for rep in self._reps.values())
        if not fresh and not busy:
            self.store.delete_service(self.name)
            log.info("service %s: every replica torn down; the service is gone", self.name)
            self.finished = True

    def _service_status(self, svc: ServiceRecord, replicas: Any) -> None:
        """READY with a replica READY; FAILED once its version was given up (``_give_up``
        says why) until ``serve update``; NO_REPLICA otherwise (seed 002: every replica
        PROVISIONING shows ``NO_REPLICA 0/4``). REPLICA_INIT is no longer used."""
        ready = sum(1 for r in replicas if r.status is ReplicaStatus.READY)
        if svc.version in self.gave_up and self.gave_up[svc.version] is None:
            want = ServiceStatus.FAILED
        else:
            want = ServiceStatus.READY if ready else ServiceStatus.NO_REPLICA
        if want is not svc.status:
            reason = f"{ready} replica(s) READY" if ready else "no replica READY"
            if want is ServiceStatus.FAILED:
                reason = f"version {svc.version} was given up"
            self.store.set_service(self.name, status=want, reason=reason)

    # --- acting (hand to the pool) ------------------------------------------------------

    def _launch(self, r: ReplicaRecord, *, resumed: bool = False, plan: Any = None) -> None:
        rep = self._rep(r.id)
        rep.cancel.clear()
        task = self._task(r.version)
        cfg = self._cfg(r.version)
        options = dict(self._options())
        options["use_spot"] = bool(r.use_spot)
        env = {"SKYPLAN_SERVICE": self.name, "SKYPLAN_REPLICA_ID": str(r.id)}
        ex, runlog, cancel = self.executor, rep.log, rep.cancel
        avoid = {z: t for z, t in self.avoid.items() if t > self.clock()}
        replicas = list(self.store.replicas(self.name))
        now = self.clock()
        cluster = r.cluster or cluster_name(self.name, r.id)
        most = max(1, int(self.settings.max_attempts))

        planned = plan

        def work() -> _Done:
            try:
                plan = planned if planned is not None else ex.plan(task, options)
                if r.use_spot:
                    from skyplan.serve.reconcile import order_spot

                    plan = order_spot(plan, replicas, avoid, now)
                plan = first_candidates(plan, most, runlog)
                placement = ex.launch(cluster, plan, options, runlog, env=env, stop=cancel.is_set)
                url = ex.endpoint(cluster, int(cfg.port))
                return _Done(placement, url, resources_of(task, plan, placement))
            except BaseException as exc:  # noqa: BLE001 - judged on the loop's thread
                return _Done(error=exc)

        if resumed and runlog is not None:
            from skyplan.jobs.logs import note

            note(runlog, "the controller restarted: launching again (converges on a cluster that is up)")
        self._submit(rep, "launch", work)

    def _dispatch_leaving(self, replicas: Any, cfg: Any) -> None:
        """Drain and tear down every leaving replica that has nothing in flight."""
        now = self.clock()
        for r in replicas:
            if r.status not in LEAVING:
                continue
            rep = self._rep(r.id)
            if rep.action is not None or (rep.retry_at is not None and now < rep.retry_at):
                continue
            rep.retry_at = None
            if rep.probe is not None:
                rep.probe = None  # its answer no longer matters
            drain_s = 0.0 if r.status is ReplicaStatus.PREEMPTED else float(self._cfg(r.version).drain_timeout_s)
            ex, lb, runlog = self.executor, self.lb, rep.log
            cluster = r.cluster or cluster_name(self.name, r.id)
            rid = r.id

            def work(cluster: str = cluster, rid: int = rid, drain_s: float = drain_s,
                     runlog: RunLog | None = runlog, rep: _Rep = rep) -> _Done:
                try:
                    if drain_s > 0:
                        drained = lb.wait_drained(rid, drain_s)
                        if runlog is not None and not drained:
                            from skyplan.jobs.logs import note

                            note(runlog, f"drain timeout ({drain_s:g} s): requests still in flight are cut")
                    if runlog is not None:  # the replica's last lines, before its cluster goes
                        _pump(ex, cluster, rep)
                    ex.teardown(cluster)
                    return _Done()
                except BaseException as exc:  # noqa: BLE001
                    return _Done(error=exc)

            self._submit(rep, "teardown", work)

    def _submit(self, rep: _Rep, kind: str, work: Callable[[], _Done]) -> None:
        rep.kind = kind
        rep.action = self._pool.submit(work)
        rep.action.add_done_callback(lambda _f: self._wake.set())

    # --- recording what the pool did ------------------------------------------------------

    def _harvest(self, reps: dict[int, ReplicaRecord]) -> bool:
        """Record the launches and teardowns that finished. True if anything was recorded."""
        done = [(rid, rep) for rid, rep in self._reps.items() if rep.action is not None and rep.action.done()]
        for rid, rep in done:
            result: _Done = rep.action.result()
            kind, rep.action = rep.kind, None
            r = reps.get(rid)
            if r is None:
                continue
            try:
                if kind == "launch":
                    self._launched(r, rep, result)
                else:
                    self._torn_down(r, rep, result)
            except Exception:
                log.exception("service %s: replica %s", self.name, rid)
        return bool(done)

    def _launched(self, r: ReplicaRecord, rep: _Rep, d: _Done) -> None:
        now = self.clock()
        if r.status is not ReplicaStatus.PROVISIONING:
            return  # drained or failed meanwhile: ``_dispatch_leaving`` tears its cluster down now
        if d.error is None and d.placement is not None:
            p = d.placement
            if p.use_spot:
                self._spot_failures = 0
            rep.since, rep.next_probe_at = now, 0.0
            self._set(r, ReplicaStatus.STARTING, f"up on {where(p)}; waiting for its probe",
                      cloud=p.cloud, region=p.region, zone=p.zone, instance_type=p.instance_type,
                      endpoint=d.endpoint, resources=d.resources or r.resources)
            return
        exc = d.error
        if isinstance(exc, LaunchStopped):
            self._set(r, ReplicaStatus.SHUTTING_DOWN, "launch stopped")
            return
        if isinstance(exc, (ProvisionFailed, NoCandidatesError, PreflightError)) and no_resource(exc):
            why = f"no resource: {_first_line(exc)}"
            if r.use_spot:
                if self.spot_retry_at is not None and self.spot_retry_at > now:
                    # Another launch of the same wave already found none: one wait per wave,
                    # not one doubling per replica (two failing at once waited 60 s, said 30).
                    wait = self.spot_retry_at - now
                else:
                    self._spot_failures += 1
                    wait = float(self.settings.spot_retry_s) * min(8, 2 ** (self._spot_failures - 1))
                    self.spot_retry_at = now + wait
                why += f"; spot tried again in {wait:.0f} s"
            self._fail(r, why, counts=False)  # capacity is the cloud's, not the replica's failure
            return
        if isinstance(exc, InputError):  # no launch of this version can work: the whole budget at once
            self._fail(r, f"the task cannot run as written: {_first_line(exc)}", fatal=True)
            return
        self._fail(r, f"launch failed: {_first_line(exc)}")

    def _torn_down(self, r: ReplicaRecord, rep: _Rep, d: _Done) -> None:
        if d.error is not None:
            rep.retry_at = self.clock() + float(self.settings.teardown_retry_s)
            why = f"tearing down {r.cluster} failed: {_first_line(d.error)}; tried again in " \
                  f"{self.settings.teardown_retry_s:g} s"
            log.error("service %s: replica %s: %s", self.name, r.id, why)
            self.store.set_replica(self.name, r.id, r.status, why)
            return
        if rep.log is not None:
            from skyplan.jobs.logs import note

            note(rep.log, f"{r.cluster} torn down ({torn_down_why(r)})")
        self.store.gone(self.name, r.id)

    # --- helpers --------------------------------------------------------------------------

    def _fail(self, r: ReplicaRecord, reason: str, *, counts: bool = True, fatal: bool = False) -> None:
        """FAILED; ``counts``: a failure of the replica's own, spending its version's budget
        (``fatal``: all of it), so the replacement waits (the reason says how long)."""
        if counts:
            wait = self.budget.failed(r.version, r.id, reason, self.clock(), fatal=fatal)
            if wait is not None:
                reason += f"; replaced in {wait:g} s"
        self._set(r, ReplicaStatus.FAILED, reason)

    def _set(self, r: ReplicaRecord, status: ReplicaStatus, reason: str, **fields: Any) -> None:
        # The store logs every transition it records (the controller log's lines).
        self.store.set_replica(self.name, r.id, status, reason, **fields)
        rep = self._rep(r.id)
        if rep.log is not None:
            from skyplan.jobs.logs import note

            note(rep.log, f"replica {r.id}: {status.value}: {reason}")

    def _rep(self, rid: int) -> _Rep:
        rep = self._reps.get(rid)
        if rep is None:
            rep = self._reps[rid] = _Rep()
            try:
                if self._open_log is not None:
                    rep.log = self._open_log(rid)
                else:
                    from skyplan.jobs.logs import RunLogFile
                    from skyplan.serve import paths

                    rep.log = RunLogFile(paths.replica_log(self.name, rid))
            except Exception:  # noqa: BLE001 - a replica without a log still serves
                log.exception("service %s: replica %s: no log", self.name, rid)
        return rep

    def _options(self) -> dict[str, Any]:
        return dict(self.store.options(self.name) or {})

    def _task(self, version: int) -> Any:
        if version not in self._tasks:
            from skyplan.spec import task_from_dict

            self._tasks[version] = task_from_dict(json.loads(self.store.task_json(self.name, version)))
        return self._tasks[version]

    def _cfg(self, version: int) -> Any:
        if version not in self._cfgs:
            from skyplan.serve.config import service_config

            self._cfgs[version] = service_config(self._task(version))
        return self._cfgs[version]


__all__ = ["ServeController", "ServeSettings", "Balancer", "cluster_name", "resources_line", "LIVE"]
