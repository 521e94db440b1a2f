"""The backend is the source of truth: recovery and down destroy every stack of the
cluster the backend holds, whatever state.db says; failpoints switched on in-process
(``raise``) show that an unexpected error at each window leaves nothing running."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan import failpoints
from skyplan.clouds.sim import ledger
from skyplan.errors import CleanupError, NotFoundError
from skyplan.planner import make_plan
from skyplan.provision.apply import Applier
from skyplan.provision.events import Recover
from skyplan.provision.names import cluster_stack_prefix
from skyplan.spec import load_text
from skyplan.state import StateDB
from skyplan.testing.fakes import FakeCatalog, FakeDriver, FakeUp, offer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = str(ROOT / "examples" / "scenarios" / "seed-000.yaml")
CAP = ("The zone 'projects/p/zones/{z}' does not have enough resources available to fulfill the request.  "
       "Try a different zone, or try again later.")
CAT = FakeCatalog([offer("gcp", "n1-standard-8", "us-central1", z, acc="V100", count=1, price=2.9)
                   for z in ("us-central1-a", "us-central1-b", "us-central1-c")])


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    yield
    failpoints.configure(None)


def plan():
    return make_plan(load_text("name: t\nresources:\n  accelerators: V100\nrun: echo hi\n"), CAT)


def first_fails(stack: str) -> FakeUp:
    zone = stack.split(".")[3]
    return FakeUp(False, error=CAP.format(z=zone)) if zone == "us-central1-a" else FakeUp(True)


def test_rerun_destroys_a_stack_recorded_up_of_a_cluster_that_never_came_up():
    # The leak: a run died after recording its attempt up, before the cluster was UP.
    db = StateDB()
    drv = FakeDriver(lambda s: FakeUp(True))
    failpoints.configure("attempt.after-record-up:raise")
    with pytest.raises(failpoints.FailpointError):
        Applier(simulate=SCENARIO, driver=drv, db=db).apply(plan(), "t")
    failpoints.configure(None)
    # The unexpected error released the stack at once ...
    assert drv.live == set() and db.get_cluster("t").status == "FAILED"
    # ... and a kill (no chance to release) is caught by the re-run: simulate it.
    (first,) = [a.stack for a in db.attempts("t")]
    db.set_attempt_status(db.attempts("t")[0].id, "up")
    drv.live.add(first)
    events = []
    res = Applier(simulate=SCENARIO, driver=drv, db=db, emit=events.append).apply(plan(), "t")
    assert Recover(first, "up") in events
    # Destroyed before the new attempt (which may reuse the name: numbers restart per run).
    assert drv.calls[-2:] == [("destroy", first), ("up", res.stack)]
    assert drv.live == {res.stack}


def test_rerun_destroys_stacks_the_journal_never_saw():
    db = StateDB()
    stray = cluster_stack_prefix("t") + "a007.gcp.us-central1-b.n1-standard-8.od"
    other = cluster_stack_prefix("tt") + "a001.gcp.us-central1-b.n1-standard-8.od"
    drv = FakeDriver(lambda s: FakeUp(True))
    drv.live |= {stray, other, "skyplan-capacity-memory"}
    events = []
    res = Applier(simulate=SCENARIO, driver=drv, db=db, emit=events.append).apply(plan(), "t")
    assert events[0] == Recover(stray, "untracked")
    assert drv.live == {res.stack, other, "skyplan-capacity-memory"}  # never another cluster's, nor a non-attempt stack


def test_a_journal_row_whose_stack_is_gone_is_closed_without_an_engine_call():
    db = StateDB()
    db.start_attempt("t", 1, "t.a001.gcp.gone", "file:///fake", plan().candidates[0])
    drv = FakeDriver(lambda s: FakeUp(True))
    Applier(simulate=SCENARIO, driver=drv, db=db).apply(plan(), "t")
    assert ("destroy", "t.a001.gcp.gone") not in drv.calls
    assert db.attempts("t")[0].status == "cleaned"


def test_down_destroys_every_stack_of_the_cluster_on_the_backend():
    db = StateDB()
    drv = FakeDriver(lambda s: FakeUp(True))
    a = Applier(simulate=SCENARIO, driver=drv, db=db)
    res = a.apply(plan(), "t")
    stray = cluster_stack_prefix("t") + "a005.gcp.us-central1-a.n1-standard-8.od"
    drv.live.add(stray)  # the state does not know it
    assert sorted(a.down("t")) == sorted([res.stack, stray])
    assert drv.live == set() and db.get_cluster("t") is None


def test_down_of_stacks_without_a_cluster_row_still_destroys_them():
    drv = FakeDriver(lambda s: FakeUp(True))
    stray = cluster_stack_prefix("ghost") + "a001.gcp.us-central1-a.n1-standard-8.od"
    drv.live.add(stray)
    assert Applier(driver=drv).down("ghost") == [stray]
    with pytest.raises(NotFoundError):
        Applier(driver=drv).down("ghost")


@pytest.mark.parametrize("point", ["attempt.after-journal", "attempt.after-up", "cleanup.before-destroy",
                                   "cleanup.after-destroy", "attempt.after-record-up"])
def test_an_unexpected_error_at_an_attempt_failpoint_leaves_no_stack(point):
    db = StateDB()
    drv = FakeDriver(first_fails)
    failpoints.configure(f"{point}:raise")
    with pytest.raises(failpoints.FailpointError):
        Applier(simulate=SCENARIO, driver=drv, db=db).apply(plan(), "t")
    assert drv.live == set()
    assert db.get_cluster("t").status == "FAILED"
    assert {a.status for a in db.attempts("t")} <= {"cleaned"}


@pytest.mark.parametrize("point", ["down.before-destroy", "down.after-destroy", "down.before-forget"])
def test_a_down_cut_short_shows_down_and_a_second_down_finishes(point):
    db = StateDB()
    drv = FakeDriver(lambda s: FakeUp(True))
    Applier(simulate=SCENARIO, driver=drv, db=db).apply(plan(), "t")
    failpoints.configure(f"{point}:raise")
    with pytest.raises(failpoints.FailpointError):
        Applier(driver=drv, db=db).down("t")
    failpoints.configure(None)
    assert db.get_cluster("t").status == "DOWN"
    Applier(driver=drv, db=db).down("t")
    assert drv.live == set() and db.get_cluster("t") is None


def _sim_row(stack: str, cluster: str = "t") -> dict:
    return ledger.record_create(cluster=cluster, stack=stack, cloud="gcp", region="us-central1",
                                zone="us-central1-a", instance_type="n1-standard-8", key=f"{stack}/node-0")


def test_down_removes_what_the_sim_holds_for_the_cluster_that_no_stack_knows():
    # A provider killed mid-create: the sim's ledger has the node, Pulumi never heard of it.
    db = StateDB()
    drv = FakeDriver(lambda s: FakeUp(True))
    a = Applier(simulate=SCENARIO, driver=drv, db=db)
    a.apply(plan(), "t")
    orphan = cluster_stack_prefix("t") + "a009.gcp.us-central1-a.n1-standard-8.od"
    _sim_row(orphan)
    _sim_row(cluster_stack_prefix("u") + "a001.gcp.us-central1-a.n1-standard-8.od", cluster="u")
    a.down("t")
    assert [r["cluster"] for r in ledger.live_resources()] == ["u"]


def test_a_failed_attempts_cleanup_removes_what_its_provider_left():
    db = StateDB()
    made = []

    def script(stack: str) -> FakeUp:
        if not made:
            made.append(_sim_row(stack))  # the provider made it, then died: the up fails
            return FakeUp(False, error="transport is closing")
        return FakeUp(True)

    res = Applier(simulate=SCENARIO, driver=FakeDriver(script), db=db).apply(plan(), "t")
    assert [r["stack"] for r in ledger.live_resources()] == []  # the fake's success makes no ledger row
    assert res.status == "UP"


def test_down_fails_when_a_leftover_cannot_be_removed(monkeypatch):
    from skyplan.clouds.sim.cloud import Sim

    db = StateDB()
    drv = FakeDriver(lambda s: FakeUp(True))
    a = Applier(simulate=SCENARIO, driver=drv, db=db)
    a.apply(plan(), "t")
    _sim_row(cluster_stack_prefix("t") + "a009.gcp.us-central1-a.n1-standard-8.od")
    monkeypatch.setattr(Sim, "remove_leftovers", lambda self, stacks: None)
    with pytest.raises(CleanupError) as e:
        a.down("t")
    assert e.value.exit_code == 5 and "a009" in e.value.stack
    assert db.get_cluster("t").status == "DOWN"  # kept, for a retry
