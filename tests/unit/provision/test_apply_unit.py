"""Applier wiring with a scripted driver: cleanup, leaks, recovery, preflight, state."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.errors import CleanupError, PreflightError, ProvisionFailed
from skyplan.planner import make_plan
from skyplan.provision.apply import Applier
from skyplan.provision.events import AttemptDone, Preflight, Recover
from skyplan.spec import load_text
from skyplan.state import StateDB
from skyplan.testing.fakes import FakeCatalog, FakeDriver, FakeUp, offer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = str(ROOT / "examples" / "scenarios" / "seed-000.yaml")
CAP = ("The zone 'projects/p/zones/{z}' does not have enough resources available to fulfill the request.  "
       "Try a different zone, or try again later.")

CAT = FakeCatalog([
    offer("gcp", "n1-standard-8", "us-central1", z, acc="V100", count=1, price=2.9) for z in
    ("us-central1-a", "us-central1-b", "us-central1-c")
] + [offer("aws", "p3.2xlarge", "us-east-1", "use1-az1", acc="V100", count=1, price=3.06)])


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))


def plan():
    return make_plan(load_text("name: t\nresources:\n  accelerators: V100\nrun: echo hi\n"), CAT)


def zone_of(stack: str) -> str:
    return stack.split(".")[3]


def test_failed_attempts_are_cleaned_and_state_records_them():
    drv = FakeDriver(lambda s: FakeUp(False, error=CAP.format(z=zone_of(s))) if zone_of(s) != "us-central1-c"
                     else FakeUp(True, outputs={"sandbox": "/x"}))
    events = []
    res = Applier(simulate=SCENARIO, driver=drv, emit=events.append).apply(plan(), "t")
    assert res.placement.zone == "us-central1-c"
    assert [c[0] for c in drv.calls] == ["up", "destroy", "up", "destroy", "up"]
    db = StateDB()
    assert [a.status for a in db.attempts("t")] == ["cleaned", "cleaned", "up"]
    assert db.attempts("t")[0].code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert db.get_cluster("t").status == "UP"
    assert [type(e).__name__ for e in events].count("Launching") == 3
    assert [e.to_json()["outcome"] for e in events if isinstance(e, AttemptDone)] == ["failed", "failed", "up"]


def test_cleanup_failure_stops_failover_loudly():
    drv = FakeDriver(lambda s: FakeUp(True))

    def script(stack):  # the first failed attempt's cleanup fails
        drv.fail_cleanup = {stack}
        return FakeUp(False, error=CAP.format(z=zone_of(stack)))

    drv.script = script
    with pytest.raises(CleanupError) as e:
        Applier(simulate=SCENARIO, driver=drv).apply(plan(), "t")
    assert e.value.exit_code == 5 and e.value.resources
    assert [c[0] for c in drv.calls] == ["up", "destroy"]  # never moved on
    assert [a.status for a in StateDB().attempts("t")] == ["leaked"]


def test_rerun_recovers_stacks_left_by_an_earlier_run():
    db = StateDB()
    cand = plan().candidates[0]
    db.start_attempt("t", 1, "t.a001.gcp.old", "file:///x", cand)  # a run killed mid-attempt
    drv = FakeDriver(lambda s: FakeUp(True))
    drv.live.add("t.a001.gcp.old")  # its stack is on the backend
    events = []
    Applier(simulate=SCENARIO, driver=drv, db=db, emit=events.append).apply(plan(), "t")
    assert drv.calls[0] == ("destroy", "t.a001.gcp.old")
    assert events[0] == Recover("t.a001.gcp.old", "running")
    assert events[0].to_json() == {"event": "recover", "stack": "t.a001.gcp.old", "status": "running",
                                   "schema_version": 1}
    assert db.attempts("t")[0].status == "cleaned"


def test_every_candidate_failing_raises_with_history():
    drv = FakeDriver(lambda s: FakeUp(False, error="something nobody has seen before"))
    with pytest.raises(ProvisionFailed) as e:
        Applier(simulate=SCENARIO, driver=drv).apply(plan(), "t")
    # An unknown error blocks its zone; the same one in a second zone of the region blocks the region.
    assert len(e.value.attempts) == 3
    assert e.value.attempts[1].widened == "region: same unknown error in us-central1-a and us-central1-b"
    assert StateDB().get_cluster("t").status == "FAILED"
    assert drv.live == set()


def test_preflight_drops_unreachable_clouds_and_says_how(monkeypatch):
    drv = FakeDriver(lambda s: FakeUp(True))
    events = []
    with pytest.raises(PreflightError) as e:
        Applier(driver=drv, emit=events.append).apply(plan(), "t")
    assert "--simulate" in e.value.hint and "cloud: local" in e.value.hint
    assert {ev.cloud for ev in events if isinstance(ev, Preflight) and not ev.ok} == {"gcp", "aws"}
    assert drv.calls == []


def test_applying_the_same_task_twice_is_a_no_op():
    drv = FakeDriver(lambda s: FakeUp(True))
    Applier(simulate=SCENARIO, driver=drv).apply(plan(), "t")
    again = Applier(simulate=SCENARIO, driver=drv).apply(plan(), "t")
    assert again.status == "ALREADY_UP" and len([c for c in drv.calls if c[0] == "up"]) == 1


def test_down_destroys_and_forgets():
    drv = FakeDriver(lambda s: FakeUp(True))
    a = Applier(simulate=SCENARIO, driver=drv)
    res = a.apply(plan(), "t")
    assert a.down("t") == [res.stack]
    assert drv.live == set() and StateDB().get_cluster("t") is None


def test_unreachable_backend_is_an_input_error_before_any_stack():
    from skyplan.errors import EngineError, InputError

    drv = FakeDriver(lambda s: FakeUp(True))

    def broken(prefix=""):
        raise EngineError("could not list stacks: access denied")

    drv.list_stacks = broken
    with pytest.raises(InputError) as e:
        Applier(simulate=SCENARIO, driver=drv).apply(plan(), "t")
    assert "cannot use the Pulumi backend" in e.value.message and "nothing was created" in e.value.hint
    assert drv.calls == [] and StateDB().get_cluster("t") is None
