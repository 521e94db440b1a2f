"""The capacity memory of a backend that is not a directory lives in a stack on that
backend (StackStore). Exercised here on a file:// backend, through the real engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.failover import Attempt, block_for
from skyplan.provision.memory import MEMORY_STACK, FileStore, StackStore, remember

T0 = datetime.now(timezone.utc).replace(microsecond=0)


def failed(zone: str) -> Attempt:
    c = Candidate(1, "gcp", "us-central1", zone, "n1-highmem-8", False, 8, 52, (("V100", 1.0),), 1.0, 1.0)
    cls = Classification(Kind.CAPACITY, Scope.ZONE, "ZONE_RESOURCE_POOL_EXHAUSTED", "x")
    return Attempt(1, c, False, cls, block_for(c, cls))


def test_records_are_kept_in_a_stack_and_mirrored_for_plan(driver, tmp_path):
    mirror = FileStore(tmp_path / "mirror.json")
    store = StackStore(driver, mirror)
    assert store.load().records == ()  # no stack yet: nothing remembered
    remember(store, [failed("us-central1-a")], T0)
    remember(store, [failed("us-central1-b")], T0 + timedelta(seconds=5))
    again = StackStore(driver, FileStore(tmp_path / "other-mirror.json")).load()
    assert sorted(r.pattern.zone for r in again.records) == ["us-central1-a", "us-central1-b"]
    assert sorted(r.pattern.zone for r in mirror.load().records) == ["us-central1-a", "us-central1-b"]
    assert MEMORY_STACK in driver.list_stacks()


def test_an_expired_record_is_pruned_on_the_next_write(driver, tmp_path):
    store = StackStore(driver, FileStore(tmp_path / "mirror.json"))
    remember(store, [failed("us-central1-a")], T0 - timedelta(minutes=30))
    remember(store, [failed("us-central1-b")], T0)
    assert [r.pattern.zone for r in store.load().records] == ["us-central1-b"]
