"""Converging apply through the launch API, with a scripted driver: nothing to do,
a re-run in place on the same stack, a confirmed replacement (new placement up
before the old one is destroyed), and replacements cut short at each failpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan import failpoints
from skyplan.errors import ProvisionFailed, UsageError
from skyplan.planner import make_plan
from skyplan.provision import converging
from skyplan.provision.converge import Create, InPlace, NoChange, Replace
from skyplan.provision.launch import LaunchOptions, LaunchRequest, launch, preview
from skyplan.provision.protocol import UpResult
from skyplan.spec import load_text
from skyplan.state import StateDB
from skyplan.testing.fakes import FakeCatalog, FakeDriver, offer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = str(ROOT / "examples" / "scenarios" / "seed-000.yaml")
CAT = FakeCatalog([offer("gcp", "n1-standard-8", "us-central1", z, acc="V100", count=n, price=2.9 * n)
                   for z in ("us-central1-a", "us-central1-b") for n in (1, 2)])
LOCAL = "name: hello\nresources:\n  cloud: local\n  cpus: 1+\nrun: echo hi\n"
GPU = "name: gpu\nresources:\n  accelerators: V100:{n}\nrun: echo hi\n"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    yield
    failpoints.configure(None)


def ok(stack: str) -> UpResult:
    return UpResult(True, outputs={"sandbox": f"/nowhere/{stack}"})


def gpu(n: int = 1):
    return make_plan(load_text(GPU.format(n=n)), CAT)


def sim(drv, **kw) -> LaunchOptions:  # noqa: ANN001
    return LaunchOptions(simulate=SCENARIO, driver=drv, **kw)


def test_the_same_task_again_does_nothing_and_starts_no_engine():
    drv = FakeDriver(ok)
    first = launch(LaunchRequest(load_text(LOCAL), options=LaunchOptions(driver=drv)))
    calls = list(drv.calls)
    again = launch(LaunchRequest(load_text(LOCAL), options=LaunchOptions(driver=drv)))
    assert (first.action, again.status, again.action, again.stack) == ("create", "ALREADY_UP", "none", first.stack)
    assert drv.calls == calls
    assert preview(make_plan(load_text(LOCAL), CAT_LOCAL()), "hello") == NoChange()


def CAT_LOCAL():  # noqa: N802 - the local cloud's own offer; the catalog is not asked
    return FakeCatalog([])


def test_a_changed_run_reruns_on_the_same_stack_and_records_the_new_task():
    drv = FakeDriver(ok)
    first = launch(LaunchRequest(load_text(LOCAL), options=LaunchOptions(driver=drv)))
    changed = load_text(LOCAL.replace("echo hi", "echo bye"))
    action = preview(make_plan(changed, CAT_LOCAL()), "hello")
    assert isinstance(action, InPlace) and [c.path for c in action.changes] == ["run"]
    res = launch(LaunchRequest(changed, options=LaunchOptions(driver=drv)))
    assert (res.action, res.status, res.stack) == ("rerun", "UP", first.stack)
    assert res.summary()["action"] == "rerun" and first.summary()["action"] == "create"
    assert drv.calls[-1] == ("up", first.stack) and drv.live == {first.stack}
    row = StateDB().get_cluster("hello")
    assert row.status == "UP" and row.task["run"] == "echo bye"
    assert preview(make_plan(changed, CAT_LOCAL()), "hello") == NoChange()


def test_rerun_forces_a_rerun_when_nothing_changed():
    drv = FakeDriver(ok)
    launch(LaunchRequest(load_text(LOCAL), options=LaunchOptions(driver=drv)))
    res = launch(LaunchRequest(load_text(LOCAL), options=LaunchOptions(driver=drv, rerun=True)))
    assert res.action == "rerun" and drv.calls[-1][0] == "up"


def test_a_replacement_is_refused_unless_confirmed():
    drv = FakeDriver(ok)
    launch(LaunchRequest(gpu(1), "gpu", sim(drv)))
    calls = list(drv.calls)
    action = preview(gpu(2), "gpu", simulate=SCENARIO)
    assert isinstance(action, Replace) and action.reason == "resources changed"
    with pytest.raises(UsageError, match="would replace it"):
        launch(LaunchRequest(gpu(2), "gpu", sim(drv)))
    assert drv.calls == calls  # nothing was touched


def test_a_confirmed_replacement_launches_the_new_placement_then_destroys_the_old():
    drv = FakeDriver(ok)
    old = launch(LaunchRequest(gpu(1), "gpu", sim(drv)))
    res = launch(LaunchRequest(gpu(2), "gpu", sim(drv, replace=True)))
    assert res.action == "replace" and res.stack != old.stack
    assert res.stack.startswith("gpu.a002.")  # numbered after the live stack: names never meet
    assert drv.calls[-2:] == [("up", res.stack), ("destroy", old.stack)]
    assert drv.live == {res.stack}
    row = StateDB().get_cluster("gpu")
    assert (row.status, row.stack) == ("UP", res.stack)
    assert row.task["resources"]["candidates"][0]["accelerators"] == [{"name": "V100", "count": 2}]
    assert {a.stack: a.status for a in StateDB().attempts("gpu")} == {old.stack: "cleaned", res.stack: "up"}


def test_a_replacement_that_cannot_launch_leaves_the_old_cluster_untouched():
    drv = FakeDriver(ok)
    old = launch(LaunchRequest(gpu(1), "gpu", sim(drv)))
    drv.script = lambda s: UpResult(False, error="something nobody has seen before")
    with pytest.raises(ProvisionFailed) as e:
        launch(LaunchRequest(gpu(2), "gpu", sim(drv, replace=True)))
    assert "still runs its old placement, untouched" in e.value.hint
    row = StateDB().get_cluster("gpu")
    assert (row.status, row.stack) == ("UP", old.stack) and drv.live == {old.stack}
    assert row.task["resources"]["candidates"][0]["accelerators"] == [{"name": "V100", "count": 1}]


@pytest.mark.parametrize("point", ["replace.after-up", "replace.after-switch"])
def test_a_replacement_cut_short_is_finished_by_the_next_apply(point):
    drv = FakeDriver(ok)
    launch(LaunchRequest(gpu(1), "gpu", sim(drv)))
    failpoints.configure(f"{point}:raise")
    with pytest.raises(failpoints.FailpointError):
        launch(LaunchRequest(gpu(2), "gpu", sim(drv, replace=True)))
    failpoints.configure(None)
    assert len(drv.live) == 2  # both placements run: the crash window
    again = launch(LaunchRequest(gpu(2), "gpu", sim(drv, replace=True)))
    row = StateDB().get_cluster("gpu")
    assert drv.live == {row.stack} == {again.stack} and row.status == "UP"
    assert converging.stale_stacks(StateDB(), "gpu", row.stack) == []


def test_rerun_cut_short_after_its_journal_is_launched_afresh():
    drv = FakeDriver(ok)
    first = launch(LaunchRequest(load_text(LOCAL), options=LaunchOptions(driver=drv)))
    failpoints.configure("rerun.after-journal:raise")
    with pytest.raises(failpoints.FailpointError):
        launch(LaunchRequest(load_text(LOCAL.replace("hi", "bye")), options=LaunchOptions(driver=drv)))
    failpoints.configure(None)
    assert StateDB().get_cluster("hello").status == "PROVISIONING"  # a crash: not UP, so the next apply recovers
    res = launch(LaunchRequest(load_text(LOCAL.replace("hi", "bye")), options=LaunchOptions(driver=drv)))
    assert res.action == "create" and drv.live == {res.stack}
    assert drv.calls[-2:] == [("destroy", first.stack), ("up", res.stack)]  # recovered, then launched afresh


def test_a_vm_cloud_reruns_in_place_through_its_node_runtime_and_a_missing_cluster_is_created():
    drv = FakeDriver(ok)
    launch(LaunchRequest(gpu(1), "gpu", sim(drv)))
    db = StateDB()
    db.upsert_cluster("gpu", simulate=None)  # as if launched on the real cloud
    changed = make_plan(load_text(GPU.format(n=1).replace("echo hi", "echo bye")), CAT)
    keyless = converging.assess(changed, db.get_cluster("gpu"), simulate=None)
    assert isinstance(keyless, Replace) and keyless.reason == converging.NO_KEY_REASON  # launched elsewhere
    from skyplan.runtime import keys

    keys.ensure_key("gpu")  # launched from here: this machine holds the cluster's key
    action = converging.assess(changed, db.get_cluster("gpu"), simulate=None)
    assert isinstance(action, InPlace)  # its nodes are reached over SSH: stop, re-sync, restart
    assert isinstance(converging.assess(changed, None, simulate=None), Create)
