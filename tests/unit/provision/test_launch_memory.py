"""The launch path feeds the capacity memory, and the next plan ranks what it learnt last."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.planner import make_plan
from skyplan.provision.launch import LaunchOptions, LaunchRequest, launch, plan_for
from skyplan.provision.memory import FILE_IN_BACKEND, FileStore, for_planning
from skyplan.provision.protocol import UpResult
from skyplan.spec import load_text
from skyplan.testing.fakes import FakeCatalog, FakeDriver, offer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = str(ROOT / "examples" / "scenarios" / "seed-000.yaml")
CAP = ("The zone 'projects/p/zones/{z}' does not have enough resources available to fulfill the request.  "
       "Try a different zone, or try again later.")
ZONES = ("us-central1-a", "us-central1-b", "us-central1-c")
CAT = FakeCatalog([offer("gcp", "n1-standard-8", "us-central1", z, acc="V100", count=1, price=2.9) for z in ZONES])
TASK = "name: t\nresources:\n  accelerators: V100\n  cloud: gcp\n  region: us-central1\nrun: echo hi\n"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKYPLAN_BACKEND", raising=False)


def zone_a_is_full(stack: str) -> UpResult:
    zone = stack.split(".")[3]
    if zone == "us-central1-a":
        return UpResult(False, error=CAP.format(z=zone))
    return UpResult(True, outputs={"sandbox": f"/nowhere/{stack}"})


def first_zones(res) -> list[str]:
    return [a.candidate.zone for a in res.attempts]


def test_a_capacity_failure_is_remembered_and_the_next_launch_tries_elsewhere_first(tmp_path):
    backend = f"file://{tmp_path / 'backend'}"
    drv = FakeDriver(zone_a_is_full, backend_url=backend)
    opts = LaunchOptions(simulate=SCENARIO, driver=drv)
    first = launch(LaunchRequest(make_plan(load_text(TASK), CAT, memory=for_planning(backend)), "one", opts))
    assert first_zones(first) == ["us-central1-a", "us-central1-b"]

    recs = FileStore(tmp_path / "backend" / FILE_IN_BACKEND).load().records
    assert [(r.kind, r.pattern.zone, r.code) for r in recs] == [("capacity", "us-central1-a",
                                                                   "ZONE_RESOURCE_POOL_EXHAUSTED")]

    second = launch(LaunchRequest(make_plan(load_text(TASK), CAT, memory=for_planning(backend)), "two", opts))
    assert first_zones(second) == ["us-central1-b"]

    fresh = launch(LaunchRequest(make_plan(load_text(TASK), CAT), "three", opts))
    assert first_zones(fresh) == ["us-central1-a", "us-central1-b"]


def test_a_task_launched_through_the_api_is_planned_with_the_memory_unless_fresh(tmp_path):
    backend = f"file://{tmp_path / 'backend'}"
    drv = FakeDriver(zone_a_is_full, backend_url=backend)
    launch(LaunchRequest(make_plan(load_text(TASK), CAT), "one", LaunchOptions(simulate=SCENARIO, driver=drv)))

    task = load_text(TASK)  # planned against the embedded catalog
    ranked = plan_for(LaunchRequest(task, "x", LaunchOptions(driver=drv)))
    marked = [c for c in ranked.candidates if c.recent_failure]
    assert marked and all(c.zone == "us-central1-a" for c in marked)
    assert ranked.candidates[-len(marked):] == tuple(marked) and ranked.chosen.zone != "us-central1-a"
    fresh = plan_for(LaunchRequest(task, "x", LaunchOptions(driver=drv, fresh=True)))
    assert not any(c.recent_failure for c in fresh.candidates)
