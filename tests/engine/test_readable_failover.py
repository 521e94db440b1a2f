"""Readable failover and progress through the real CLI and engine (local, sim):
one line per attempt with the zone's name, the provider's text once, what Ctrl-C
cleans up, and every node's output prefixed with its rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skyplan.clouds.sim.ledger import live_resources

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
SC = EX / "scenarios"

pytestmark = pytest.mark.engine

ICC = ("An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation (reached max "
       "retries: 0): We currently do not have sufficient p3.16xlarge capacity in the Availability Zone you "
       "requested (us-east-1a). Our system will be working on provisioning additional capacity. You can currently "
       "get p3.16xlarge capacity by not specifying an Availability Zone in your request or choosing us-east-1b, "
       "us-east-1d, us-east-1f.")


@pytest.fixture
def cli(engine, skyplan_home, backend_url, monkeypatch):
    monkeypatch.setenv("SKYPLAN_BACKEND", backend_url)
    monkeypatch.setenv("COLUMNS", "80")
    made: list[str] = []

    def run(*args: str, check: int | None = 0, timeout: float = 240) -> subprocess.CompletedProcess:
        if args and args[0] == "apply" and "-c" in args:
            made.append(args[args.index("-c") + 1])
        proc = subprocess.run([sys.executable, "-m", "skyplan", *args], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ), stdin=subprocess.DEVNULL)
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    yield run
    for name in made:
        run("down", name, "--yes", check=None)
    from skyplan.provision.driver import StackDriver

    assert StackDriver(backend_url).list_stacks() == []
    assert live_resources() == []


def test_each_attempt_is_one_line_with_the_az_name_and_the_first_sentence(cli, tmp_path, skyplan_home):
    task = tmp_path / "t.yaml"
    task.write_text("name: east\nresources:\n  cloud: aws\n  region: us-east-1\n  accelerators: V100:1\nrun: echo hi\n")
    sc = tmp_path / "sc.yaml"
    sc.write_text(f"default: ok\nlatency_s: 0\nrules:\n  - cloud: aws\n    zone: use1-az1\n    outcome: capacity\n"
                  f"    message: \"{ICC}\"\n")
    p = cli("apply", str(task), "--yes", "--detach", "-c", "east", "--simulate", str(sc))
    lines = p.stderr.splitlines()
    assert ("#1 AWS us-east-1a [use1-az1] p3.2xlarge on-demand: InsufficientInstanceCapacity: We currently do not "
            "have sufficient p3.16xlarge capacity in the Availability Zone you requested (us-east-1a).") in lines
    assert "#2 AWS us-east-1 use1-az2 p3.2xlarge on-demand: up" in lines
    assert "Our system will be working" not in p.stderr
    log = (skyplan_home / "logs" / "skyplan.log").read_text()
    assert "Our system will be working on provisioning additional capacity" in log  # the full text


def test_an_invalid_request_says_the_providers_words_once(cli):
    p = cli("apply", str(EX / "v100.yaml"), "--yes", "-c", "inv", "--simulate", str(SC / "invalid.yaml"), check=4)
    assert p.stderr.count("Invalid value for field") == 1, p.stderr
    assert "stopped after attempt 1" in p.stderr
    assert "Attempts" not in p.stderr  # the lines above are the record: no table repeating them


def test_ctrl_c_says_what_it_cleans_up(cli, tmp_path):
    sc = tmp_path / "slow.yaml"
    sc.write_text("default: ok\nlatency_s: 30\n")
    argv = [sys.executable, "-m", "skyplan", "apply", str(EX / "v100.yaml"), "--yes", "--detach", "-c", "intr",
            "--simulate", str(sc)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ), stdin=subprocess.DEVNULL)
    from skyplan.state import StateDB

    end = time.monotonic() + 60
    while not any(a.status == "running" for a in StateDB().attempts("intr")) and time.monotonic() < end:
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.splitlines()
    stopping = next(i for i, line in enumerate(lines) if line.startswith("Interrupted: stopping attempt 1 on "))
    cleaning = next(i for i, line in enumerate(lines) if line.startswith("Cleaning up stack intr.a001."))
    cleaned = next(i for i, line in enumerate(lines) if line.startswith("Cleaned up stack intr.a001."))
    assert stopping < cleaning < cleaned
    assert any(line.startswith("Interrupted: cleaned up 1 stack of this run (intr.a001.") for line in lines)
    assert live_resources() == []


def test_every_node_speaks_with_its_rank_and_a_failure_names_its_node(cli, tmp_path):
    task = tmp_path / "two.yaml"
    task.write_text("name: two\nnum_nodes: 2\nresources:\n  cloud: local\nrun: |\n"
                    "  echo \"hello from $SKYPLAN_NODE_RANK\"\n"
                    "  if [ \"$SKYPLAN_NODE_RANK\" = 1 ]; then exit 3; fi\n")
    p = cli("apply", str(task), "--yes", "-c", "two", check=7)
    out = p.stdout.splitlines()
    assert "(node-0) hello from 0" in out and "(node-1) hello from 1" in out
    assert "exit code 3" in p.stderr and "node 1" in p.stderr.replace("node-1", "node 1")
    follow = cli("logs", "two", "--follow").stdout.splitlines()
    assert "(node-0) hello from 0" in follow and "(node-1) hello from 1" in follow
