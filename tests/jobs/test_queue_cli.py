"""``skyplan jobs queue``: the contract's JSON list, newest first; finished jobs
hidden without -a (and said so); pages with the command for the next one;
--status; a table that fits 80 columns with a ↳ row per pipeline task; and a
CLI that does not import SQLAlchemy until a jobs command runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.jobs.states import Placement, Status
from skyplan.jobs.store import Store, TaskSubmission, queue_json

runner = CliRunner()


def invoke(*args: object, columns: int = 200):  # noqa: ANN201
    return runner.invoke(app, ["jobs", "queue", *[str(a) for a in args]], env={"COLUMNS": str(columns)})


@pytest.fixture
def store(jobs_db_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", jobs_db_url)
    s = Store(jobs_db_url)
    yield s
    s.close()


def task(name: str | None = None, resources: str = "1x sim(n1-standard-4, [Spot])") -> TaskSubmission:
    return TaskSubmission(name, "{}", resources)


def fill(store: Store) -> dict[str, int]:
    """Four jobs: done (SUCCEEDED), bert (RUNNING after a recovery), pipe (train RECOVERING, eval PENDING), new."""
    ids = {}
    ids["done"] = store.submit("done", [task()], options={})
    store.transition(ids["done"], 0, Status.RUNNING, "running")
    store.transition(ids["done"], 0, Status.SUCCEEDED, "exit 0")
    ids["bert"] = store.submit("bert-qa", [task()], options={})
    store.transition(ids["bert"], 0, Status.RUNNING, "running", cluster="job-2-0",
                     placement=Placement("sim", "us-east-1", "us-east-1a", "n1-standard-4", True))
    store.transition(ids["bert"], 0, Status.RECOVERING, "preempted", recoveries=1)
    store.transition(ids["bert"], 0, Status.RUNNING, "running again")
    ids["pipe"] = store.submit("pipeline", [task("train", "1x sim(V100:8, [Spot|On-demand])"),
                                            task("eval", "1x sim(T4:1)")], options={})
    store.transition(ids["pipe"], 0, Status.RECOVERING, "preempted", recoveries=1)
    ids["new"] = store.submit("new", [task()], options={})
    return ids


def test_json_is_every_job_newest_first_in_the_contracts_shape(store: Store):
    ids = fill(store)
    r = invoke("-a", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [j["job_id"] for j in doc] == [ids["new"], ids["pipe"], ids["bert"], ids["done"]]
    assert doc == queue_json(store.queue(include_finished=True))
    pipe = doc[1]
    assert pipe["status"] == "RECOVERING" and pipe["recoveries"] == 1
    assert [(t["name"], t["status"]) for t in pipe["tasks"]] == [("train", "RECOVERING"), ("eval", "PENDING")]
    assert doc[2]["tasks"][0]["placement"]["region"] == "us-east-1"

    r = invoke("--json")  # without -a: the finished job is not listed
    assert [j["job_id"] for j in json.loads(r.stdout)] == [ids["new"], ids["pipe"], ids["bert"]]


def test_the_table_hides_finished_jobs_and_says_so(store: Store):
    ids = fill(store)
    r = invoke()
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.startswith("ID"))
    assert header.split() == ["ID", "TASK", "NAME", "RESOURCES", "SUBMITTED", "TOT.", "DURATION", "JOB", "DURATION",
                              "#RECOVERIES", "STATUS"]
    assert "done" not in r.stdout
    assert "1 finished job is hidden: `skyplan jobs queue -a` shows it." in r.stdout
    assert "In progress: 1 PENDING, 1 RUNNING, 1 RECOVERING" in r.stdout
    rows = [line.split() for line in lines if line.strip().startswith(("↳", str(ids["pipe"])))]
    assert rows[0][:3] == [str(ids["pipe"]), "pipeline", "-"]
    assert rows[1][:4] == ["↳", "0", "train", "1x"] and rows[1][-1] == "RECOVERING"
    assert rows[2][:4] == ["↳", "1", "eval", "1x"] and rows[2][-1] == "PENDING"
    r = invoke("-a")
    assert "done" in r.stdout and "hidden" not in r.stdout


def test_the_table_fits_80_columns(store: Store):
    fill(store)
    r = invoke("-a", columns=80)
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.stdout.splitlines()) <= 80, r.stdout
    header = next(line for line in r.stdout.splitlines() if line.startswith("ID"))
    for kept in ("ID", "TASK", "NAME", "RESOURCES", "#RECOVERIES", "STATUS"):
        assert kept in header
    assert "1x sim(V100:8, [Spot|On-demand])" in r.stdout  # not cut: the lower-value columns went first


def test_pages_follow_the_hint_to_the_end(store: Store):
    ids = [store.submit(f"j{i}", [task()], options={}) for i in range(5)]
    seen, args = [], ["--limit", "2", "--json"]
    while True:
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        seen += [j["job_id"] for j in json.loads(r.stdout)]
        hint = [line for line in r.stderr.splitlines() if line.startswith("More jobs:")]
        if not hint:
            break
        command = hint[0].split("`")[1].split()
        assert command[:3] == ["skyplan", "jobs", "queue"]
        assert "--json" in command  # the next page as it was asked for: JSON again
        args = command[3:]
    assert seen == ids[::-1]
    r = invoke("--limit", "2")
    assert f"More jobs: `skyplan jobs queue --limit 2 --before {ids[3]}`" in r.stdout


def test_status_filters_and_a_misspelt_status_is_a_usage_error(store: Store):
    ids = fill(store)
    r = invoke("--status", "running,recovering", "--json")
    assert [j["job_id"] for j in json.loads(r.stdout)] == [ids["pipe"], ids["bert"]]
    r = invoke("--status", "SUCCEEDED", "--json")  # a finished state: no -a needed
    assert [j["job_id"] for j in json.loads(r.stdout)] == [ids["done"]]
    r = invoke("--status", "RUNING")
    assert r.exit_code == 2
    assert "'RUNING' is not a job state (did you mean RUNNING?)" in r.stderr


def test_an_empty_queue_says_so(store: Store):
    r = invoke()
    assert r.exit_code == 0 and "No managed jobs." in r.stdout
    r = invoke("--json")
    assert json.loads(r.stdout) == []


def test_the_cli_imports_sqlalchemy_only_in_a_jobs_command():
    code = "import sys; import skyplan.cli.main; print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
