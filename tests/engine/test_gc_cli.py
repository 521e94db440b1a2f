"""`skyplan gc` end to end: stacks of a killed launch and of a cluster the state forgot
are collected, a cluster that is up is not, and the backend keeps no file of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds.sim.ledger import live_resources
from skyplan.provision.names import cluster_stack_prefix

pytestmark = pytest.mark.engine

TASK = "name: g\nresources:\n  cloud: gcp\n  region: us-central1\n  accelerators: V100:1\nrun: 'true'\n"


@pytest.fixture
def cli(engine, skyplan_home, backend_url, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("SKYPLAN_BACKEND", backend_url)

    def run(*args: str, failpoints: str | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        if failpoints:
            env["SKYPLAN_FAILPOINTS"] = failpoints
        return subprocess.run([sys.executable, "-m", "skyplan", *args], capture_output=True, text=True, timeout=300,
                              env=env, stdin=subprocess.DEVNULL)

    return run


def backend_names(backend_url: str, cluster: str) -> list[str]:
    base = Path(backend_url[len("file://"):]) / ".pulumi"
    return sorted(p.name for sub in ("stacks/skyplan", "history/skyplan") if (base / sub).is_dir()
                  for p in (base / sub).iterdir() if p.name.startswith(cluster_stack_prefix(cluster)))


def test_gc_collects_stacks_no_cluster_uses_and_keeps_the_up_one(cli, tmp_path, backend_url):
    from skyplan.state import StateDB

    task = tmp_path / "t.yaml"
    task.write_text(TASK)
    sc = tmp_path / "ok.yaml"
    sc.write_text("default: ok\nlatency_s: 0\n")
    apply = ("apply", str(task), "--yes", "--detach", "--simulate", str(sc), "-c")
    assert cli(*apply, "killed", failpoints="attempt.after-record-up:kill").returncode == -9
    assert cli(*apply, "forgotten", failpoints="attempt.after-record-up:kill").returncode == -9
    StateDB().delete_cluster("forgotten")  # the state lost it; the backend did not
    assert cli(*apply, "kept").returncode == 0

    dry = cli("gc", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    found = {g["cluster"]: g["reason"] for g in json.loads(dry.stdout)["garbage"]}
    assert found == {"killed": "cluster 'killed' is not up (its launch was stopped)", "forgotten": "no known cluster"}

    done = cli("gc", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["destroyed"]) == 2
    assert backend_names(backend_url, "killed") == [] and backend_names(backend_url, "forgotten") == []
    assert {r["cluster"] for r in live_resources()} == {"kept"}
    assert not (Path(os.environ["SKYPLAN_HOME"]) / "locks" / "forgotten.lock").exists()

    assert cli("down", "kept", "--yes").returncode == 0
    assert cli("down", "killed", "--yes").returncode == 0  # nothing left of it: down forgets it
    status = json.loads(cli("status", "--json").stdout)
    assert live_resources() == [] and (status if isinstance(status, list) else status["clusters"]) == []
