"""`validate`, `plan` and `apply` refuse names the catalog in use does not hold,
missing files and bad task names: exit 2, file:line:col, did-you-mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.catalog import load_catalog
from skyplan.catalog.build import encode
from skyplan.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

BAD = """\
name: gpu-job
resources:
  accelerators: A1000:8
  any_of:
    - region: us-centrl1
    - {cloud: aws, zone: us-east-1z}
    - {cloud: gcp, accelerators: A100:3}
"""


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(BAD)
    return p


def test_validate_reports_every_unknown_name_with_its_position_and_a_hint(bad: Path):
    r = invoke("validate", bad)
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert f"error: {bad}:3:3: $.resources.accelerators: unknown accelerator 'A1000' (did you mean 'A100'?)" in lines
    assert any(line.startswith(f"error: {bad}:5:7: $.resources.any_of[0].region: unknown region 'us-centrl1'")
               and line.endswith("(did you mean 'us-central1'?)") for line in lines)
    assert any(f"{bad}:6:20: $.resources.any_of[1].zone: unknown zone 'us-east-1z'" in line for line in lines)
    assert any(f"{bad}:7:20: $.resources.any_of[2].accelerators: A100 is not sold in a count of 3" in line
               and "(did you mean 'A100:4'?)" in line for line in lines)


def test_validate_json_carries_the_same_findings(bad: Path):
    r = invoke("validate", bad, "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    found = {(d["line"], d["column"], d["suggestion"]) for d in doc["diagnostics"]}
    assert {(3, 3, "A100"), (5, 7, "us-central1"), (7, 20, "A100:4")} <= found


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_validate_first(bad: Path, command: str):
    r = invoke(command, bad, "--yes") if command == "apply" else invoke(command, bad)
    assert r.exit_code == 2
    assert f"{bad}:3:3: $.resources.accelerators: unknown accelerator 'A1000'" in r.stderr


def _gcp_only_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "gcp-only.json"
    path.write_bytes(encode(load_catalog().offers(clouds=["gcp"])))
    return path


def test_names_are_checked_against_the_catalog_the_command_uses(tmp_path: Path, monkeypatch):
    task = tmp_path / "t.yaml"
    task.write_text("resources:\n  region: us-east-1\n  accelerators: L4:1\n")
    assert invoke("validate", task).exit_code == 0  # the embedded catalog has AWS
    other = _gcp_only_catalog(tmp_path)
    for r in (invoke("validate", task, "--catalog", other), invoke("plan", task, "--catalog", other)):
        assert r.exit_code == 2, r.output
        assert f"{task}:2:3: $.resources.region: unknown region 'us-east-1'" in r.stderr
    monkeypatch.setenv("SKYPLAN_CATALOG", str(other))
    assert invoke("validate", task).exit_code == 2


def test_a_missing_workdir_is_a_validation_error_not_an_apply_failure(tmp_path: Path):
    task = tmp_path / "t.yaml"
    task.write_text("name: hello\nworkdir: ./src\nresources: {cloud: local}\nrun: ls\n")
    for args in (("validate", task), ("plan", task), ("apply", task, "--yes")):
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert f"{task}:2:1: $.workdir: the workdir './src' does not exist" in r.stderr
    (tmp_path / "src").mkdir()
    assert invoke("validate", task).exit_code == 0


def test_a_bad_task_name_is_refused_with_the_name_it_could_be(tmp_path: Path):
    task = tmp_path / "t.yaml"
    task.write_text("name: My Task!\nresources: {cloud: local}\nrun: 'true'\n")
    r = invoke("apply", task, "--yes")
    assert r.exit_code == 2
    assert f"{task}:1:1: $.name: 'My Task!' is not a valid cluster name" in r.stderr
    assert "(did you mean 'my-task'?)" in r.stderr


def test_every_example_validates_against_the_embedded_catalog():
    r = invoke("validate", *sorted((ROOT / "examples").glob("*.yaml")))
    assert r.exit_code == 0, r.stderr
