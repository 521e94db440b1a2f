"""Every seed YAML and every example validates and plans on the embedded catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.planner import make_plan, plan_from_json
from skyplan.spec import load
from skyplan.spec.models import Pipeline

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted((ROOT / "tests" / "fixtures" / "seeds").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_plans(path):
    doc = load(path)
    tasks = doc.tasks if isinstance(doc, Pipeline) else (doc,)
    catalog = load_catalog()
    for task in tasks:
        plan = make_plan(task, catalog)
        assert plan.candidates and plan.candidates[0].rank == 1
        costs = [c.hourly_cost for c in plan.candidates]
        if task.resources.preference.value == "cheapest" and all(
                r.accelerator_preference.value == "cheapest" for r in task.resources.candidates):
            assert costs == sorted(costs)
        assert plan_from_json(plan.to_json()) == plan


def test_seed_001_any_of_regions_table_matches_the_seed():
    plan = make_plan(load(ROOT / "examples" / "any-of-regions.yaml"), load_catalog())
    first = plan.candidates[0]
    assert (first.cloud, first.instance_type, first.zone) == ("gcp", "g2-standard-96", "us-east4-a")
    assert round(first.hourly_cost, 2) == 7.98
    regions = {c.region for c in plan.candidates}
    assert regions <= {"us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-central1", "us-east1", "us-east4",
                       "us-west1", "us-west2", "us-west3", "us-west4"}
