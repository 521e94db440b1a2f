"""Terraform's habits where CI users expect them: `show PLANFILE` (human, JSON, markdown),
`plan -c CLUSTER --detailed-exitcode`, a plan file given to `plan`, `plan --out` to a bad
path, shell completion of cluster names."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.planner import make_plan, read_plan
from skyplan.spec import load
from skyplan.state import StateDB

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


@pytest.fixture
def planfile(tmp_path) -> Path:
    out = tmp_path / "plan.json"
    assert invoke("plan", EX / "gpu-set.yaml", "--out", out).exit_code == 0
    return out


def local_task(tmp_path: Path, run: str = "echo hi", cpus: str = "1+") -> Path:
    path = tmp_path / "hello.yaml"
    path.write_text(f"name: hello\nresources:\n  cloud: local\n  cpus: {cpus}\nrun: {run}\n")
    return path


def up_cluster(task: Path, name: str = "hello") -> None:
    """A cluster row as a launch of ``task`` leaves it (no engine needed to compare)."""
    from skyplan.catalog import load_catalog

    p = make_plan(load(str(task)), load_catalog(None))
    c = p.chosen
    StateDB().upsert_cluster(name, status="UP", cloud=c.cloud, region=c.region, zone=c.zone,
                             instance_type=c.instance_type, use_spot=c.use_spot, hourly_cost=c.hourly_cost,
                             stack=f"{name}.a001.local.local.local.od", backend="file:///nowhere",
                             task_sha256=p.task_sha256, task=p.to_json()["task"], outputs={})


# --- show -------------------------------------------------------------------------------


def test_show_renders_a_saved_plan_as_plan_does(planfile):
    shown, planned = invoke("show", planfile), invoke("plan", EX / "gpu-set.yaml")
    assert shown.exit_code == 0, shown.output
    assert "Shown 10 of" in shown.stdout and "✔" in shown.stdout
    # The same table (the plan's created_at aside, which the table does not show).
    assert shown.stdout == planned.stdout
    as_json = invoke("show", planfile, "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == json.loads(planfile.read_text())


def test_show_markdown_is_a_compact_github_table_with_the_chosen_row_and_a_count(planfile):
    r = invoke("show", planfile, "--markdown", "--top", "5")
    assert r.exit_code == 0, r.output
    md = r.stdout
    n = len(read_plan(planfile).candidates)
    assert md.startswith("### skyplan plan: `gpu-set`")
    assert "catalog 2026-11-23" in md and f"**{n}** candidates" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert header.startswith("| # | Cloud | Instance") and re.search(r"^\|--:\|", md, re.M)
    assert len(body) == 5 and body[0].startswith("| 1 | GCP | g2-standard-4")
    assert [row.endswith("| ✔ |") for row in body] == [True, False, False, False, False]
    assert all(row.count(" | ") == header.count(" | ") for row in body)  # every row has every column
    assert f"…and {n - 5} more candidates (`skyplan show {planfile}`)." in md
    assert invoke("show", planfile, "--markdown", "--json").exit_code == 2


def test_show_still_shows_a_stale_plan_and_says_apply_would_refuse_it(tmp_path):
    task = local_task(tmp_path)
    out = tmp_path / "p.json"
    assert invoke("plan", task, "--out", out).exit_code == 0
    task.write_text(task.read_text().replace("echo hi", "echo changed"))
    r = invoke("show", out, "--markdown")
    assert r.exit_code == 0 and "**Stale:**" in r.stdout and "has changed since the plan was made" in r.stdout
    human = invoke("show", out)
    assert human.exit_code == 0 and "would refuse it" in human.stderr


def test_show_with_a_cluster_says_what_apply_would_do(tmp_path):
    task = local_task(tmp_path)
    up_cluster(task)
    out = tmp_path / "p.json"
    task.write_text(task.read_text().replace("echo hi", "echo bye"))
    assert invoke("plan", task, "--out", out).exit_code == 0
    md = invoke("show", out, "--markdown", "-c", "hello").stdout
    assert "**What `skyplan apply` would do:**" in md and "\n~ run: \"echo hi\" -> \"echo bye\"\n" in md


def test_plan_given_a_plan_file_points_at_show_instead_of_schema_errors(planfile, tmp_path):
    r = invoke("plan", planfile)
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [f"error: {planfile} is a plan file, not a task",
                                     f"hint: use `skyplan show {planfile}` to see it, or `skyplan apply {planfile}` "
                                     "to apply it"]
    renamed = tmp_path / "plan.yaml"  # by its contents, not its name
    renamed.write_text(planfile.read_text())
    assert "is a plan file" in invoke("plan", renamed).stderr


@pytest.mark.parametrize("where", ["dir", "missing-parent"])
def test_plan_out_to_a_directory_or_a_missing_parent_is_an_input_error_leaving_nothing(tmp_path, where):
    target = tmp_path / "d" if where == "dir" else tmp_path / "nope" / "plan.json"
    if where == "dir":
        target.mkdir()
    r = invoke("plan", EX / "gpu-set.yaml", "--out", target)
    assert r.exit_code == 2 and "cannot write the plan to" in r.stderr and "internal error" not in r.stderr
    assert set(os.listdir(tmp_path)) - {"home"} == ({"d"} if where == "dir" else set())  # no temp file
    if where == "dir":
        assert os.listdir(target) == []


# --- plan -c / --detailed-exitcode ------------------------------------------------------


def test_detailed_exitcode_is_0_when_the_cluster_matches_and_2_when_apply_would_change_it(tmp_path):
    task = local_task(tmp_path)
    up_cluster(task)
    same = invoke("plan", task, "-c", "hello", "--detailed-exitcode")
    assert same.exit_code == 0 and "matches the task: no changes" in same.stdout
    # Without -c the cluster is the task's name, as in apply.
    assert invoke("plan", task, "--detailed-exitcode").exit_code == 0
    task.write_text(task.read_text().replace("echo hi", "echo bye"))
    rerun = invoke("plan", task, "-c", "hello", "--detailed-exitcode")
    assert rerun.exit_code == 2 and "re-run the task in place" in rerun.stdout
    assert '~ run: "echo hi" -> "echo bye"' in rerun.stdout
    # -c alone prints what apply would do, and plan keeps exit 0.
    assert invoke("plan", task, "-c", "hello").exit_code == 0
    bigger = local_task(tmp_path, run="echo bye", cpus="2+")
    replace = invoke("plan", bigger, "-c", "hello", "--detailed-exitcode")
    assert replace.exit_code == 2 and "REPLACE it (resources changed)" in replace.stdout
    created = invoke("plan", task, "-c", "other", "--detailed-exitcode")
    assert created.exit_code == 2 and "Cluster 'other' does not exist: apply would create it" in created.stdout


def test_detailed_exitcode_json_carries_the_comparison(tmp_path):
    task = local_task(tmp_path)
    up_cluster(task)
    task.write_text(task.read_text().replace("echo hi", "echo bye"))
    r = invoke("plan", task, "-c", "hello", "--detailed-exitcode", "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["converge"] == {"cluster": "hello", "action": "rerun",
                               "changes": [{"path": "run", "old": "echo hi", "new": "echo bye"}]}
    assert "converge" not in json.loads(invoke("plan", task, "--json").stdout)


def test_detailed_exitcode_errors_exit_1_whatever_their_usual_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("resources:\n  cloud: local\n  nonsense: 1\n")
    assert invoke("plan", bad).exit_code == 2
    r = invoke("plan", bad, "--detailed-exitcode")
    assert r.exit_code == 1 and "nonsense" in r.stderr and "internal error" not in r.stderr
    assert invoke("plan", local_task(tmp_path), "-c", "Not A Name", "--detailed-exitcode").exit_code == 1


# --- completion -------------------------------------------------------------------------


def test_cluster_names_complete_from_the_state(tmp_path):
    from skyplan.cli.completion import cluster_names

    assert cluster_names("") == []  # no state yet: nothing, and no error
    up_cluster(local_task(tmp_path), "hello")
    up_cluster(local_task(tmp_path), "help-me")
    up_cluster(local_task(tmp_path), "train")
    assert cluster_names("he") == ["hello", "help-me"]
    env = {"_SKYPLAN_COMPLETE": "complete_bash", "COMP_WORDS": "skyplan plan t.yaml -c he", "COMP_CWORD": "4"}
    r = runner.invoke(app, [], env=env, prog_name="skyplan")
    assert r.stdout.split() == ["hello", "help-me"]


def test_completion_can_be_shown_and_installed():
    import subprocess
    import sys

    r = invoke("--help")
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout
    # As a user runs it: a process of its own. In process, now and then in full runs, the
    # call ended in click's Abort (exit 1) though nothing in it reads input or waits.
    from pathlib import Path

    shown = subprocess.run([str(Path(sys.executable).with_name("skyplan")), "--show-completion", "bash"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "_SKYPLAN_COMPLETE=complete_bash" in shown.stdout, shown.stderr


# --- down and status --------------------------------------------------------------------


def test_down_of_an_unknown_cluster_is_a_no_op_with_exit_0(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_BACKEND", f"file://{tmp_path / 'backend'}")
    (tmp_path / "backend").mkdir()
    r = invoke("down", "nope", "--yes")
    assert r.exit_code == 0 and "No cluster named 'nope'" in r.stderr and "nothing to destroy" in r.stderr
    doc = json.loads(invoke("down", "nope", "--yes", "--json").stdout)
    assert doc == {"schema_version": 1, "cluster": "nope", "status": "ABSENT", "stacks_removed": []}
    assert invoke("down", "Not A Name", "--yes").exit_code == 2  # a name that cannot exist is still a mistake


def test_down_takes_a_name_or_all_and_all_of_nothing_is_fine():
    assert invoke("down", "--yes").exit_code == 2
    assert invoke("down", "x", "--all", "--yes").exit_code == 2
    r = invoke("down", "--all", "--yes", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"schema_version": 1, "clusters": []}
    assert "No clusters; nothing to destroy." in invoke("down", "--all", "--yes").stderr


def test_down_without_yes_and_without_a_terminal_refuses_naming_the_way_out(tmp_path):
    up_cluster(local_task(tmp_path))
    r = invoke("down", "hello")
    assert r.exit_code == 2 and "refusing to destroy cluster 'hello' without --yes" in r.stderr
    assert "`skyplan down hello --yes`" in r.stderr


def test_status_of_one_cluster(tmp_path):
    up_cluster(local_task(tmp_path))
    up_cluster(local_task(tmp_path), "other")
    doc = json.loads(invoke("status", "hello", "--json").stdout)
    assert [c["name"] for c in doc["clusters"]] == ["hello"]
    human = invoke("status", "hello")
    assert human.exit_code == 0 and "hello" in human.stdout and "other" not in human.stdout
    assert "Backend: file:///nowhere" in human.stdout
    missing = invoke("status", "nope")
    assert missing.exit_code == 2 and "no cluster named 'nope'" in missing.stderr
