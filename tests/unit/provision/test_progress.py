"""The launch reports what the running attempt is doing (progress events): its
phase from the engine's events, how many attempts can still follow, and what a
stopping launch cleans up."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.errors import CleanupError
from skyplan.planner import make_plan
from skyplan.provision.apply import Applier
from skyplan.provision.progress import BOOTING, CLEANING_UP, CREATING, AttemptPhases, Cleanup, Phase
from skyplan.provision.protocol import ResourceStep
from skyplan.spec import load_text
from skyplan.state import StateDB
from skyplan.testing.fakes import FakeCatalog, FakeDriver, FakeUp, offer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = str(ROOT / "examples" / "scenarios" / "seed-000.yaml")
CAP = ("The zone 'projects/p/zones/{z}' does not have enough resources available to fulfill the request.  "
       "Try a different zone, or try again later.")
QUOTA = "Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-central1."

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


def step(stack: str, step: str, op: str, name: str) -> ResourceStep:
    return ResourceStep(stack, step, op, f"urn:pulumi:{stack}::skyplan::skyplan:index:SimNode::{name}",
                        "skyplan:index:SimNode")


class EngineDriver(FakeDriver):
    """A FakeDriver whose ``up`` reports the engine's resource steps, as the real one does."""

    def up(self, stack, program, *, timeout_s, on_event=None):
        res = super().up(stack, program, timeout_s=timeout_s, on_event=on_event)
        if on_event is not None:
            on_event(step(stack, "pre", "create", "node-0"))
            on_event(step(stack, "outputs" if res.ok else "failed", "create", "node-0"))
            if res.ok:
                on_event(step(stack, "pre", "create", "node-1"))
                on_event(step(stack, "outputs", "create", "node-1"))
        return res


def launch(script, progress: list, driver_cls=EngineDriver):
    drv = driver_cls(script)
    applier = Applier(simulate=SCENARIO, driver=drv)
    applier.progress = progress.append
    return applier.apply(plan(), "t"), drv


def test_each_attempt_reports_its_phases_from_the_engine_events():
    progress: list = []
    launch(lambda s: FakeUp(False, error=CAP.format(z=zone_of(s))) if zone_of(s) == "us-central1-a"
           else FakeUp(True), progress)
    first = [(p.phase, p.detail) for p in progress if isinstance(p, Phase) and p.number == 1]
    assert first == [(CREATING, ""), (CREATING, "node-0"), (CREATING, ""), (CLEANING_UP, "")]
    second = [(p.phase, p.detail) for p in progress if isinstance(p, Phase) and p.number == 2]
    # Once a node exists the cluster is booting, while the rest of the stack comes up.
    assert second == [(CREATING, ""), (CREATING, "node-0"), (BOOTING, ""), (BOOTING, "node-1"), (BOOTING, "")]
    assert not any(isinstance(p, Cleanup) for p in progress)  # nothing was stopping


def test_the_bound_counts_the_candidates_no_block_covers_yet():
    progress: list = []

    def script(stack):
        z = zone_of(stack)
        return FakeUp(False, error=QUOTA) if z == "us-central1-a" else FakeUp(True)

    res, _ = launch(script, progress)
    bounds = {p.number: p.bound for p in progress if isinstance(p, Phase)}
    # Four candidates at first; the regional GPU quota blocks us-central1's other two zones.
    assert bounds == {1: 4, 2: 2}
    assert res.placement.cloud == "aws"


def test_an_interrupted_attempt_says_what_it_cleans_up_and_when_it_is_done():
    progress: list = []

    def script(stack):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        launch(script, progress)
    cleanups = [p for p in progress if isinstance(p, Cleanup)]
    assert [(c.done, c.ok, c.reason) for c in cleanups] == [(False, True, "interrupted"), (True, True, "interrupted")]
    assert cleanups[0].candidate is not None and cleanups[0].candidate.zone == "us-central1-a"
    assert cleanups[0].stack == cleanups[1].stack
    assert [a.status for a in StateDB().attempts("t")] == ["cleaned"]


def test_a_cleanup_that_fails_while_stopping_says_so():
    progress: list = []

    class Leaky(EngineDriver):
        def up(self, stack, program, *, timeout_s, on_event=None):
            self.fail_cleanup = {stack}
            raise KeyboardInterrupt

    with pytest.raises(CleanupError):  # what may have leaked outranks the interrupt (exit 5)
        launch(lambda s: FakeUp(True), progress, driver_cls=Leaky)
    done = [p for p in progress if isinstance(p, Cleanup) and p.done]
    assert done and not done[0].ok and done[0].reason == "interrupted" and "still has 1 resource" in done[0].error


def test_without_a_progress_listener_nothing_is_computed():
    events: list = []
    drv = EngineDriver(lambda s: FakeUp(True))
    Applier(simulate=SCENARIO, driver=drv, emit=events.append).apply(plan(), "t")
    assert [type(e).__name__ for e in events] == ["Launching", "AttemptDone"]  # the launch events are unchanged


def test_attempt_phases_pass_every_engine_event_on():
    seen, phases = [], []
    p = AttemptPhases(phases.append, 1, 3, plan().candidates[0], "s", then=seen.append)
    ev = step("s", "pre", "create", "node-0")
    p(ev)
    assert seen == [ev] and phases[-1].detail == "node-0"
    with pytest.raises(CleanupError):  # a failpoint hook's own exception still reaches the caller
        AttemptPhases(phases.append, 1, 3, plan().candidates[0], "s",
                      then=lambda e: (_ for _ in ()).throw(CleanupError("x", stack="s")))(ev)
