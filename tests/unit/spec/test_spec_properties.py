"""Property tests: random documents never produce anything but a Task, a Pipeline or InputError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from skyplan.errors import InputError
from skyplan.spec import Pipeline, Task, fastcheck, load_text, task_from_dict, task_to_dict
from skyplan.spec.schemas import load_schema


def _all_keys() -> list[str]:
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema("task"))
    return sorted(keys)


KEYS = _all_keys()


def _stored(task: Task) -> Task:
    """What ``task_from_dict(task_to_dict(task))`` gives back: the task with its
    secrets' names and without their values (a stored task never holds one)."""
    return dataclasses.replace(task, secrets=tuple((name, None) for name, _ in task.secrets))


@st.composite
def near_miss(draw: st.DrawFn) -> str:
    """A known key with one character dropped, doubled, swapped or changed case."""
    key = draw(st.sampled_from(KEYS))
    i = draw(st.integers(0, len(key) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "upper"]))
    if how == "drop":
        return key[:i] + key[i + 1:]
    if how == "double":
        return key[:i] + key[i] + key[i:]
    if how == "swap" and i + 1 < len(key):
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    return key.upper()


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(-10, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "A100", "A100:8", "A100:0", "A100:x", "a10g:1", "T4:0.5", "4+", "4x", "0+", "8", "10022-10040",
            "80-70", "aws", "gcp", "AZURE", "local", "moon", "MOUNT", "copy", "/health", "health", "FAILOVER",
            "failovr", "", " ", "~/x", "s3://b",
        ]
    ),
    st.text(max_size=12),
)
KEY = st.one_of(st.sampled_from(KEYS), near_miss(), st.text(min_size=1, max_size=8))
DOCS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEY, children, max_size=6),
    ),
    max_leaves=25,
)
TASKISH = st.dictionaries(KEY, DOCS, max_size=8)


def _assert_loads_or_input_error(text: str) -> None:
    try:
        result = load_text(text, "random.yaml")
    except InputError:
        return
    assert isinstance(result, (Task, Pipeline))
    for task in result.tasks if isinstance(result, Pipeline) else (result,):
        assert task_from_dict(task_to_dict(task)) == _stored(task)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(TASKISH, DOCS), min_size=1, max_size=3))
def test_random_multi_document_files_build_or_raise_input_error(docs: list[Any]):
    _assert_loads_or_input_error(yaml.safe_dump_all(docs, sort_keys=False))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_builds_or_raises_input_error(text: str):
    _assert_loads_or_input_error(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_random_bytes_as_latin1_text(data: bytes):
    _assert_loads_or_input_error(data.decode("latin-1"))


RESOURCES = st.fixed_dictionaries(
    {},
    optional={
        "cloud": st.sampled_from(["aws", "gcp", "azure", "local", "AWS"]),
        "region": st.sampled_from(["us-east-1", "us-central1", "eastus"]),
        "zone": st.sampled_from(["us-east-1a", "us-central1-a"]),
        "instance_type": st.sampled_from(["g5.xlarge", "n1-standard-8"]),
        "cpus": st.sampled_from([1, 2, 4.5, "4+", "8"]),
        "memory": st.sampled_from([16, "32+", 0.5]),
        "accelerators": st.one_of(
            st.sampled_from(["A100", "A100:8", "T4:0.5"]),
            st.dictionaries(st.sampled_from(["A10", "L4", "H100"]), st.sampled_from([None, 1, 2]), min_size=1),
            st.just({"A10:1": None, "L4:1": None, "A10g:2": None}),
            st.lists(st.sampled_from(["A10:1", "L4", "V100:4"]), min_size=1, max_size=3, unique=True),
        ),
        "use_spot": st.booleans(),
        "max_hourly_cost": st.floats(0, 100),
        "disk_size": st.integers(1, 2000),
        "ports": st.one_of(st.integers(1, 65535), st.sampled_from(["8080", "10-12"]),
                           st.lists(st.integers(1, 65535), max_size=3)),
        "labels": st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["ml", 1, True])),
        "job_recovery": st.sampled_from(["FAILOVER", "eager_next_region", "no_recovery", {"max_restarts_on_errors": 2},
                                         {"recover_on_exit_codes": [137, 3, 3], "backoffLimit": 0},
                                         {"strategy": "FAILOVER", "backoff_limit": 5}]),
    },
)


@st.composite
def valid_tasks(draw: st.DrawFn) -> dict[str, Any]:
    res = draw(RESOURCES)
    mode = draw(st.sampled_from(["plain", "any_of", "ordered"]))
    if mode != "plain":
        entries = draw(st.lists(RESOURCES, min_size=1, max_size=3))
        if mode == "ordered":  # several accelerators are not allowed with ordered
            for r in [res, *entries]:
                if isinstance(r.get("accelerators"), (dict, list)):
                    r["accelerators"] = "A100:2"
        res[mode] = entries
    doc: dict[str, Any] = {"resources": res}
    if draw(st.booleans()):
        doc["envs"] = draw(st.dictionaries(st.sampled_from(["A", "B_2"]), st.sampled_from(["x", 3, 1.5, False])))
    if draw(st.booleans()):
        doc["secrets"] = draw(st.dictionaries(st.sampled_from(["TOKEN", "K_2"]), st.sampled_from(["s", 7, None])))
    if draw(st.booleans()):
        doc["num_nodes"] = draw(st.integers(1, 16))
    if draw(st.booleans()):
        doc["file_mounts"] = {"/d": draw(st.sampled_from(["s3://b", {"name": None, "mode": "copy"}]))}
    return doc


@settings(max_examples=200, deadline=None)
@given(valid_tasks())
def test_valid_tasks_load_and_round_trip(doc: dict[str, Any]):
    task = load_text(yaml.safe_dump(doc), "valid.yaml")
    assert isinstance(task, Task)
    assert task_from_dict(task_to_dict(task)) == _stored(task)
    n = len(doc["resources"].get("any_of") or doc["resources"].get("ordered") or [None])
    assert len(task.resources.candidates) == n


def _leaf_paths(node: Any, at: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, at + (k,))] or [at]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, at + (i,))] or [at]
    return [at]


@st.composite
def mutated_tasks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid task with one value replaced by a random one: probes every bound and type."""
    doc = draw(valid_tasks())
    path = draw(st.sampled_from([p for p in _leaf_paths(doc) if p]))
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = draw(st.one_of(SCALARS, st.integers(-3, 3), st.sampled_from([0, 0.0, -0.5, 1.0, 2.0, 8.0])))
    return doc


_JSONSCHEMA = Draft202012Validator(load_schema("task"))


@settings(max_examples=600, deadline=None)
@given(st.one_of(TASKISH, valid_tasks(), mutated_tasks(), DOCS))
def test_fastcheck_agrees_with_jsonschema(doc: Any):
    assert fastcheck.is_valid(load_schema("task"), doc) == _JSONSCHEMA.is_valid(doc)


@settings(max_examples=600, deadline=None)
@given(mutated_tasks())
def test_fastcheck_agrees_with_jsonschema_near_valid(doc: Any):
    assert fastcheck.is_valid(load_schema("task"), doc) == _JSONSCHEMA.is_valid(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"num_nodes": 2.0}, {"num_nodes": True}, {"num_nodes": 0}, {"resources": {"cpus": 0}},
        {"resources": {"cpus": False}}, {"resources": {"disk_size": 8.0}}, {"resources": {"cloud": None}},
        {"resources": {"accelerators": {"A10": 0}}}, {"resources": {"accelerators": {}}},
        {"resources": {"ports": [65536]}}, {"resources": {"any_of": []}}, {"envs": {"A": None}},
        {"service": {"readiness_probe": {"path": "/"}, "replica_policy": {}}}, {"file_mounts": {"/d": ""}},
    ],
)
def test_fastcheck_agrees_on_edge_cases(doc: Any):
    assert fastcheck.is_valid(load_schema("task"), doc) == _JSONSCHEMA.is_valid(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(TASKISH, mutated_tasks()))
def test_random_task_documents_build_or_raise_input_error(doc: dict[str, Any]):
    """Random fields, near-miss keys, and valid tasks with one value broken."""
    _assert_loads_or_input_error(yaml.safe_dump(doc, sort_keys=False))
