"""Failover: pure logic over ranked candidates and a blocklist.

Nothing here touches Pulumi, the clock or the terminal. ``run_failover`` walks
the plan's candidates in rank order; for each one that no block covers it calls
``attempt`` (injected: the real one drives a Pulumi stack, tests pass fakes),
and turns each classified failure into a block as wide as its scope:

  capacity / unknown / timeout -> this zone, for this hardware and market
  quota (region)               -> this region, for this hardware and market
  quota (cloud-wide)           -> every region of this cloud, for this hardware
  auth                         -> the whole cloud
  invalid                      -> stop: no later candidate can do better
  transient                    -> retry the same placement with backoff, then
                                  treat it as a zone failure

Rank order already puts every candidate of one ``ordered`` preference before
the next, so walking in rank order exhausts one preference before the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate


@dataclass(frozen=True)
class Block:
    """A wildcard pattern over candidates; None matches anything."""

    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    hardware: str | None = None
    use_spot: bool | None = None
    reason: str = ""

    def covers(self, c: Candidate) -> bool:
        return (
            (self.cloud is None or self.cloud == c.cloud)
            and (self.region is None or self.region == c.region)
            and (self.zone is None or self.zone == c.zone)
            and (self.hardware is None or self.hardware == c.hardware)
            and (self.use_spot is None or self.use_spot == c.use_spot)
        )

    def describe(self) -> str:
        where = self.zone or self.region or (self.cloud and f"all of {self.cloud}") or "everything"
        what = f" for {self.hardware}" if self.hardware else ""
        market = "" if self.use_spot is None else (" [spot]" if self.use_spot else " [on-demand]")
        return f"{where}{what}{market}"


@dataclass(frozen=True)
class Blocklist:
    """An immutable set of blocks; ``add`` returns a new blocklist."""

    blocks: tuple[Block, ...] = ()

    def covers(self, c: Candidate) -> Block | None:
        for b in self.blocks:
            if b.covers(c):
                return b
        return None

    def add(self, block: Block) -> "Blocklist":
        return Blocklist(self.blocks + (block,))


def block_for(c: Candidate, cls: Classification) -> Block | None:
    """The block a classified failure calls for; None means stop everything."""
    reason = f"{cls.code} ({cls.kind.value})"
    scope = cls.scope
    if cls.kind == Kind.INVALID or scope == Scope.ALL:
        return None
    if cls.kind == Kind.AUTH or (scope == Scope.CLOUD and cls.kind != Kind.QUOTA):
        return Block(cloud=c.cloud, reason=reason)
    if scope == Scope.CLOUD:  # cloud-wide quota, e.g. GPUS_ALL_REGIONS
        return Block(cloud=c.cloud, hardware=c.hardware, use_spot=c.use_spot, reason=reason)
    if scope == Scope.REGION:
        return Block(cloud=c.cloud, region=c.region, hardware=c.hardware, use_spot=c.use_spot, reason=reason)
    # ZONE, and NONE once transient retries are used up. A zoneless candidate
    # (Azure) blocks its region, which is the same set of candidates.
    return Block(cloud=c.cloud, region=c.region, zone=c.zone, hardware=c.hardware, use_spot=c.use_spot, reason=reason)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt at one candidate produced."""

    ok: bool
    classification: Classification | None = None
    detail: dict = field(default_factory=dict)  # e.g. stack name, outputs


@dataclass(frozen=True)
class Attempt:
    """One row of the attempt history."""

    number: int
    candidate: Candidate
    ok: bool
    classification: Classification | None
    block: Block | None
    retry: int = 0  # 0 for the first try at this placement
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How failover ended. ``chosen`` is set iff a placement came up."""

    chosen: Candidate | None
    attempts: tuple[Attempt, ...]
    stopped_by: Attempt | None = None  # the invalid-request attempt, if any
    skipped: int = 0  # candidates never tried because a block covered them
    blocklist: Blocklist = Blocklist()


@dataclass(frozen=True)
class Policy:
    transient_retries: int = 2
    backoff_s: float = 1.0  # doubled per retry
    max_attempts: int | None = None


def run_failover(
    candidates: Iterable[Candidate],
    attempt: Callable[[Candidate, int], AttemptResult],
    *,
    policy: Policy = Policy(),
    blocklist: Blocklist = Blocklist(),
    sleep: Callable[[float], None] = lambda s: None,
    on_attempt: Callable[[Attempt], None] = lambda a: None,
    on_skip: Callable[[Candidate, Block], None] = lambda c, b: None,
) -> Outcome:
    """Try candidates in rank order until one comes up.

    ``attempt(candidate, number)`` must return an AttemptResult and must have
    cleaned up after itself when it returns a failure. ``sleep`` is injected so
    tests run without waiting.
    """
    history: list[Attempt] = []
    skipped = 0
    number = 0
    for cand in candidates:
        covering = blocklist.covers(cand)
        if covering is not None:
            skipped += 1
            on_skip(cand, covering)
            continue
        retry = 0
        while True:
            if policy.max_attempts is not None and number >= policy.max_attempts:
                return Outcome(None, tuple(history), None, skipped, blocklist)
            number += 1
            res = attempt(cand, number)
            if res.ok:
                rec = Attempt(number, cand, True, None, None, retry, res.detail)
                history.append(rec)
                on_attempt(rec)
                return Outcome(cand, tuple(history), None, skipped, blocklist)
            cls = res.classification or Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", "")
            if cls.kind == Kind.TRANSIENT and retry < policy.transient_retries:
                rec = Attempt(number, cand, False, cls, None, retry, res.detail)
                history.append(rec)
                on_attempt(rec)
                sleep(policy.backoff_s * (2**retry))
                retry += 1
                continue
            block = block_for(cand, cls)
            rec = Attempt(number, cand, False, cls, block, retry, res.detail)
            history.append(rec)
            on_attempt(rec)
            if block is None:
                return Outcome(None, tuple(history), rec, skipped, blocklist)
            blocklist = blocklist.add(block)
            break
    return Outcome(None, tuple(history), None, skipped, blocklist)
