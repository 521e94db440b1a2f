"""The dynamic providers' create/delete called directly, without the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.sim import ledger, texts
from skyplan.clouds.local import runner
from skyplan.clouds.local.provider import node_props
from skyplan.clouds.local.provider import LocalNodeProvider
from skyplan.clouds.sim.provider import sim_props
from skyplan.clouds.sim.provider import SimNodeProvider


def _finished(root) -> bool:
    return runner.status(root)["phase"] in ("done", "failed", "stopped", "lost")


def _request(cloud="gcp", zone="us-central1-a", scenario=None, **kw) -> ProvisionRequest:
    base = dict(
        cluster="c1",
        stack=f"c1-{cloud}-{zone}",
        cloud=cloud,
        region=zone[:-2] if cloud == "gcp" else "us-east-1",
        zone=zone,
        instance_type="n1-highmem-8",
        use_spot=False,
        accelerators={"V100": 1.0},
        run="echo hello from $SKYPLAN_CLUSTER",
        scenario=str(scenario) if scenario else None,
    )
    base.update(kw)
    return ProvisionRequest(**base)


@pytest.fixture
def scen(tmp_path: Path):
    def write(text: str) -> Path:
        p = tmp_path / f"scenario-{abs(hash(text))}.yaml"
        p.write_text(text)
        return p

    return write


def _sim_props(home: Path, request: ProvisionRequest, rank: int = 0) -> dict:
    root = home / "sandboxes" / request.stack / f"node-{rank}"
    return sim_props(request, rank, root, home / "sim" / "ledger.db")


# --- local --------------------------------------------------------------------


def test_local_create_runs_the_task_and_delete_removes_it(home: Path, wait_for) -> None:
    req = _request(cloud="local", zone="local-x", setup="echo setting-up", envs={"WHO": "me"})
    req = ProvisionRequest(**{**req.__dict__, "run": "echo hello $WHO rank $SKYPLAN_NODE_RANK"})
    props = node_props(req, 0, home / "sandboxes" / req.stack / "node-0")
    p = LocalNodeProvider()
    res = p.create(props)
    root = Path(res.outs["sandbox"])
    try:
        assert res.id == f"{req.stack}/node-0"
        assert res.outs["root"] == props["root"] == str(root)  # inputs are kept for delete
        assert res.outs["pid"] > 0 and set(res.outs["logs"]) == {"setup", "run", "combined"}
        wait_for(lambda: _finished(root), "the task to finish")
        assert "hello me rank 0" in Path(res.outs["logs"]["run"]).read_text()
        assert p.read(res.id, res.outs).id == res.id
    finally:
        p.delete(res.id, res.outs)
    assert not root.exists()
    p.delete(res.id, res.outs)  # idempotent
    assert p.read(res.id, res.outs).id == ""


def test_local_diff_reruns_on_task_changes_and_replaces_on_the_rest(home: Path) -> None:
    req = _request(cloud="local", zone="local-x")
    olds = node_props(req, 0, home / "a")
    # A changed run is an update: the task re-runs in the same sandbox (converging apply).
    d = LocalNodeProvider().diff("id", olds, {**olds, "run": "echo changed"})
    assert d.changes is True and d.replaces == []
    # Anything else about the node (its sandbox, its rank) replaces it, deleting first.
    d = LocalNodeProvider().diff("id", olds, {**olds, "run": "echo changed", "num_nodes": 3})
    assert d.changes is True and d.replaces == ["num_nodes"] and d.delete_before_replace is True
    assert LocalNodeProvider().diff("id", olds, dict(olds)).changes is False


def test_local_delete_stops_a_running_task(home: Path, wait_for) -> None:
    req = _request(cloud="local", zone="local-x", run="touch started; sleep 300")
    props = node_props(req, 0, home / "sandboxes" / req.stack / "node-0")
    res = LocalNodeProvider().create(props)
    wait_for(lambda: (Path(res.outs["sandbox"]) / "workdir" / "started").exists(), "the run to start")
    LocalNodeProvider().delete(res.id, res.outs)
    assert not runner.group_alive(res.outs["pgid"])


# --- sim ----------------------------------------------------------------------


def test_sim_failure_raises_the_rules_exact_text_and_leaves_nothing(home: Path, scen) -> None:
    text = (
        "ZONE_RESOURCE_POOL_EXHAUSTED: The zone 'projects/intercloud-320520/zones/us-central1-a' does not have "
        "enough resources available to fulfill the request.  Try a different zone, or try again later."
    )
    s = scen(f'rules:\n  - {{zone: us-central1-a, outcome: capacity, message: "{text}"}}\n')
    req = _request(scenario=s)
    props = _sim_props(home, req)
    with pytest.raises(Exception) as exc:
        SimNodeProvider().create(props)
    assert type(exc.value) is Exception and str(exc.value) == text
    assert ledger.all_resources(props["ledger"]) == []
    assert not Path(props["root"]).exists()


def test_sim_failure_without_message_uses_the_clouds_usual_text(home: Path, scen) -> None:
    s = scen("default: quota\n")
    req = _request(scenario=s, accelerators={"V100": 8.0})
    with pytest.raises(Exception) as exc:
        SimNodeProvider().create(_sim_props(home, req))
    assert str(exc.value) == texts.error_text("quota", req)
    assert "QUOTA_EXCEEDED" in str(exc.value) or "Quota" in str(exc.value)


def test_sim_ok_records_the_ledger_row_before_the_sandbox(home: Path, scen, monkeypatch, wait_for) -> None:
    s = scen("preemptions:\n  - {zone: us-west1-a, after_s: 30}\n")
    req = _request(zone="us-west1-a", scenario=s)
    props = _sim_props(home, req)
    seen = {}
    real_start = runner.start

    def start(spec, root):
        seen["live_at_start"] = ledger.count_live(db=props["ledger"])
        seen["sandbox_at_start"] = Path(root).exists()
        return real_start(spec, root)

    monkeypatch.setattr(runner, "start", start)
    p = SimNodeProvider()
    res = p.create(props)
    try:
        assert seen == {"live_at_start": 1, "sandbox_at_start": False}
        row = ledger.get(props["ledger"], res.id)
        assert res.outs["ledger_id"] == res.id == row["id"]
        assert (row["state"], row["cloud"], row["zone"], row["stack"]) == ("live", "gcp", "us-west1-a", req.stack)
        assert row["sandbox"] == props["root"]
        assert res.outs["preempt_at"] == pytest.approx(row["created_at"] + 30)
        root = Path(res.outs["sandbox"])
        wait_for(lambda: _finished(root), "the task to finish")
        assert "hello from c1" in Path(res.outs["logs"]["combined"]).read_text()
    finally:
        p.delete(res.id, res.outs)
    assert ledger.get(props["ledger"], res.id)["state"] == "deleted"
    assert not root.exists()
    p.delete(res.id, res.outs)  # idempotent
    assert ledger.count_live(db=props["ledger"]) == 0
    assert p.read(res.id, res.outs).id == ""


def test_sim_sandbox_failure_rolls_the_ledger_row_back(home: Path, scen, tmp_path: Path) -> None:
    req = _request(zone="us-west1-a", scenario=scen("default: ok\n"), workdir=str(tmp_path / "missing"))
    props = _sim_props(home, req)
    with pytest.raises(runner.SandboxError, match="LocalWorkdirMissing"):
        SimNodeProvider().create(props)
    rows = ledger.all_resources(props["ledger"])
    assert [r["state"] for r in rows] == ["deleted"]


def test_sim_transient_times_then_ok(home: Path, scen) -> None:
    req = _request(scenario=scen("rules:\n  - {outcome: transient, times: 1}\n"))
    props = _sim_props(home, req)
    p = SimNodeProvider()
    with pytest.raises(Exception):
        p.create(props)
    res = p.create(props)
    p.delete(res.id, res.outs)
    assert ledger.count_live(db=props["ledger"]) == 0


def test_sim_only_node_zero_consults_the_scenario(home: Path, scen) -> None:
    # default capacity, times-free: node 0 would fail; node 1 is only created after
    # node 0 succeeded, so it must not re-decide (nor spend a times rule).
    req = _request(scenario=scen("default: capacity\n"), num_nodes=2)
    props = _sim_props(home, req, rank=1)
    p = SimNodeProvider()
    res = p.create(props)
    p.delete(res.id, res.outs)
    assert ledger.get(props["ledger"], res.id)["node_rank"] == 1


def test_sim_bad_scenario_fails_create_with_the_findings(home: Path, scen) -> None:
    req = _request(scenario=scen("default: capcity\n"))
    with pytest.raises(Exception, match="capcity"):
        SimNodeProvider().create(_sim_props(home, req))


_HANG = """
import sys
from skyplan.clouds.sim.provider import SimNodeProvider
import json
SimNodeProvider().create(json.loads(sys.argv[1]))
print("returned")
"""


def test_sim_hang_never_returns_and_records_nothing(home: Path, scen) -> None:
    import json

    req = _request(scenario=scen("default: hang\n"))
    props = _sim_props(home, req)
    proc = subprocess.Popen([sys.executable, "-c", _HANG, json.dumps(props)], stdout=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
    finally:
        proc.kill()
        out, _ = proc.communicate()
    assert b"returned" not in out
    assert ledger.all_resources(props["ledger"]) == []


def test_sim_program_requires_a_scenario(home: Path) -> None:
    from skyplan.errors import InputError

    with pytest.raises(InputError, match="scenario"):
        _sim_props(home, _request(scenario=None))


def test_sim_read_keeps_a_preempted_node_until_destroy(home: Path, scen) -> None:
    req = _request(zone="us-west1-a", scenario=scen("default: ok\n"), run="sleep 300")
    props = _sim_props(home, req)
    p = SimNodeProvider()
    res = p.create(props)
    try:
        assert ledger.mark_preempted(props["ledger"], res.id)
        r = p.read(res.id, res.outs)
        assert r.id == res.id and r.outs["state"] == "preempted"
    finally:
        p.delete(res.id, res.outs)
    assert not Path(props["root"]).exists()
    row = ledger.get(props["ledger"], res.id)
    assert row["state"] == "deleted" and row["preempted_at"] is not None
    assert p.read(res.id, res.outs).id == ""
