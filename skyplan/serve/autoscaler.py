"""The autoscaler: a pure function from the load balancer's qps to a replica target.

``autoscale(cfg, qps, state, now)`` returns the next ``ScalerState``. The wish
is ``ceil(qps / target_qps_per_replica)`` clipped to ``[min_replicas,
max_replicas]`` (``min_replicas`` without a target qps). The target moves to
the wish only once the wish has stayed above the target for
``upscale_delay_s`` (or below it for ``downscale_delay_s``): a burst shorter
than the delay changes nothing, and a wish that flips direction starts its
delay over. A target outside the bounds (a ``serve update`` changed them)
moves inside at once: that is the user's word, not a load reading.

The target counts the service's replicas proper; ``reconcile`` turns it into
launches and drains (spot split, fallback, rolling update) and never exceeds
``max_replicas`` + ``max_surge``. No I/O, no clock: ``now`` is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skyplan.serve.config import ServiceConfig


@dataclass(frozen=True)
class ScalerState:
    """The current target, and since when the wish has been above (``up_since``)
    or below (``down_since``) it; None: not currently."""

    target: int
    up_since: float | None = None
    down_since: float | None = None


def initial(cfg: ServiceConfig) -> ScalerState:
    """A new service starts at ``min_replicas``."""
    return ScalerState(target=cfg.min_replicas)


def wish(cfg: ServiceConfig, qps: float) -> int:
    """The replica count the load asks for now, within the bounds."""
    if cfg.target_qps is None or cfg.target_qps <= 0:
        return cfg.min_replicas
    # The small epsilon keeps 2.0000000001 requests per target at 2 (float noise from a rate).
    raw = math.ceil(max(0.0, float(qps)) / cfg.target_qps - 1e-9)
    return min(max(raw, cfg.min_replicas), cfg.max_replicas)


def autoscale(cfg: ServiceConfig, qps: float, state: ScalerState, now: float) -> ScalerState:
    """The next state. See the module docstring for the rules."""
    target = min(max(state.target, cfg.min_replicas), cfg.max_replicas)
    if target != state.target:
        return ScalerState(target=target)
    want = wish(cfg, qps)
    if want > target:
        since = state.up_since if state.up_since is not None else now
        if now - since >= cfg.upscale_delay_s:
            return ScalerState(target=want)
        return ScalerState(target=target, up_since=since)
    if want < target:
        since = state.down_since if state.down_since is not None else now
        if now - since >= cfg.downscale_delay_s:
            return ScalerState(target=want)
        return ScalerState(target=target, down_since=since)
    return ScalerState(target=target)
