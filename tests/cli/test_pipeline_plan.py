"""`skyplan plan PIPELINE` plans each task on its own (the README says so); the
flags that take one task are refused for a pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.spec import validate_plan_document

EX = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_one_table_per_task():
    r = invoke("plan", EX / "pipeline.yaml", "--top", "2")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Pipeline 'train-then-eval', task 1 of 2:" in out and "Pipeline 'train-then-eval', task 2 of 2:" in out
    first, second = out.split("task 2 of 2:")
    assert "Task: train" in first and "V100:8" in first and "✔" in first
    assert "Task: eval" in second and "T4:1" in second and "✔" in second


def test_json_holds_one_plan_per_task():
    r = invoke("plan", EX / "pipeline.yaml", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["pipeline"] == "train-then-eval"
    assert [p["task"]["name"] for p in doc["plans"]] == ["train", "eval"]
    for p in doc["plans"]:
        validate_plan_document(p, "plan")  # each has the plan file's shape


def test_explain_explains_each_task():
    r = invoke("plan", EX / "pipeline.yaml", "--explain", "--top", "1")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("Explain:") == 2


@pytest.mark.parametrize("flag", [["--out", "p.json"], ["-c", "train"], ["--detailed-exitcode"],
                                  ["--secret", "X=1"]])
def test_flags_that_take_one_task_are_refused(flag, tmp_path):
    r = invoke("plan", EX / "pipeline.yaml", *flag)
    assert r.exit_code == (1 if flag == ["--detailed-exitcode"] else 2)  # with it, any error is 1 (Terraform's)
    assert "is a pipeline of 2 tasks" in r.stderr and "takes a single task" in r.stderr
    assert not (tmp_path / "p.json").exists()


def test_a_pipeline_is_validated_task_by_task_against_the_catalog(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("name: two\n---\nname: a\nresources: {accelerators: V100:3}\n---\nname: b\n"
                 "resources: {region: us-centrl1}\n")
    r = invoke("plan", p)
    assert r.exit_code == 2
    assert f"{p}:4:13: $.resources.accelerators: V100 is not sold in a count of 3" in r.stderr
    assert f"{p}:7:13: $.resources.region: unknown region 'us-centrl1'" in r.stderr
