"""`skyplan apply` end to end: the real CLI process, the real pulumi engine on a
file:// backend, the local and sim clouds. Every test downs what it made and
checks that neither stacks nor sim resources are left."""

from __future__ import annotations

import json
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


@pytest.fixture
def cli(engine, skyplan_home, backend_url, monkeypatch):
    monkeypatch.setenv("SKYPLAN_BACKEND", backend_url)
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


def events(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def attempts(proc) -> list[dict]:
    return [e for e in events(proc) if e["event"] == "attempt"]


def summary(proc) -> dict:
    (s,) = [e for e in events(proc) if e["event"] == "summary"]
    return s


def test_hello_world_on_local(cli):
    p = cli("apply", str(EX / "hello.yaml"), "--yes", "-c", "hello")
    assert "hello from skyplan (3)" in p.stdout
    assert "setting up: hello" in p.stdout
    assert "#1 this machine (local): up" in p.stderr
    st = json.loads(cli("status", "--json").stdout)["clusters"]
    assert [(c["name"], c["status"], c["cloud"]) for c in st] == [("hello", "UP", "local")]
    logs = cli("logs", "hello").stdout
    assert "hello from skyplan (1)" in logs
    sandbox = Path(st[0]["outputs"]["sandbox"])
    assert sandbox.is_dir()
    cli("down", "hello", "--yes")
    assert not sandbox.exists()
    assert json.loads(cli("status", "--json").stdout)["clusters"] == []


def test_seed_000_replay_ends_in_us_west1_a(cli):
    p = cli("apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach", "-c", "gpu",
            "--simulate", str(SC / "seed-000.yaml"))
    tried = attempts(p)
    assert [a["zone"] for a in tried[:4]] == ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
    assert all(a["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED" and a["scope"] == "zone" for a in tried[:-1])
    assert "does not have enough resources available" in tried[0]["message"]
    s = summary(p)
    assert s["status"] == "UP" and s["placement"]["zone"] == "us-west1-a"
    assert len(live_resources()) == 1  # only the placement that came up


def test_seed_001_cross_cloud_ends_on_aws_after_gcp_quota(cli):
    p = cli("apply", str(EX / "v100x8.yaml"), "--yes", "--json", "--detach", "-c", "v100-8",
            "--simulate", str(SC / "seed-001.yaml"))
    tried = attempts(p)
    gcp = [a for a in tried if a["cloud"] == "gcp"]
    # A per-GPU quota (NVIDIA_V100_GPUS) blocks that GPU family in the region.
    quota = [a for a in gcp if a["code"] == "QUOTA_EXCEEDED"]
    assert quota and all(a["scope"] == "family" and "NVIDIA_V100_GPUS" in a["block"] for a in quota)
    assert "Quota 'NVIDIA_V100_GPUS' exceeded" in next(a["message"] for a in gcp if a["code"] == "QUOTA_EXCEEDED")
    first_aws = next(i for i, a in enumerate(tried) if a["cloud"] == "aws")
    assert all(a["cloud"] == "gcp" for a in tried[:first_aws])  # GCP exhausted before AWS
    s = summary(p)
    assert s["placement"]["cloud"] == "aws" and s["placement"]["region"] == "us-west-2"
    assert s["placement"]["instance_type"] == "p3.16xlarge"


def test_auth_failure_blocks_the_whole_cloud(cli):
    p = cli("apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach", "-c", "auth",
            "--simulate", str(SC / "auth-gcp.yaml"))
    tried = attempts(p)
    assert tried[0]["cloud"] == "gcp" and tried[0]["kind"] == "auth" and tried[0]["scope"] == "cloud"
    assert [a["cloud"] for a in tried[1:]] and all(a["cloud"] != "gcp" for a in tried[1:])
    assert summary(p)["status"] == "UP"


def test_invalid_request_stops_at_once(cli):
    p = cli("apply", str(EX / "v100.yaml"), "--yes", "--json", "-c", "inv",
            "--simulate", str(SC / "invalid.yaml"), check=4)
    tried = attempts(p)
    assert len(tried) == 1 and tried[0]["kind"] == "invalid"
    s = summary(p)
    assert s["status"] == "FAILED" and len(s["attempts"]) == 1
    assert "stopped" in p.stderr
    assert live_resources() == []


def test_hang_times_out_and_fails_over(cli):
    p = cli("apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach", "-c", "hang", "--timeout", "8",
            "--simulate", str(SC / "hang.yaml"))
    tried = attempts(p)
    assert tried[0]["kind"] == "timeout" and tried[0]["outcome"] == "failed"
    assert tried[1]["outcome"] == "up" and tried[1]["zone"] != tried[0]["zone"]
    assert len(live_resources()) == 1


def test_all_capacity_fails_with_one_line_per_attempt(cli, tmp_path):
    task = tmp_path / "t.yaml"
    task.write_text("name: few\nresources:\n  cloud: gcp\n  region: us-west1\n  accelerators: V100:1\n"
                    "  instance_type: n1-standard-8\nrun: echo hi\n")
    p = cli("apply", str(task), "--yes", "-c", "few", "--simulate", str(SC / "all-capacity.yaml"), check=4)
    tried = [line for line in p.stderr.splitlines() if line.startswith("#")]
    assert tried and all(": ZONE_RESOURCE_POOL_EXHAUSTED: The zone " in line for line in tried)
    assert "failed to provision" in p.stderr
    assert live_resources() == []


def _slow_scenario(tmp_path: Path, seconds: float) -> Path:
    sc = tmp_path / "slow.yaml"
    sc.write_text(f"default: ok\nlatency_s: {seconds}\n")
    return sc


def _wait_for(pred, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_kill_9_mid_attempt_then_rerun_leaves_no_leak(cli, tmp_path):
    sc = _slow_scenario(tmp_path, 4)
    argv = [sys.executable, "-m", "skyplan", "apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach",
            "-c", "killed", "--simulate", str(sc)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ), stdin=subprocess.DEVNULL)
    from skyplan.state import StateDB

    _wait_for(lambda: any(a.status == "running" for a in StateDB().attempts("killed")))
    time.sleep(1.5)  # inside the provider's create
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    p = cli("apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach", "-c", "killed",
            "--simulate", str(sc), timeout=300)
    assert summary(p)["status"] == "UP"
    live = live_resources()
    assert len(live) == 1 and live[0]["stack"] == summary(p)["stack"]
    cli("down", "killed", "--yes")
    assert live_resources() == []


def test_two_applies_of_one_cluster_one_fails_fast_with_lock_message(cli, tmp_path):
    sc = _slow_scenario(tmp_path, 5)
    argv = [sys.executable, "-m", "skyplan", "apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach",
            "-c", "twin", "--simulate", str(sc)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ), stdin=subprocess.DEVNULL)
    from skyplan.state import StateDB

    _wait_for(lambda: any(a.status == "running" for a in StateDB().attempts("twin")))
    second = cli("apply", str(EX / "v100.yaml"), "--yes", "-c", "twin", "--simulate", str(sc), check=6)
    assert "locked by another skyplan process" in second.stderr
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0
    assert [json.loads(l) for l in out.splitlines()][-1]["status"] == "UP"
    assert len(live_resources()) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_mid_attempt_cleans_up_and_exits_130(cli, tmp_path, sig):
    sc = _slow_scenario(tmp_path, 30)
    argv = [sys.executable, "-m", "skyplan", "apply", str(EX / "v100.yaml"), "--yes", "--detach",
            "-c", "intr", "--simulate", str(sc)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ), stdin=subprocess.DEVNULL)
    from skyplan.state import StateDB

    _wait_for(lambda: any(a.status == "running" for a in StateDB().attempts("intr")))
    time.sleep(1.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert [a.status for a in StateDB().attempts("intr")] == ["cleaned"]
    assert StateDB().get_cluster("intr").status == "FAILED"
    assert live_resources() == []
    cli("down", "intr", "--yes")


def test_failing_task_exits_7_and_keeps_the_cluster(cli, tmp_path):
    task = tmp_path / "fail.yaml"
    task.write_text("name: failing\nresources:\n  cloud: local\nrun: |\n  echo about to fail\n  exit 7\n")
    p = cli("apply", str(task), "--yes", "-c", "failing", check=7)
    assert "about to fail" in p.stdout
    assert "ended failed (exit code 7)" in p.stderr
    (row,) = json.loads(cli("status", "--json").stdout)["clusters"]
    assert row["status"] == "UP" and row["task_phase"] == "failed"
    assert row["nodes"] == [{"rank": 0, "status": "failed", "exit_code": 7}]
