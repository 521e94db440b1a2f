"""Converging apply end to end: the console script, the real engine, a file:// backend.

Applying a changed task to a cluster that is up: nothing to do for the same task; the
task re-run in place on the same stack when only run/envs/the workdir's contents
changed (the sandbox runner stops it, re-syncs the workdir, starts it again); a
replacement when the resources changed (the new stack comes up before the old one is
destroyed). `down --all` then leaves nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds.sim.ledger import live_resources

pytestmark = pytest.mark.engine


@pytest.fixture
def cli(engine, skyplan_home, backend_url, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("SKYPLAN_BACKEND", backend_url)

    def run(*args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "skyplan", *args], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ), stdin=subprocess.DEVNULL)
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    yield run
    run("down", "--all", "--yes", check=None)
    from skyplan.provision.driver import StackDriver

    assert StackDriver(backend_url).list_stacks() == []
    assert live_resources() == []


def status(cli, name: str) -> dict:  # noqa: ANN001
    (row,) = json.loads(cli("status", name, "--json").stdout)["clusters"]
    return row


def test_local_cluster_converges_rerun_in_place_then_replacement(cli, tmp_path, skyplan_home):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "data.txt").write_text("one\n")
    task = tmp_path / "conv.yaml"
    task.write_text("name: conv\nworkdir: wd\nresources:\n  cloud: local\n  cpus: 1+\nenvs:\n  G: hi\n"
                    "run: echo \"run $G $(cat data.txt)\"\n")
    first = cli("apply", str(task), "--yes")
    assert "run hi one" in first.stdout
    stack = status(cli, "conv")["stack"]

    same = cli("apply", str(task), "--yes")
    assert "already up with this task" in same.stderr and same.stdout == ""
    assert cli("plan", str(task), "--detailed-exitcode", check=0)

    task.write_text(task.read_text().replace("G: hi", "G: bye"))
    assert "re-run the task in place" in cli("plan", str(task), "--detailed-exitcode", check=2).stdout
    rerun = cli("apply", str(task), "--yes")
    assert rerun.stdout == "run bye one\n"  # the new run only: the sandbox's logs start afresh
    assert f"the task re-runs in place (1 change; stack {stack})" in rerun.stderr
    assert status(cli, "conv")["stack"] == stack

    (wd / "data.txt").write_text("two\n")  # the workdir's contents alone
    assert '~ workdir_contents' in cli("plan", str(task), "-c", "conv").stdout
    assert cli("apply", str(task), "--yes").stdout == "run bye two\n"
    assert cli("logs", "conv").stdout == "run bye two\n"

    task.write_text(task.read_text().replace("cpus: 1+", "cpus: 2+"))
    refused = cli("apply", str(task), "--json", check=2)  # no terminal, no --yes: nothing is touched
    assert "refusing to apply without --yes" in refused.stderr
    replaced = cli("apply", str(task), "--yes")
    new = status(cli, "conv")["stack"]
    assert new != stack and new.startswith("conv.a002.")
    assert f"was replaced (1 change): now on stack {new}" in replaced.stderr
    assert sorted(os.listdir(skyplan_home / "sandboxes")) == [new]  # the old placement is gone


def test_sim_replacement_keeps_exactly_one_live_resource_and_json_says_what_it_did(cli, tmp_path):
    scenario = tmp_path / "ok.yaml"
    scenario.write_text("default: ok\nlatency_s: 0\n")
    task = tmp_path / "gpu.yaml"
    task.write_text("name: gpu\nresources:\n  cloud: gcp\n  region: us-central1\n  accelerators: V100:1\n"
                    "run: echo one\n")
    cli("apply", str(task), "--yes", "--detach", "--simulate", str(scenario))
    old = status(cli, "gpu")["stack"]
    task.write_text(task.read_text().replace("us-central1", "us-west1"))
    done = cli("apply", str(task), "--yes", "--detach", "--json", "--simulate", str(scenario))
    summary = [json.loads(line) for line in done.stdout.splitlines()][-1]
    assert summary["event"] == "summary" and summary["status"] == "UP" and summary["stack"] != old
    assert summary["action"] == "replace"
    live = live_resources()
    assert [r["stack"] for r in live] == [summary["stack"]] and live[0]["region"] == "us-west1"


def test_down_all_destroys_every_cluster_and_an_unknown_one_is_a_no_op(cli, tmp_path):
    for name in ("one", "two"):
        task = tmp_path / f"{name}.yaml"
        task.write_text(f"name: {name}\nresources:\n  cloud: local\n  cpus: 1+\nrun: 'true'\n")
        cli("apply", str(task), "--yes", "--detach")
    done = json.loads(cli("down", "--all", "--yes", "--json").stdout)
    assert sorted((c["cluster"], c["status"]) for c in done["clusters"]) == [("one", "DOWN"), ("two", "DOWN")]
    assert json.loads(cli("status", "--json").stdout)["clusters"] == []
    again = cli("down", "one", "--yes")
    assert "No cluster named 'one'" in again.stderr
