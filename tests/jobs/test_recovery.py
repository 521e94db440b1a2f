"""Recovery decisions: which failure spends which budget, strategies, relaunch order, backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyplan.jobs.recovery import (
    Counters,
    Fail,
    Failure,
    RecoveryPolicy,
    Restart,
    after_failure,
    backoff_s,
    classify_exit,
    order_for_relaunch,
    policy_for,
)
from skyplan.jobs.states import Placement, Status
from skyplan.spec import load_text
from skyplan.testing.jobs_fakes import fake_plan

P, U, S, R = Failure.PREEMPTED, Failure.USER, Failure.SETUP, Failure.RECOVERABLE_EXIT


def run_story(policy: RecoveryPolicy, failures: list[Failure]) -> tuple[list[str], Counters]:
    """Feed failures in order until the task ends: 'restart' per relaunch, then the final status."""
    counters, out = Counters(), []
    for f in failures:
        d = after_failure(policy, counters, f)
        counters = d.counters
        if isinstance(d, Fail):
            out.append(d.status.value)
            break
        out.append("restart")
    return out, counters


def test_max_restarts_on_errors_two_with_a_preemption_between():
    # the story: user failure, preemption, user failure, user failure
    out, c = run_story(RecoveryPolicy(max_restarts_on_errors=2), [U, P, U, U])
    assert out == ["restart", "restart", "restart", "FAILED"]
    assert (c.restarts_on_errors, c.failures, c.recoveries) == (3, 4, 3)


def test_backoff_limit_two_fails_one_restart_earlier_because_the_eviction_counts():
    out, c = run_story(RecoveryPolicy(backoff_limit=2), [U, P, U, U])
    assert out == ["restart", "restart", "FAILED"]
    assert c.failures == 3


def test_both_budgets_the_first_spent_ends_it():
    assert run_story(RecoveryPolicy(max_restarts_on_errors=5, backoff_limit=1), [P, U])[0] == ["restart", "FAILED"]
    assert run_story(RecoveryPolicy(max_restarts_on_errors=0, backoff_limit=5), [P, U])[0] == ["restart", "FAILED"]


def test_preemptions_never_spend_max_restarts_on_errors():
    out, c = run_story(RecoveryPolicy(max_restarts_on_errors=0), [P] * 20)
    assert out == ["restart"] * 20 and c.restarts_on_errors == 0 and c.recoveries == 20


def test_a_user_failure_without_budgets_fails_at_once():
    d = after_failure(RecoveryPolicy(), Counters(), U, "exit code 3")
    assert isinstance(d, Fail) and d.status is Status.FAILED
    assert d.reason.startswith("exit code 3") and "max_restarts_on_errors" in d.reason


def test_recover_on_exit_codes_restart_without_counting():
    policy = RecoveryPolicy(recover_on_exit_codes=frozenset({137}), backoff_limit=0)
    assert classify_exit(policy, 137, "run") is R
    assert classify_exit(policy, 1, "run") is U
    assert classify_exit(policy, 137, "setup") is S
    out, c = run_story(policy, [R] * 10)
    assert out == ["restart"] * 10
    assert (c.restarts_on_errors, c.failures, c.recoveries) == (0, 0, 10)


def test_setup_failure_is_failed_setup_at_once():
    d = after_failure(RecoveryPolicy(max_restarts_on_errors=9, backoff_limit=9), Counters(), S)
    assert isinstance(d, Fail) and d.status is Status.FAILED_SETUP


def test_no_recovery_fails_on_preemption():
    d = after_failure(RecoveryPolicy(strategy="NO_RECOVERY"), Counters(), P, "preempted")
    assert isinstance(d, Fail) and d.status is Status.FAILED and "NO_RECOVERY" in d.reason
    d = after_failure(RecoveryPolicy(strategy="NO_RECOVERY", max_restarts_on_errors=1), Counters(), U)
    assert isinstance(d, Restart) and not d.avoid_last


def test_an_eviction_avoids_the_last_region_a_user_failure_does_not():
    assert after_failure(RecoveryPolicy(), Counters(), P).avoid_last
    assert after_failure(RecoveryPolicy(), Counters(), Failure.HARDWARE).avoid_last
    assert not after_failure(RecoveryPolicy(max_restarts_on_errors=1), Counters(), U).avoid_last


def test_policy_for_reads_the_task():
    t = load_text("resources:\n  job_recovery: {strategy: failover, max_restarts_on_errors: 2, "
                  "recover_on_exit_codes: [3], backoffLimit: 4}\n  any_of:\n    - use_spot: true\n    - {}\n")
    assert policy_for(t) == RecoveryPolicy("FAILOVER", 2, 4, frozenset({3}))
    assert policy_for(load_text("run: echo\n")) == RecoveryPolicy()
    assert policy_for(load_text("run: echo\n")).strategy == "EAGER_NEXT_REGION"


# --- relaunch order -------------------------------------------------------------------

def places(plan) -> list[tuple[str, str | None, bool]]:
    return [(c.region, c.zone, c.use_spot) for c in plan.candidates]


PLAN = fake_plan([("r1", "r1-a", True), ("r1", "r1-b", True), ("r2", "r2-a", True), ("r3", "r3-a", True),
                  ("r1", "r1-a", False), ("r2", "r2-a", False)])


def test_eager_next_region_puts_the_preempting_region_last_and_keeps_it():
    last = Placement("fake", "r1", "r1-a", "t", True)
    got = places(order_for_relaunch(PLAN, RecoveryPolicy("EAGER_NEXT_REGION"), last))
    assert got == [("r2", "r2-a", True), ("r3", "r3-a", True), ("r2", "r2-a", False),
                   ("r1", "r1-a", True), ("r1", "r1-b", True), ("r1", "r1-a", False)]
    assert sorted(got) == sorted(places(PLAN))


def test_failover_tries_the_same_region_first_its_zone_first():
    last = Placement("fake", "r1", "r1-b", "t", True)
    got = places(order_for_relaunch(PLAN, RecoveryPolicy("FAILOVER"), last))
    assert got[:3] == [("r1", "r1-b", True), ("r1", "r1-a", True), ("r1", "r1-a", False)]
    assert got[3:] == [("r2", "r2-a", True), ("r3", "r3-a", True), ("r2", "r2-a", False)]


def test_spot_first_again_after_an_on_demand_fallback():
    # the last run fell back to on-demand in r2; the next recovery's first choice is spot again
    last = Placement("fake", "r2", "r2-a", "t", False)
    got = order_for_relaunch(PLAN, RecoveryPolicy("EAGER_NEXT_REGION"), last)
    assert got.candidates[0].use_spot


def test_no_last_placement_or_no_recovery_keeps_the_plan():
    assert order_for_relaunch(PLAN, RecoveryPolicy(), None) is PLAN
    assert order_for_relaunch(PLAN, RecoveryPolicy("NO_RECOVERY"), Placement("fake", "r1", None, None, True)) is PLAN


@given(st.permutations([("r1", "a", True), ("r2", "b", True), ("r1", "c", False), ("r3", "d", False),
                        ("r2", "e", False)]),
       st.sampled_from(["r1", "r2", "r3", "r9"]), st.sampled_from(["EAGER_NEXT_REGION", "FAILOVER"]))
def test_relaunch_order_is_a_permutation_that_keeps_rank_order_within_groups(rows, region, strategy):
    plan = fake_plan(rows)
    got = order_for_relaunch(plan, RecoveryPolicy(strategy), Placement("fake", region, None, None, True))
    assert sorted(places(got)) == sorted(places(plan))
    others = [c for c in got.candidates if c.region != region]
    assert others == [c for c in plan.candidates if c.region != region]
    inside = [i for i, c in enumerate(got.candidates) if c.region == region]
    if inside and strategy == "EAGER_NEXT_REGION":
        assert inside == list(range(len(got.candidates) - len(inside), len(got.candidates)))
    if inside and strategy == "FAILOVER":
        assert inside == list(range(len(inside)))


# --- backoff ----------------------------------------------------------------------------

def test_backoff_is_exponential_with_full_jitter_and_capped():
    hi = random.Random(0)
    hi.uniform = lambda a, b: b  # the ceiling of each round
    assert [backoff_s(r, hi, base_s=10, cap_s=300) for r in (1, 2, 3, 4, 5, 6, 40)] == [10, 20, 40, 80, 160, 300, 300]
    draws = {round(backoff_s(3, random.Random(seed), base_s=10), 6) for seed in range(20)}
    assert len(draws) > 10 and all(0 <= d <= 40 for d in draws)


# --- properties -----------------------------------------------------------------------

FAILURES = st.lists(st.sampled_from(list(Failure)), max_size=40)
POLICIES = st.builds(RecoveryPolicy, st.sampled_from(["EAGER_NEXT_REGION", "FAILOVER", "NO_RECOVERY"]),
                     st.none() | st.integers(0, 5), st.none() | st.integers(0, 5),
                     st.frozensets(st.integers(1, 255), max_size=3))


@settings(max_examples=300)
@given(POLICIES, FAILURES)
def test_budgets_are_never_exceeded_and_an_end_is_final(policy: RecoveryPolicy, failures: list[Failure]):
    counters = Counters()
    for f in failures:
        d = after_failure(policy, counters, f)
        assert d.counters.restarts_on_errors >= counters.restarts_on_errors
        assert d.counters.failures >= counters.failures
        counters = d.counters
        if isinstance(d, Fail):
            assert d.status.terminal
            break
        # a restart never runs past a budget
        if policy.user_limit is not None:
            assert counters.restarts_on_errors <= policy.user_limit
        if policy.backoff_limit is not None:
            assert counters.failures <= policy.backoff_limit
        assert not (policy.strategy == "NO_RECOVERY" and f.eviction)
        assert f is not Failure.SETUP
    evictions = sum(1 for f in failures if f.eviction)
    assert counters.restarts_on_errors <= len(failures) - evictions


@given(st.integers(0, 100), st.integers(0, 2**32))
def test_backoff_stays_within_its_bounds(round_: int, seed: int):
    assert 0 <= backoff_s(round_, random.Random(seed)) <= 300


@pytest.mark.parametrize("strategy", ["EAGER_NEXT_REGION", "FAILOVER"])
def test_user_limit_defaults(strategy: str):
    assert RecoveryPolicy(strategy).user_limit == 0
    assert RecoveryPolicy(strategy, backoff_limit=3).user_limit is None
    assert RecoveryPolicy(strategy, max_restarts_on_errors=2, backoff_limit=3).user_limit == 2
