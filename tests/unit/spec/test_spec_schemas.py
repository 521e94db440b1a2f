"""The shipped JSON Schemas: well-formed, in sync, found when installed, and the plan-file check."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from jsonschema import Draft202012Validator

from skyplan.errors import PlanFileError, SkyplanError
from skyplan.spec import fastcheck, load_task, task_sha256, task_to_dict, validate_plan_document
from skyplan.spec import schemas as schemas_mod
from skyplan.spec.build import OVERRIDABLE
from skyplan.spec.schemas import SCHEMA_NAMES, load_schema
from spec_helpers import REPO


def _subschemas(node: Any, in_properties: bool = False) -> Iterator[dict[str, Any]]:
    """Every schema object, skipping the names under properties/$defs (they are not keywords)."""
    if isinstance(node, dict):
        if not in_properties:
            yield node
        for key, value in node.items():
            if in_properties or key in ("properties", "$defs"):
                yield from _subschemas(value, in_properties=not in_properties)
            elif isinstance(value, dict):
                yield from _subschemas(value)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_uses_only_keywords_fastcheck_understands(name: str):
    used = {key for sub in _subschemas(load_schema(name)) for key in sub}
    assert used <= fastcheck.KEYWORDS, used - fastcheck.KEYWORDS


def test_task_schema_top_level_fields_match_the_issue():
    schema = load_schema("task")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "name", "workdir", "num_nodes", "resources", "envs", "secrets", "file_mounts", "setup", "run", "service"
    }
    assert load_schema("task")["$defs"]["cloud"]["enum"] == ["aws", "gcp", "azure", "local", "ssh", "kubernetes", None]


def test_resources_and_override_entries_stay_in_sync():
    defs = load_schema("task")["$defs"]
    base = defs["resources"]["properties"]
    entry = defs["resource_override"]["properties"]
    assert set(base) - set(entry) == {"any_of", "ordered"}
    assert {k: base[k] for k in entry} == entry
    assert set(entry) == set(OVERRIDABLE)


def test_pipeline_schema_holds_only_name():
    schema = load_schema("pipeline")
    assert set(schema["properties"]) == {"name"} and schema["additionalProperties"] is False


def test_load_schema_prefers_the_installed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "_schemas").mkdir()
    (tmp_path / "_schemas" / "task.schema.json").write_text('{"title": "installed"}')
    monkeypatch.setattr(schemas_mod, "_PACKAGE_DIR", tmp_path)
    load_schema.cache_clear()
    try:
        assert load_schema("task") == {"title": "installed"}
    finally:
        load_schema.cache_clear()


def test_load_schema_falls_back_to_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(schemas_mod, "_PACKAGE_DIR", tmp_path)  # no _schemas here
    load_schema.cache_clear()
    try:
        assert load_schema("plan") == json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    finally:
        load_schema.cache_clear()


def test_load_schema_missing_everywhere_is_a_skyplan_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(schemas_mod, "_PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(schemas_mod, "_REPO_DIR", tmp_path / "schemas")
    load_schema.cache_clear()
    try:
        with pytest.raises(SkyplanError, match="missing"):
            load_schema("task")
    finally:
        load_schema.cache_clear()


def test_wheel_config_ships_the_schemas():
    text = (REPO / "pyproject.toml").read_text()
    assert '"schemas" = "skyplan/_schemas"' in text


# --- the plan file --------------------------------------------------------------


def _plan() -> dict[str, Any]:
    task = load_task(REPO / "examples" / "gpu-set.yaml")
    return {
        "format_version": 2,
        "created_at": "2025-01-02T03:04:05+00:00",
        "skyplan_version": "0.1.0",
        "task": task_to_dict(task),
        "task_sha256": task_sha256(task),
        "catalog": {"source": "embedded", "fetched_at": "2024-11-19", "sha256": "a" * 64},
        "candidates": [
            {
                "rank": 1, "cloud": "azure", "region": "eastus", "zone": None,
                "instance_type": "Standard_NV6ads_A10_v5", "use_spot": False, "vcpus": 6, "memory_gib": 55,
                "accelerators": {"A10": 1}, "hourly_price": 0.45, "hourly_cost": 0.45,
                "disk_size": 500, "ports": [22, 8888], "labels": {"team": "ml"},
            },
            {
                "rank": 2, "cloud": "gcp", "region": "us-east4", "zone": "us-east4-a",
                "instance_type": "g2-standard-4", "use_spot": True, "vcpus": 4, "memory_gib": 16.0,
                "accelerators": {"L4": 1}, "hourly_price": 0.7, "hourly_cost": 0.7,
                "disk_size": None, "ports": [], "labels": {},
            },
        ],
        "request": {"source": None, "num_candidates": 2, "candidates_sha256": "b" * 64},
    }


def test_a_good_plan_passes():
    validate_plan_document(_plan(), "plan.json")
    validate_plan_document(json.loads(json.dumps(_plan())), "plan.json")


def test_a_plan_lists_every_problem():
    plan = _plan()
    plan["format_version"] = "1"
    plan["task_sha256"] = "XYZ"
    del plan["catalog"]["sha256"]
    plan["candidates"][0]["rank"] = 0
    plan["candidates"][1]["zone"] = 3
    plan["candidates"][1]["extra"] = True
    with pytest.raises(PlanFileError) as info:
        validate_plan_document(plan, "plan.json")
    paths = sorted(d.path for d in info.value.diagnostics)
    assert paths == [
        "$.candidates[0].rank", "$.candidates[1].extra", "$.candidates[1].zone", "$.catalog", "$.format_version",
        "$.task_sha256",
    ]
    assert "6 problems" in info.value.message and "plan.json" in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda p: p.update(created_at="yesterday"), "$.created_at"),
        (lambda p: p["catalog"].update(fetched_at="Nov 2024"), "$.catalog.fetched_at"),
        (lambda p: p["task"].update(num_nodes="two"), "$.task"),
        (lambda p: p["task"]["resources"].update(preference="random"), "$.task"),
        (lambda p: p.update(candidates=[]), "$.candidates"),
        (lambda p: p.pop("task"), "$"),
        (lambda p: p.update(surprise=1), "$.surprise"),
        (lambda p: p["candidates"][0].update(ports=["22"]), "$.candidates[0].ports[0]"),
        (lambda p: p["candidates"][0].update(disk_size=0), "$.candidates[0].disk_size"),
        (lambda p: p["candidates"][1].pop("labels"), "$.candidates[1]"),
    ],
)
def test_plan_problems_are_located(mutate, path: str):
    plan = copy.deepcopy(_plan())
    mutate(plan)
    with pytest.raises(PlanFileError) as info:
        validate_plan_document(plan, "p.json")
    assert [d.path for d in info.value.diagnostics] == [path]


@pytest.mark.parametrize("doc", [None, [], "plan", 3])
def test_a_non_object_plan_is_refused(doc):
    with pytest.raises(PlanFileError):
        validate_plan_document(doc, "p.json")
