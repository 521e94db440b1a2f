"""`logs CLUSTER --node N`: one node's output, without the (node-N) prefixes that
several nodes' interleaved output carries; an unknown rank is an input error."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from skyplan.catalog import load_catalog
from skyplan.cli.main import app
from skyplan.planner import make_plan
from skyplan.spec import load
from skyplan.state import StateDB

runner = CliRunner()


def up_cluster(tmp_path: Path, name: str, sandbox: Path) -> None:
    """A local cluster row as a launch leaves it, its sandbox at ``sandbox``."""
    task = tmp_path / "t.yaml"
    task.write_text("name: two\nnum_nodes: 2\nresources:\n  cloud: local\nrun: echo hello\n")
    p = make_plan(load(str(task)), load_catalog(None))
    c = p.chosen
    StateDB().upsert_cluster(name, status="UP", cloud=c.cloud, region=c.region, zone=c.zone,
                             instance_type=c.instance_type, use_spot=c.use_spot, hourly_cost=c.hourly_cost,
                             stack=f"{name}.a001.local.local.local.od", backend="file:///nowhere",
                             task_sha256=p.task_sha256, task=p.to_json()["task"], outputs={"sandbox": str(sandbox)})


def two_finished_nodes(sandbox: Path) -> None:
    for rank in (0, 1):
        node = sandbox / f"node-{rank}"
        (node / "logs").mkdir(parents=True)
        (node / "logs" / "combined.log").write_text(f"hello from {rank}\n")
        (node / "status.json").write_text(json.dumps({"phase": "done", "returncode": 0}))


def test_logs_of_one_node_and_of_all(tmp_path):
    sandbox = tmp_path / "sb"
    two_finished_nodes(sandbox)
    up_cluster(tmp_path, "two", sandbox)
    every = runner.invoke(app, ["logs", "two"])
    assert every.exit_code == 0 and every.stdout == "(node-0) hello from 0\n(node-1) hello from 1\n"
    for rank in (0, 1):
        one = runner.invoke(app, ["logs", "two", "--node", str(rank)])
        assert one.exit_code == 0 and one.stdout == f"hello from {rank}\n"
    followed = runner.invoke(app, ["logs", "two", "--node", "1", "--follow"])
    assert followed.exit_code == 0 and followed.stdout == "hello from 1\n"
    missing = runner.invoke(app, ["logs", "two", "--node", "5"])
    assert missing.exit_code == 2 and "has no node 5" in missing.stderr
