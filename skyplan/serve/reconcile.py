"""The reconciler: a pure function from the target and the replicas to a decision.

``reconcile(cfg, version, target, replicas, now, spot_retry_at)`` says which
replicas to launch (market, version, fallback or not) and which to drain (id,
reason). The controller journals and acts on it; nothing here does I/O.

Roles, for the current ``version``, with ``T`` the target clipped to
``[min_replicas, max_replicas]``:

* without ``use_spot``: ``T`` on-demand replicas;
* with ``use_spot``: ``min(base_ondemand, T)`` on-demand replicas (seed 002's
  ``base_ondemand_fallback_replicas``) and ``S = T - base`` spot replicas;
* with ``dynamic_fallback`` too: one on-demand *fallback* replica for each of
  the ``S`` spot replicas that is not READY (launching, preempted, failed, or
  waiting for ``spot_retry_at``). Once spot replicas are READY again the
  fallbacks they stand for are drained.

Replicas that are not live (FAILED, PREEMPTED, SHUTTING_DOWN) count as
missing: the controller tears them down, and a replacement is launched here.
Excess replicas of a role are drained non-READY first (NOT_READY, PENDING,
PROVISIONING, STARTING, then READY), newest first within a status.

Rolling update: replicas of older versions keep serving while the new version
comes up. Non-READY old replicas are drained at once; READY old replicas are
kept while the current version has fewer than ``T`` READY replicas, and one is
drained per new READY replica. Launches are bounded by the cap below, so an
update surges by at most ``max_surge``; with ``max_surge: 0`` an old replica is
drained first to make room (the only way to progress without surge).

INVARIANTS (after the decision is applied: drained replicas gone, launches
added; tested with hypothesis for any replica set):

* READY replicas <= ``max_replicas + max_surge``;
* live non-fallback replicas <= ``max_replicas + max_surge``;
* live fallback replicas <= ``S`` - READY spot replicas of the current version;
* while replicas of an older version are live (a rolling update), every live
  replica, fallbacks included, <= ``max_replicas + max_surge`` (given a set
  within it). Outside an update a fallback stands in for a spot replica that
  is not READY, so launching spot and fallback replicas may together pass it
  (seed 002 shows four replicas with ``max_replicas: 3``); READY ones never do;
* no spot launch while ``now < spot_retry_at``.

``order_spot(plan, replicas, avoid_zones, now)`` reorders a spot replica's
candidates: zones to avoid (recently preempted or failed) last, and among
candidates of equal cost the zones with fewer live spot replicas first (spread).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skyplan.serve.config import ServiceConfig
from skyplan.serve.states import LIVE, ReplicaRecord, ReplicaStatus


@dataclass(frozen=True)
class Launch:
    """One replica to launch: its market, the version it runs, and whether it is a
    dynamic on-demand fallback (always on-demand)."""

    use_spot: bool
    version: int
    fallback: bool = False


@dataclass(frozen=True)
class Decision:
    launch: tuple[Launch, ...] = ()
    drain: tuple[tuple[int, str], ...] = ()  # (replica id, reason), in the order to drain

    @property
    def empty(self) -> bool:
        return not self.launch and not self.drain


#: Which replica of a group goes first when some must go.
_DRAIN_RANK = {ReplicaStatus.NOT_READY: 0, ReplicaStatus.PENDING: 1, ReplicaStatus.PROVISIONING: 2,
               ReplicaStatus.STARTING: 3, ReplicaStatus.READY: 4}


def _drain_key(r: ReplicaRecord) -> tuple[int, int]:
    return (_DRAIN_RANK.get(r.status, 0), -r.id)


def _ready(r: ReplicaRecord) -> bool:
    return r.status is ReplicaStatus.READY


def split(cfg: ServiceConfig, target: int) -> tuple[int, int]:
    """(on-demand, spot) replicas proper for ``target`` (fallbacks aside)."""
    t = min(max(int(target), cfg.min_replicas), cfg.max_replicas)
    if not cfg.use_spot:
        return t, 0
    base = min(max(cfg.base_ondemand, 0), t)
    return base, t - base


def reconcile(cfg: ServiceConfig, version: int, target: int, replicas: Sequence[ReplicaRecord], now: float,
              spot_retry_at: float | None = None) -> Decision:
    """What to launch and drain so that the replicas meet ``target``. See the module docstring."""
    want_od, want_spot = split(cfg, target)
    t = want_od + want_spot
    cap = cfg.max_replicas + max(cfg.max_surge, 0)
    drain: dict[int, str] = {}

    def trim(group: list[ReplicaRecord], keep: int, reason: str) -> list[ReplicaRecord]:
        """Drain all but ``keep`` of ``group``; the kept ones."""
        group = [r for r in group if r.id not in drain]
        ordered = sorted(group, key=_drain_key)
        for r in ordered[:max(0, len(group) - keep)]:
            drain[r.id] = reason
        return [r for r in group if r.id not in drain]

    live = [r for r in replicas if r.status in LIVE]
    cur = [r for r in live if r.version == version]
    old = [r for r in live if r.version != version]

    # 1. the current version's roles
    spot = trim([r for r in cur if r.use_spot and not r.fallback], want_spot,
                f"scale down: {want_spot} spot replica(s) wanted")
    od = trim([r for r in cur if not r.use_spot and not r.fallback], want_od,
              f"scale down: {want_od} on-demand replica(s) wanted")
    dynamic = cfg.use_spot and cfg.dynamic_fallback
    want_fb = max(0, want_spot - sum(map(_ready, spot))) if dynamic else 0
    fb = trim([r for r in cur if r.fallback], want_fb,
              "spot replicas are READY again: this on-demand fallback is not needed" if dynamic
              else f"version {version} has no dynamic on-demand fallback")

    # 2. older versions serve until the current one has T READY replicas
    ready_cur = sum(map(_ready, spot + od + fb))
    trim([r for r in old if not _ready(r)], 0, f"rolling update: replaced by version {version}")
    old_kept = trim([r for r in old if _ready(r)], max(0, t - ready_cur),
                    f"rolling update: version {version} replicas are READY")

    # 3. the cap on replicas proper (any input: a state from before a smaller max_replicas)
    proper = [r for r in spot + od + old_kept if not r.fallback and r.id not in drain]
    over = len(proper) - cap
    if over > 0:
        ordered = sorted(proper, key=lambda r: (_DRAIN_RANK.get(r.status, 0), r.version == version, -r.id))
        for r in ordered[:over]:
            drain[r.id] = f"over the replica cap (max_replicas + max_surge = {cap})"
    spot = [r for r in spot if r.id not in drain]
    od = [r for r in od if r.id not in drain]
    old_kept = [r for r in old_kept if r.id not in drain]
    room = cap - sum(1 for r in spot + od + old_kept if not r.fallback)

    need_od = max(0, want_od - len(od))
    spot_ok = spot_retry_at is None or now >= spot_retry_at
    need_spot = max(0, want_spot - len(spot)) if spot_ok else 0
    # Without surge a full service cannot launch before it drains: make room with one old replica,
    # once nothing of the current version is on its way (one at a time).
    in_flight = any(not _ready(r) for r in spot + od)
    if room <= 0 and need_od + need_spot > 0 and old_kept and not in_flight and over <= 0:
        r = sorted(old_kept, key=_drain_key)[0]
        drain[r.id] = f"rolling update: making room for a version {version} replica (no surge)"
        if not r.fallback:
            room += 1

    launches: list[Launch] = []
    for n, use_spot in ((need_od, False), (need_spot, True)):
        k = max(0, min(n, room))
        launches += [Launch(use_spot=use_spot, version=version)] * k
        room -= k

    # 4. fallbacks: recounted, as the cap may have drained a READY spot replica
    ready_spot = sum(1 for r in spot if _ready(r))
    want_fb = max(0, want_spot - ready_spot) if dynamic else 0
    fb = [r for r in fb if r.id not in drain]
    n_fb = max(0, want_fb - len(fb))
    if old_kept:
        # A rolling update: the old READY replicas still serve, so a fallback is launched only
        # within the cap with every live replica counted (fallbacks too): the update never runs
        # more than max_replicas + max_surge, and each READY fallback still lets one old replica go.
        n_fb = min(n_fb, max(0, room - len(fb)))
    launches += [Launch(use_spot=False, version=version, fallback=True)] * n_fb
    return Decision(launch=tuple(launches), drain=tuple(drain.items()))


def _where(c: Any) -> str:
    return f"{c.cloud}/{c.zone or c.region}"


def _avoided(c: Any, avoid_zones: Collection[str] | Mapping[str, Any], now: float) -> bool:
    for key in (c.zone, c.region) if c.zone is None else (c.zone,):
        if key is None or key not in avoid_zones:
            continue
        until = avoid_zones[key] if isinstance(avoid_zones, Mapping) else None
        # A mapping gives when the avoidance ends (None or a number); a plain set avoids for good.
        if until is None or not isinstance(until, (int, float)) or until > now:
            return True
    return False


def order_spot(plan: Any, replicas: Sequence[ReplicaRecord], avoid_zones: Collection[str] | Mapping[str, Any],
               now: float) -> Any:
    """``plan`` (a ``skyplan.planner.plan.Plan``) with its candidates reordered for a
    spot replica: candidates in ``avoid_zones`` (zone names, or for zone-less clouds
    region names; a mapping may give each one's expiry time, compared with ``now``)
    go last; within a run of candidates of equal cost (and preference), those in a
    zone with fewer live spot replicas go first, spreading the service; otherwise
    the planner's order stays. Ranks are renumbered from the first one's."""
    cands = list(plan.candidates)
    if not cands:
        return plan
    spread = Counter(f"{r.cloud}/{r.zone or r.region}" for r in replicas
                     if r.status in LIVE and r.use_spot and r.cloud and (r.zone or r.region))
    kept = [c for c in cands if not _avoided(c, avoid_zones, now)]
    avoided = [c for c in cands if _avoided(c, avoid_zones, now)]
    out: list[Any] = []
    for group in (kept, avoided):
        run: list[Any] = []
        for c in group + [None]:
            if run and (c is None or (c.hourly_cost, c.preference) != (run[0].hourly_cost, run[0].preference)):
                out += sorted(run, key=lambda x: spread[_where(x)])  # stable: the planner's order within
                run = []
            if c is not None:
                run.append(c)
    first = cands[0].rank
    out = [dataclasses.replace(c, rank=first + i) if c.rank != first + i else c for i, c in enumerate(out)]
    return dataclasses.replace(plan, candidates=tuple(out))
