"""The jobs controller: one loop that starts, watches, recovers, cancels and ends
every managed task, acting only through an ``Executor`` (``executor.py``).

One pass (``step``), in order:
  1. ``executor.tick()`` (the sim's scenario preemptions due now);
  2. the launches and teardowns that finished since the last pass are recorded;
  3. cancel requests: PENDING tasks end CANCELLED at once; a task holding a
     cluster goes CANCELLING, and its cluster is torn down once any launch in
     flight has returned (a cancel during RECOVERING leaks nothing), then CANCELLED;
  4. tasks this process is not handling yet (after a restart): a RUNNING task is
     only *checked* (it keeps running unless the check says otherwise); a
     STARTING or RECOVERING one is launched again (the launch API converges on a
     cluster that is up); a CANCELLING one is torn down;
  5. PENDING tasks start while fewer than ``max_concurrent`` jobs hold a cluster
     (a pipeline's task i+1 starts once task i SUCCEEDED; a task that ends
     otherwise cancels the tasks after it);
  6. recoveries waiting out a backoff whose time has come are launched again;
  7. every RUNNING task due a check is checked, all at once (each bounded), then
     judged (``detect.verdict``) and decided (``recovery.after_failure``).

Journal before acting: each transition is recorded in the store before the
launch or teardown it calls for is handed to the worker pool, so a controller
killed at any point finds in the store what it was doing. Launches and
teardowns run in one bounded thread pool (never a thread per job); only this
loop writes task states. Nothing here prints; the loop logs to the
``skyplan.jobs.controller`` logger.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from skyplan.errors import CleanupError, InputError, LockedError, NoCandidatesError, PreflightError, ProvisionFailed
from skyplan.jobs import detect, recovery
from skyplan.jobs.executor import Check, CloudSays, Executor, RunLog, run_env
from skyplan.jobs.recovery import Counters, Fail, Failure, RecoveryPolicy
from skyplan.jobs.states import ACTIVE, TERMINAL, JobRecord, Placement, Status, TaskRecord

log = logging.getLogger("skyplan.jobs.controller")

#: Recovery rounds that find no resource before the task ends FAILED_NO_RESOURCE.
RECOVERY_ROUNDS = 3
#: Seconds a pass waits at most for its status checks (each is bounded by the executor
#: too); one still running is judged at a later pass, which its answer wakes at once,
#: so a check that hangs never holds up launches, cancels and the other tasks.
POLL_WAIT_S = 2.0
#: Seconds the loop sleeps at most between two passes when nothing wakes it.
MAX_NAP_S = 1.0
#: At start, the newest finished jobs looked at for a teardown the last controller left unfinished.
SWEEP_RECENT = 200


def cluster_name(job_id: int, task_index: int) -> str:
    """The cluster of a managed task (one per task, the same across its recoveries)."""
    return f"job-{int(job_id)}-{int(task_index)}"


@dataclass
class _Live:
    """What this process knows of a task beyond the store (lost on restart, rebuilt by ``resume``)."""

    checks: list[Check] = field(default_factory=list)
    action: cf.Future | None = None  # a launch or teardown in flight
    action_kind: str = ""  # "launch" | "teardown"
    after_teardown: str = ""  # "cancelled" | "final"
    check: cf.Future | None = None
    next_check_at: float = float("inf")  # watched (RUNNING) tasks only
    retry_at: float | None = None  # a launch waiting out its backoff
    rounds: int = 0  # recovery rounds that found no resource
    avoid: Placement | None = None  # the placement a relaunch reorders around (EAGER_NEXT_REGION, FAILOVER)
    #: How the open run ends once the final teardown is done: (placement, outcome).
    final: tuple[Placement | None, str] | None = None
    noted: bool = False  # the current streak of failed checks has its event
    cancel: threading.Event = field(default_factory=threading.Event)
    log: RunLog | None = None
    run_no: int | None = None


@dataclass(frozen=True)
class _Launched:
    placement: Placement | None = None
    error: BaseException | None = None
    cancelled: bool = False  # the cancel flag was seen before the launch started


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _where(p: Placement | None) -> str:
    if p is None:
        return "an unknown placement"
    place = "/".join(x for x in (p.cloud, p.region, p.zone) if x)
    return f"{place} ({p.instance_type or '?'}{', spot' if p.use_spot else ''})"


class Controller:
    """Drives every managed job of ``store`` through ``executor`` (see the module docstring).

    ``settings``: a ``JobsSettings`` (``max_concurrent``, ``poll_s``, ``grace_checks``,
    ``grace_s``, ``idle_stop_s``). ``clock``/``rng`` are injected for tests (pass the
    store the same clock). ``open_log(job_id, task_index, cluster)`` starts a run's
    log (default: ``skyplan.jobs.logs.open_run``, which records the run in the store).
    """

    def __init__(self, store: Any, executor: Executor, settings: Any, *, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None, workers: int | None = None,
                 recovery_rounds: int = RECOVERY_ROUNDS, poll_wait_s: float = POLL_WAIT_S,
                 open_log: Callable[[int, int, str], RunLog] | None = None) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.recovery_rounds = recovery_rounds
        self.poll_wait_s = poll_wait_s
        self._open_log = open_log
        n = workers or max(2, min(32, int(settings.max_concurrent)))
        self._pool = cf.ThreadPoolExecutor(max_workers=n, thread_name_prefix="jobs-act")
        self._checks = cf.ThreadPoolExecutor(max_workers=max(4, min(64, 2 * n)), thread_name_prefix="jobs-poll")
        self._live: dict[tuple[int, int], _Live] = {}
        self._wake = threading.Event()
        self._tasks: dict[tuple[int, int], Any] = {}  # parsed Task per task, by key
        self._idle_since: float | None = None
        self._held: set[int] = set()  # jobs holding a cluster, this pass (max_concurrent)
        self._swept = False

    # --- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Make ``run`` pass at once (a new submission, a cancel request)."""
        self._wake.set()

    def resume(self) -> None:
        """At start: every unfinished job is picked up from the store. A task that
        holds a cluster is checked before anything is decided about it; a running
        one keeps running (no forced recovery)."""
        self.step()

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set or nothing was left to do for
        ``settings.idle_stop_s``; then waits for the launches and teardowns in
        flight (never abandons one) and returns."""
        try:
            self.resume()
            while not stop.is_set():
                idle = self.idle_for()
                if idle is not None and idle >= float(self.settings.idle_stop_s):
                    break
                self._wake.wait(self._nap())
                self._wake.clear()
                try:
                    self.step()
                except Exception:  # the database went away for a moment, a bug in one pass: go on
                    log.exception("controller pass failed")
                    stop.wait(min(5.0, float(self.settings.poll_s)))
        finally:
            self.close()

    def idle_for(self) -> float | None:
        """Seconds since the controller last had a job or an action in flight (None while busy)."""
        return None if self._idle_since is None else max(0.0, self.clock() - self._idle_since)

    def close(self) -> None:
        """Wait for the launches and teardowns in flight, record them, then stop the pools."""
        self._pool.shutdown(wait=True)
        self._checks.shutdown(wait=False, cancel_futures=True)
        try:
            self._harvest()
        except Exception:  # the database is gone: the next controller's ``resume`` picks it up
            log.exception("recording the last actions failed")

    def wait_actions(self, timeout: float = 30.0) -> bool:
        """Wait until no launch or teardown is in flight (tests); True if none is."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [lv.action for lv in self._live.values() if lv.action is not None and not lv.action.done()]
            if not pending:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cf.wait(pending, timeout=left)

    def _nap(self) -> float:
        now = self.clock()
        due = [lv.next_check_at for lv in self._live.values() if lv.action is None and lv.check is None
               and lv.next_check_at != float("inf")]
        due += [lv.retry_at for lv in self._live.values() if lv.retry_at is not None]
        nap = min([MAX_NAP_S] + [max(0.0, t - now) for t in due])
        return max(0.05, nap)

    def step(self) -> None:
        """One pass (see the module docstring)."""
        try:
            self.executor.tick()
        except Exception:
            log.exception("executor tick failed")
        self._harvest()
        jobs = self.store.unfinished()
        if not self._swept:
            self._swept = True
            self._sweep(jobs)
        self._held = {j.job_id for j in jobs if any(t.status in ACTIVE for t in j.tasks)}
        self._held |= {k[0] for k, lv in self._live.items() if lv.action is not None}
        for job in jobs:
            try:
                self._job(job)
            except Exception as exc:  # a bug about one job must not stop the others
                log.exception("job %s", job.job_id)
                self._fail_controller(job, exc)
        self._poll({j.job_id: j for j in jobs})
        busy = bool(jobs) or any(lv.action is not None for lv in self._live.values())
        self._idle_since = None if busy else (self._idle_since or self.clock())
        # forget what ended
        alive = {(j.job_id, t.task_index) for j in jobs for t in j.tasks}
        for key in [k for k, lv in self._live.items() if k not in alive and lv.action is None]:
            self._live.pop(key, None)
            self._tasks.pop(key, None)

    # --- per job ----------------------------------------------------------------------------

    def _lv(self, t: TaskRecord) -> _Live:
        return self._live.setdefault((t.job_id, t.task_index), _Live())

    def _job(self, job: JobRecord) -> None:
        if job.cancel_requested:
            self._cancel(job)
            return
        for t in job.tasks:
            if t.status is Status.SUCCEEDED:
                continue
            if t.status in TERMINAL:
                self._cancel_rest(job, t)  # a task that did not succeed ends the pipeline
                return
            if t.status is Status.PENDING:
                self._maybe_start(job, t)
                return
            lv = self._live.get((t.job_id, t.task_index))
            if lv is None:
                self._adopt(job, t)  # this process has not handled it yet (it just started)
            elif lv.action is None and lv.retry_at is not None and self.clock() >= lv.retry_at:
                lv.retry_at = None
                self._launch(job, t, recovering=t.status is Status.RECOVERING, teardown_first=False, last=lv.avoid)
            elif lv.action is None and lv.retry_at is None and t.status in (Status.STARTING, Status.RECOVERING,
                                                                             Status.CANCELLING):
                self._adopt(job, t)  # an active state with nothing in flight: take it up again
            return  # task i+1 waits for task i

    def _maybe_start(self, job: JobRecord, t: TaskRecord) -> None:
        if job.job_id not in self._held and len(self._held) >= int(self.settings.max_concurrent):
            return  # waits as PENDING
        cluster = cluster_name(job.job_id, t.task_index)
        self.store.transition(job.job_id, t.task_index, Status.STARTING,
                              f"launching {cluster}" + (f" (task {t.task_index} of the pipeline)"
                                                        if len(job.tasks) > 1 else ""),
                              cluster=cluster)
        self._held.add(job.job_id)
        self._launch(job, dataclasses.replace(t, status=Status.STARTING, cluster=cluster), recovering=False,
                     teardown_first=False, last=None)

    def _adopt(self, job: JobRecord, t: TaskRecord) -> None:
        """A task in an active state that this process is not handling (it just started)."""
        lv = self._lv(t)
        cluster = t.cluster or cluster_name(job.job_id, t.task_index)
        if lv.log is None:
            self._reopen_log(job, t, cluster)
        if t.status is Status.RUNNING:
            lv.next_check_at = 0.0  # checked in this very pass, before anything is decided
            return
        if t.status is Status.CANCELLING:
            self._teardown(job, t, after="cancelled")
            return
        # STARTING or RECOVERING when the last controller stopped: launch again. The
        # launch API converges on a cluster that is up (ALREADY_UP), so a task whose
        # launch had finished keeps running; a RECOVERING one whose old cluster may
        # still stand is checked first, and torn down unless its task answers.
        self._launch(job, t, recovering=t.status is Status.RECOVERING, teardown_first=False, last=None,
                     check_first=t.status is Status.RECOVERING)

    def _reopen_log(self, job: JobRecord, t: TaskRecord, cluster: str) -> None:
        lv = self._lv(t)
        runs = [r for r in self.store.runs(job.job_id) if r.task_index == t.task_index]
        if runs and runs[-1].outcome is None:
            from skyplan.jobs.logs import RunLogFile

            lv.log, lv.run_no = RunLogFile(runs[-1].log_path), runs[-1].run_no
            adopt = getattr(self.executor, "adopt", None)
            if adopt is not None:
                adopt(cluster, lv.log)
        else:
            self._new_run(job, t, cluster)

    def _new_run(self, job: JobRecord, t: TaskRecord, cluster: str) -> None:
        lv = self._lv(t)
        if self._open_log is not None:
            lv.log = self._open_log(job.job_id, t.task_index, cluster)
        else:
            from skyplan.jobs import logs

            lv.log = logs.open_run(self.store, job.job_id, t.task_index, cluster)
        runs = [r for r in self.store.runs(job.job_id) if r.task_index == t.task_index]
        lv.run_no = runs[-1].run_no if runs else None

    def _end_run(self, t: TaskRecord, placement: Placement | None, outcome: str) -> None:
        lv = self._live.get((t.job_id, t.task_index))
        if lv is not None and lv.run_no is not None:
            self.store.end_run(t.job_id, t.task_index, lv.run_no, placement, outcome)
            lv.run_no = None

    # --- acting (hand to the pool) ------------------------------------------------------

    def _task(self, t: TaskRecord) -> Any:
        key = (t.job_id, t.task_index)
        if key not in self._tasks:
            from skyplan.spec import task_from_dict

            self._tasks[key] = task_from_dict(json.loads(t.task_json))
        return self._tasks[key]

    def _launch(self, job: JobRecord, t: TaskRecord, *, recovering: bool, teardown_first: bool,
                last: Placement | None, check_first: bool = False, old_log: RunLog | None = None) -> None:
        lv = self._lv(t)
        lv.avoid = last
        cluster = t.cluster or cluster_name(job.job_id, t.task_index)
        if lv.log is None or lv.run_no is None:
            self._new_run(job, t, cluster)
        task = self._task(t)
        policy = recovery.policy_for(task)
        options = self.store.options(job.job_id)
        recoveries = t.recoveries
        env = run_env(t.task_id, job.job_id, recoveries)
        ex, runlog, cancel = self.executor, lv.log, lv.cancel

        def work() -> _Launched:
            try:
                down_first = teardown_first
                if check_first:
                    try:
                        down_first = ex.check(cluster).phase not in detect.HEALTHY_PHASES
                    except Exception:
                        down_first = True
                if down_first:
                    if old_log is not None:
                        try:  # the last run's last lines, before its cluster goes
                            ex.pump_logs(cluster, old_log)
                        except Exception:
                            pass
                    ex.teardown(cluster)
                if cancel.is_set():
                    return _Launched(cancelled=True)
                plan = ex.plan(task, options)
                if recovering:
                    plan = recovery.order_for_relaunch(plan, policy, last)
                return _Launched(ex.launch(cluster, plan, options, runlog, env=env, stop=cancel.is_set))
            except BaseException as exc:  # judged on the loop's thread
                return _Launched(error=exc)

        self._submit(lv, "launch", work)

    def _teardown(self, job: JobRecord, t: TaskRecord, *, after: str) -> None:
        lv = self._lv(t)
        cluster = t.cluster or cluster_name(job.job_id, t.task_index)
        ex, runlog = self.executor, lv.log

        def work() -> _Launched:
            try:
                if runlog is not None:
                    try:  # the run's last lines, before its cluster goes
                        ex.pump_logs(cluster, runlog)
                    except Exception:
                        pass
                ex.teardown(cluster)
                return _Launched()
            except BaseException as exc:
                return _Launched(error=exc)

        lv.after_teardown = after
        self._submit(lv, "teardown", work)

    def _submit(self, lv: _Live, kind: str, work: Callable[[], _Launched]) -> None:
        lv.action_kind = kind
        lv.checks = []
        lv.next_check_at = float("inf")
        lv.action = self._pool.submit(work)
        lv.action.add_done_callback(lambda _f: self._wake.set())

    # --- recording what the pool did ------------------------------------------------------

    def _harvest(self) -> None:
        done = [(k, lv) for k, lv in self._live.items() if lv.action is not None and lv.action.done()]
        if not done:
            return
        jobs: dict[int, JobRecord | None] = {}
        for (job_id, idx), lv in done:
            if job_id not in jobs:
                jobs[job_id] = self.store.job(job_id)
            job = jobs[job_id]
            result: _Launched = lv.action.result()
            kind, lv.action = lv.action_kind, None
            if job is None:
                continue
            t = job.tasks[idx]
            try:
                if kind == "launch":
                    self._launched(job, t, lv, result)
                else:
                    self._torn_down(job, t, lv, result)
            except Exception as exc:
                log.exception("job %s task %s", job_id, idx)
                self._fail_controller(job, exc)
            jobs[job_id] = self.store.job(job_id)

    def _launched(self, job: JobRecord, t: TaskRecord, lv: _Live, r: _Launched) -> None:
        cancel = job.cancel_requested or lv.cancel.is_set() or t.status is Status.CANCELLING
        if cancel:
            # The launch returned (or never started): now its cluster can go, nothing leaks.
            if t.status is not Status.CANCELLING:
                self.store.transition(job.job_id, t.task_index, Status.CANCELLING, "cancel requested")
            self._end_run(t, r.placement, "cancelled")
            self._teardown(job, t, after="cancelled")
            return
        if r.error is None and r.placement is not None:
            lv.rounds, lv.checks = 0, []
            lv.next_check_at = self.clock() + float(self.settings.poll_s)
            if lv.run_no is not None:
                self.store.set_run_placement(job.job_id, t.task_index, lv.run_no, r.placement)
            self.store.transition(job.job_id, t.task_index, Status.RUNNING,
                                  f"{'relaunched' if t.status is Status.RECOVERING else 'running'} on "
                                  f"{_where(r.placement)}", placement=r.placement)
            return
        exc = r.error
        if isinstance(exc, LockedError):
            # another launch of this cluster holds its lock (a controller that is still stopping): later
            lv.retry_at = self.clock() + 2 * float(self.settings.poll_s)
            return
        if isinstance(exc, (ProvisionFailed, NoCandidatesError, PreflightError)):
            # PreflightError: no cloud among the candidates can be used (plugin, credentials)
            why = _first_line(exc)
            if t.status is Status.RECOVERING and lv.rounds < self.recovery_rounds:
                self._end_run(t, None, "no resource")
                lv.rounds += 1
                wait = recovery.backoff_s(lv.rounds, self.rng)
                lv.retry_at = self.clock() + wait
                self.store.transition(job.job_id, t.task_index, Status.RECOVERING,
                                      f"no resource ({why}); recovery round {lv.rounds + 1} of "
                                      f"{self.recovery_rounds + 1} in {wait:.0f} s")
                return
            rounds = f" after {lv.rounds + 1} recovery rounds" if t.status is Status.RECOVERING else ""
            self._end(job, t, Status.FAILED_NO_RESOURCE, f"no resource{rounds}: {why}", teardown=True,
                      outcome="no resource")
            return
        if isinstance(exc, InputError):
            self._end(job, t, Status.FAILED_SETUP, f"the task cannot run as written: {_first_line(exc)}",
                      teardown=True, outcome="failed setup")
            return
        what = "cleanup failed (something may be left: `skyplan down " + (t.cluster or "") + "`)" \
            if isinstance(exc, CleanupError) else "launch failed"
        self._end(job, t, Status.FAILED_CONTROLLER, f"{what}: {_first_line(exc)}",
                  teardown=not isinstance(exc, CleanupError), outcome="controller error")

    def _torn_down(self, job: JobRecord, t: TaskRecord, lv: _Live, r: _Launched) -> None:
        after, lv.after_teardown = lv.after_teardown, ""
        if r.error is not None:
            self._end_run(t, t.placement, "cleanup failed")
            self.store.transition(job.job_id, t.task_index, Status.FAILED_CONTROLLER,
                                  f"tearing down {t.cluster} failed: {_first_line(r.error)}; "
                                  f"run `skyplan down {t.cluster}`")
            self._cancel_rest(job, t)
            return
        if after == "cancelled":
            self._end_run(t, t.placement, "cancelled")
            self.store.transition(job.job_id, t.task_index, Status.CANCELLED,
                                  f"cancelled by the user; {t.cluster} torn down")
        elif lv.final is not None:
            # the run is closed once its cluster is gone: a run still open after a restart
            # marks a teardown that may not have finished (``_sweep``)
            self._end_run(t, *lv.final)
        lv.final = None

    # --- endings ----------------------------------------------------------------------------

    def _end(self, job: JobRecord, t: TaskRecord, status: Status, reason: str, *, teardown: bool,
             outcome: str, placement: Placement | None = None, counters: Counters | None = None) -> None:
        """Record the task's end, then tear its cluster down. The end comes first (a
        controller killed in between finds the task ended); the run is closed with
        ``outcome`` once the teardown is done, so a restarted controller finds the
        teardown it must finish (``_sweep``)."""
        if teardown:
            self._lv(t).final = (placement, outcome)
        else:
            self._end_run(t, placement, outcome)
        fields: dict[str, Any] = {}
        if counters is not None:
            fields.update(recoveries=counters.recoveries, restarts_on_errors=counters.restarts_on_errors,
                          failures=counters.failures)
        self.store.transition(job.job_id, t.task_index, status, reason, **fields)
        if status is not Status.SUCCEEDED:
            self._cancel_rest(job, t)
        if teardown:
            self._teardown(job, t, after="final")

    def _cancel_rest(self, job: JobRecord, failed: TaskRecord) -> None:
        """The tasks after ``failed`` that have not started end CANCELLED (a pipeline stops)."""
        for t in job.tasks[failed.task_index + 1:]:
            if t.status is Status.PENDING:
                self.store.transition(job.job_id, t.task_index, Status.CANCELLED,
                                      f"task {failed.task_index}{f' ({failed.name})' if failed.name else ''} "
                                      f"did not succeed")

    def _fail_controller(self, job: JobRecord, exc: BaseException) -> None:
        fresh = self.store.job(job.job_id)
        for t in (fresh.tasks if fresh else ()):
            lv = self._live.get((t.job_id, t.task_index))
            if t.status not in TERMINAL and (lv is None or lv.action is None):
                self.store.transition(job.job_id, t.task_index, Status.FAILED_CONTROLLER,
                                      f"controller error: {type(exc).__name__}: {_first_line(exc)}")
                if t.status in ACTIVE:
                    self._lv(t).final = (t.placement, "controller error")
                    self._teardown(job, t, after="final")
                else:
                    self._end_run(t, t.placement, "controller error")

    def _sweep(self, unfinished: list[JobRecord]) -> None:
        """At start: a task that ended but whose run is still open was being torn down
        when the last controller stopped; its teardown is done again (it is idempotent).
        Looks at the unfinished jobs and the ``SWEEP_RECENT`` newest finished ones."""
        recent = [j for j in self.store.queue(limit=SWEEP_RECENT, include_finished=True)
                  if j.status in TERMINAL]
        for job in list(unfinished) + recent:
            ended = {t.task_index: t for t in job.tasks if t.status in TERMINAL}
            if not ended:
                continue
            for run in self.store.runs(job.job_id):
                t = ended.get(run.task_index)
                if run.outcome is not None or t is None or (t.job_id, t.task_index) in self._live:
                    continue
                lv = self._lv(t)
                from skyplan.jobs.logs import RunLogFile

                lv.log, lv.run_no = RunLogFile(run.log_path), run.run_no
                lv.final = (run.placement, f"{t.status.value.lower()} (torn down after a controller restart)")
                self._teardown(job, dataclasses.replace(t, cluster=t.cluster or run.cluster), after="final")

    def _cancel(self, job: JobRecord) -> None:
        for t in job.tasks:
            if t.status in TERMINAL:
                continue
            if t.status is Status.PENDING:
                self.store.transition(job.job_id, t.task_index, Status.CANCELLED,
                                      "cancelled by the user before it started")
                continue
            lv = self._lv(t)
            lv.cancel.set()
            lv.retry_at = None
            if t.status is not Status.CANCELLING:
                self.store.transition(job.job_id, t.task_index, Status.CANCELLING,
                                      "cancel requested" + (" (a launch is in flight: its cluster goes once it "
                                                            "returns)" if lv.action is not None else ""))
            if lv.action is None:
                if lv.log is None:
                    self._reopen_log(job, t, t.cluster or cluster_name(job.job_id, t.task_index))
                self._teardown(job, t, after="cancelled")

    # --- watching ---------------------------------------------------------------------------

    def _poll(self, jobs: dict[int, JobRecord]) -> None:
        """Check every RUNNING task that is due, all at once; judge those that answered."""
        now = self.clock()
        ex = self.executor
        for job in jobs.values():
            for t in job.tasks:
                lv = self._live.get((t.job_id, t.task_index))
                if t.status is not Status.RUNNING or lv is None or lv.action is not None or lv.check is not None \
                        or now < lv.next_check_at or job.cancel_requested:
                    continue
                cluster, runlog = t.cluster or cluster_name(t.job_id, t.task_index), lv.log

                def work(cluster: str = cluster, runlog: RunLog | None = runlog) -> tuple[Check, CloudSays | None]:
                    try:
                        c = ex.check(cluster)
                    except Exception as exc:
                        c = Check(self.clock(), "timeout", detail=_first_line(exc))
                    says = None
                    if detect.needs_cloud(c):
                        try:
                            says = ex.cloud_says(cluster)
                        except Exception:
                            says = CloudSays.UNKNOWN
                    if runlog is not None and c.phase != "timeout":
                        try:
                            ex.pump_logs(cluster, runlog)
                        except Exception:
                            pass
                    return c, says

                lv.check = self._checks.submit(work)
                lv.check.add_done_callback(lambda _f: self._wake.set())
        pending = [lv.check for lv in self._live.values() if lv.check is not None]
        if pending:
            cf.wait(pending, timeout=self.poll_wait_s)
        for (job_id, idx), lv in list(self._live.items()):
            if lv.check is None or not lv.check.done():
                continue
            check, says = lv.check.result()
            lv.check = None
            job = jobs.get(job_id)
            if job is None or lv.action is not None:
                continue
            t = job.tasks[idx]
            if t.status is not Status.RUNNING or job.cancel_requested:
                continue
            try:
                self._judge(job, t, lv, check, says)
            except Exception as exc:
                log.exception("job %s task %s", job_id, idx)
                self._fail_controller(job, exc)

    def _judge(self, job: JobRecord, t: TaskRecord, lv: _Live, check: Check, says: CloudSays | None) -> None:
        now = self.clock()
        lv.checks = [check] if check.phase in detect.HEALTHY_PHASES else lv.checks + [check]
        keep = max(8, int(self.settings.grace_checks) * 2)
        if len(lv.checks) > keep + 1:  # bounded; the streak's first check stays (the grace period counts from it)
            lv.checks = lv.checks[:1] + lv.checks[-keep:]
        v = detect.verdict(lv.checks, says, now, int(self.settings.grace_checks), float(self.settings.grace_s))
        lv.next_check_at = now + float(self.settings.poll_s)
        if v.outcome is detect.Outcome.HEALTHY:
            lv.checks, lv.noted = [], False
            return
        if v.outcome is detect.Outcome.SUSPECT:
            if not lv.noted:  # one event per streak of failed checks: what was seen, and why no recovery yet
                lv.noted = True
                self.store.transition(job.job_id, t.task_index, Status.RUNNING, v.reason)
            return
        lv.checks, lv.noted = [], False
        if v.outcome is detect.Outcome.SUCCEEDED:
            self._end(job, t, Status.SUCCEEDED, "the task exited 0", teardown=True, outcome="succeeded",
                      placement=t.placement)
            return
        policy = recovery.policy_for(self._task(t))
        if v.outcome is detect.Outcome.FAILED:
            failure = recovery.classify_exit(policy, v.exit_code, v.failed_phase)
            what = (f"the setup exited {v.exit_code}" if failure is Failure.SETUP
                    else f"the run exited {v.exit_code}")
        else:
            spot = t.placement is not None and t.placement.use_spot
            failure = Failure.PREEMPTED if spot else Failure.HARDWARE
            what = ("preempted: " if spot else "node lost: ") + v.reason
        counters = Counters(t.recoveries, t.restarts_on_errors, t.failures)
        decision = recovery.after_failure(policy, counters, failure, what)
        if isinstance(decision, Fail):
            self._end(job, t, decision.status, decision.reason, teardown=True, counters=decision.counters,
                      outcome=failure.value.lower(), placement=t.placement)
            return
        self._end_run(t, t.placement, failure.value.lower())
        c = decision.counters
        self.store.transition(job.job_id, t.task_index, Status.RECOVERING, decision.reason,
                              recoveries=c.recoveries, restarts_on_errors=c.restarts_on_errors, failures=c.failures)
        fresh = dataclasses.replace(t, status=Status.RECOVERING, recoveries=c.recoveries,
                                    restarts_on_errors=c.restarts_on_errors, failures=c.failures)
        lv.rounds = 0
        old_log, lv.log = lv.log, None
        self._launch(job, fresh, recovering=True, teardown_first=True,
                     last=t.placement if decision.avoid_last else None, old_log=old_log)
