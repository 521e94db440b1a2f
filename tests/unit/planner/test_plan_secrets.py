"""Plan files hold secret names only: values are redacted when written, a
rotated value does not make the plan stale, and ``bind_secrets`` gives the
values back at apply time (from the task file, then ``--secret``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.errors import StalePlanError, UsageError
from skyplan.planner import bind_secrets, check_fresh, make_plan, read_plan, write_plan
from skyplan.spec import load_task
from skyplan.spec.models import Secret
from skyplan.spec.secrets import missing, revealed

TASK = """\
name: s
resources: {cloud: local}
secrets:
  TOKEN: value-in-file-42
  LATER: null
run: echo hi
"""


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, Path]:
    task = tmp_path / "task.yaml"
    task.write_text(TASK)
    out = tmp_path / "plan.json"
    write_plan(make_plan(load_task(task), load_catalog(None)), out)
    return task, out


def test_the_plan_file_holds_no_value(made: tuple[Path, Path]) -> None:
    _, out = made
    text = out.read_text()
    assert "value-in-file-42" not in text
    assert '"TOKEN": "<redacted>"' in text and '"LATER": "<redacted>"' in text


def test_values_come_back_from_the_task_file_then_the_flags(made: tuple[Path, Path]) -> None:
    _, out = made
    plan = read_plan(out)
    assert missing(plan.task) == ["LATER", "TOKEN"]
    bound = bind_secrets(plan, {"LATER": Secret("flag")})
    assert revealed(bound.task) == {"LATER": "flag", "TOKEN": "value-in-file-42"}
    assert bound.task_sha256 == plan.task_sha256
    flagged = bind_secrets(plan, {"TOKEN": Secret("override"), "LATER": Secret("x")})
    assert revealed(flagged.task)["TOKEN"] == "override"


def test_without_the_task_file_only_flags_give_values(made: tuple[Path, Path]) -> None:
    task, out = made
    task.unlink()
    bound = bind_secrets(read_plan(out), {"LATER": Secret("x")})
    assert missing(bound.task) == ["TOKEN"]


def test_a_flag_the_plan_does_not_name_is_refused(made: tuple[Path, Path]) -> None:
    _, out = made
    with pytest.raises(UsageError, match="the plan has no secret OTHER"):
        bind_secrets(read_plan(out), {"OTHER": Secret("x")})


def test_a_rotated_value_is_not_a_stale_plan_but_a_new_name_is(made: tuple[Path, Path]) -> None:
    task, out = made
    plan = read_plan(out)
    task.write_text(TASK.replace("value-in-file-42", "rotated-value"))
    check_fresh(plan, load_catalog(None).info, str(out))
    assert revealed(bind_secrets(plan, {"LATER": Secret("x")}).task)["TOKEN"] == "rotated-value"
    task.write_text(TASK.replace("  LATER: null\n", "  LATER: null\n  NEW: v\n"))
    with pytest.raises(StalePlanError, match="has changed"):
        check_fresh(plan, load_catalog(None).info, str(out))
