"""`plan` ranks the capacity memory's failures last and marks them; --fresh ignores it.

The memory is written as apply writes it (``memory.remember`` into the store of the
backend); each test's SKYPLAN_HOME is its own (conftest), so nothing leaks between tests.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.errors import Classification, Kind, Scope
from skyplan.planner import plan_from_json
from skyplan.provision.failover import Attempt, block_for
from skyplan.provision.memory import cloud_families, for_planning, local_store, remember

EX = Path(__file__).resolve().parents[2] / "examples"


def plan_json(*extra: str) -> dict:
    r = CliRunner().invoke(app, ["plan", str(EX / "v100.yaml"), "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def fail_first(doc: dict, kind: Kind, scope: Scope, backend: str, *, family: str | None = None,
               when: datetime | None = None) -> dict:
    """Record a failure of the plan's first candidate in the backend's memory; return that candidate."""
    plan = plan_from_json(doc)
    c = plan.candidates[0]
    cls = Classification(kind, scope, "X", "x", family)
    attempt = Attempt(1, c, False, cls, block_for(c, cls, cloud_families(c)))
    remember(local_store(backend), [attempt], when or datetime.now(timezone.utc))
    return doc["candidates"][0]


def default_backend() -> str:
    return "file://" + str(Path(__import__("os").environ["SKYPLAN_HOME"]) / "pulumi")


def key(c: dict) -> tuple:
    return (c["cloud"], c["region"], c["zone"], c["instance_type"], c["use_spot"])


def test_a_remembered_capacity_failure_is_ranked_last_marked_and_fresh_ignores_it():
    before = plan_json()
    assert all(c["recent_failure"] is None for c in before["candidates"])
    first = fail_first(before, Kind.CAPACITY, Scope.ZONE, default_backend())

    after = plan_json()
    cands = after["candidates"]
    failed = [c for c in cands if c["recent_failure"]]
    assert [key(c) for c in failed] == [key(first)]
    assert key(cands[-1]) == key(first) and cands[-1]["rank"] == len(cands)
    rf = failed[0]["recent_failure"]
    assert rf["kind"] == "capacity"
    at, exp = (datetime.fromisoformat(rf[k].replace("Z", "+00:00")) for k in ("at", "expires_at"))
    assert exp - at == timedelta(minutes=10)
    # The rest keep their order.
    assert [key(c) for c in cands[:-1]] == [key(c) for c in before["candidates"] if key(c) != key(first)]
    plan_from_json(after)  # the schema accepts recent_failure (and the candidates hash still holds)

    fresh = plan_json("--fresh")
    assert [key(c) for c in fresh["candidates"]] == [key(c) for c in before["candidates"]]
    assert all(c["recent_failure"] is None for c in fresh["candidates"])


def test_the_table_marks_remembered_failures():
    fail_first(plan_json(), Kind.CAPACITY, Scope.ZONE, default_backend(),
               when=datetime.now(timezone.utc) - timedelta(minutes=3))
    r = CliRunner().invoke(app, ["plan", str(EX / "v100.yaml"), "--top", "0"])
    assert r.exit_code == 0, r.output
    assert "RECENT" in r.stdout and "CAPACITY? 3m ago" in r.stdout
    assert "1 candidate ranked last" in r.stdout


def test_an_expired_memory_changes_nothing():
    before = plan_json()
    fail_first(before, Kind.CAPACITY, Scope.ZONE, default_backend(),
               when=datetime.now(timezone.utc) - timedelta(minutes=11))
    assert plan_json()["candidates"] == before["candidates"]


def test_a_quota_memory_covers_the_whole_region_for_an_hour():
    before = plan_json()
    first = fail_first(before, Kind.QUOTA, Scope.REGION, default_backend(),
                       when=datetime.now(timezone.utc) - timedelta(minutes=50))
    cands = plan_json()["candidates"]
    marked = [c for c in cands if c["recent_failure"]]
    assert len(marked) > 1 and all(c["region"] == first["region"] and c["recent_failure"]["kind"] == "quota"
                                   for c in marked)
    assert all(c["recent_failure"] for c in cands[-len(marked):])


def test_two_homes_on_one_file_backend_share_the_memory(tmp_path, monkeypatch):
    shared = f"file://{tmp_path / 'team-backend'}"
    monkeypatch.setenv("SKYPLAN_BACKEND", shared)
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "alice"))
    first = fail_first(plan_json(), Kind.CAPACITY, Scope.ZONE, shared)
    assert (tmp_path / "team-backend" / ".skyplan" / "capacity.json").is_file()

    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "bob"))
    cands = plan_json()["candidates"]
    assert key(cands[-1]) == key(first) and cands[-1]["recent_failure"]["kind"] == "capacity"
    # Bob's own default backend knows nothing.
    monkeypatch.delenv("SKYPLAN_BACKEND")
    assert for_planning().records == ()
    assert all(c["recent_failure"] is None for c in plan_json()["candidates"])
