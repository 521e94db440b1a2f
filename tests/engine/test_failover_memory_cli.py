"""Escalation and the capacity memory end to end: the real CLI process, the real engine
on a file:// backend, the sim cloud standing in for GCP and AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds.sim.ledger import live_resources

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine

TASK = """name: esc
resources:
  accelerators: V100
  any_of:
    - {cloud: gcp}
    - {cloud: aws, region: us-west-2}
run: 'true'
"""
# A permission error in words no classifier knows, in every GCP zone.
UNKNOWN = ("googleapi: Error 403: Constraint constraints/compute.restrictVmCreation violated for project "
           "acme-prod: VM creation is restricted by an organization policy, conditionNotMet")


@pytest.fixture
def run(engine, skyplan_home, backend_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SKYPLAN_BACKEND", backend_url)
    made: list[str] = []

    def go(*args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        if args[0] == "apply":
            made.append(args[args.index("-c") + 1])
        proc = subprocess.run([sys.executable, "-m", "skyplan", *args], capture_output=True, text=True,
                              timeout=300, env=dict(os.environ), stdin=subprocess.DEVNULL, cwd=tmp_path)
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    yield go
    for name in made:
        go("down", name, "--yes", check=None)
    assert live_resources() == []


def attempts(proc) -> list[dict]:
    return [e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "attempt"]


def test_an_unknown_error_in_every_gcp_zone_costs_three_attempts_not_one_per_zone(run, tmp_path):
    (tmp_path / "task.yaml").write_text(TASK)
    (tmp_path / "sc.yaml").write_text(
        "default: ok\nlatency_s: 0\nrules:\n"
        f"  - {{cloud: gcp, outcome: capacity, message: {json.dumps(UNKNOWN)}}}\n")
    plan = json.loads(run("plan", "task.yaml", "--json").stdout)
    assert sum(c["cloud"] == "gcp" for c in plan["candidates"]) > 10  # many GCP zones to walk

    proc = run("apply", "task.yaml", "-c", "esc", "--simulate", "sc.yaml", "--json", "--yes", "--detach")
    tried = attempts(proc)
    gcp = [a for a in tried if a["cloud"] == "gcp"]
    assert len(gcp) <= 4 and all(a["kind"] == "unknown" for a in gcp)
    assert [a["widened"].split(":")[0] for a in gcp if a["widened"]] == ["region", "cloud"]
    assert tried[-1]["cloud"] == "aws" and tried[-1]["outcome"] == "up"


def test_a_capacity_failure_is_ranked_last_by_the_next_plan_and_fresh_ignores_it(run, tmp_path):
    (tmp_path / "task.yaml").write_text(TASK)
    plan = json.loads(run("plan", "task.yaml", "--json").stdout)
    first = plan["candidates"][0]
    (tmp_path / "sc.yaml").write_text(
        "default: ok\nlatency_s: 0\nrules:\n"
        f"  - {{cloud: gcp, zone: {first['zone']}, outcome: capacity}}\n")
    tried = attempts(run("apply", "task.yaml", "-c", "mem", "--simulate", "sc.yaml", "--json", "--yes", "--detach"))
    assert tried[0]["zone"] == first["zone"] and tried[0]["kind"] == "capacity"

    again = json.loads(run("plan", "task.yaml", "--json").stdout)["candidates"]
    assert again[0]["zone"] != first["zone"]
    remembered = [c for c in again if c["recent_failure"]]
    assert remembered and all(c["zone"] == first["zone"] for c in remembered)
    assert remembered[0]["recent_failure"]["kind"] == "capacity"
    fresh = json.loads(run("plan", "task.yaml", "--json", "--fresh").stdout)["candidates"]
    assert fresh[0]["zone"] == first["zone"] and not any(c["recent_failure"] for c in fresh)
