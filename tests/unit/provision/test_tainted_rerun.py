"""A cluster whose last task did not succeed does not match its task (Terraform's
"tainted"): applying the same task again re-runs it, with a new revision so the
nodes really start it again, instead of saying "already up"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyplan.clouds import registry
from skyplan.planner import make_plan
from skyplan.provision import converge
from skyplan.provision.converge import InPlace, NoChange, Placement, Replace
from skyplan.provision.launch import LaunchOptions, LaunchRequest, launch, preview
from skyplan.provision.protocol import UpResult
from skyplan.spec import load_text
from skyplan.state import StateDB
from skyplan.testing.fakes import FakeCatalog, FakeDriver

TASK = "name: failer\nresources:\n  cloud: local\n  cpus: 1+\nrun: exit 3\n"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))


@pytest.fixture
def revisions(monkeypatch):
    """Every node revision the local cloud's program is built with."""
    seen: list[str | None] = []
    cls = type(registry.runner("local", False))
    real = cls.program

    def program(self, request):  # noqa: ANN001, ANN202
        seen.append(request.revision)
        return real(self, request)

    monkeypatch.setattr(cls, "program", program)
    return seen


def ended(sandbox: Path, phase: str, returncode: int | None = None) -> None:
    node = sandbox / "node-0"
    node.mkdir(parents=True, exist_ok=True)
    (node / "status.json").write_text(json.dumps({"phase": phase, "returncode": returncode}))


def up_on(sandbox: Path):
    return FakeDriver(lambda stack: UpResult(True, outputs={"sandbox": str(sandbox)}))


def test_a_task_that_failed_is_rerun_in_place_with_a_new_revision(tmp_path, revisions):
    sandbox = tmp_path / "sb"
    drv = up_on(sandbox)
    first = launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv)))
    ended(sandbox, "failed", 3)
    plan = make_plan(load_text(TASK), FakeCatalog([]))
    action = preview(plan, "failer")
    assert isinstance(action, InPlace) and action.reason == "the task failed last time (exit code 3)"
    assert [(c.path, c.old, c.new) for c in action.changes] == [("last_task", "failed (exit code 3)", "re-run")]
    again = launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv)))
    assert (again.action, again.status, again.stack) == ("rerun", "UP", first.stack)
    assert drv.calls[-1] == ("up", first.stack)
    # The same task and workdir: only a new revision makes the nodes start it again.
    assert len(revisions) == 2 and revisions[0] != revisions[1]
    ended(sandbox, "done", 0)
    assert preview(plan, "failer") == NoChange()


@pytest.mark.parametrize("phase", ["stopped", "lost"])
def test_a_stopped_or_lost_task_is_rerun_too(tmp_path, phase):
    sandbox = tmp_path / "sb"
    launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=up_on(sandbox))))
    ended(sandbox, phase)
    action = preview(make_plan(load_text(TASK), FakeCatalog([])), "failer")
    assert isinstance(action, InPlace) and action.reason.startswith(f"the task was {phase}")


@pytest.mark.parametrize("phase", ["run", "done"])
def test_a_running_or_succeeded_task_still_matches(tmp_path, phase):
    sandbox = tmp_path / "sb"
    launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=up_on(sandbox))))
    ended(sandbox, phase, 0 if phase == "done" else None)
    assert preview(make_plan(load_text(TASK), FakeCatalog([])), "failer") == NoChange()


def test_rerun_without_a_change_gets_a_new_revision(tmp_path, revisions):
    sandbox = tmp_path / "sb"
    drv = up_on(sandbox)
    launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv)))
    ended(sandbox, "done", 0)
    res = launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv, rerun=True)))
    assert res.action == "rerun" and len(revisions) == 2 and revisions[0] != revisions[1]


def test_the_same_task_again_reports_the_placement_as_planned(tmp_path):
    sandbox = tmp_path / "sb"
    drv = up_on(sandbox)
    first = launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv)))
    ended(sandbox, "done", 0)
    again = launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv)))
    assert again.status == "ALREADY_UP"
    assert again.placement == first.placement and again.placement.vcpus > 0 and again.placement.memory_gib > 0
    assert StateDB().get_cluster("failer").status == "UP"


def test_the_decision_is_pure():
    old = Placement("aws", "us-east-1", "use1-az1", "p3.2xlarge", False)
    assert converge.rerun_if_tainted(NoChange(), "failed", 3, old) == InPlace(
        (converge.Change("last_task", "failed (exit code 3)", "re-run"),), "the task failed last time (exit code 3)")
    replaced = converge.rerun_if_tainted(NoChange(), "failed", 3, old, rerun_in_place=False)
    assert isinstance(replaced, Replace) and replaced.new == old and converge.forced(replaced)
    assert converge.rerun_if_tainted(NoChange(), "done", 0, old) == NoChange()
    assert converge.rerun_if_tainted(NoChange(), None, None, old) == NoChange()
    changed = InPlace((converge.Change("run", "a", "b"),))
    assert converge.rerun_if_tainted(changed, "failed", 1, old) is changed and not converge.forced(changed)
