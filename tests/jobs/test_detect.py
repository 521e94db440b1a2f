"""Preemption detection: status checks, the cloud's word, and the grace period."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from skyplan.jobs.detect import Outcome, needs_cloud, verdict
from skyplan.jobs.executor import Check, CloudSays

RUN, GONE, RUNNING, UNKNOWN, STOPPED = Check(0, "run"), CloudSays.GONE, CloudSays.RUNNING, CloudSays.UNKNOWN, \
    CloudSays.STOPPED


def fails(*times: float, phase: str = "timeout") -> list[Check]:
    return [Check(t, phase) for t in times]


def test_a_running_task_is_healthy_whatever_the_cloud_says():
    assert verdict([RUN], GONE, 0).outcome is Outcome.HEALTHY
    assert verdict([Check(0, "starting")], None, 0).outcome is Outcome.HEALTHY
    assert not needs_cloud(RUN) and needs_cloud(Check(0, "timeout")) and needs_cloud(Check(0, "failed", 3))


def test_exit_zero_succeeds_a_non_zero_exit_fails():
    assert verdict([Check(0, "done", 0)], None, 0).outcome is Outcome.SUCCEEDED
    v = verdict([Check(0, "failed", 3, "run")], RUNNING, 0)
    assert (v.outcome, v.exit_code, v.failed_phase) == (Outcome.FAILED, 3, "run")
    assert "exit code 3" in v.reason


def test_a_failure_on_a_node_the_cloud_took_back_is_a_preemption():
    v = verdict([Check(0, "failed", 143, "run")], GONE, 0)
    assert v.outcome is Outcome.GONE and v.confirmed and "cloud confirmed" in v.reason


def test_a_timeout_while_the_cloud_says_running_is_no_recovery_however_long():
    checks = fails(*range(0, 3600, 5))
    v = verdict(checks, RUNNING, 3600, grace_checks=3, grace_s=60)
    assert v.outcome is Outcome.SUSPECT and "no recovery" in v.reason
    assert verdict(fails(0, 5, 10, 100, phase="lost"), RUNNING, 100).outcome is Outcome.SUSPECT


def test_the_cloud_confirming_gone_or_stopped_recovers_at_the_first_failed_check():
    for says in (GONE, STOPPED):
        v = verdict(fails(0, phase="lost"), says, 0)
        assert v.outcome is Outcome.GONE and v.confirmed
        assert "cloud confirmed" in v.reason and says.value in v.reason


def test_grace_needs_both_enough_checks_and_enough_time():
    # 3 failed checks but only 10 s: not yet
    assert verdict(fails(0, 5, 10), UNKNOWN, 10).outcome is Outcome.SUSPECT
    # 60 s but only 2 checks: not yet
    assert verdict(fails(0, 60), UNKNOWN, 60).outcome is Outcome.SUSPECT
    v = verdict(fails(0, 30, 60), UNKNOWN, 60)
    assert v.outcome is Outcome.GONE and not v.confirmed
    assert "grace period expired" in v.reason and "3 failed checks over 60 s" in v.reason
    # the cloud not asked counts as unknown
    assert verdict(fails(0, 30, 60), None, 60).outcome is Outcome.GONE


def test_a_healthy_check_restarts_the_grace_count():
    checks = fails(0, 30) + [Check(40, "run")] + fails(50, 70)
    assert verdict(checks, UNKNOWN, 120).outcome is Outcome.SUSPECT
    assert verdict(checks + fails(120), UNKNOWN, 120).outcome is Outcome.GONE


def test_no_task_on_a_node_that_is_up_is_gone_after_the_grace_period():
    # the cloud says running, but the node holds no task (a rebooted VM): running does not excuse it
    v = verdict(fails(0, 30, 60, phase="absent"), RUNNING, 60)
    assert v.outcome is Outcome.GONE and not v.confirmed and "holds no task" in v.reason
    assert verdict(fails(0, phase="absent"), RUNNING, 0).outcome is Outcome.SUSPECT


def test_no_check_yet():
    assert verdict([], None, 0).outcome is Outcome.SUSPECT


PHASES = st.sampled_from(["timeout", "lost", "absent", "stopped"])


@given(st.lists(st.tuples(st.floats(0, 10), PHASES), min_size=1, max_size=30), st.integers(1, 5),
       st.floats(0, 100))
def test_timeouts_with_the_cloud_running_never_recover(gaps, grace_checks, grace_s):
    t, checks = 0.0, []
    for gap, _ in gaps:
        t += gap
        checks.append(Check(t, "timeout"))
    assert verdict(checks, RUNNING, t, grace_checks, grace_s).outcome is Outcome.SUSPECT


@given(st.lists(st.tuples(st.floats(0, 40), PHASES), min_size=1, max_size=30), st.integers(1, 5),
       st.floats(0, 100), st.sampled_from([UNKNOWN, None]))
def test_unconfirmed_gone_only_after_grace(gaps, grace_checks, grace_s, says):
    t, checks = 0.0, []
    for gap, phase in gaps:
        t += gap
        checks.append(Check(t, phase))
    v = verdict(checks, says, t, grace_checks, grace_s)
    expired = len(checks) >= grace_checks and t - checks[0].at >= grace_s
    assert v.outcome is (Outcome.GONE if expired else Outcome.SUSPECT)
    assert not v.confirmed
