"""Each candidate carries the disk, ports, labels and market of the any_of /
ordered entry it came from: in the plan, in the plan file, and in the
provision request."""

from __future__ import annotations

import json

import pytest

from skyplan.errors import PlanFileError
from skyplan.planner import FORMAT_VERSION, dumps, make_plan, plan_from_json
from skyplan.provision.apply import request_for
from skyplan.spec import load_text
from skyplan.testing.fakes import FakeCatalog, offer

CAT = FakeCatalog([
    offer("aws", "p3.2xlarge", "us-east-1", "use1-az1", acc="V100", count=1, price=3.06, spot=0.9),
    offer("gcp", "n1-highmem-8", "us-central1", "us-central1-a", acc="V100", count=1, price=2.95, spot=0.8),
    offer("azure", "Standard_NC6s_v3", "eastus", None, acc="V100", count=1, price=3.4, spot=1.1),
])

TASK = """\
name: fields
resources:
  accelerators: V100
  disk_size: 100
  ports: 8080
  labels: {team: base}
  any_of:
    - cloud: aws
      disk_size: 500
      ports: [22, 8888]
      labels: {team: aws}
    - cloud: gcp
      use_spot: true
      ports: 9000-9001
    - cloud: azure
run: echo hi
"""

# cloud -> (disk_size, ports, labels, use_spot) as each entry resolves it
WANT = {
    "aws": (500, (22, 8888), (("team", "aws"),), False),
    "gcp": (100, (9000, 9001), (("team", "base"),), True),
    "azure": (100, (8080,), (("team", "base"),), False),
}


def _fields(c) -> tuple:
    return (c.disk_size, c.ports, c.labels, c.use_spot)


def test_each_candidate_carries_its_own_entry_fields():
    plan = make_plan(load_text(TASK), CAT)
    assert {c.cloud for c in plan.candidates} == set(WANT)
    for c in plan.candidates:
        assert _fields(c) == WANT[c.cloud], c.cloud


def test_plan_json_carries_the_fields_and_round_trips():
    plan = make_plan(load_text(TASK), CAT)
    doc = json.loads(dumps(plan))
    assert doc["format_version"] == FORMAT_VERSION == 2
    by_cloud = {c["cloud"]: c for c in doc["candidates"]}
    assert by_cloud["aws"]["disk_size"] == 500 and by_cloud["aws"]["ports"] == [22, 8888]
    assert by_cloud["aws"]["labels"] == {"team": "aws"}
    assert by_cloud["gcp"]["use_spot"] is True and by_cloud["gcp"]["ports"] == [9000, 9001]
    assert by_cloud["azure"]["disk_size"] == 100 and by_cloud["azure"]["labels"] == {"team": "base"}
    back = plan_from_json(doc)
    assert back == plan
    assert [_fields(c) for c in back.candidates] == [_fields(c) for c in plan.candidates]


def test_a_task_without_those_fields_gives_null_and_empty():
    plan = make_plan(load_text("resources:\n  accelerators: V100\n"), CAT)
    c = json.loads(dumps(plan))["candidates"][0]
    assert (c["disk_size"], c["ports"], c["labels"]) == (None, [], {})


def test_each_provision_request_carries_its_candidates_fields():
    plan = make_plan(load_text(TASK), CAT)
    for c in plan.candidates:
        req = request_for(plan, c, "fields", f"fields.a001.{c.cloud}", None)
        assert (req.disk_size, req.ports, tuple(req.labels.items()), req.use_spot) == WANT[c.cloud], c.cloud


def test_same_placement_from_two_entries_keeps_the_preferred_entrys_fields():
    # Both entries reach the same AWS placement; the ordered first entry wins,
    # and what gets provisioned is what that entry asked for.
    task = load_text(
        "resources:\n  accelerators: V100\n  ordered:\n"
        "    - {cloud: aws, disk_size: 300}\n"
        "    - {disk_size: 50}\n"
    )
    aws = [c for c in make_plan(task, CAT).candidates if c.cloud == "aws"]
    assert len(aws) == 1 and aws[0].disk_size == 300


def test_a_version_1_plan_is_refused_with_a_hint():
    doc = make_plan(load_text(TASK), CAT).to_json()
    doc["format_version"] = 1
    for c in doc["candidates"]:
        for k in ("disk_size", "ports", "labels"):
            del c[k]
    with pytest.raises(PlanFileError) as e:
        plan_from_json(doc, "old.json")
    assert "format_version 1 is not supported" in e.value.message and "re-create the plan" in e.value.hint


def test_a_plan_file_missing_the_fields_is_refused():
    from skyplan.planner.plan import candidates_sha256

    doc = make_plan(load_text(TASK), CAT).to_json()
    del doc["candidates"][0]["disk_size"]
    doc["request"]["candidates_sha256"] = candidates_sha256(doc["candidates"])  # consistent, but incomplete
    with pytest.raises(PlanFileError) as e:
        plan_from_json(doc, "edited.json")
    assert "disk_size" in e.value.message + " ".join(str(d) for d in getattr(e.value, "diagnostics", []))
