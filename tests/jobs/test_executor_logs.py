"""The real executor's parts that need no engine: the clouds' ``node_state`` and
``tick`` hooks, ``sim preempt``, status checks as ``Check``s, run logs (pump,
separators, restart), submission, and the managed task's environment."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from skyplan.clouds.local import runner
from skyplan.clouds.local.cloud import Local
from skyplan.clouds.sim import ledger
from skyplan.clouds.sim.cloud import Sim
from skyplan.jobs import logs
from skyplan.jobs.executor import Check, CloudSays, check_of, run_env, with_env, with_use_spot
from skyplan.jobs.states import Placement


def _row(db: Path, cluster: str, **kw) -> dict:
    return ledger.record_create(db, cluster=cluster, stack=f"{cluster}.a001", cloud="gcp", region="us-west4",
                                zone="us-west4-a", instance_type="e2-standard-2", use_spot=True, **kw)


def test_sim_node_state_is_the_ledgers_word(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    a, b = _row(db, "c"), _row(db, "c", node_rank=1)
    outputs = {"ledger": str(db), "nodes": [{"rank": 0, "ledger_id": a["id"]}, {"rank": 1, "ledger_id": b["id"]}]}
    sim = Sim()
    assert sim.node_state(outputs) == "running"
    ledger.mark_preempted(db, b["id"])
    assert sim.node_state(outputs) == "stopped"  # a reclaimed spot VM
    ledger.record_delete(db, a["id"])
    ledger.record_delete(db, b["id"])
    assert sim.node_state(outputs) == "gone"
    assert sim.node_state({"ledger": str(db), "nodes": [{"rank": 0}]}) == "unknown"
    assert sim.node_state({}) == "unknown"
    assert CloudSays.parse(sim.node_state(outputs)) is CloudSays.GONE


def test_sim_tick_preempts_what_is_due_and_preempt_cluster_now(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    due = _row(db, "a", preempt_after_s=0.0)
    later = _row(db, "b", preempt_after_s=3600.0)
    other = _row(db, "b", node_rank=1)
    assert [r["id"] for r in Sim(ledger_db=str(db)).tick()] == [due["id"]]
    assert ledger.get(db, later["id"])["state"] == ledger.LIVE
    from skyplan.clouds.sim.preempt import preempt_cluster

    assert sorted(r["id"] for r in preempt_cluster("b", db=db)) == sorted([later["id"], other["id"]])
    assert preempt_cluster("b", db=db) == []  # nothing live left to preempt
    assert {r["state"] for r in ledger.all_resources(db)} == {ledger.PREEMPTED}


def test_sim_preempt_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from skyplan.cli.main import app

    row = _row(ledger.default_path(), "mine")
    r = CliRunner().invoke(app, ["sim", "preempt", "mine", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["preempted"] == [row["id"]]
    assert ledger.get(ledger.default_path(), row["id"])["state"] == ledger.PREEMPTED
    r = CliRunner().invoke(app, ["sim", "preempt", "mine"])
    assert r.exit_code == 2 and "no live sim node" in r.output


def test_clouds_that_cannot_tell_say_unknown() -> None:
    from skyplan.clouds import registry

    for name in registry.names():
        cloud = registry.get(name)
        if not cloud.capabilities.runs_here:
            assert cloud.node_state({"anything": 1}) == "unknown"
            assert cloud.tick() == []


def _spec(**kw) -> dict:
    spec = {"cluster": "c", "stack": "c.a001", "node_rank": 0, "num_nodes": 1, "run": "sleep 30"}
    spec.update(kw)
    return spec


def test_local_node_state_gone_when_processes_vanish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = tmp_path / "sandboxes" / "c.a001"
    root = stack / "node-0"
    info = runner.start(_spec(), root)
    outputs = {"sandbox": str(stack), "nodes": [{"rank": 0}]}
    try:
        deadline = time.monotonic() + 10
        while runner.status(root)["phase"] != "run" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Local().node_state(outputs) == "running"
        os.killpg(int(info["pgid"]), signal.SIGKILL)  # the machine died: no end recorded
        deadline = time.monotonic() + 10
        while runner.status(root)["phase"] != "lost" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Local().node_state(outputs) == "gone"
    finally:
        runner.remove(root)
    assert Local().node_state(outputs) == "gone"  # its sandbox is gone too
    assert Local().node_state({}) == "unknown"


def test_checks_from_log_source_status() -> None:
    assert check_of({"phase": "setup", "returncode": None}, 1.0) == Check(1.0, "run")
    assert check_of(None, 2.0).phase == "absent"
    failed = {"phase": "failed", "returncode": 3,
              "nodes": [{"phase": "done"}, {"phase": "failed", "returncode": 3, "failed_phase": "setup"}]}
    assert check_of(failed, 3.0) == Check(3.0, "failed", 3, "setup", "")
    lost = {"phase": "lost", "returncode": None, "nodes": [{"phase": "lost", "detail": "SshUnreachable: refused"}]}
    assert check_of(lost, 4.0) == Check(4.0, "lost", None, None, "SshUnreachable: refused")
    assert check_of({"phase": "weird"}, 5.0).phase == "lost"


def test_managed_task_id_reaches_the_task_env() -> None:
    env = runner.task_env(_spec(envs=run_env("skyplan-managed-x_7-0", 7, 2)), {})
    assert (env["SKYPLAN_TASK_ID"], env["SKYPLAN_JOB_ID"], env["SKYPLAN_NUM_RECOVERIES"]) == \
        ("skyplan-managed-x_7-0", "7", "2")
    assert runner.task_env(_spec(), {})["SKYPLAN_TASK_ID"] == "c.a001"  # a plain cluster: its stack


def test_with_env_and_use_spot_override() -> None:
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.spec import load_text

    task = load_text("name: t\nresources:\n  cloud: gcp\n  cpus: 2\n  use_spot: true\n"
                 "envs:\n  A: '1'\n  SKYPLAN_TASK_ID: mine\n")
    on_demand = with_use_spot(task, False)
    assert not any(c.use_spot for c in on_demand.resources.candidates)
    plan = make_plan(on_demand, load_catalog(None))
    assert plan.candidates and not any(c.use_spot for c in plan.candidates)
    envs = dict(with_env(plan, run_env("tid", 1, 0)).task.envs)
    assert envs["A"] == "1" and envs["SKYPLAN_TASK_ID"] == "tid"


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def write(self, text: str) -> None:
        with open(self.path, "a") as fh:
            fh.write(text)


def test_pump_copies_each_line_once_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "run-1.log"
    log = logs.RunLogFile(path)
    log.note("attempt 1: up")
    assert logs.pump(log, ["a\n", "b\n"]) == 2
    assert logs.pump(log, ["a\n", "b\n"]) == 0
    assert logs.pump(_Log(path), ["a\n", "b\n", "c"]) == 1  # a restarted controller, a plain RunLog
    lines = path.read_text().splitlines()
    assert lines[0].startswith(logs.NOTE_PREFIX) and lines[0].endswith("attempt 1: up")
    assert lines[1:] == ["a", "b", "c"]


def test_job_lines_print_runs_in_order_with_their_placements(tmp_path: Path) -> None:
    from skyplan.jobs.store import Store, TaskSubmission

    with Store(f"sqlite:///{tmp_path / 'jobs.db'}") as store:
        job_id = store.submit("j", [TaskSubmission("train", "{}", "1x gcp")], options={})
        first = logs.open_run(store, job_id, 0, f"job-{job_id}-0")
        second = logs.open_run(store, job_id, 0, f"job-{job_id}-0")
        assert first.path.endswith("task-0/run-1.log") and second.path.endswith("task-0/run-2.log")
        first.write("one\n")
        second.write("two\n")
        west = Placement("gcp", "us-west4", "us-west4-a", "e2-standard-2", True)
        store.end_run(job_id, 0, 1, west, "preempted")
        text = "".join(logs.job_lines(store, job_id))
    seps = [line for line in text.splitlines() if line.startswith("────")]
    assert len(seps) == 2
    assert "run 1 · gcp us-west4-a e2-standard-2 [spot] · preempted" in seps[0]
    assert "run 2" in seps[1] and "task 0 (train)" in seps[1]
    assert text.index("one") < text.index(seps[1]) < text.index("two")


def test_submit_checks_before_recording(tmp_path: Path) -> None:
    from skyplan.errors import InputError, NoCandidatesError
    from skyplan.jobs.store import Store
    from skyplan.jobs.submit import submit
    from skyplan.spec.serialize import task_from_dict

    (tmp_path / "src").mkdir()
    ok = tmp_path / "ok.yaml"
    ok.write_text("name: ok\nworkdir: ./src\nresources:\n  cloud: gcp\n  cpus: 2\nrun: echo hi\n")
    secret = tmp_path / "secret.yaml"
    secret.write_text("name: s\nsecrets:\n  TOKEN: null\nresources:\n  cloud: gcp\nrun: echo hi\n")
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\nresources:\n  cloud: gcp\n  cpus: 100000\nrun: echo hi\n")
    with Store(f"sqlite:///{tmp_path / 'jobs.db'}") as store:
        with pytest.raises(InputError, match="secrets"):
            submit(str(secret), store=store, start_controller=False)
        with pytest.raises(NoCandidatesError):
            submit(str(huge), store=store, start_controller=False)
        assert store.unfinished() == []
        done = submit(str(ok), name="mine", use_spot=True, store=store, start_controller=False)
        job = store.job(done.job_id)
    assert (job.name, len(job.tasks)) == ("mine", 1)
    task = task_from_dict(json.loads(job.tasks[0].task_json))
    assert task.workdir == str(tmp_path / "src")  # the controller runs elsewhere
    assert task.resources.candidates[0].use_spot
    assert "[Spot]" in job.tasks[0].resources


def test_follow_keeps_a_replaced_runs_last_lines(tmp_path: Path) -> None:
    """The relaunch's run exists before the old cluster's last lines are copied (during
    its teardown): following waits for them before moving on to the next run."""
    import threading

    from skyplan.jobs.states import Status
    from skyplan.jobs.store import Store, TaskSubmission

    with Store(f"sqlite:///{tmp_path / 'jobs.db'}") as store:
        job_id = store.submit("j", [TaskSubmission("t", "{}", "1x gcp")], options={})
        first = logs.open_run(store, job_id, 0, "c")
        first.write("early\n")
        seen: list[str] = []
        follower = threading.Thread(target=lambda: seen.extend(logs.follow_job(store, job_id, poll_s=0.05)))
        follower.start()
        deadline = time.monotonic() + 10
        while "early\n" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        second = logs.open_run(store, job_id, 0, "c")  # the relaunch is decided ...
        time.sleep(0.5)
        first.write("last words\n")  # ... then the teardown copies the old cluster's last lines
        second.note("launching c")
        time.sleep(0.3)
        store.transition(job_id, 0, Status.SUCCEEDED, "done")
        follower.join(10)
    text = "".join(seen)
    assert text.index("early") < text.index("last words") < text.index("run 2") < text.index("launching c")
