"""Capacity memory: records with a TTL, ranking remembered failures last, the file store."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timedelta, timezone

from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.failover import Attempt, Block, block_for
from skyplan.provision.memory import (
    FILE_IN_BACKEND,
    FileStore,
    Memory,
    Record,
    for_planning,
    local_store,
    rank_recent_failures_last,
    record_for,
    remember,
)

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def cand(rank, zone="us-central1-a", region="us-central1", it="n1-highmem-8", acc=(("V100", 1.0),), spot=False,
         cloud="gcp", pref=(0, 0)):
    return Candidate(rank, cloud, region, zone, it, spot, 8, 52, acc, 1.0, 1.0, preference=pref)


def failed(c, kind, scope, number=1, family=None, fams=frozenset()):
    cls = Classification(kind, scope, "CODE", "text", family)
    return Attempt(number, c, False, cls, block_for(c, cls, fams))


def test_capacity_is_remembered_for_10_minutes_and_quota_for_an_hour():
    c = cand(1)
    cap = record_for(failed(c, Kind.CAPACITY, Scope.ZONE), T0)
    quota = record_for(failed(c, Kind.QUOTA, Scope.REGION), T0)
    mem = Memory((cap,))
    assert mem.lookup(c, T0 + timedelta(minutes=9)) is cap
    assert mem.lookup(c, T0 + timedelta(minutes=11)) is None
    mem = Memory((quota,))
    assert mem.lookup(cand(2, zone="us-central1-b"), T0 + timedelta(minutes=59)) is quota
    assert mem.lookup(c, T0 + timedelta(minutes=61)) is None
    assert mem.prune(T0 + timedelta(minutes=61)).records == ()


def test_only_capacity_and_quota_failures_are_remembered():
    c = cand(1)
    for kind, scope in ((Kind.AUTH, Scope.CLOUD), (Kind.UNKNOWN, Scope.ZONE), (Kind.TRANSIENT, Scope.NONE),
                        (Kind.TIMEOUT, Scope.ZONE), (Kind.INVALID, Scope.ALL)):
        assert record_for(failed(c, kind, scope), T0) is None
    assert record_for(Attempt(1, c, True, None, None), T0) is None


def test_remembered_failures_rank_last_in_stable_order_and_are_marked():
    cands = [cand(1, zone="us-central1-a"), cand(2, zone="us-central1-b"), cand(3, zone="us-central1-c"),
             cand(4, zone="us-central1-f")]
    mem = Memory((record_for(failed(cands[0], Kind.CAPACITY, Scope.ZONE), T0),
                  record_for(failed(cands[2], Kind.CAPACITY, Scope.ZONE), T0)))
    out = rank_recent_failures_last(cands, mem, T0 + timedelta(minutes=3))
    assert [c.zone for c in out] == ["us-central1-b", "us-central1-f", "us-central1-a", "us-central1-c"]
    assert [c.rank for c in out] == [1, 2, 3, 4]
    assert [c.recent_failure is not None for c in out] == [False, False, True, True]
    rf = out[2].recent_failure
    assert (rf.kind, rf.at, rf.expires_at) == ("capacity", "2026-05-01T12:00:00Z", "2026-05-01T12:10:00Z")
    # Expired: the plan is as if there were no memory.
    assert rank_recent_failures_last(cands, mem, T0 + timedelta(minutes=11)) == cands


def test_an_ordered_preference_still_comes_first():
    first = cand(1, zone="us-central1-a", pref=(0, 0))
    second = cand(2, zone="us-central1-b", acc=(("T4", 1.0),), pref=(1, 0))
    mem = Memory((record_for(failed(first, Kind.CAPACITY, Scope.ZONE), T0),))
    out = rank_recent_failures_last([first, second], mem, T0)
    assert [c.zone for c in out] == ["us-central1-a", "us-central1-b"] and out[0].recent_failure


def test_a_family_quota_memory_covers_every_placement_it_would_block():
    fams = lambda c: frozenset({c.instance_type.split("-")[0].upper() + "_CPUS"})  # noqa: E731
    n2 = cand(1, it="n2-standard-8", acc=())
    rec = record_for(failed(n2, Kind.QUOTA, Scope.FAMILY, family="N2_CPUS", fams=fams(n2)), T0)
    mem = Memory((rec,))
    other_n2 = cand(2, zone="us-central1-b", it="n2-highmem-16", acc=())
    n1 = cand(3, zone="us-central1-b", it="n1-standard-8", acc=())
    elsewhere = cand(4, region="us-east1", zone="us-east1-b", it="n2-standard-8", acc=())
    out = rank_recent_failures_last([n2, other_n2, n1, elsewhere], mem, T0, fams)
    assert [c.instance_type for c in out if c.recent_failure] == ["n2-standard-8", "n2-highmem-16"]
    assert out[0].instance_type == "n1-standard-8"


def test_records_round_trip_and_a_newer_record_replaces_an_older_one():
    c = cand(1)
    old = record_for(failed(c, Kind.CAPACITY, Scope.ZONE), T0)
    new = record_for(failed(c, Kind.CAPACITY, Scope.ZONE), T0 + timedelta(minutes=5))
    mem = Memory((old,)).merge([new])
    assert mem.records == (new,)
    again = Memory.from_json(json.loads(json.dumps(mem.to_json())))
    assert again == mem
    assert Memory.from_json({"format_version": 99, "records": [{}]}) == Memory()
    assert Memory.from_json({"format_version": 1, "records": [{"kind": "capacity"}]}) == Memory()


def test_remember_writes_the_failures_and_prunes_expired_ones(tmp_path):
    store = FileStore(tmp_path / "capacity.json")
    c = cand(1)
    assert remember(store, [failed(c, Kind.CAPACITY, Scope.ZONE)], T0) == 1
    later = T0 + timedelta(minutes=30)
    remember(store, [failed(cand(2, zone="us-central1-b"), Kind.QUOTA, Scope.REGION)], later)
    recs = store.load().records
    assert [r.kind for r in recs] == ["quota"]  # the capacity record had expired and was pruned
    assert remember(store, [Attempt(3, c, True, None, None)], later) == 0


def _writer(path: str, worker: int, n: int) -> None:
    store = FileStore(path)
    for i in range(n):
        c = cand(1, zone=f"zone-{worker}-{i}")
        remember(store, [failed(c, Kind.CAPACITY, Scope.ZONE)], T0)


def test_concurrent_writers_lose_no_record(tmp_path):
    path = str(tmp_path / "capacity.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert len(FileStore(path).load().records) == 45


def test_the_memory_lives_in_the_file_backend_directory(tmp_path, monkeypatch):
    backend = tmp_path / "shared-backend"
    url = f"file://{backend}"
    assert local_store(url).path == backend / FILE_IN_BACKEND
    remember(local_store(url), [failed(cand(1), Kind.CAPACITY, Scope.ZONE)], T0)
    # Another skyplan home pointed at the same backend reads the same memory.
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home-b"))
    monkeypatch.setenv("SKYPLAN_BACKEND", url)
    assert len(for_planning().records) == 1
    monkeypatch.delenv("SKYPLAN_BACKEND")
    assert for_planning().records == ()  # home-b's own default backend has none


def test_a_damaged_file_is_an_empty_memory(tmp_path):
    path = tmp_path / "capacity.json"
    path.write_text("{not json")
    assert FileStore(path).load() == Memory()
    remember(FileStore(path), [failed(cand(1), Kind.CAPACITY, Scope.ZONE)], T0)
    assert len(FileStore(path).load().records) == 1


def test_a_remote_backend_is_planned_with_its_local_mirror(tmp_path, monkeypatch):
    from skyplan.provision.memory import StackStore, mirror_path, store_for

    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    url = "s3://team-bucket/skyplan"
    assert for_planning(url).records == ()
    rec = record_for(failed(cand(1), Kind.CAPACITY, Scope.ZONE), T0)
    FileStore(mirror_path(url)).write(Memory((rec,)))
    assert for_planning(url).records == (rec,)
    assert for_planning("gs://another").records == ()  # one mirror per backend

    class Driver:
        backend_url = url

    assert isinstance(store_for(url, Driver()), StackStore)
    assert store_for(url, Driver()).mirror.path == mirror_path(url)
    assert isinstance(store_for(f"file://{tmp_path}/b", Driver()), FileStore)
