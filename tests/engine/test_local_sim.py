"""The local and sim clouds under the real engine, through StackDriver.

Every test runs on the ``driver`` fixture's tmp file:// backend and tmp
SKYPLAN_HOME; the fixture destroys and removes any stack a test leaves, and
each test also removes its own stacks in ``finally``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.local.cloud import Local
from skyplan.clouds.sim import ledger, texts
from skyplan.clouds.sim.cloud import Sim
from skyplan.clouds.local import runner

pytestmark = pytest.mark.engine

SEED_000_US_CENTRAL1_A = (
    "The zone 'projects/intercloud-320520/zones/us-central1-a' does not have "
    "enough resources available to fulfill the request.  Try a different zone, or try again later."
)
REPO = Path(__file__).resolve().parents[2]


def _wait(cond: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _local(stack: str, **kw) -> ProvisionRequest:
    base = dict(
        cluster="hello",
        stack=stack,
        cloud="local",
        region="local",
        zone=None,
        instance_type="local",
        use_spot=False,
        envs={"GREETING": "hello"},
        setup='echo "setting up $GREETING"',
        run='echo "$GREETING from node $SKYPLAN_NODE_RANK of $SKYPLAN_NUM_NODES"',
    )
    base.update(kw)
    return ProvisionRequest(**base)


def _sim(stack: str, zone: str, scenario: Path, **kw) -> ProvisionRequest:
    base = dict(
        cluster="gpu",
        stack=stack,
        cloud="gcp",
        region=zone[:-2],
        zone=zone,
        instance_type="n1-highmem-8",
        use_spot=False,
        accelerators={"V100": 1.0},
        run="echo simulated on $SKYPLAN_CLUSTER",
        scenario=str(scenario),
    )
    base.update(kw)
    return ProvisionRequest(**base)


def test_local_hello_world_up_logs_and_destroy(driver, skyplan_home: Path) -> None:
    req = _local("hello.a001.local", num_nodes=2)
    sandbox = None
    try:
        res = driver.up(req.stack, Local().program(req), timeout_s=120)
        assert res.ok, res.error
        sandbox = Path(res.outputs["sandbox"])
        assert sandbox == skyplan_home / "sandboxes" / req.stack
        assert res.outputs["cloud"] == "local" and len(res.outputs["nodes"]) == 2
        assert res.resource_count >= 2
        for node in res.outputs["nodes"]:
            assert Path(node["sandbox"]).is_dir()
        _wait(lambda: all(runner.status(n["sandbox"])["phase"] == "done" for n in res.outputs["nodes"]), "both nodes")
        log = Path(res.outputs["log"]).read_text()
        assert "setting up hello" in log and "hello from node 0 of 2" in log
        assert "hello from node 1 of 2" in Path(res.outputs["nodes"][1]["logs"]["run"]).read_text()
    finally:
        driver.destroy_and_remove(req.stack)
    assert sandbox is not None and not sandbox.exists()
    assert req.stack not in driver.list_stacks()


def test_local_destroy_stops_a_running_task(driver) -> None:
    req = _local("hello.a002.local", setup=None, run="echo started; sleep 600")
    try:
        res = driver.up(req.stack, Local().program(req), timeout_s=120)
        assert res.ok, res.error
        node = res.outputs["nodes"][0]
        _wait(lambda: "started" in Path(node["logs"]["run"]).read_text(), "the task to start")
        pgid = node["pid"]
        assert runner.group_alive(pgid)
    finally:
        driver.destroy_and_remove(req.stack)
    assert not runner.group_alive(pgid)


def test_sim_capacity_failure_gives_the_exact_text_and_leaves_nothing(driver, skyplan_home: Path) -> None:
    scenario = REPO / "examples" / "scenarios" / "seed-000.yaml"
    req = _sim("gpu.a001.gcp.us-central1-a", "us-central1-a", scenario)
    try:
        res = driver.up(req.stack, Sim().program(req), timeout_s=120)
        assert not res.ok
        assert res.error == SEED_000_US_CENTRAL1_A
        assert res.urn is not None and res.urn.endswith("::node-0")
        assert ledger.count_live() == 0
    finally:
        driver.destroy_and_remove(req.stack)
    assert ledger.count_live() == 0
    assert not (skyplan_home / "sandboxes" / req.stack).exists()
    assert req.stack not in driver.list_stacks()


def test_sim_default_text_is_the_target_clouds_and_classifies(driver, tmp_path: Path) -> None:
    scenario = tmp_path / "quota.yaml"
    scenario.write_text("default: quota\n")
    req = _sim("gpu.a002.gcp.us-central1-b", "us-central1-b", scenario, accelerators={"V100": 8.0})
    try:
        res = driver.up(req.stack, Sim().program(req), timeout_s=120)
        assert not res.ok and res.error == texts.error_text("quota", req)
        c = Sim(target="gcp").classify(res.error)
        assert c.kind.value == "quota" and c.message == res.error
    finally:
        driver.destroy_and_remove(req.stack)
    assert ledger.count_live() == 0


def test_sim_success_is_in_the_ledger_until_destroyed(driver, skyplan_home: Path) -> None:
    scenario = REPO / "examples" / "scenarios" / "seed-000.yaml"
    req = _sim("gpu.a007.gcp.us-west1-a", "us-west1-a", scenario)
    try:
        res = driver.up(req.stack, Sim().program(req), timeout_s=120)
        assert res.ok, res.error
        live = ledger.live_resources()
        assert [r["id"] for r in live] == [res.outputs["nodes"][0]["ledger_id"]]
        assert (live[0]["cloud"], live[0]["zone"], live[0]["stack"]) == ("gcp", "us-west1-a", req.stack)
        assert res.outputs["ledger"] == str(skyplan_home / "sim" / "ledger.db")
        _wait(lambda: "simulated on gpu" in Path(res.outputs["log"]).read_text(), "the task's output")
    finally:
        driver.destroy_and_remove(req.stack)
    assert ledger.count_live() == 0
    assert not (skyplan_home / "sandboxes" / req.stack).exists()


def test_sim_hang_times_out_and_cleans_up(driver, tmp_path: Path) -> None:
    scenario = tmp_path / "hang.yaml"
    scenario.write_text("default: hang\n")
    req = _sim("gpu.a003.gcp.us-central1-c", "us-central1-c", scenario)
    sim = Sim()
    try:
        res = driver.up(req.stack, sim.program(req), timeout_s=5)
        assert not res.ok and res.timed_out
        assert any(u.endswith("::node-0") for u in res.interrupted)
    finally:
        driver.destroy_and_remove(req.stack, resolve_interrupted=sim.resolve_interrupted)
    assert ledger.count_live() == 0
    assert req.stack not in driver.list_stacks()
