"""Enumerate and rank every feasible placement for a task.

A placement is cloud x region x zone x instance type x market (spot or
on-demand). Unlike SkyPilot, which keeps only the cheapest type per cloud, every
satisfying instance type is expanded, so failover can reach the next-cheapest.

Ranking:
  * sets and ``any_of`` rank by cost;
  * lists and ``ordered`` rank by preference index first, then cost;
  * ties break on (cloud, region, zone, instance type, market) so the order is
    deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from skyplan.catalog.model import Offer
from skyplan.clouds import registry
from skyplan.contract import count
from skyplan.errors import NoCandidatesError
from skyplan.spec.models import Accelerator, Preference, Quantity, ResourceRequest, Task

#: Used when a request names no hardware at all: a small general-purpose VM.
DEFAULT_CPUS = Quantity(4, at_least=True)
#: The explain step for ``Offer.undersized``: GPUs attached to a host smaller
#: than the default for them, dropped unless the request sizes the host.
HOST_SIZE_STEP = "GPU host of default size"


@dataclass(frozen=True)
class RecentFailure:
    """A capacity or quota failure the capacity memory holds for a placement
    (``skyplan.provision.memory``): shown, and ranked last, never blocked.
    ``at`` and ``expires_at`` are ISO-8601 UTC timestamps."""

    kind: str  # "capacity" | "quota"
    at: str
    expires_at: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "at": self.at, "expires_at": self.expires_at}

    @classmethod
    def from_json(cls, d: dict | None) -> "RecentFailure | None":
        return None if not d else cls(kind=str(d["kind"]), at=str(d["at"]), expires_at=str(d["expires_at"]))


@dataclass(frozen=True)
class Candidate:
    """One ranked placement. The first candidate of a plan is the chosen one."""

    rank: int
    cloud: str
    region: str
    zone: str | None
    instance_type: str
    use_spot: bool
    vcpus: float
    memory_gib: float
    accelerators: tuple[tuple[str, float], ...]
    hourly_price: float  # per node
    hourly_cost: float  # price x num_nodes
    #: (entry index, accelerator index) for ordered requests; (0, 0) otherwise.
    #: Failover exhausts one preference before the next.
    preference: tuple[int, int] = field(default=(0, 0), compare=False)
    #: What is provisioned besides the placement, resolved from the any_of /
    #: ordered entry this candidate came from (base fields merged with the
    #: entry's own), so an entry's disk, ports and labels are never replaced
    #: by another entry's. ``disk_size`` is GiB, None for the cloud's default;
    #: ``labels`` is a tuple of (key, value) pairs so the value stays immutable.
    disk_size: int | None = None
    ports: tuple[int, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    #: Set when the capacity memory holds a recent failure for this placement
    #: (the candidate is then ranked after the others of its preference).
    recent_failure: RecentFailure | None = field(default=None, compare=False)

    @property
    def hardware(self) -> str:
        """What a capacity or quota error is about: the accelerators, else the type."""
        if self.accelerators:
            return ",".join(f"{n}:{_num(c)}" for n, c in self.accelerators)
        return self.instance_type

    @property
    def location(self) -> str:
        return f"{self.region}/{self.zone}" if self.zone else self.region

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "cloud": self.cloud,
            "region": self.region,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "use_spot": self.use_spot,
            "vcpus": count(self.vcpus),
            "memory_gib": self.memory_gib,
            "accelerators": {n: count(c) for n, c in self.accelerators},
            "hourly_price": self.hourly_price,
            "hourly_cost": self.hourly_cost,
            "disk_size": self.disk_size,
            "ports": list(self.ports),
            "labels": {k: v for k, v in self.labels},
            "recent_failure": self.recent_failure.to_json() if self.recent_failure else None,
        }

    @classmethod
    def from_json(cls, d: dict, preference: tuple[int, int] = (0, 0)) -> "Candidate":
        return cls(
            rank=int(d["rank"]),
            cloud=d["cloud"],
            region=d["region"],
            zone=d.get("zone"),
            instance_type=d["instance_type"],
            use_spot=bool(d["use_spot"]),
            vcpus=float(d["vcpus"]),
            memory_gib=float(d["memory_gib"]),
            accelerators=tuple((str(k), float(v)) for k, v in d.get("accelerators", {}).items()),
            hourly_price=float(d["hourly_price"]),
            hourly_cost=float(d["hourly_cost"]),
            preference=preference,
            disk_size=None if d.get("disk_size") is None else int(d["disk_size"]),
            ports=tuple(int(p) for p in d.get("ports", ())),
            labels=tuple((str(k), str(v)) for k, v in d.get("labels", {}).items()),
            recent_failure=RecentFailure.from_json(d.get("recent_failure")),
        )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass
class ExplainStep:
    """One constraint and how many candidates it removed."""

    constraint: str
    removed: int
    remaining: int


@dataclass
class Explanation:
    steps: list[ExplainStep] = field(default_factory=list)


class OfferSource:
    """What the planner needs from a catalog (skyplan.catalog.Catalog satisfies it)."""

    def offers(self, **kwargs) -> list[Offer]:  # pragma: no cover - protocol
        raise NotImplementedError


def _clouds_for(req: ResourceRequest) -> tuple[str, ...]:
    if req.cloud:
        return (req.cloud,)
    return registry.default_clouds()


def _own_offers(cloud: str | None) -> tuple[Offer, ...] | None:
    """The offers of a cloud outside the catalog (it gives them itself); None otherwise."""
    c = registry.find(cloud)
    return c.own_offers() if c is not None and not c.capabilities.from_catalog else None


def _runs_here(cloud: str | None) -> bool:
    c = registry.find(cloud)
    return c is not None and c.capabilities.runs_here


def _query(catalog, req: ResourceRequest, accel: Accelerator | None) -> list[Offer]:
    out: list[Offer] = []
    clouds = []
    for name in _clouds_for(req):
        own = _own_offers(name)
        if own is None:
            clouds.append(name)
        else:
            out.extend(o for o in own if _location_ok(o, req) and _accel_ok(o, accel) and _type_ok(o, req))
    if clouds:
        _, cpus, mem = _hardware_filter(req, accel)
        kw = {}
        if getattr(catalog, "supports_bounds", False):
            # Bounds let the catalog skip non-matching rows before building Offers.
            if cpus is not None:
                kw["min_vcpus"] = cpus.value
                kw["max_vcpus"] = None if cpus.at_least else cpus.value
            if mem is not None:
                kw["min_memory_gib"] = mem.value
                kw["max_memory_gib"] = None if mem.at_least else mem.value
        out.extend(
            catalog.offers(
                clouds=clouds,
                region=req.region,
                zone=req.zone,
                instance_type=req.instance_type,
                accelerator=accel.name if accel else None,
                accelerator_count=accel.count if accel else None,
                cpu_only=accel is None and req.instance_type is None,
                **kw,
            )
        )
    return out


def _location_ok(o: Offer, req: ResourceRequest) -> bool:
    return (req.region is None or req.region == o.region) and (req.zone is None or req.zone == o.zone)


def _type_ok(o: Offer, req: ResourceRequest) -> bool:
    return req.instance_type is None or req.instance_type == o.instance_type


def _accel_ok(o: Offer, accel: Accelerator | None) -> bool:
    if accel is None:
        return True
    return (
        o.accelerator is not None
        and o.accelerator.lower() == accel.name.lower()
        and abs(o.accelerator_count - accel.count) < 1e-9
    )


def _hardware_filter(req: ResourceRequest, accel: Accelerator | None):
    cpus = req.cpus
    if cpus is None and req.memory is None and accel is None and req.instance_type is None and not _runs_here(req.cloud):
        # This machine is what it is; the default size applies to clouds only.
        cpus = DEFAULT_CPUS
    mem = req.memory
    sized = _sizes_host(req)

    def ok(o: Offer) -> bool:
        return ((cpus is None or cpus.admits(o.vcpus)) and (mem is None or mem.admits(o.memory_gib))
                and (sized or not o.undersized))

    return ok, cpus, mem


def _sizes_host(req: ResourceRequest) -> bool:
    """Whether the request sizes the host itself. A request that does not is
    never given a host smaller than the default for the GPUs attached to it
    (``Offer.undersized``, which each cloud's catalog mapping sets)."""
    return req.cpus is not None or req.memory is not None or req.instance_type is not None


def _alternatives(req: ResourceRequest) -> list[tuple[int, Accelerator | None]]:
    if not req.accelerators:
        return [(0, None)]
    ordered = req.accelerator_preference == Preference.ORDERED
    return [(i if ordered else 0, a) for i, a in enumerate(req.accelerators)]


def enumerate_candidates(task: Task, catalog) -> list[Candidate]:
    """Every feasible placement for ``task``, ranked. Raises NoCandidatesError when empty."""
    num_nodes = max(1, int(task.num_nodes or 1))
    ordered_entries = task.resources.preference == Preference.ORDERED
    best: dict[tuple, Candidate] = {}
    for ei, req in enumerate(task.resources.candidates):
        entry_pref = ei if ordered_entries else 0
        for ai, accel in _alternatives(req):
            hw_ok, _, _ = _hardware_filter(req, accel)
            for o in _query(catalog, req, accel):
                if not hw_ok(o):
                    continue
                price = o.spot_price if req.use_spot else o.price
                if price is None:
                    continue
                cost = round(price * num_nodes, 6)
                if req.max_hourly_cost is not None and cost > req.max_hourly_cost + 1e-12:
                    continue
                accels = ((o.accelerator, o.accelerator_count),) if o.accelerator else ()
                cand = Candidate(
                    rank=0,
                    cloud=o.cloud,
                    region=o.region,
                    zone=o.zone,
                    instance_type=o.instance_type,
                    use_spot=bool(req.use_spot),
                    vcpus=o.vcpus,
                    memory_gib=o.memory_gib,
                    accelerators=accels,
                    hourly_price=price,
                    hourly_cost=cost,
                    preference=(entry_pref, ai),
                    disk_size=req.disk_size,
                    ports=tuple(req.ports),
                    labels=tuple(req.labels),
                )
                # One candidate per placement. When several entries produce the
                # same placement, the preferred (then cheapest, then first
                # written) entry wins, and its disk, ports and labels with it:
                # they describe what that entry asked to provision.
                key = (o.cloud, o.region, o.zone, o.instance_type, accels, cand.use_spot)
                prev = best.get(key)
                if prev is None or (cand.preference, cand.hourly_cost) < (prev.preference, prev.hourly_cost):
                    best[key] = cand
    if not best:
        raise NoCandidatesError(
            explain_empty(task, catalog),
            hint="relax the request (another region, cloud, instance type or accelerator, or a higher "
            "max_hourly_cost); `skyplan show-gpus NAME` lists where an accelerator is offered",
        )
    ranked = sorted(best.values(), key=_sort_key)
    return [_with_rank(c, i + 1) for i, c in enumerate(ranked)]


def _sort_key(c: Candidate):
    return (c.preference, c.hourly_cost, c.cloud, c.region, c.zone or "", c.instance_type, c.use_spot)


def _with_rank(c: Candidate, rank: int) -> Candidate:
    from dataclasses import replace

    return replace(c, rank=rank)


# --- explanations -----------------------------------------------------------------


def explain(task: Task, catalog) -> list[tuple[str, list[ExplainStep]]]:
    """For each request entry and accelerator alternative: the constraints in the
    order they apply and how many offers each removed."""
    out = []
    num_nodes = max(1, int(task.num_nodes or 1))
    memo: dict = {}  # a long any_of repeats the same catalog queries (the whole catalog, each region)
    for req in task.resources.candidates:
        for _, accel in _alternatives(req):
            out.append((_describe(req, accel), _steps(req, accel, catalog, num_nodes, memo)))
    return out


def _steps(req: ResourceRequest, accel: Accelerator | None, catalog, num_nodes: int,
           memo: dict | None = None) -> list[ExplainStep]:
    steps: list[ExplainStep] = []
    own = _own_offers(req.cloud)
    local = own is not None

    def q(**kw) -> list[Offer]:
        if own is not None:
            r = ResourceRequest(region=kw.get("region"), zone=kw.get("zone"), instance_type=kw.get("instance_type"))
            a = Accelerator(kw["accelerator"], kw.get("accelerator_count") or 1) if kw.get("accelerator") else None
            return [o for o in own if not (kw.get("cpu_only") and o.accelerator)
                    and _location_ok(o, r) and _type_ok(o, r) and _accel_ok(o, a)]
        if memo is None:
            return catalog.offers(**kw)
        key = repr(sorted(kw.items()))
        if key not in memo:
            memo[key] = catalog.offers(**kw)
        return memo[key]

    clouds = _clouds_for(req)
    defaults = registry.default_clouds()
    kw: dict = {"clouds": defaults} if not local else {}
    n = len(q(**kw))
    first = "this machine" if _runs_here(req.cloud) else f"{registry.display(req.cloud)}'s own offers"
    steps.append(ExplainStep(f"catalog ({', '.join(defaults)})" if not local else first, 0, n))

    def add(name: str, **more) -> None:
        nonlocal n
        kw.update(more)
        m = len(q(**kw))
        steps.append(ExplainStep(name, n - m, m))
        n = m

    if req.cloud and not local:
        add(f"cloud = {req.cloud}", clouds=clouds)
    if req.region:
        add(f"region = {req.region}", region=req.region)
    if req.zone:
        add(f"zone = {req.zone}", zone=req.zone)
    if req.instance_type:
        add(f"instance_type = {req.instance_type}", instance_type=req.instance_type)
    if accel is not None:
        add(f"accelerators = {accel}", accelerator=accel.name, accelerator_count=accel.count)
    elif req.instance_type is None:
        add("no accelerator", cpu_only=True)
    offers = q(**kw)
    hw_ok, cpus, mem = _hardware_filter(req, accel)
    if cpus is not None:
        keep = [o for o in offers if cpus.admits(o.vcpus)]
        steps.append(ExplainStep(f"cpus = {cpus}" + (" (default)" if req.cpus is None else ""), len(offers) - len(keep), len(keep)))
        offers = keep
    if mem is not None:
        keep = [o for o in offers if mem.admits(o.memory_gib)]
        steps.append(ExplainStep(f"memory = {mem}", len(offers) - len(keep), len(keep)))
        offers = keep
    if accel is not None and not _sizes_host(req):
        keep = [o for o in offers if not o.undersized]
        if len(keep) < len(offers):  # a step only where hosts are attached (GCP N1), not for every GPU
            steps.append(ExplainStep(HOST_SIZE_STEP, len(offers) - len(keep), len(keep)))
        offers = keep
    market = "a spot" if req.use_spot else "an on-demand"
    keep = [o for o in offers if o.hourly(bool(req.use_spot)) is not None]
    steps.append(ExplainStep(f"has {market} price", len(offers) - len(keep), len(keep)))
    offers = keep
    if req.max_hourly_cost is not None:
        keep = [o for o in offers if o.hourly(bool(req.use_spot)) * num_nodes <= req.max_hourly_cost + 1e-12]
        steps.append(ExplainStep(f"max_hourly_cost = {req.max_hourly_cost:g}", len(offers) - len(keep), len(keep)))
    return steps


def _describe(req: ResourceRequest, accel: Accelerator | None) -> str:
    parts = []
    for k in ("cloud", "region", "zone", "instance_type"):
        v = getattr(req, k)
        if v:
            parts.append(f"{k}={v}")
    if accel:
        parts.append(f"accelerators={accel}")
    if req.cpus:
        parts.append(f"cpus={req.cpus}")
    if req.memory:
        parts.append(f"memory={req.memory}")
    if req.use_spot:
        parts.append("spot")
    return ", ".join(parts) or "defaults"


def explain_empty(task: Task, catalog) -> str:
    """One sentence naming the constraint that emptied the candidate set."""
    reasons = []
    memo: dict = {}
    for req in task.resources.candidates:
        for _, accel in _alternatives(req):
            steps = _steps(req, accel, catalog, max(1, int(task.num_nodes or 1)), memo)
            culprit = next((s for s in steps if s.remaining == 0), None)
            reasons.append(_sentence(req, accel, culprit, catalog))
    uniq = list(dict.fromkeys(reasons))
    if len(uniq) == 1:
        return uniq[0]
    return "no candidate satisfies any alternative: " + "; ".join(uniq)


def _sentence(req: ResourceRequest, accel: Accelerator | None, culprit: ExplainStep | None, catalog) -> str:
    who = registry.display(req.cloud) if req.cloud else "cloud"
    what = str(accel) if accel else (req.instance_type or "a matching instance type")
    if accel and req.instance_type:
        what = f"{req.instance_type} with {accel}"
    if accel is not None and hasattr(catalog, "canonical_accelerator") and _own_offers(req.cloud) is None:
        if catalog.canonical_accelerator(accel.name) is None:
            import difflib

            names = catalog.accelerator_names()
            close = difflib.get_close_matches(accel.name.upper(), [n.upper() for n in names], n=1)
            hint = ""
            if close:
                match = next(n for n in names if n.upper() == close[0])
                hint = f" (did you mean '{match}'?)"
            return f"unknown accelerator '{accel.name}'{hint}"
    where = ""
    if req.zone:
        where = f" in {req.zone}"
    elif req.region:
        where = f" in {req.region}"
    base = f"no {who} offer has {what}{where}"
    if culprit is None:
        return base
    c = culprit.constraint
    if c.startswith(("cpus", "memory")):
        base += f" with {c.replace(' = ', ' ')}"
    elif c.startswith("has "):
        base += f" at a {'spot' if req.use_spot else 'on-demand'} price"
    elif c.startswith("max_hourly_cost"):
        base += f" under max_hourly_cost {req.max_hourly_cost:g} (the cost is price x num_nodes)"
    elif c == HOST_SIZE_STEP:
        base += " on a host of the default size for it (set cpus or memory to allow a smaller host)"
    return base + f" (emptied by: {c})"
