"""Every problem is reported at once, located, in plain words; bad input never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.errors import EXIT_INPUT, InputError, SpecError
from skyplan.spec import load, load_task, load_text, validate_paths
from spec_helpers import one_error, spec_errors

THREE_ERRORS = """\
name: demo
resources:
  acelerators: A100:8
  cloud: aws
num_nodes: zero
run: echo hi
envs:
  OK: 1
  2BAD: x
"""


def test_three_errors_give_three_located_diagnostics():
    found = spec_errors(THREE_ERRORS)
    got = [(d.line, d.column, d.path) for d in found]
    assert got == [
        (3, 3, "$.resources.acelerators"),
        (5, 1, "$.num_nodes"),
        (9, 3, "$.envs['2BAD']"),
    ]
    assert found[0].suggestion == "accelerators"
    assert "unknown field 'acelerators'" in found[0].message
    assert "whole number" in found[1].message and "'zero'" in found[1].message
    assert all(d.file == "t.yaml" for d in found)


def test_spec_error_is_exit_code_2_and_serialises():
    with pytest.raises(SpecError) as info:
        load_text(THREE_ERRORS, "demo.yaml")
    err = info.value
    assert err.exit_code == EXIT_INPUT
    assert err.message == "3 errors in demo.yaml"
    data = err.to_json()
    assert [d["line"] for d in data["diagnostics"]] == [3, 5, 9]
    assert "did you mean 'accelerators'" in err.diagnostics[0].format()


@pytest.mark.parametrize(
    "text, path, suggestion",
    [
        ("resources:\n  acclerators: A100\n", "$.resources.acclerators", "accelerators"),
        ("resources:\n  use_spott: true\n", "$.resources.use_spott", "use_spot"),
        ("reosurces:\n  cpus: 2\n", "$.reosurces", "resources"),
        ("setpu: echo\n", "$.setpu", "setup"),
        ("resources:\n  any_of:\n    - regoin: us-east-1\n", "$.resources.any_of[0].regoin", "region"),
        ("service:\n  readiness_probe: /\n  replica_polciy: {min_replicas: 1}\nresources: {ports: 8080}\n",
         "$.service.replica_polciy",
         "replica_policy"),
        ("file_mounts:\n  /d: {name: b, mdoe: COPY}\n", "$.file_mounts['/d'].mdoe", "mode"),
        ("resources:\n  acc: A100\n", "$.resources.acc", "accelerators"),
        ("resources:\n  inst: x\n", "$.resources.inst", "instance_type"),
    ],
)
def test_did_you_mean_for_misspelt_keys(text: str, path: str, suggestion: str):
    d = one_error(text)
    assert (d.path, d.suggestion) == (path, suggestion)


def test_unknown_key_far_from_any_field_has_no_suggestion():
    d = one_error("resources:\n  zzzzzz: 1\n")
    assert d.suggestion is None and d.path == "$.resources.zzzzzz"
    d = one_error("resources:\n  di: 1\n")  # too short to guess between disk_size and others
    assert d.suggestion is None


def test_resource_field_at_top_level_says_where_it_belongs():
    d = one_error("name: x\naccelerators: A100\n")
    assert d.path == "$.accelerators" and d.line == 2
    assert "belongs under 'resources'" in d.message


def test_enum_suggestion():
    d = one_error("resources:\n  cloud: gpc\n")
    assert d.path == "$.resources.cloud" and d.suggestion == "gcp"
    assert "aws, gcp, azure, local" in d.message


def test_cloud_and_mode_are_case_insensitive():
    task = load_text("resources:\n  cloud: AWS\nfile_mounts:\n  /d: {name: b, mode: copy}\n")
    assert task.resources.candidates[0].cloud == "aws"
    assert task.file_mounts[0].mode == "COPY"


def test_type_error_names_the_expected_form():
    d = one_error("resources:\n  accelerators: 8\n")
    assert d.path == "$.resources.accelerators" and d.line == 2
    assert "'A100:8'" in d.message and "got 8" in d.message


def test_missing_required_field():
    d = one_error("service:\n  replicas: 2\nresources: {ports: 8080}\n")
    assert d.path == "$.service" and d.line == 1  # the line of the `service:` key
    assert "missing required field 'readiness_probe'" in d.message


# --- broken input of every kind: exit 2, never a traceback ------------------


def test_bad_yaml_reports_its_line():
    d = one_error("name: x\nresources:\n  cpus: [1, 2\nrun: echo\n")
    assert d.line is not None and d.line >= 3
    assert d.message.startswith("invalid YAML")


def test_bad_indentation_reports_its_line():
    d = one_error("name: x\n  run: echo\n")
    assert d.line == 2
    assert "invalid YAML" in d.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "~\n", "null\n"])
def test_empty_documents(text: str):
    d = one_error(text)
    assert "empty" in d.message


@pytest.mark.parametrize(
    "text, word", [("- a\n- b\n", "a list"), ("hello\n", "a string"), ("42\n", "a number"), ("true\n", "true/false")]
)
def test_non_mapping_document(text: str, word: str):
    d = one_error(text)
    assert d.path == "$" and d.line == 1
    assert f"got {word}" in d.message


def test_binary_file(tmp_path: Path):
    p = tmp_path / "task.yaml"
    p.write_bytes(b"name: x\n\x00\x01\x02\xff")
    with pytest.raises(SpecError) as info:
        load(p)
    (d,) = info.value.diagnostics
    assert "binary" in d.message and d.line == 2 and d.file == str(p)


def test_non_utf8_file(tmp_path: Path):
    p = tmp_path / "task.yaml"
    p.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load(p)
    (d,) = info.value.diagnostics
    assert "UTF-8" in d.message and d.line == 1


def test_utf8_bom_is_accepted(tmp_path: Path):
    p = tmp_path / "task.yaml"
    p.write_bytes("\ufeffname: cafe\nrun: echo café\n".encode())
    task = load_task(p)
    assert (task.name, task.run) == ("cafe", "echo café")


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(InputError) as info:
        load(tmp_path / "nope.yaml")
    assert "not found" in info.value.diagnostics[0].message
    with pytest.raises(InputError) as info:
        load(tmp_path)
    assert "directory" in info.value.diagnostics[0].message


def test_control_character_is_a_yaml_error():
    d = one_error("name: a\x07b\n")
    assert "invalid YAML" in d.message and d.line == 1


def test_duplicate_key():
    d = one_error("name: a\nrun: x\nname: b\n")
    assert (d.line, d.path) == (3, "$.name")
    assert "duplicate key 'name'" in d.message and "line 1" in d.message


def test_unsupported_tag():
    d = one_error("name: !!binary aGVsbG8=\n")
    assert d.path == "$.name" and "unsupported YAML tag" in d.message


def test_custom_tag():
    found = spec_errors("name: !custom x\n")
    assert any("!custom" in d.message for d in found)


def test_self_referencing_alias():
    found = spec_errors("envs: &a\n  X: *a\n")
    assert any("refers to a node that contains it" in d.message for d in found)


def test_alias_bomb_is_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    found = spec_errors("\n".join(lines) + "\n")
    assert any("too large" in d.message for d in found)


def test_deep_nesting_is_bounded():
    text = "envs: " + "[" * 200 + "]" * 200 + "\n"
    found = spec_errors(text)
    assert any("nesting is deeper" in d.message for d in found)


def test_non_finite_and_huge_numbers():
    found = spec_errors("resources:\n  cpus: .inf\n  memory: 123456789012345678901234567890\n")
    assert [(d.path, d.line) for d in found] == [("$.resources.cpus", 2), ("$.resources.memory", 3)]


def test_merge_keys_work_and_explicit_keys_win():
    text = "resources:\n  <<: {cpus: 4, memory: 16}\n  cpus: 8\n"
    req = load_text(text).resources.candidates[0]
    assert (str(req.cpus), str(req.memory)) == ("8", "16")


def test_timestamps_stay_text():
    task = load_text("name: 2024-01-01\nenvs:\n  WHEN: 2024-01-01T10:00:00Z\n")
    assert task.name == "2024-01-01"
    assert dict(task.envs) == {"WHEN": "2024-01-01T10:00:00Z"}


def test_plain_text_keys_are_kept_as_written():
    # YAML 1.1 would read `on`/`yes` keys as booleans; skyplan keeps the text
    task = load_text("envs:\n  on: 1\n  yes: no\n")
    assert dict(task.envs) == {"on": "1", "yes": "no"}


# --- pipelines ----------------------------------------------------------------


def test_pipeline_errors_in_several_documents_are_all_reported():
    text = "name: p\n---\nname: a\nrun: x\nnum_nodes: -1\n---\nname: b\nresources: {accelerators: 'A100:x'}\n"
    found = spec_errors(text)
    assert [(d.line, d.path) for d in found] == [(5, "$.num_nodes"), (8, "$.resources.accelerators")]


def test_trailing_separator_does_not_make_a_pipeline():
    task = load_text("name: p\nrun: x\n---\n")
    assert task.name == "p" and task.run == "x"


def test_pipeline_with_empty_middle_document():
    found = spec_errors("name: p\n---\nrun: a\n---\n---\nrun: b\n")
    assert any("document is empty" in d.message for d in found)


def test_multi_document_without_header_is_an_unnamed_pipeline():
    pipe = load_text("name: a\nrun: x\n---\nname: b\nrun: y\n")
    assert pipe.name is None and [t.name for t in pipe.tasks] == ["a", "b"]


def test_single_name_only_document_is_a_task():
    task = load_text("name: only\n")
    assert task.name == "only"


def test_load_task_refuses_a_pipeline(tmp_path: Path):
    p = tmp_path / "p.yaml"
    p.write_text("name: p\n---\nrun: a\n---\nrun: b\n")
    with pytest.raises(InputError) as info:
        load_task(p)
    assert not isinstance(info.value, SpecError)
    assert "pipeline of 2 tasks" in info.value.message


def test_validate_paths_collects_every_file(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text("name: g\n")
    bad1 = tmp_path / "bad1.yaml"
    bad1.write_text("nme: x\nnum_nodes: 0\n")
    bad2 = tmp_path / "bad2.yaml"
    bad2.write_bytes(b"\x00")
    found = validate_paths([good, bad1, bad2, tmp_path / "missing.yaml"])
    assert [(Path(d.file).name, d.line) for d in found] == [
        ("bad1.yaml", 1), ("bad1.yaml", 2), ("bad2.yaml", 1), ("missing.yaml", None)
    ]
    assert validate_paths([good]) == []
