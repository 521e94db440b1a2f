"""A plan file is applied only if every integrity field is present and matches:
deleting a hash, or setting it to null, fails like changing it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.errors import PlanFileError, StalePlanError
from skyplan.planner import check_fresh, make_plan, read_plan, write_plan
from skyplan.planner.plan import INTEGRITY_FIELDS
from skyplan.spec import load_task, task_from_dict, task_sha256

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def plan_doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    write_plan(make_plan(load_task(ROOT / "examples" / "gpu-set.yaml"), load_catalog(None)), path)
    return json.loads(path.read_text())


def write(tmp_path: Path, doc: dict, name: str = "p.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_a_written_plan_reads_back_the_same(tmp_path: Path, plan_doc: dict) -> None:
    plan = read_plan(write(tmp_path, plan_doc))
    assert plan.to_json() | {"skyplan_version": None} == plan_doc | {"skyplan_version": None}


def _set(doc: dict, path: tuple[str, ...], value: object, delete: bool = False) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if delete:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


@pytest.mark.parametrize("field", INTEGRITY_FIELDS, ids=".".join)
@pytest.mark.parametrize("how", ["deleted", "null", "not a digest", "wrong"])
def test_every_integrity_field_is_required(tmp_path: Path, plan_doc: dict, field: tuple[str, ...], how: str) -> None:
    doc = copy.deepcopy(plan_doc)
    value = {"deleted": None, "null": None, "not a digest": "x" * 64, "wrong": "0" * 64}[how]
    _set(doc, field, value, delete=how == "deleted")
    path = write(tmp_path, doc)
    with pytest.raises(StalePlanError) as info:
        # A catalog hash is compared with the current catalog's, as apply does.
        check_fresh(read_plan(path), load_catalog(None).info, str(path))
    assert info.value.exit_code == 2
    assert field[-1] in info.value.message


@pytest.mark.parametrize("remove", [
    lambda d: d["request"].pop("candidates_sha256"),
    lambda d: d["request"].update(candidates_sha256=None),
    lambda d: d.pop("request"),
])
@pytest.mark.parametrize("edit", [
    lambda d: d["candidates"][0].update(instance_type="n1-highmem-96"),
    lambda d: d["candidates"][0].update(accelerators={"V100": 1e30}),
])
def test_an_edited_plan_with_its_hash_removed_is_refused(tmp_path: Path, plan_doc: dict, remove, edit) -> None:  # noqa: ANN001
    doc = copy.deepcopy(plan_doc)
    edit(doc)
    remove(doc)
    with pytest.raises(StalePlanError, match="candidates_sha256"):
        read_plan(write(tmp_path, doc))


def test_num_candidates_must_match(tmp_path: Path, plan_doc: dict) -> None:
    doc = copy.deepcopy(plan_doc)
    doc["request"]["num_candidates"] += 1
    with pytest.raises(StalePlanError, match="candidates"):
        read_plan(write(tmp_path, doc))


def test_a_nul_in_the_task_is_refused_even_with_a_matching_hash(tmp_path: Path, plan_doc: dict) -> None:
    doc = copy.deepcopy(plan_doc)
    doc["task"]["run"] = "echo \u0000"
    doc["task_sha256"] = task_sha256(task_from_dict(doc["task"]))
    with pytest.raises(PlanFileError, match="control character U\\+0000"):
        read_plan(write(tmp_path, doc))


def test_plan_json_is_read_through_the_bounded_loader(tmp_path: Path, plan_doc: dict) -> None:
    text = json.dumps(plan_doc, indent=2).replace('"created_at"', '"format_version": 2,\n  "created_at"', 1)
    path = tmp_path / "dup.json"
    path.write_text(text)
    with pytest.raises(PlanFileError, match=r"dup.json:3:3: duplicate key \"format_version\""):
        read_plan(path)
    (tmp_path / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(PlanFileError, match="nesting is deeper"):
        read_plan(tmp_path / "deep.json")
