"""The autoscaler: ceil(qps / target) clipped to the bounds, moved to only after the delays."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from skyplan.serve.autoscaler import ScalerState, autoscale, initial, wish
from skyplan.serve.config import ServiceConfig


def cfg(**kw) -> ServiceConfig:
    base = dict(port=8080, min_replicas=2, max_replicas=5, target_qps=10.0, upscale_delay_s=30.0,
                downscale_delay_s=120.0)
    base.update(kw)
    return ServiceConfig(**base)


def test_wish_is_ceil_of_qps_over_target_within_bounds():
    c = cfg()
    assert [wish(c, q) for q in (0, 5, 20, 20.0000000001, 21, 45, 1000)] == [2, 2, 2, 2, 3, 5, 5]
    assert wish(cfg(target_qps=None), 1000) == 2  # no target: min_replicas


def test_up_only_after_the_upscale_delay():
    c = cfg()
    s = initial(c)
    assert s == ScalerState(target=2)
    s = autoscale(c, 40, s, now=100)  # wish 4
    assert (s.target, s.up_since) == (2, 100)
    s = autoscale(c, 40, s, now=129)
    assert s.target == 2
    s = autoscale(c, 45, s, now=130)  # the wish persisted 30 s: move to the wish now (5)
    assert s == ScalerState(target=5)


def test_a_burst_shorter_than_the_delay_changes_nothing():
    c = cfg()
    s = autoscale(c, 40, initial(c), now=0)
    s = autoscale(c, 15, s, now=10)  # back at the target: the delay starts over
    assert s == ScalerState(target=2)
    s = autoscale(c, 40, s, now=20)
    s = autoscale(c, 40, s, now=49)
    assert s.target == 2


def test_down_only_after_the_downscale_delay_and_a_flip_restarts_it():
    c = cfg()
    s = ScalerState(target=5)
    s = autoscale(c, 0, s, now=0)
    assert (s.target, s.down_since) == (5, 0)
    s = autoscale(c, 100, s, now=60)  # wish above: the down delay is forgotten
    assert (s.target, s.down_since, s.up_since) == (5, None, None)  # already at max: no wish up either
    s = autoscale(c, 0, s, now=61)
    s = autoscale(c, 0, s, now=180)
    assert s.target == 5
    s = autoscale(c, 0, s, now=181)
    assert s == ScalerState(target=2)


def test_a_target_outside_new_bounds_moves_inside_at_once():
    assert autoscale(cfg(max_replicas=3), 1000, ScalerState(target=5, up_since=1), now=2) == ScalerState(target=3)
    assert autoscale(cfg(min_replicas=4), 0, ScalerState(target=2), now=2) == ScalerState(target=4)


@settings(max_examples=300, deadline=None)
@given(lo=st.integers(0, 4), span=st.integers(0, 4), qps=st.lists(st.floats(0, 500), min_size=1, max_size=30),
       target_qps=st.one_of(st.none(), st.floats(0.5, 50)), up=st.integers(0, 3), down=st.integers(0, 3))
def test_the_target_stays_within_bounds_and_moves_only_toward_a_persisting_wish(lo, span, qps, target_qps, up, down):
    c = cfg(min_replicas=lo, max_replicas=max(lo + span, 1), target_qps=target_qps, upscale_delay_s=up,
            downscale_delay_s=down)
    s = initial(c)
    for now, q in enumerate(qps):
        before = s
        s = autoscale(c, q, s, now=float(now))
        assert c.min_replicas <= s.target <= c.max_replicas
        if s.target != before.target:
            assert s.target == wish(c, q)
            # it moved: the wish had held since the start of its delay
            delay = up if s.target > before.target else down
            since = before.up_since if s.target > before.target else before.down_since
            assert (since if since is not None else now) <= now - delay
    if target_qps is not None and up == 0 and down == 0:
        assert s.target == min(max(math.ceil(qps[-1] / target_qps - 1e-9), c.min_replicas), c.max_replicas)
