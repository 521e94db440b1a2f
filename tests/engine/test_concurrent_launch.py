"""Four launches of distinct clusters from one process at once, through the launch API,
on the sim cloud with the real engine and a file:// backend; then a down of each.
Nothing may be left: no live sim resource, no stack on the backend."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.clouds.sim.ledger import live_resources
from skyplan.planner import make_plan
from skyplan.provision.events import AttemptDone
from skyplan.provision.launch import LaunchOptions, LaunchRequest, down, launch
from skyplan.spec import load_text

pytestmark = pytest.mark.engine

# Zone a is out of capacity, so every launch fails over once (a failed up, a
# destroy, then an up) while the others do the same.
SCENARIO = """\
default: ok
latency_s: 0
rules:
  - {cloud: gcp, zone: us-central1-a, outcome: capacity}
"""
TASK = """\
name: many
resources:
  cloud: gcp
  region: us-central1
  accelerators: V100
run: echo "hello from $SKYPLAN_CLUSTER"
"""


def _in_threads(fn, names: list[str]) -> dict[str, object]:
    """``fn(name)`` in one thread per name, all started together; results or exceptions."""
    barrier = threading.Barrier(len(names))
    out: dict[str, object] = {}

    def run(name: str) -> None:
        barrier.wait()
        try:
            out[name] = fn(name)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            out[name] = exc

    threads = [threading.Thread(target=run, args=(n,), name=f"launch-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads), "a launch hung"
    return out


def test_four_concurrent_launches_on_sim_come_up_and_leave_nothing_after_down(
        engine, skyplan_home: Path, backend_url: str, tmp_path: Path) -> None:
    from skyplan.provision.driver import StackDriver

    scenario = tmp_path / "zone-a-full.yaml"
    scenario.write_text(SCENARIO)
    plan = make_plan(load_text(TASK), load_catalog())
    assert plan.candidates[0].zone == "us-central1-a"
    names = [f"many-{i}" for i in range(4)]
    events: dict[str, list] = {n: [] for n in names}

    def one(name: str):
        options = LaunchOptions(backend=backend_url, simulate=str(scenario), timeout_s=300,
                                on_event=events[name].append)
        return launch(LaunchRequest(plan, name, options))

    try:
        results = _in_threads(one, names)
        for name in names:
            res = results[name]
            assert getattr(res, "status", res) == "UP", f"{name}: {res!r}"
            assert res.placement.zone != "us-central1-a" and res.simulated
            assert len(res.stacks) == 2 and all(s.startswith(name + ".") for s in res.stacks)
            outcomes = [e.to_json()["outcome"] for e in events[name] if isinstance(e, AttemptDone)]
            assert outcomes == ["failed", "up"], name
        live = live_resources()
        assert sorted(r["cluster"] for r in live) == names  # one node each, the failed attempts cleaned
        assert sorted(StackDriver(backend_url).list_stacks()) == sorted(r.stack for r in results.values())
    finally:
        downs = _in_threads(lambda n: down(n), names)
    assert all(getattr(d, "stacks", None) for d in downs.values()), downs
    assert live_resources() == []
    assert StackDriver(backend_url).list_stacks() == []
