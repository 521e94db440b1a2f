"""The controller over a real Store (SQLite) and a scripted FakeExecutor: the issue's stories at
the decision level (the engine tests run the same stories through the real engine)."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from skyplan.jobs.controller import Controller, cluster_name
from skyplan.jobs.settings import JobsSettings
from skyplan.jobs.states import TERMINAL, Status
from skyplan.jobs.store import Store, TaskSubmission
from skyplan.spec import load_text, task_to_dict
from skyplan.testing.jobs_fakes import FakeExecutor, Run, cleanup_error, input_error

C0 = cluster_name(1, 0)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


class World:
    """A store, a fake executor, a controller, one clock."""

    def __init__(self, tmp: Path, **settings) -> None:
        self.clock = Clock()
        self.store = Store(f"sqlite:///{tmp / 'jobs.db'}", clock=self.clock)
        self.fx = FakeExecutor(clock=self.clock)
        base = dict(db_url="-", max_concurrent=16, idle_stop_s=600, poll_s=5, grace_checks=3, grace_s=60)
        self.settings = JobsSettings(**{**base, **settings})
        self.ctl = self.controller()

    def controller(self) -> Controller:
        return Controller(self.store, self.fx, self.settings, clock=self.clock, rng=random.Random(0))

    def submit(self, *tasks: str, name: str = "job") -> int:
        subs = []
        for text in tasks:
            t = load_text(text)
            subs.append(TaskSubmission(t.name, json.dumps(task_to_dict(t)), "1x fake"))
        return self.store.submit(name, subs, options={})

    def spin(self, n: int = 1, dt: float | None = None) -> None:
        """n passes, each followed by the pool's actions finishing and the clock moving on by poll_s."""
        for _ in range(n):
            self.ctl.step()
            assert self.ctl.wait_actions(10)
            self.clock.advance(self.settings.poll_s if dt is None else dt)

    def until(self, cond, limit: int = 200) -> None:
        for _ in range(limit):
            if cond():
                return
            self.spin()
        raise AssertionError(f"not reached in {limit} passes: {self.describe()}")

    def task(self, job_id: int = 1, idx: int = 0):
        return self.store.job(job_id).tasks[idx]

    def status(self, job_id: int = 1, idx: int = 0) -> Status:
        return self.task(job_id, idx).status

    def ended(self, job_id: int = 1) -> bool:
        return all(t.status in TERMINAL for t in self.store.job(job_id).tasks)

    def reasons(self, job_id: int = 1, idx: int = 0) -> list[tuple[str, str]]:
        return [(e.status.value, e.reason) for e in self.task(job_id, idx).events]

    def describe(self) -> str:
        return "; ".join(f"{j.job_id}:{[(t.status.value, t.events[-1].reason) for t in j.tasks]}"
                         for j in self.store.queue(include_finished=True))


@pytest.fixture
def w(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    world = World(tmp_path)
    yield world
    world.ctl.close()
    world.store.close()


def yaml(recovery: str = "", spot: bool = True, run: str = "echo hi") -> str:
    jr = f"\n  job_recovery: {recovery}" if recovery else ""
    return f"resources:\n  use_spot: {str(spot).lower()}{jr}\nrun: {run}\n"


# --- the plain path ------------------------------------------------------------------------

def test_a_job_runs_succeeds_and_its_cluster_goes_after_its_logs(w: World):
    w.fx.script(C0, Run(checks=2, end="done"))
    w.submit(yaml())
    w.until(lambda: w.ended())
    t = w.task()
    assert [s for s, _ in w.reasons()] == ["PENDING", "STARTING", "RUNNING", "SUCCEEDED"]
    assert t.cluster == C0 and t.placement.region == "r1" and t.recoveries == 0
    assert t.run_seconds > 0 and t.started_at is not None
    assert w.fx.up == {}
    ops = w.fx.ops(C0, ("launch", "pump_logs", "teardown"))
    assert ops[0] == "launch" and ops[-2:] == ["pump_logs", "teardown"]
    env = w.fx.launched[0][2]
    assert env == {"SKYPLAN_TASK_ID": t.task_id, "SKYPLAN_JOB_ID": "1", "SKYPLAN_NUM_RECOVERIES": "0"}
    w.spin()  # the final teardown is recorded: the run is closed once its cluster is gone
    runs = w.store.runs(1)
    assert [(r.run_no, r.outcome, r.placement.region) for r in runs] == [(1, "succeeded", "r1")]
    assert "fake: up on r1" in Path(runs[0].log_path).read_text()


def test_preempted_twice_recovers_elsewhere_with_the_same_task_id(w: World):
    # seed 003's BERT story at the decision level
    w.fx.script(C0, Run(2, "preempt"), Run(2, "preempt"), Run(2, "done"))
    w.submit(yaml())
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.SUCCEEDED and t.recoveries == 2 and t.restarts_on_errors == 0 and t.failures == 2
    regions = [p.region for _, p, _ in w.fx.launched]
    # EAGER_NEXT_REGION: never the region that just preempted (the one before is fair game again)
    assert regions == ["r1", "r2", "r1"]
    envs = [e for _, _, e in w.fx.launched]
    assert {e["SKYPLAN_TASK_ID"] for e in envs} == {t.task_id}
    assert [e["SKYPLAN_NUM_RECOVERIES"] for e in envs] == ["0", "1", "2"]
    assert w.store.job(1).recoveries == 2
    recovering = [r for s, r in w.reasons() if s == "RECOVERING"]
    assert len(recovering) == 2 and all("cloud confirmed" in r for r in recovering)
    w.spin()
    assert [r.outcome for r in w.store.runs(1)] == ["preempted", "preempted", "succeeded"]
    assert w.fx.up == {}
    # each relaunch tears the old cluster down first
    assert w.fx.ops(C0) == ["launch", "teardown", "launch", "teardown", "launch", "teardown"]


def test_eager_next_region_puts_the_preempting_region_last(w: World):
    w.fx.script(C0, Run(1, "preempt"), Run(1, "forever"))
    w.submit(yaml())
    w.until(lambda: len(w.fx.launched) == 2 and w.status() is Status.RUNNING)
    assert w.fx.plans[0] == ("r1/r1-a/spot", "r2/r2-a/spot", "r3/r3-a/spot")
    assert w.fx.plans[1] == ("r2/r2-a/spot", "r3/r3-a/spot", "r1/r1-a/spot")
    assert w.task().placement.region == "r2"


def test_failover_tries_the_same_region_first(w: World):
    w.fx.script(C0, Run(1, "preempt"), Run(1, "forever"))
    w.submit(yaml("FAILOVER"))
    w.until(lambda: len(w.fx.launched) == 2 and w.status() is Status.RUNNING)
    assert w.fx.launched[1][1].region == "r1"


# --- budgets ------------------------------------------------------------------------------

STORY = (Run(1, "exit:1"), Run(1, "preempt"), Run(1, "exit:1"), Run(1, "exit:1"), Run(1, "done"))


def test_max_restarts_on_errors_two_interleaved_with_a_preemption(w: World):
    w.fx.script(C0, *STORY)
    w.submit(yaml("{max_restarts_on_errors: 2}"))
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.FAILED
    # user failure, preemption, user failure: relaunched each time; the third user failure ends it
    assert len(w.fx.launched) == 4 and t.recoveries == 3
    assert (t.restarts_on_errors, t.failures) == (3, 4)
    assert "max_restarts_on_errors spent" in t.events[-1].reason
    assert w.fx.up == {}


def test_backoff_limit_two_fails_one_restart_earlier(w: World):
    w.fx.script(C0, *STORY)
    w.submit(yaml("{backoffLimit: 2}"))
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.FAILED and len(w.fx.launched) == 3 and t.failures == 3
    assert "backoff_limit spent" in t.events[-1].reason


def test_recover_on_exit_codes_restart_without_spending(w: World):
    w.fx.script(C0, Run(1, "exit:137"), Run(1, "exit:137"), Run(1, "done"))
    w.submit(yaml("{recover_on_exit_codes: [137]}"))
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.SUCCEEDED and t.recoveries == 2 and (t.restarts_on_errors, t.failures) == (0, 0)
    # not an eviction: the relaunch does not avoid the region
    assert [p.region for _, p, _ in w.fx.launched] == ["r1", "r1", "r1"]


def test_a_setup_failure_is_failed_setup_without_relaunch(w: World):
    w.fx.script(C0, Run(1, "setup:2"))
    w.submit(yaml("{max_restarts_on_errors: 5}"))
    w.until(lambda: w.ended())
    assert w.status() is Status.FAILED_SETUP and len(w.fx.launched) == 1 and w.fx.up == {}


def test_no_recovery_fails_on_preemption(w: World):
    w.fx.script(C0, Run(1, "preempt"))
    w.submit(yaml("NO_RECOVERY"))
    w.until(lambda: w.ended())
    assert w.status() is Status.FAILED and "NO_RECOVERY" in w.task().events[-1].reason
    assert len(w.fx.launched) == 1 and w.fx.up == {}


def test_an_on_demand_node_lost_is_a_hardware_failure_recovered_the_same(w: World):
    w.fx.script(C0, Run(1, "vanish"), Run(1, "done"))
    w.submit(yaml(spot=False))
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED
    assert any(s == "RECOVERING" and r.startswith("node lost") for s, r in w.reasons())
    w.spin()
    assert [r.outcome for r in w.store.runs(1)] == ["hardware", "succeeded"]


# --- detection ----------------------------------------------------------------------------

def test_a_check_timing_out_while_the_cloud_says_running_causes_no_recovery(w: World):
    w.fx.script(C0, Run(1, "timeout"))
    w.submit(yaml())
    w.spin(60)  # 300 s of timed-out checks, far past the grace period
    assert w.status() is Status.RUNNING and len(w.fx.launched) == 1
    assert w.fx.ops(C0, ("check",)).count("check") >= 50
    w.fx.finish(C0, "done")
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED and len(w.fx.launched) == 1


def test_an_unconfirmed_loss_recovers_only_after_the_grace_period(w: World):
    w.fx.script(C0, Run(1, "lost"), Run(1, "done"))
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    w.spin(2)  # one check fine, one lost
    seen = lambda: len(w.fx.ops(C0, ("check",)))  # noqa: E731
    w.until(lambda: w.status() is not Status.RUNNING)
    # 3 failed checks over >= 60 s at a 5 s poll: 13 lost checks, never fewer than 3
    assert seen() >= 1 + 13
    reason = next(r for s, r in w.reasons() if s == "RECOVERING")
    assert "grace period expired" in reason and "cloud cannot tell" in reason
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED


# --- no resource ----------------------------------------------------------------------------

def test_failed_no_resource_when_every_zone_is_exhausted(w: World):
    w.fx.exhausted |= {"r1", "r2", "r3"}
    w.submit(yaml())
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.FAILED_NO_RESOURCE and "no resource" in t.events[-1].reason
    assert w.fx.ops(C0) == ["launch", "teardown"]


def test_recovery_retries_rounds_with_backoff_then_runs(w: World):
    w.fx.script(C0, Run(3, "preempt"), Run(1, "done"))
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    w.fx.no_capacity = 2  # the relaunch after the preemption finds nothing, twice
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED
    rounds = [r for s, r in w.reasons() if s == "RECOVERING" and r.startswith("no resource")]
    assert len(rounds) == 2 and "round 2 of 4" in rounds[0]


def test_recovery_gives_up_after_its_rounds(w: World):
    w.fx.script(C0, Run(3, "preempt"))
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    w.fx.no_capacity = 100
    w.until(lambda: w.ended(), limit=2000)
    t = w.task()
    assert t.status is Status.FAILED_NO_RESOURCE and "after 4 recovery rounds" in t.events[-1].reason
    assert w.fx.ops(C0).count("launch") == 5 and w.fx.up == {}


def test_spot_falls_back_to_on_demand_and_goes_back_to_spot_at_the_next_recovery(w: World):
    w.fx.script(C0, Run(1, "preempt"), Run(1, "forever"))
    w.fx.exhausted |= {(r, True) for r in ("r1", "r2", "r3")}
    w.submit("resources:\n  any_of:\n    - use_spot: true\n    - use_spot: false\nrun: x\n")
    w.until(lambda: w.status() is Status.RUNNING)
    assert w.task().placement.use_spot is False
    w.fx.exhausted.clear()
    w.until(lambda: len(w.fx.launched) == 2 and w.status() is Status.RUNNING)
    assert w.task().placement.use_spot is True


def test_a_launch_that_cannot_run_the_task_is_failed_setup(w: World):
    w.fx.launch_errors[C0] = [input_error()]
    w.submit(yaml())
    w.until(lambda: w.ended())
    assert w.status() is Status.FAILED_SETUP and "workdir" in w.task().events[-1].reason


def test_no_usable_cloud_is_failed_no_resource(w: World):
    from skyplan.errors import PreflightError

    w.fx.launch_errors[C0] = [PreflightError("no credentials for any candidate's cloud")]
    w.submit(yaml())
    w.until(lambda: w.ended())
    assert w.status() is Status.FAILED_NO_RESOURCE and "credentials" in w.task().events[-1].reason


def test_a_locked_cluster_is_launched_again_later_without_spending_anything(w: World):
    from skyplan.errors import LockedError

    w.fx.launch_errors[C0] = [LockedError(f"{C0} is being launched by another process")]
    w.submit(yaml())
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.SUCCEEDED and (t.recoveries, t.failures) == (0, 0)
    assert w.fx.ops(C0) == ["launch", "launch", "teardown"]


def test_a_launch_whose_cleanup_failed_is_failed_controller(w: World):
    w.fx.launch_errors[C0] = [cleanup_error(C0)]
    w.submit(yaml())
    w.until(lambda: w.ended())
    assert w.status() is Status.FAILED_CONTROLLER and "skyplan down" in w.task().events[-1].reason


# --- cancel ---------------------------------------------------------------------------------

def test_cancel_during_recovering_leaves_nothing(w: World):
    w.fx.script(C0, Run(1, "preempt"), Run(1, "forever"))
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    w.fx.gate = threading.Event()  # the relaunch will hang until the gate opens
    for _ in range(10):
        w.ctl.step()
        w.clock.advance(5)
        if w.status() is Status.RECOVERING and w.fx.launching.wait(0.2):
            break
    assert w.status() is Status.RECOVERING
    assert w.store.request_cancel(1)
    w.ctl.step()
    assert w.status() is Status.CANCELLING  # journalled while the launch is still in flight
    w.fx.gate.set()
    w.until(lambda: w.ended())
    assert w.status() is Status.CANCELLED
    assert w.fx.up == {}
    # the teardown ran after the in-flight launch returned
    assert w.fx.ops(C0) == ["launch", "teardown", "launch", "teardown"]


def test_cancel_a_running_job_and_a_pending_one(w: World):
    w.fx.default_run = Run(1, "forever")
    w.settings = JobsSettings(**{**w.settings.__dict__, "max_concurrent": 1})
    w.ctl = w.controller()
    w.submit(yaml(), name="a")
    w.submit(yaml(), name="b")
    w.until(lambda: w.status(1) is Status.RUNNING)
    assert w.status(2) is Status.PENDING  # max_concurrent 1
    w.store.request_cancel(2)
    w.store.request_cancel(1)
    w.until(lambda: w.ended(1) and w.ended(2))
    assert (w.status(1), w.status(2)) == (Status.CANCELLED, Status.CANCELLED)
    assert w.fx.ops(cluster_name(2, 0)) == [] and w.fx.up == {}


def test_cancel_while_the_first_launch_is_in_flight(w: World):
    w.fx.gate = threading.Event()
    w.submit(yaml())
    w.ctl.step()
    assert w.fx.launching.wait(5) and w.status() is Status.STARTING
    w.store.request_cancel(1)
    w.ctl.step()
    assert w.status() is Status.CANCELLING
    w.fx.gate.set()
    w.until(lambda: w.ended())
    assert w.status() is Status.CANCELLED and w.fx.up == {}


# --- concurrency and pipelines --------------------------------------------------------------

def test_at_most_max_concurrent_jobs_hold_a_cluster(w: World):
    w.settings = JobsSettings(**{**w.settings.__dict__, "max_concurrent": 2})
    w.ctl = w.controller()
    w.fx.default_run = Run(3, "done")
    for n in range(5):
        w.submit(yaml(), name=f"j{n}")
    peak = 0
    for _ in range(100):
        w.spin()
        peak = max(peak, len(w.fx.up))
        if all(w.ended(j) for j in range(1, 6)):
            break
    assert peak == 2 and all(w.status(j) is Status.SUCCEEDED for j in range(1, 6))


def test_a_pipeline_runs_its_tasks_in_order(w: World):
    w.fx.default_run = Run(2, "done")
    w.submit("name: train\n" + yaml(), "name: eval\n" + yaml(spot=False), name="pipe")
    seen_both = False
    for _ in range(50):
        w.spin()
        seen_both |= len(w.fx.up) > 1
        if w.ended():
            break
    assert [t.status for t in w.store.job(1).tasks] == [Status.SUCCEEDED, Status.SUCCEEDED]
    assert not seen_both
    first_1 = next(i for i, (op, c) in enumerate(w.fx.calls) if c == cluster_name(1, 1))
    assert ("teardown", C0) in w.fx.calls[:first_1] or ("launch", C0) in w.fx.calls[:first_1]
    assert w.fx.launched[0][2]["SKYPLAN_TASK_ID"] != w.fx.launched[1][2]["SKYPLAN_TASK_ID"]


def test_a_pipeline_whose_first_task_fails_cancels_the_rest(w: World):
    w.fx.script(C0, Run(1, "exit:3"))
    w.submit("name: train\n" + yaml(), "name: eval\n" + yaml(), name="pipe")
    w.until(lambda: w.ended())
    job = w.store.job(1)
    assert [t.status for t in job.tasks] == [Status.FAILED, Status.CANCELLED]
    assert job.status is Status.FAILED
    assert "task 0 (train) did not succeed" in job.tasks[1].events[-1].reason
    assert w.fx.ops(cluster_name(1, 1)) == []


# --- restart ---------------------------------------------------------------------------------

def test_a_restarted_controller_checks_first_and_keeps_a_running_task(w: World):
    w.fx.script(C0, Run(4, "done"))
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    w.ctl.close()  # the old controller is gone (its in-memory state with it)
    w.ctl = w.controller()
    before = len(w.fx.calls)
    w.ctl.resume()
    # the first thing it did about the task was to check it; nothing was relaunched or torn down
    after = w.fx.calls[before:]
    assert after[0] == ("check", C0) and not {op for op, _ in after} & {"launch", "teardown"}
    assert w.status() is Status.RUNNING and len(w.fx.launched) == 1
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED and w.task().recoveries == 0 and len(w.fx.launched) == 1
    assert len(w.store.runs(1)) == 1  # the same run, continued


def test_a_restarted_controller_relaunches_a_task_left_starting(w: World):
    w.submit(yaml())
    w.store.transition(1, 0, Status.STARTING, "launching", cluster=C0)  # killed before the launch
    w.ctl.resume()
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED and w.task().recoveries == 0 and len(w.fx.launched) == 1


def test_a_restarted_controller_finishes_a_recovery_it_had_recorded(w: World):
    w.fx.script(C0, Run(1, "preempt"), Run(1, "done"))
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    # the old controller recorded RECOVERING then died before its teardown and relaunch
    w.fx.preempt(C0)
    w.store.transition(1, 0, Status.RECOVERING, "preempted", recoveries=1, failures=1)
    w.ctl.close()
    w.ctl = w.controller()
    w.until(lambda: w.ended())
    t = w.task()
    assert t.status is Status.SUCCEEDED and t.recoveries == 1 and t.failures == 1  # no budget spent twice
    assert w.fx.ops(C0) == ["launch", "teardown", "launch", "teardown"]


def test_a_restarted_controller_finishes_a_cancel(w: World):
    w.fx.default_run = Run(1, "forever")
    w.submit(yaml())
    w.until(lambda: w.status() is Status.RUNNING)
    w.store.request_cancel(1)
    w.store.transition(1, 0, Status.CANCELLING, "cancel requested")
    w.ctl.close()
    w.ctl = w.controller()
    w.until(lambda: w.ended())
    assert w.status() is Status.CANCELLED and w.fx.up == {}


def test_run_returns_once_idle(w: World):
    import time

    w.settings = JobsSettings(**{**w.settings.__dict__, "idle_stop_s": 0, "poll_s": 0.01})
    w.ctl = Controller(w.store, w.fx, w.settings, clock=time.time)  # the loop waits in real time
    w.submit(yaml())
    stop = threading.Event()
    threading.Timer(20, stop.set).start()
    w.ctl.run(stop)
    assert not stop.is_set() and w.ended()
    stop.set()


# --- properties -----------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ENDS = st.sampled_from(["done", "exit:1", "exit:137", "setup:1", "preempt", "vanish", "lost"])
RECOVERY = st.sampled_from(["", "NO_RECOVERY", "FAILOVER", "{max_restarts_on_errors: 1}", "{backoffLimit: 2}",
                            "{max_restarts_on_errors: 2, backoff_limit: 3, recover_on_exit_codes: [137]}"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), ENDS), min_size=1, max_size=6), RECOVERY, st.booleans())
def test_every_story_ends_within_its_budgets_and_leaves_nothing(tmp_path_factory, monkeypatch, runs, jr, cancel):
    from skyplan.jobs.recovery import policy_for

    tmp = tmp_path_factory.mktemp("story")
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp / "home"))
    w = World(tmp)
    try:
        w.fx.script(C0, *[Run(n, end) for n, end in runs], Run(1, "done"))
        w.submit(yaml(jr), "name: next\n" + yaml())
        for i in range(400):
            if cancel and i == 3:
                w.store.request_cancel(1)
            if w.ended():
                break
            w.spin()
        assert w.ended(), w.describe()
        t = w.task()
        assert w.fx.up == {}  # nothing left, whatever happened
        policy = policy_for(load_text(yaml(jr)))
        # budgets: never past a limit by more than the failure that ended the task
        if policy.user_limit is not None:
            assert t.restarts_on_errors <= policy.user_limit + 1
        if policy.backoff_limit is not None:
            assert t.failures <= policy.backoff_limit + 1
        assert len([x for x in w.fx.launched if x[0] == C0]) == t.recoveries + 1 or t.status is Status.CANCELLED
        # terminal states are absorbing: nothing is recorded after the first terminal event
        events = [e.status for e in t.events]
        first_end = next(i for i, s in enumerate(events) if s in TERMINAL)
        assert first_end == len(events) - 1
        # the next task ran only after this one succeeded
        second = w.task(1, 1).status
        if t.status is not Status.SUCCEEDED:
            assert second is Status.CANCELLED and not [x for x in w.fx.launched if x[0] == cluster_name(1, 1)]
        else:
            assert second in ((Status.SUCCEEDED, Status.CANCELLED) if cancel else (Status.SUCCEEDED,))
    finally:
        w.ctl.close()
        w.store.close()


def test_a_restarted_controller_finishes_a_teardown_left_half_done(w: World):
    w.fx.script(C0, Run(1, "done"))
    w.fx.teardown_errors[C0] = [KeyboardInterrupt()]  # stands for the controller killed mid-teardown
    w.submit(yaml())
    w.until(lambda: w.ended())
    assert w.status() is Status.SUCCEEDED and C0 in w.fx.up  # ended, but its cluster is still there
    w.ctl = w.controller()
    w.spin(2)
    assert w.fx.up == {} and w.status() is Status.SUCCEEDED
    assert [r.outcome for r in w.store.runs(1)] == ["succeeded (torn down after a controller restart)"]
    w.ctl = w.controller()
    w.spin(2)
    assert w.fx.ops(C0, ("teardown",)) == ["teardown", "teardown"]  # done once: nothing left to sweep


def test_a_streak_of_failed_checks_is_one_event_saying_why_there_is_no_recovery(w: World):
    w.fx.script(C0, Run(1, "timeout"))
    w.submit(yaml())
    w.spin(30)
    running = [r for s, r in w.reasons() if s == "RUNNING"]
    assert len(running) == 2 and "the cloud says the node is running: no recovery" in running[1]
