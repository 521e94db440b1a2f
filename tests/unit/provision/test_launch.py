"""The launch API (``skyplan.provision.launch``) with a scripted driver: a task or a plan in,
a typed result out; typed events; several launches from threads at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from skyplan.errors import LockedError, NotFoundError
from skyplan.planner import make_plan
from skyplan.provision.events import AttemptDone, Launching, Preflight
from skyplan.provision.launch import DownResult, LaunchOptions, LaunchRequest, down, launch
from skyplan.provision.protocol import UpResult
from skyplan.spec import load_text
from skyplan.state import StateDB, cluster_lock
from skyplan.testing.fakes import FakeCatalog, FakeDriver, offer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = str(ROOT / "examples" / "scenarios" / "seed-000.yaml")
CAP = ("The zone 'projects/p/zones/{z}' does not have enough resources available to fulfill the request.  "
       "Try a different zone, or try again later.")
CAT = FakeCatalog([offer("gcp", "n1-standard-8", "us-central1", z, acc="V100", count=1, price=2.9)
                   for z in ("us-central1-a", "us-central1-b")])


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))


def gpu_plan():
    return make_plan(load_text("name: t\nresources:\n  accelerators: V100\nrun: echo hi\n"), CAT)


def zone_a_is_full(stack: str) -> UpResult:
    zone = stack.split(".")[3]
    if zone == "us-central1-a":
        return UpResult(False, error=CAP.format(z=zone))
    return UpResult(True, outputs={"sandbox": f"/nowhere/{stack}"})


def test_a_task_is_planned_and_launched_into_a_typed_result() -> None:
    task = load_text("name: hello-world\nresources:\n  cloud: local\n  cpus: 1+\nrun: echo hi\n")
    drv = FakeDriver(lambda s: UpResult(True, outputs={"sandbox": "/nowhere"}))
    events: list = []
    res = launch(LaunchRequest(task, options=LaunchOptions(driver=drv, on_event=events.append)))
    assert (res.status, res.cluster, res.placement.cloud) == ("UP", "hello-world", "local")
    assert res.stacks == (res.stack,) and drv.live == {res.stack} and not res.simulated
    assert [type(e) for e in events] == [Preflight, Launching, AttemptDone] and events[0].ok
    assert res.log_source() is not None  # the local cloud reads its sandboxes' logs
    assert down("hello-world", driver=drv) == DownResult("hello-world", (res.stack,))
    assert drv.live == set()


def test_failover_through_launch_reports_each_attempt_and_every_stack() -> None:
    drv = FakeDriver(zone_a_is_full)
    events: list = []
    res = launch(LaunchRequest(gpu_plan(), "gpu", LaunchOptions(simulate=SCENARIO, driver=drv,
                                                                on_event=events.append)))
    assert res.placement.zone == "us-central1-b" and res.simulated
    assert len(res.stacks) == 2 and res.stack == res.stacks[-1]
    assert [(type(e).__name__, getattr(e, "number", None)) for e in events if isinstance(e, Launching)] == [
        ("Launching", 1), ("Launching", 2)]
    done = [e.to_json() for e in events if isinstance(e, AttemptDone)]
    assert [(d["outcome"], d["scope"], d["stack"]) for d in done] == [
        ("failed", "zone", res.stacks[0]), ("up", None, res.stacks[1])]
    summary = res.summary()
    assert summary["status"] == "UP" and [a["number"] for a in summary["attempts"]] == [1, 2]


def test_the_same_cluster_cannot_be_launched_twice_at_once() -> None:
    drv = FakeDriver(zone_a_is_full)
    with cluster_lock("gpu", "apply"):
        with pytest.raises(LockedError):
            launch(LaunchRequest(gpu_plan(), "gpu", LaunchOptions(simulate=SCENARIO, driver=drv)))
    assert drv.calls == []
    with pytest.raises(NotFoundError):
        down("gpu", driver=drv)


def test_launches_of_distinct_clusters_run_at_once_from_threads_sharing_state_and_driver() -> None:
    """A controller shares one StateDB and one driver between its threads."""
    drv = FakeDriver(zone_a_is_full)
    db = StateDB()
    barrier = threading.Barrier(4)
    results: dict[str, object] = {}

    def one(name: str) -> None:
        barrier.wait()
        try:
            results[name] = launch(LaunchRequest(gpu_plan(), name, LaunchOptions(simulate=SCENARIO, driver=drv, db=db)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[name] = exc

    names = [f"c{i}" for i in range(4)]
    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {n: getattr(r, "status", r) for n, r in results.items()} == {n: "UP" for n in names}
    assert {c.name: c.status for c in db.clusters()} == {n: "UP" for n in names}
    assert all(len(db.attempts(n)) == 2 for n in names)
    for n in names:
        down(n, driver=drv, db=db)
    assert drv.live == set() and db.clusters() == []
