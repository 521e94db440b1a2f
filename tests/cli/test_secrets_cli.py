"""``--secret`` on plan and apply, through Typer's CliRunner: values never reach
the plan's JSON, a missing value stops apply before anything exists (exit 2),
and flag errors are usage errors that never quote a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app

VALUE = "cli-canary-91c2"
runner = CliRunner()


def invoke(*args: object, env: dict[str, str] | None = None):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def task(tmp_path: Path) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(f"name: s\nresources: {{cloud: local}}\nsecrets: {{TOKEN: {VALUE}, LATER: null}}\nrun: echo\n")
    return path


def test_plan_json_and_plan_file_hold_names_only(task: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = invoke("plan", task, "--json", "--out", out, "--secret", f"EXTRA={VALUE}-extra")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["task"]["secrets"] == {"EXTRA": "<redacted>", "LATER": "<redacted>", "TOKEN": "<redacted>"}
    assert VALUE not in r.output and VALUE not in out.read_text()


def test_apply_without_a_value_is_refused_before_anything_exists(task: Path, tmp_path: Path) -> None:
    r = invoke("apply", task, "--yes")
    assert r.exit_code == 2
    assert "secret without a value: LATER" in r.output and "--secret LATER" in r.output
    assert not (tmp_path / "home" / "pulumi").exists()  # no backend, no stack


def test_a_bare_flag_needs_the_variable_in_the_environment(task: Path) -> None:
    r = invoke("plan", task, "--secret", "NOT_SET_ANYWHERE_42")
    assert r.exit_code == 2 and "NOT_SET_ANYWHERE_42 is not set" in r.output
    r = invoke("plan", task, "--json", "--secret", "LATER", env={"LATER": "from-env-value"})
    assert r.exit_code == 0 and "from-env-value" not in r.output


def test_flag_errors_are_usage_errors(task: Path) -> None:
    assert invoke("plan", task, "--secret", "9BAD=x").exit_code == 2
    r = invoke("plan", task, "--secret", "TOKEN=ab\x07cdefgh")
    assert r.exit_code == 2 and "control character" in r.output and "cdefgh" not in r.output
