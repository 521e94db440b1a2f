"""reconcile and order_spot: the seed-002 walk-through as decisions, rolling updates,
scale-down order, and hypothesis properties (invariants for any replica set; a
sequence of steps converges)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyplan.planner.candidates import Candidate
from skyplan.planner.plan import Plan
from skyplan.serve.config import ServiceConfig
from skyplan.serve.reconcile import Decision, Launch, order_spot, reconcile, split
from skyplan.serve.states import LIVE, ReplicaRecord, ReplicaStatus as S

R, P, PV, ST, NR, SD, F, PE = (S.READY, S.PENDING, S.PROVISIONING, S.STARTING, S.NOT_READY, S.SHUTTING_DOWN,
                               S.FAILED, S.PREEMPTED)

DYNAMIC = ServiceConfig(port=8081, min_replicas=2, max_replicas=3, target_qps=1.0, use_spot=True,
                        dynamic_fallback=True)
BASE = dataclasses.replace(DYNAMIC, dynamic_fallback=False, base_ondemand=1)
BOTH = dataclasses.replace(DYNAMIC, base_ondemand=1)


def rep(id: int, status: S, spot: bool = True, fallback: bool = False, version: int = 1,
        zone: str | None = None) -> ReplicaRecord:
    return ReplicaRecord(service="svc", id=id, version=version, status=status, use_spot=spot and not fallback,
                         cluster=f"serve-svc-{id}", fallback=fallback, cloud="gcp" if zone else None, zone=zone)


def od(id: int, status: S, version: int = 1) -> ReplicaRecord:
    return rep(id, status, spot=False, version=version)


def fb(id: int, status: S, version: int = 1) -> ReplicaRecord:
    return rep(id, status, fallback=True, version=version)


SPOT, OD, FB = Launch(True, 1), Launch(False, 1), Launch(False, 1, fallback=True)


def launches(d: Decision) -> Counter:
    return Counter(d.launch)


def drained(d: Decision) -> set[int]:
    return {i for i, _ in d.drain}


# --- seed 002's walk-through, one decision per row ------------------------------------

WALK = [
    # (cfg, replicas, spot_retry_at, launches, drains) ; now = 100
    # 1. nothing yet: 2 spot and, as none is READY, 2 on-demand fallbacks
    (DYNAMIC, [], None, {SPOT: 2, FB: 2}, set()),
    # spot is unavailable: the spot launches failed, retried later; the fallbacks serve
    (DYNAMIC, [rep(1, F), rep(2, F), fb(3, R), fb(4, R)], 160, {}, set()),
    # the fallback is kept while its spot replica provisions
    (DYNAMIC, [rep(5, PV), rep(6, PV), fb(3, R), fb(4, R)], None, {}, set()),
    # 2. spot returns: spot READY, the fallbacks are drained
    (DYNAMIC, [rep(5, R), rep(6, R), fb(3, R), fb(4, R)], None, {}, {3, 4}),
    (DYNAMIC, [rep(5, R), rep(6, ST), fb(3, R), fb(4, R)], None, {}, {4}),  # one READY: one fallback goes
    # 3. replica 5 preempted: one spot relaunched and one on-demand fallback stands in
    (DYNAMIC, [rep(5, PE), rep(6, R)], None, {SPOT: 1, FB: 1}, set()),
    # ... while spot retries later, the fallback alone is launched
    (DYNAMIC, [rep(5, PE), rep(6, R)], 160, {FB: 1}, set()),
    # 4. spot back: the fallback is scaled down (READY or not)
    (DYNAMIC, [rep(6, R), rep(7, R), fb(8, R)], None, {}, {8}),
    (DYNAMIC, [rep(6, R), rep(7, R), fb(8, PV)], None, {}, {8}),
    # base_ondemand_fallback_replicas: 1 -- one on-demand always, the rest spot, no stand-ins
    (BASE, [], None, {OD: 1, SPOT: 1}, set()),
    (BASE, [od(1, R), rep(2, F)], 160, {}, set()),
    (BASE, [od(1, R), rep(2, PE)], None, {SPOT: 1}, set()),
    (BASE, [od(1, R), rep(3, R), od(4, ST)], None, {}, {4}),
    # both: a base on-demand replica, and a fallback for the spot one while it is not READY
    (BOTH, [], None, {OD: 1, SPOT: 1, FB: 1}, set()),
    (BOTH, [od(1, R), rep(2, F), fb(3, R)], 160, {}, set()),
    (BOTH, [od(1, R), rep(4, R), fb(3, R)], None, {}, {3}),
]


@pytest.mark.parametrize("cfg, replicas, retry_at, want_launch, want_drain", WALK)
def test_seed_002_walk_through(cfg, replicas, retry_at, want_launch, want_drain):
    d = reconcile(cfg, 1, 2, replicas, now=100.0, spot_retry_at=retry_at)
    assert launches(d) == Counter(want_launch)
    assert drained(d) == want_drain
    assert all(reason for _, reason in d.drain)


def test_the_drain_reasons_say_why():
    d = reconcile(DYNAMIC, 1, 2, [rep(5, R), rep(6, R), fb(3, R)], now=0)
    assert d.drain == ((3, "spot replicas are READY again: this on-demand fallback is not needed"),)


# --- scale-down and rolling update ------------------------------------------------------

ONDEMAND = ServiceConfig(port=80, min_replicas=1, max_replicas=3, target_qps=1.0)


def test_scale_down_drains_non_ready_first_then_the_newest():
    reps = [od(1, R), od(2, ST), od(3, R), od(4, NR)]
    d = reconcile(ONDEMAND, 1, 1, reps, now=0)
    assert [i for i, _ in d.drain] == [4, 2, 3] and not d.launch
    assert all("scale down" in reason for _, reason in d.drain)


def apply(d: Decision, replicas: list[ReplicaRecord], version: int) -> list[ReplicaRecord]:
    """The decision carried out: drained replicas SHUTTING_DOWN, launches PENDING."""
    gone = drained(d)
    out = [dataclasses.replace(r, status=SD) if r.id in gone else r for r in replicas]
    nid = max((r.id for r in replicas), default=0)
    for launch in d.launch:
        nid += 1
        out.append(rep(nid, P, spot=launch.use_spot, fallback=launch.fallback, version=launch.version))
    return out


def world(replicas: list[ReplicaRecord], spot_ok: bool = True) -> list[ReplicaRecord]:
    """Time passes: leaving replicas are torn down; everything launching comes up (spot fails without spot)."""
    out = []
    for r in replicas:
        if r.status in (SD, F, PE):
            continue
        if r.status in LIVE and r.status is not R:
            r = dataclasses.replace(r, status=R if (spot_ok or not r.use_spot) else F)
        out.append(r)
    return out


def check_invariants(cfg: ServiceConfig, version: int, target: int, after: list[ReplicaRecord]) -> None:
    cap = cfg.max_replicas + cfg.max_surge
    live = [r for r in after if r.status in LIVE]
    assert sum(r.status is R for r in after) <= cap
    assert sum(not r.fallback for r in live) <= cap
    _, spot = split(cfg, target)
    ready_spot = sum(r.status is R and r.use_spot and not r.fallback and r.version == version for r in after)
    allowed = max(0, spot - ready_spot) if cfg.use_spot and cfg.dynamic_fallback else 0
    assert sum(r.fallback and r.version == version for r in live) <= allowed


@pytest.mark.parametrize("surge", [0, 1, 2])
def test_a_rolling_update_never_exceeds_the_cap_and_keeps_serving(surge):
    cfg = dataclasses.replace(ONDEMAND, max_surge=surge)
    reps = [od(1, R), od(2, R), od(3, R)]  # version 1, at max_replicas
    for _ in range(12):
        d = reconcile(cfg, 2, 3, reps, now=0)
        reps = apply(d, reps, 2)
        check_invariants(cfg, 2, 3, reps)
        live = [r for r in reps if r.status in LIVE]
        assert len(live) <= 3 + surge
        # old replicas leave only for READY new ones (without surge: one at a time, to make room)
        assert sum(r.status is R for r in reps) >= (3 if surge else 2)
        if d.empty:
            break
        reps = world(reps)
    assert d.empty and sorted((r.version, r.status) for r in reps) == [(2, R)] * 3


@pytest.mark.parametrize("spot_ok", [True, False])
def test_a_rolling_update_of_a_spot_service_with_fallback_stays_within_the_cap(spot_ok):
    # Found by bench/serve.py: from two READY old spot replicas an update launched one new spot
    # replica and two fallbacks (5 live, max 2 + surge 1). Old READY replicas serve meanwhile.
    cfg = ServiceConfig(port=80, min_replicas=1, max_replicas=2, target_qps=1.0, use_spot=True,
                        dynamic_fallback=True, max_surge=1)
    reps = [rep(1, R, spot=True), rep(2, R, spot=True)]
    retry_at = None if spot_ok else 1.0  # the controller's backoff after a spot launch found no capacity
    for _ in range(16):
        d = reconcile(cfg, 2, 2, reps, now=0, spot_retry_at=retry_at)
        reps = apply(d, reps, 2)
        check_invariants(cfg, 2, 2, reps)
        live = [r for r in reps if r.status in LIVE]
        if any(r.version == 1 for r in live):
            assert len(live) <= 3, live
        assert sum(r.status is R for r in reps) >= 2  # capacity kept throughout
        if d.empty and world(reps, spot_ok) == reps:
            break
        reps = world(reps, spot_ok)
    live = [r for r in reps if r.status in LIVE]
    assert all(r.version == 2 and r.status is R for r in live) and len(live) == 2
    assert all(r.fallback != spot_ok for r in live)  # spot when it can be had, else fallbacks


def test_an_old_replica_is_drained_only_when_a_new_one_is_ready():
    reps = [od(1, R), od(2, R), od(3, R), od(4, ST, version=2)]
    d = reconcile(dataclasses.replace(ONDEMAND, max_surge=1), 2, 3, reps, now=0)
    assert d.empty  # at the cap (3 + 1), the new one not READY yet
    reps[3] = od(4, R, version=2)
    d = reconcile(dataclasses.replace(ONDEMAND, max_surge=1), 2, 3, reps, now=0)
    assert [i for i, _ in d.drain] == [3] and d.launch == (Launch(False, 2),)
    assert "rolling update" in d.drain[0][1]


def test_a_set_over_the_cap_is_brought_under_it_in_flight_launches_first():
    # e.g. an update lowered max_replicas while three new replicas were launching
    cfg = dataclasses.replace(ONDEMAND, max_surge=0)
    reps = [od(1, R), od(2, R), od(3, R), od(4, PV, version=2), od(5, ST, version=2), od(6, PV, version=2)]
    d = reconcile(cfg, 2, 3, reps, now=0)
    assert drained(d) == {4, 5, 6} and not d.launch
    assert all("cap" in reason for _, reason in d.drain)
    check_invariants(cfg, 2, 3, apply(d, reps, 2))


# --- properties ---------------------------------------------------------------------

configs = st.builds(
    lambda lo, span, base, spot, dyn, surge: ServiceConfig(
        port=80, min_replicas=lo, max_replicas=max(1, lo + span), target_qps=1.0, use_spot=spot,
        base_ondemand=base, dynamic_fallback=dyn, max_surge=surge),
    st.integers(0, 4), st.integers(0, 3), st.integers(0, 4), st.booleans(), st.booleans(), st.integers(0, 2))


@st.composite
def replica_sets(draw):
    n = draw(st.integers(0, 12))
    out = []
    for i in range(1, n + 1):
        out.append(rep(i, draw(st.sampled_from(list(S))), spot=draw(st.booleans()), fallback=draw(st.booleans()),
                       version=draw(st.integers(1, 3))))
    return out


@settings(max_examples=500, deadline=None)
@given(cfg=configs, replicas=replica_sets(), version=st.integers(1, 3), target=st.integers(0, 8),
       retry=st.one_of(st.none(), st.floats(0, 200)))
def test_invariants_hold_for_any_replica_set(cfg, replicas, version, target, retry):
    d = reconcile(cfg, version, target, replicas, now=100.0, spot_retry_at=retry)
    ids = {r.id for r in replicas if r.status in LIVE}
    assert drained(d) <= ids and len(drained(d)) == len(d.drain)  # only live replicas, each once
    assert all(launch.version == version for launch in d.launch)
    assert all(not (launch.fallback and launch.use_spot) for launch in d.launch)
    if retry is not None and 100.0 < retry:
        assert not any(launch.use_spot for launch in d.launch)
    check_invariants(cfg, version, target, apply(d, replicas, version))


@settings(max_examples=300, deadline=None)
@given(cfg=configs, replicas=replica_sets(), version=st.integers(1, 3), target=st.integers(0, 8))
def test_a_sequence_of_steps_converges(cfg, replicas, version, target):
    reps = replicas
    for _ in range(3 * (cfg.max_replicas + 2) + 6):
        d = reconcile(cfg, version, target, reps, now=0)
        reps = apply(d, reps, version)
        check_invariants(cfg, version, target, reps)
        if d.empty and world(reps) == reps:
            break  # nothing to decide, nothing on its way
        reps = world(reps)
    assert d.empty, "no fixed point"
    want_od, want_spot = split(cfg, target)
    live = [r for r in reps if r.status in LIVE]
    assert all(r.version == version and r.status is R for r in live)
    assert Counter((r.use_spot, r.fallback) for r in live) == Counter(
        {k: v for k, v in {(False, False): want_od, (True, False): want_spot}.items() if v})


@settings(max_examples=100, deadline=None)
@given(cfg=configs.filter(lambda c: c.use_spot and c.dynamic_fallback), target=st.integers(0, 8))
def test_without_spot_the_fallbacks_hold_the_capacity(cfg, target):
    reps: list[ReplicaRecord] = []
    for _ in range(6):
        d = reconcile(cfg, 1, target, reps, now=0, spot_retry_at=None)
        reps = world(apply(d, reps, 1), spot_ok=False)
    want_od, want_spot = split(cfg, target)
    assert sum(r.status is R for r in reps) == want_od + want_spot  # every missing spot replica covered


# --- order_spot ---------------------------------------------------------------------


def cand(rank: int, zone: str, cost: float, region: str = "us-central1") -> Candidate:
    return Candidate(rank=rank, cloud="gcp", region=region, zone=zone, instance_type="n2-standard-2", use_spot=True,
                     vcpus=2, memory_gib=8, accelerators=(), hourly_price=cost, hourly_cost=cost)


def plan_of(*cands: Candidate) -> Plan:
    from skyplan.spec.models import Task

    return Plan(format_version=2, created_at="2026-12-02T00:00:00Z", task=Task(), task_sha256="0" * 64,
                catalog=None, candidates=cands)  # type: ignore[arg-type]


def zones(plan: Plan) -> list[str]:
    return [c.zone for c in plan.candidates]


def test_order_spot_spreads_among_equal_cost_and_keeps_the_cost_order():
    plan = plan_of(cand(1, "a", 1.0), cand(2, "b", 1.0), cand(3, "c", 1.0), cand(4, "d", 2.0))
    live = [rep(1, R, zone="a"), rep(2, PV, zone="a"), rep(3, R, zone="b"), rep(4, F, zone="c"),
            od(5, R)]
    out = order_spot(plan, live, {}, now=0)
    assert zones(out) == ["c", "b", "a", "d"]  # c has none live (the FAILED one is not), b one, a two
    assert [c.rank for c in out.candidates] == [1, 2, 3, 4]
    assert out.task is plan.task and zones(plan) == ["a", "b", "c", "d"]  # a new plan; the old one unchanged


def test_order_spot_puts_avoided_zones_last_until_they_expire():
    plan = plan_of(cand(1, "a", 1.0), cand(2, "b", 1.5), cand(3, "c", 2.0))
    assert zones(order_spot(plan, [], {"a"}, now=0)) == ["b", "c", "a"]
    assert zones(order_spot(plan, [], {"a": 50.0, "b": 500.0}, now=100)) == ["a", "c", "b"]
    assert zones(order_spot(plan, [], (), now=0)) == ["a", "b", "c"]
