"""Capacity memory: recent capacity and quota failures, remembered for a while.

A failed attempt teaches something that outlives the run: the zone that had no
V100s ten seconds ago probably has none now, and a family whose quota is used
up stays used up for a while. Failover records each capacity or quota block
here with a time to live (10 minutes for capacity, 1 hour for quota), and the
next ``plan`` / ``apply`` ranks the placements a live record covers last (and
marks them), so it tries the likelier places first. A remembered failure is a
hint, never a block: the placement is still tried, last. ``--fresh`` ignores it.

The memory lives beside the Pulumi state, so people who share a backend share
it (see :func:`store_for`):

* ``file://DIR`` backend: ``DIR/.skyplan/capacity.json``, rewritten atomically
  under an ``flock``, so concurrent applies on one machine or one shared file
  system merge their records instead of losing them;
* any other backend: a dedicated stack on that backend holds the records (see
  :class:`StackStore`), and a copy is kept under the skyplan home so that
  ``plan`` reads a small local file instead of calling the engine.

The core (:class:`Record`, :class:`Memory`) is pure: no clock, no files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from skyplan.errors import Kind
from skyplan.planner.candidates import Candidate, RecentFailure

if TYPE_CHECKING:  # failover is imported only when a record is read or made: plan start-up
    from skyplan.provision.failover import Attempt, Block, Families

NO_FAMILIES: frozenset[str] = frozenset()


def no_families(c: Candidate) -> frozenset[str]:
    return NO_FAMILIES


CAPACITY_TTL = timedelta(minutes=10)
QUOTA_TTL = timedelta(hours=1)
TTLS: dict[str, timedelta] = {Kind.CAPACITY.value: CAPACITY_TTL, Kind.QUOTA.value: QUOTA_TTL}
FORMAT_VERSION = 1
#: Within a file:// backend directory (Pulumi keeps its own files under ``.pulumi/``).
FILE_IN_BACKEND = Path(".skyplan") / "capacity.json"
#: The stack that holds the records on a backend that is not a directory.
MEMORY_STACK = "skyplan-capacity-memory"


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


# --- the pure core -------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One remembered failure: the block it caused, what kind, when, until when."""

    pattern: "Block"
    kind: str  # "capacity" | "quota"
    code: str
    at: datetime
    expires_at: datetime

    def key(self) -> tuple:
        p = self.pattern
        return (self.kind, p.cloud, p.region, p.zone, p.hardware, p.use_spot,
                tuple(sorted(p.family)) if p.family else None)

    def live(self, now: datetime) -> bool:
        return self.expires_at > now

    def covers(self, c: Candidate, families: frozenset[str] = NO_FAMILIES) -> bool:
        return self.pattern.covers(c, families)

    def recent_failure(self) -> RecentFailure:
        return RecentFailure(kind=self.kind, at=_iso(self.at), expires_at=_iso(self.expires_at))

    def to_json(self) -> dict[str, Any]:
        p = self.pattern
        return {"kind": self.kind, "code": self.code, "at": _iso(self.at), "expires_at": _iso(self.expires_at),
                "cloud": p.cloud, "region": p.region, "zone": p.zone, "hardware": p.hardware,
                "use_spot": p.use_spot, "family": sorted(p.family) if p.family else None, "reason": p.reason}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Record":
        from skyplan.provision.failover import Block

        fam = d.get("family")
        pattern = Block(cloud=d.get("cloud"), region=d.get("region"), zone=d.get("zone"),
                        hardware=d.get("hardware"), use_spot=d.get("use_spot"),
                        family=frozenset(fam) if fam else None, reason=str(d.get("reason", "")))
        return cls(pattern, str(d["kind"]), str(d.get("code", "")), _parse(d["at"]), _parse(d["expires_at"]))


@dataclass(frozen=True)
class Memory:
    """An immutable set of records; every operation returns a new Memory."""

    records: tuple[Record, ...] = ()

    def lookup(self, c: Candidate, now: datetime, families: frozenset[str] = NO_FAMILIES) -> Record | None:
        """The live record covering ``c`` that expires last (the most telling), or None."""
        hits = [r for r in self.records if r.live(now) and r.covers(c, families)]
        return max(hits, key=lambda r: (r.expires_at, r.at)) if hits else None

    def merge(self, new: Iterable[Record]) -> "Memory":
        """Add ``new``; a record for the same pattern and kind replaces an older one."""
        by_key: dict[tuple, Record] = {}
        for r in (*self.records, *new):
            old = by_key.get(r.key())
            if old is None or (r.at, r.expires_at) >= (old.at, old.expires_at):
                by_key[r.key()] = r
        return Memory(tuple(by_key.values()))

    def prune(self, now: datetime) -> "Memory":
        return Memory(tuple(r for r in self.records if r.live(now)))

    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "records": [r.to_json() for r in self.records]}

    @classmethod
    def from_json(cls, doc: Any) -> "Memory":
        """Tolerant: a record it cannot read is dropped, a foreign document is empty
        (the memory is a hint; a damaged file must never stop a plan)."""
        if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
            return cls()
        out = []
        for d in doc.get("records") or ():
            try:
                out.append(Record.from_json(d))
            except (KeyError, TypeError, ValueError):
                continue
        return cls(tuple(out))


def record_for(attempt: "Attempt", now: datetime, ttls: dict[str, timedelta] = TTLS) -> Record | None:
    """The record a failed attempt leaves: capacity and quota failures that blocked
    something; None for every other outcome."""
    cls = attempt.classification
    if attempt.ok or cls is None or attempt.block is None or cls.kind.value not in ttls:
        return None
    return Record(attempt.block, cls.kind.value, cls.code, now, now + ttls[cls.kind.value])


def rank_recent_failures_last(candidates: Iterable[Candidate], memory: Memory, now: datetime,
                              families: "Families" = no_families) -> list[Candidate]:
    """Mark each candidate the memory covers and move it after the others of its
    preference group (an ``ordered`` preference is the user's; a memory is a hint).
    Order is otherwise kept; ranks are renumbered from 1."""
    cands = list(candidates)
    live = memory.prune(now)
    if not live.records:
        return cands
    marked = []
    for c in cands:
        rec = live.lookup(c, now, families(c))
        marked.append(replace(c, recent_failure=rec.recent_failure()) if rec else c)
    order = sorted(range(len(marked)),
                   key=lambda i: (marked[i].preference[0], marked[i].recent_failure is not None, i))
    return [replace(marked[i], rank=n) for n, i in enumerate(order, start=1)]


# --- stores --------------------------------------------------------------------------


class Store(Protocol):
    """Where a memory is kept. ``update`` is read-modify-write, atomic per store."""

    def load(self) -> Memory: ...

    def update(self, change: Callable[[Memory], Memory]) -> Memory: ...


class FileStore:
    """A JSON file, rewritten atomically (temp file + rename) under an exclusive
    ``flock`` on a lock file beside it, so concurrent writers merge, never clobber."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def load(self) -> Memory:
        try:
            return Memory.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return Memory()

    def update(self, change: Callable[[Memory], Memory]) -> Memory:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            new = change(self.load())
            self.write(new)
            return new
        finally:
            os.close(fd)  # closing releases the flock

    def write(self, memory: Memory) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        import threading

        # Private per process and thread: launches run in threads of one controller.
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(memory.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def backend_dir(url: str) -> Path | None:
    """The directory of a ``file://`` backend URL, else None."""
    if not url.startswith("file://"):
        return None
    return Path(os.path.expanduser(url[len("file://"):].split("?", 1)[0]))


def mirror_path(url: str) -> Path:
    """The local copy of a non-file backend's memory (what ``plan`` reads), one per backend."""
    import hashlib

    from skyplan import home

    return home.home() / "capacity-mirrors" / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".json")


def local_store(url: str) -> FileStore:
    """The cheap store for ``url``: its file for a file:// backend, else the local
    mirror. No engine, no network: this is what ``plan`` reads."""
    d = backend_dir(url)
    return FileStore(d / FILE_IN_BACKEND if d is not None else mirror_path(url))


class StackIO(Protocol):
    """What :class:`StackStore` needs from the stack driver (``StackDriver`` has it)."""

    backend_url: str

    def up(self, stack: str, program: Callable[[], None], *, timeout_s: float | None) -> Any: ...

    def outputs(self, stack: str) -> dict[str, Any]: ...


OUTPUT = "capacity_memory"


def _merge_program(stack: str, change: Callable[[Memory], Memory]) -> Callable[[], None]:
    """A Pulumi program with no resources that exports ``change(current memory)``.

    The current memory is read through a StackReference to this very stack, inside
    the update: the backend's update lock makes the read-change-write atomic, so
    two applies on two machines merge their records instead of one losing them."""

    def run() -> None:
        import pulumi

        ref = pulumi.StackReference(f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}")

        def merged(old: Any) -> str:
            current = Memory.from_json(json.loads(old)) if isinstance(old, str) and old else Memory()
            return json.dumps(change(current).to_json(), separators=(",", ":"))

        pulumi.export(OUTPUT, ref.get_output(OUTPUT).apply(merged))

    return run


class StackStore:
    """The memory of a backend that is not a directory (s3://, gs://, azblob://,
    Pulumi Cloud), kept on that backend as the output of a stack of its own,
    ``skyplan-capacity-memory``. Reading is one ``stack output`` call; writing is
    an update of a program without resources (:func:`_merge_program`). Both
    refresh the local mirror that ``plan`` reads. Only ``apply`` pays for this.
    """

    def __init__(self, driver: StackIO, mirror: FileStore | None = None, *, timeout_s: float = 120.0) -> None:
        self.driver = driver
        self.mirror = mirror or FileStore(mirror_path(driver.backend_url))
        self.timeout_s = timeout_s

    def load(self) -> Memory:
        from skyplan.errors import SkyplanError

        try:
            raw = self.driver.outputs(MEMORY_STACK).get(OUTPUT)
        except SkyplanError:  # no such stack yet, or the backend said no: nothing remembered
            return self.mirror.load()
        memory = Memory.from_json(json.loads(raw)) if isinstance(raw, str) and raw else Memory()
        self.mirror.write(memory)
        return memory

    def update(self, change: Callable[[Memory], Memory]) -> Memory:
        res = self.driver.up(MEMORY_STACK, _merge_program(MEMORY_STACK, change), timeout_s=self.timeout_s)
        raw = (res.outputs or {}).get(OUTPUT) if res.ok else None
        if not isinstance(raw, str):
            return self.mirror.load()  # a hint lost; the next failure records it again
        memory = Memory.from_json(json.loads(raw))
        self.mirror.write(memory)
        return memory


def store_for(backend_url: str, driver: StackIO | None = None) -> Store:
    """Where the memory of ``backend_url`` lives: beside a file:// backend's state,
    else (given the driver) in the backend itself."""
    d = backend_dir(backend_url)
    if d is not None:
        return FileStore(d / FILE_IN_BACKEND)
    if driver is None:
        return FileStore(mirror_path(backend_url))
    return StackStore(driver)


def remember(store: Store, attempts: Iterable["Attempt"], now: datetime,
             ttls: dict[str, timedelta] = TTLS) -> int:
    """Record the capacity and quota failures among ``attempts``; prune expired
    records. Returns how many were recorded. One update per call (per apply)."""
    new = [r for r in (record_for(a, now, ttls) for a in attempts) if r is not None]
    if not new:
        return 0
    store.update(lambda m: m.prune(now).merge(new))
    return len(new)


def cloud_families(c: Candidate) -> frozenset[str]:
    """The quota families ``c`` draws on, as its cloud knows them."""
    from skyplan.clouds import registry

    cloud = registry.find(c.cloud)
    return cloud.quota_families(c.instance_type, dict(c.accelerators)) if cloud is not None else NO_FAMILIES


def for_planning(backend_url: str | None = None) -> Memory:
    """The memory ``plan`` (and ``apply TASK``) ranks with: read from a small local
    file, never through the engine. The backend URL is resolved as the stack
    driver resolves it (argument, ``$SKYPLAN_BACKEND`` or the config file's
    ``backend``, else the default file:// backend under the skyplan home)."""
    from skyplan.config import setting

    url = backend_url or setting("backend") or ""
    if not url:
        from skyplan import home

        url = "file://" + str(home.home() / "pulumi")
    return local_store(url).load()
