"""Failover: pure logic over ranked candidates and a blocklist.

Nothing here touches Pulumi, the clock or the terminal. ``run_failover`` walks
the plan's candidates in rank order; for each one that no block covers it calls
``attempt`` (injected: the real one drives a Pulumi stack, tests pass fakes),
and turns each classified failure into a block as wide as its scope:

  capacity / unknown / timeout -> this zone, for this hardware and market
  quota (family)               -> this region, for every type of the quota family
                                  (VM family, EC2 bucket, GPU model) and market
  quota (region)               -> this region, for this hardware and market
  quota (cloud-wide)           -> every region of this cloud, for this hardware
  auth                         -> the whole cloud
  invalid                      -> stop: no later candidate can do better
  transient                    -> retry the same placement with backoff, then
                                  treat it as a zone failure

An unknown error is zone-scoped the first time. The same unknown error (same
code, same text once places and numbers are masked) in a second zone of the
region widens to the region, and in a second region to the cloud: a text no
classifier knows that repeats everywhere is about the account or the request,
not the place, and must not walk every zone of a cloud (see :func:`escalate`).

Which quota families a candidate draws on is cloud knowledge: ``families`` is
injected (the launch path passes the registry's ``quota_families``).

Rank order already puts every candidate of one ``ordered`` preference before
the next, so walking in rank order exhausts one preference before the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate


Families = Callable[[Candidate], frozenset[str]]
NO_FAMILIES: frozenset[str] = frozenset()


def no_families(c: Candidate) -> frozenset[str]:
    return NO_FAMILIES


@dataclass(frozen=True)
class Block:
    """A wildcard pattern over candidates; None matches anything.

    ``family``, when set, matches a candidate that draws on any of these quota
    families (the candidate's families are the cloud's ``quota_families``).
    """

    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    hardware: str | None = None
    use_spot: bool | None = None
    reason: str = ""
    family: frozenset[str] | None = None

    def covers(self, c: Candidate, families: frozenset[str] = NO_FAMILIES) -> bool:
        return (
            (self.cloud is None or self.cloud == c.cloud)
            and (self.region is None or self.region == c.region)
            and (self.zone is None or self.zone == c.zone)
            and (self.hardware is None or self.hardware == c.hardware)
            and (self.use_spot is None or self.use_spot == c.use_spot)
            and (self.family is None or not self.family.isdisjoint(families))
        )

    def describe(self) -> str:
        where = self.zone or self.region or (self.cloud and f"all of {self.cloud}") or "everything"
        what = f" for {self.hardware}" if self.hardware else ""
        if self.family:
            what += " for quota family " + "/".join(sorted(self.family))
        market = "" if self.use_spot is None else (" [spot]" if self.use_spot else " [on-demand]")
        return f"{where}{what}{market}"


@dataclass(frozen=True)
class Blocklist:
    """An immutable set of blocks; ``add`` returns a new blocklist."""

    blocks: tuple[Block, ...] = ()

    def covers(self, c: Candidate, families: frozenset[str] = NO_FAMILIES) -> Block | None:
        for b in self.blocks:
            if b.covers(c, families):
                return b
        return None

    def add(self, block: Block) -> "Blocklist":
        return Blocklist(self.blocks + (block,))


def block_for(c: Candidate, cls: Classification, families: frozenset[str] = NO_FAMILIES) -> Block | None:
    """The block a classified failure calls for; None means stop everything.

    ``families`` are the quota families ``c`` draws on (its cloud's ``quota_families``).
    A family quota blocks the family the message names; when the message names
    none (EC2's VcpuLimitExceeded), the families of the failing type. When it names
    one that our mapping does not give this type (a family spelled in a way the
    cloud's mapping misses), the type's own families are blocked with it, so its
    siblings are still covered. With no family known at all, it falls back to a
    region block for this hardware.
    """
    reason = f"{cls.code} ({cls.kind.value})"
    scope = cls.scope
    if cls.kind == Kind.INVALID or scope == Scope.ALL:
        return None
    # Credentials are the cloud's, so an auth failure blocks it, unless its classifier
    # says it is narrower (an ssh pool's host key or login is that host's, or that pool's).
    cloud_wide = cls.kind == Kind.AUTH and scope in (Scope.CLOUD, Scope.NONE)
    if cloud_wide or (scope == Scope.CLOUD and cls.kind != Kind.QUOTA):
        return Block(cloud=c.cloud, reason=reason)
    if scope == Scope.CLOUD:  # cloud-wide quota, e.g. GPUS_ALL_REGIONS
        return Block(cloud=c.cloud, hardware=c.hardware, use_spot=c.use_spot, reason=reason)
    if scope == Scope.FAMILY:
        named = frozenset({cls.family}) if cls.family else NO_FAMILIES
        family = named if named and named <= families else named | families
        if family:
            return Block(cloud=c.cloud, region=c.region, use_spot=c.use_spot, family=family, reason=reason)
        scope = Scope.REGION
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
    #: Set when the block is wider than the error's own scope, saying how and why,
    #: e.g. "region: same unknown error in us-central1-a and us-central1-b".
    widened: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How failover ended. ``chosen`` is set iff a placement came up."""

    chosen: Candidate | None
    attempts: tuple[Attempt, ...]
    stopped_by: Attempt | None = None  # the invalid-request attempt, if any
    skipped: int = 0  # candidates never tried because a block covered them
    blocklist: Blocklist = Blocklist()


#: Any token with a digit in it: counts, request ids, UUIDs, timestamps, zone and type names.
_MASK_NUMBERS = re.compile(r"[\w.:/-]*\d[\w.:/-]*")
_SPACES = re.compile(r"\s+")


def error_signature(c: Candidate, cls: Classification) -> tuple[str, str, str]:
    """What makes two failures "the same error": cloud, code and the text with the
    candidate's own zone, region and type masked, every token that holds a digit
    masked (request ids, UUIDs, counts, times), case and spacing folded."""
    text = cls.message or ""
    for own in (c.zone, c.region, c.instance_type):
        if own:
            text = text.replace(own, "<>")
    text = _SPACES.sub(" ", _MASK_NUMBERS.sub("#", text)).strip().lower()
    return (c.cloud, cls.code, text)


def escalate(history: Sequence[Attempt], c: Candidate, cls: Classification,
             block: Block) -> tuple[Block, str | None]:
    """Widen the block of an unknown error that repeats (pure; see the module docstring).

    Returns ``(block, why)``: ``block`` unchanged and ``why`` None unless an earlier
    attempt in ``history`` failed with the same unknown error (:func:`error_signature`)
    in another region of this cloud (-> the whole cloud) or in another zone of this
    region (-> the whole region).
    """
    if cls.kind != Kind.UNKNOWN:
        return block, None
    sig = error_signature(c, cls)
    same = [a for a in history
            if not a.ok and a.classification is not None and a.classification.kind == Kind.UNKNOWN
            and a.candidate.cloud == c.cloud and error_signature(a.candidate, a.classification) == sig]
    other_region = next((a for a in same if a.candidate.region != c.region), None)
    if other_region is not None:
        why = f"cloud: same unknown error in {other_region.candidate.region} and {c.region}"
        return Block(cloud=c.cloud, reason=block.reason), why
    # A zoneless cloud's region is its failover unit: a second failure there is the repeat.
    other_zone = next((a for a in same if a.candidate.zone != c.zone or c.zone is None), None)
    if other_zone is not None:
        places = (f"{other_zone.candidate.zone} and {c.zone}" if c.zone else f"twice in {c.region}")
        why = f"region: same unknown error {'in ' if c.zone else ''}{places}"
        return Block(cloud=c.cloud, region=c.region, reason=block.reason), why
    return block, None


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
    families: Families = no_families,
) -> Outcome:
    """Try candidates in rank order until one comes up.

    ``attempt(candidate, number)`` must return an AttemptResult and must have
    cleaned up after itself when it returns a failure. ``sleep`` is injected so
    tests run without waiting. ``families(candidate)`` gives the quota families
    a candidate draws on (its cloud's knowledge; none by default).
    """
    history: list[Attempt] = []
    skipped = 0
    number = 0
    for cand in candidates:
        fams = families(cand)
        covering = blocklist.covers(cand, fams)
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
            block = block_for(cand, cls, fams)
            widened = None
            if block is not None:
                block, widened = escalate(history, cand, cls, block)
            rec = Attempt(number, cand, False, cls, block, retry, res.detail, widened)
            history.append(rec)
            on_attempt(rec)
            if block is None:
                return Outcome(None, tuple(history), rec, skipped, blocklist)
            blocklist = blocklist.add(block)
            break
    return Outcome(None, tuple(history), None, skipped, blocklist)
