"""The sandbox runner gives a task that asks for it a free loopback port as $SKYPLAN_PORT."""

from __future__ import annotations

import json
from pathlib import Path

from skyplan.clouds.local import runner


def _spec(**kw) -> dict:
    base = {"cluster": "c1", "stack": "c1-local", "task_id": "t", "node_rank": 0, "num_nodes": 1, "workdir": None,
            "setup": None, "run": 'echo "port=$SKYPLAN_PORT"', "envs": {"SKYPLAN_PORT": "8081"}}
    base.update(kw)
    return base


def test_a_free_loopback_port_replaces_the_declared_one(sandboxes, wait_for) -> None:
    roots = [sandboxes(f"node-{i}") for i in range(2)]
    infos = [runner.start(_spec(loopback_port=True), root) for root in roots]
    ports = [info["port"] for info in infos]
    assert len(set(ports)) == 2 and all(isinstance(p, int) and p != 8081 for p in ports)
    for root, port in zip(roots, ports):
        wait_for(lambda root=root: runner.status(root)["phase"] == "done", "the task")
        assert f"port={port}" in Path(runner.log_paths(root)["run"]).read_text()
        assert json.loads((root / "node.json").read_text())["port"] == port


def test_without_it_the_declared_port_stays(sandboxes, wait_for) -> None:
    root = sandboxes()
    info = runner.start(_spec(), root)
    assert "port" not in info
    wait_for(lambda: runner.status(root)["phase"] == "done", "the task")
    assert "port=8081" in Path(runner.log_paths(root)["run"]).read_text()
