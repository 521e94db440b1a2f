"""The task's ``secrets:`` section: validation, the frozen model, redaction in the
stored task, its hash, and the ``--secret`` flags."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest
from spec_helpers import load, one_error, spec_errors

from skyplan.errors import InputError, UsageError
from skyplan.spec import task_from_dict, task_sha256, task_to_dict
from skyplan.spec.models import REDACTED, Secret
from skyplan.spec.secrets import missing, parse_flags, require_values, revealed, with_values

TASK = """
    name: s
    envs: {PLAIN: visible}
    secrets:
      HF_TOKEN: hf-value-123
      WANDB_API_KEY: null
      NUMERIC: 0123
    run: echo hi
"""


def test_values_are_secrets_and_null_is_given_at_launch() -> None:
    task = load(TASK)
    secrets = dict(task.secrets)
    assert secrets["HF_TOKEN"] == Secret("hf-value-123")
    assert secrets["NUMERIC"].reveal() == "0123"  # the source text, as envs keep it
    assert secrets["WANDB_API_KEY"] is None
    assert missing(task) == ["WANDB_API_KEY"]
    assert dict(task.envs) == {"PLAIN": "visible"}


def test_no_repr_of_a_task_shows_a_value() -> None:
    task = load(TASK)
    for text in (repr(task), str(task), repr(task.secrets), f"{dict(task.secrets)}"):
        assert "hf-value-123" not in text
        assert REDACTED in text


def test_a_secret_refuses_json_and_pickle_but_copies() -> None:
    task = load(TASK)
    with pytest.raises(TypeError):
        json.dumps(dataclasses.asdict(task))
    with pytest.raises(TypeError):
        pickle.dumps(task)
    assert copy.deepcopy(task) == task


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "X\n"])
def test_secret_names_are_environment_variable_names(name: str) -> None:
    d = one_error(f"secrets: {{{json.dumps(name)}: x}}\nrun: echo\n")
    assert d.path.startswith("$.secrets")
    assert "environment variable name" in d.message or "control character" in d.message


def test_a_name_in_envs_and_secrets_is_refused() -> None:
    d = one_error("envs: {TOKEN: a}\nsecrets: {TOKEN: b}\n")
    assert d.path == "$.secrets.TOKEN" and "both in envs and in secrets" in d.message


def test_control_characters_in_a_value_are_refused_without_quoting_it() -> None:
    d = one_error('secrets: {TOKEN: "sec\\u0000ret-value"}\n')
    assert d.path == "$.secrets.TOKEN" and "NUL" in d.message
    assert "ret-value" not in d.message


def test_other_types_are_schema_errors() -> None:
    found = spec_errors("secrets: {TOKEN: [1, 2]}\n")
    assert [d.path for d in found] == ["$.secrets.TOKEN"]
    assert len(spec_errors("secrets: [TOKEN]\n")) == 1


def test_the_stored_task_holds_names_only() -> None:
    task = load(TASK)
    stored = task_to_dict(task)
    assert stored["secrets"] == {"HF_TOKEN": REDACTED, "NUMERIC": REDACTED, "WANDB_API_KEY": REDACTED}
    assert "hf-value-123" not in json.dumps(stored)
    back = task_from_dict(stored)
    assert back.secrets == (("HF_TOKEN", None), ("NUMERIC", None), ("WANDB_API_KEY", None))
    assert task_sha256(back) == task_sha256(task)


def test_the_hash_covers_names_but_not_values() -> None:
    base = task_sha256(load(TASK))
    assert task_sha256(load(TASK.replace("hf-value-123", "rotated"))) == base
    assert task_sha256(load(TASK.replace("WANDB_API_KEY: null", "WANDB_API_KEY: given"))) == base
    assert task_sha256(load(TASK.replace("HF_TOKEN", "HF_TOKEN2"))) != base
    assert task_sha256(load(TASK.replace("      NUMERIC: 0123\n", ""))) != base


def test_a_stored_task_with_a_value_is_refused() -> None:
    stored = task_to_dict(load(TASK))
    stored["secrets"]["HF_TOKEN"] = "planted"
    with pytest.raises(InputError, match="holds a value") as e:
        task_from_dict(stored)
    assert "planted" not in e.value.message


def test_flags_give_values_from_text_or_the_environment() -> None:
    got = parse_flags(["A=1", "B", "C=x=y", "A=2", "D="], environ={"B": "from-env"})
    assert {k: v.reveal() for k, v in got.items()} == {"A": "2", "B": "from-env", "C": "x=y", "D": ""}


def test_flag_errors_never_quote_a_value() -> None:
    with pytest.raises(UsageError, match="MISSING is not set"):
        parse_flags(["MISSING"], environ={})
    with pytest.raises(UsageError, match="not a valid environment variable name"):
        parse_flags(["1BAD=x"], environ={})
    with pytest.raises(UsageError, match="control character") as e:
        parse_flags(["TOKEN=abc\x1bdefghi"], environ={})
    assert "defghi" not in e.value.message


def test_flags_override_add_and_complete_the_task() -> None:
    task = load(TASK)
    done = with_values(task, parse_flags(["WANDB_API_KEY=w", "HF_TOKEN=h2", "EXTRA=e"], environ={}))
    require_values(done)
    assert revealed(done) == {"EXTRA": "e", "HF_TOKEN": "h2", "NUMERIC": "0123", "WANDB_API_KEY": "w"}


def test_a_flag_for_a_plain_env_is_refused() -> None:
    with pytest.raises(UsageError, match="PLAIN in envs"):
        with_values(load(TASK), {"PLAIN": Secret("x")})


def test_a_plan_task_takes_no_new_names() -> None:
    with pytest.raises(UsageError, match="the plan has no secret EXTRA"):
        with_values(load(TASK), {"EXTRA": Secret("x")}, add=False)


def test_missing_values_are_named() -> None:
    with pytest.raises(InputError, match="WANDB_API_KEY") as e:
        revealed(load(TASK))
    assert "--secret WANDB_API_KEY" in (e.value.hint or "")
