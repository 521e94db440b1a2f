"""``skyplan jobs launch / logs / cancel`` as the CLI: parsing, the Contract's JSON,
errors with hints, exit codes. The controller is not started: where a command
would start it, a stand-in records the call (and, for a followed launch, plays
the controller's part in the store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.jobs.states import Status
from skyplan.jobs.store import Store

TASK = "name: {name}\nresources:\n  cloud: gcp\n  cpus: 2\nrun: echo hi\n"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", url)
    started: list[int] = []

    def ensure_running(settings=None, store=None, *, port=None):  # noqa: ANN001, ANN202
        started.append(1)
        return True

    from skyplan.jobs import daemon

    monkeypatch.setattr(daemon, "ensure_running", ensure_running)
    return tmp_path, url, started


def _task(tmp: Path, name: str = "train") -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(TASK.format(name=name))
    return str(path)


def test_launch_detach_json_is_the_contract(world) -> None:  # noqa: ANN001
    tmp, url, started = world
    r = CliRunner().invoke(app, ["jobs", "launch", _task(tmp), "-n", "mine", "--yes", "--detach", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"job_id": 1, "name": "mine"}
    assert started == [1]
    with Store(url) as s:
        job = s.job(1)
    assert (job.name, job.status) == ("mine", Status.PENDING)


def test_launch_refuses_without_yes_off_a_terminal_and_bad_flags(world) -> None:  # noqa: ANN001
    tmp, url, started = world
    r = CliRunner().invoke(app, ["jobs", "launch", _task(tmp), "--detach"])
    assert r.exit_code == 2 and "--yes" in r.output
    r = CliRunner().invoke(app, ["jobs", "launch", _task(tmp), "--yes", "--detach", "--use-spot", "maybe"])
    assert r.exit_code == 2 and "--use-spot takes true or false" in r.output
    assert started == []


@pytest.mark.parametrize("end,code", [(Status.SUCCEEDED, 0), (Status.FAILED, 7), (Status.FAILED_SETUP, 7),
                                      (Status.FAILED_NO_RESOURCE, 4), (Status.CANCELLED, 130)])
def test_a_followed_launch_exits_with_the_jobs_end(world, monkeypatch: pytest.MonkeyPatch, end: Status,
                                                   code: int) -> None:
    tmp, url, _ = world
    from skyplan.jobs import daemon, logs

    def controller(settings=None, store=None, *, port=None):  # noqa: ANN001, ANN202
        job_id = store.unfinished()[-1].job_id
        log = logs.open_run(store, job_id, 0, f"job-{job_id}-0")
        log.write("the task's own line\n")
        store.transition(job_id, 0, end, "as scripted")
        return True

    monkeypatch.setattr(daemon, "ensure_running", controller)
    r = CliRunner().invoke(app, ["jobs", "launch", _task(tmp), "--yes"])
    assert r.exit_code == code, r.output
    assert "the task's own line" in r.stdout and "──── job 1 · task 0 (train) · run 1" in r.stdout
    assert f"Managed job 1 {end.value}: as scripted" in r.stderr


def test_logs_by_id_and_name_and_unknown(world) -> None:  # noqa: ANN001
    tmp, url, _ = world
    from skyplan.jobs import logs

    for _ in range(2):
        CliRunner().invoke(app, ["jobs", "launch", _task(tmp), "-n", "twice", "--yes", "--detach"])
    with Store(url) as s:
        for job_id in (1, 2):
            logs.open_run(s, job_id, 0, f"job-{job_id}-0").write(f"output of job {job_id}\n")
            s.transition(job_id, 0, Status.SUCCEEDED, "the task exited 0")
    r = CliRunner().invoke(app, ["jobs", "logs", "-n", "twice"])
    assert r.exit_code == 0 and "output of job 2" in r.stdout and "output of job 1" not in r.stdout
    r = CliRunner().invoke(app, ["jobs", "logs", "1"])
    assert r.exit_code == 0 and "output of job 1" in r.stdout
    r = CliRunner().invoke(app, ["jobs", "logs", "1", "--controller"])
    assert r.exit_code == 0 and "job 1 task 0: SUCCEEDED: the task exited 0" in r.stdout
    r = CliRunner().invoke(app, ["jobs", "logs", "9"])
    assert r.exit_code == 2 and "no managed job 9" in r.output and "jobs queue" in r.output
    r = CliRunner().invoke(app, ["jobs", "logs"])
    assert r.exit_code == 2


def test_cancel_by_id_name_all(world) -> None:  # noqa: ANN001
    tmp, url, started = world
    for name in ("a", "b", "c"):
        CliRunner().invoke(app, ["jobs", "launch", _task(tmp, name), "--yes", "--detach"])
    with Store(url) as s:
        s.transition(3, 0, Status.SUCCEEDED, "done")
    started.clear()
    r = CliRunner().invoke(app, ["jobs", "cancel", "1", "3", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["cancelling"], doc["already_finished"]) == ([1], [3])
    assert started == [1]  # the controller carries the cancel out
    r = CliRunner().invoke(app, ["jobs", "cancel", "-n", "b"])
    assert r.exit_code == 0 and "Cancelling managed job 2" in r.stdout
    r = CliRunner().invoke(app, ["jobs", "cancel", "--all"])
    assert r.exit_code == 0, r.output
    with Store(url) as s:
        assert all(j.cancel_requested for j in (s.job(1), s.job(2)))
    r = CliRunner().invoke(app, ["jobs", "cancel", "1", "--all"])
    assert r.exit_code == 2 and "one of them" in r.output


def test_logs_json_is_a_stream_of_runs_and_lines_then_a_summary(world) -> None:  # noqa: ANN001
    tmp, url, _ = world
    from skyplan.jobs import logs
    from skyplan.jobs.states import Placement

    CliRunner().invoke(app, ["jobs", "launch", _task(tmp), "--yes", "--detach"])
    with Store(url) as s:
        logs.open_run(s, 1, 0, "job-1-0").write("first\n")
        s.end_run(1, 0, 1, Placement("gcp", "us-west4", "us-west4-a", "e2-standard-2", True), "preempted")
        logs.open_run(s, 1, 0, "job-1-0").write("second\n")
        s.transition(1, 0, Status.SUCCEEDED, "the task exited 0")
    r = CliRunner().invoke(app, ["jobs", "logs", "1", "--json"])
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(e["event"], e.get("run_no"), e.get("line")) for e in events] == [
        ("run", 1, None), ("log", 1, "first"), ("run", 2, None), ("log", 2, "second"), ("summary", None, None)]
    assert events[0]["placement"]["zone"] == "us-west4-a" and events[0]["outcome"] == "preempted"
    assert events[-1]["status"] == "SUCCEEDED"
