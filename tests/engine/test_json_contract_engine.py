"""The apply --json contract through the real console entry point and engine:
exactly one summary after SIGTERM and Ctrl-C, and an exit code that agrees with
the task's outcome, with and without --json (the README promises both)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from skyplan.clouds.sim.ledger import live_resources

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"

pytestmark = pytest.mark.engine


@pytest.fixture
def cli(engine, skyplan_home, backend_url, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("SKYPLAN_BACKEND", backend_url)
    made: list[str] = []

    def run(*args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        if args and args[0] == "apply":
            made.append(args[args.index("-c") + 1])
        proc = subprocess.run([sys.executable, "-m", "skyplan", *args], capture_output=True, text=True,
                              timeout=300, env=dict(os.environ), stdin=subprocess.DEVNULL)
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    yield run
    for name in made:
        run("down", name, "--yes", check=None)
    from skyplan.provision.driver import StackDriver

    assert StackDriver(backend_url).list_stacks() == []
    assert live_resources() == []


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_mid_attempt_still_ends_the_json_stream_with_one_summary(cli, tmp_path, sig, json_contract_check):
    scenario = tmp_path / "slow.yaml"
    scenario.write_text("default: ok\nlatency_s: 60\n")  # the create hangs well past the signal
    args = ["apply", str(EX / "v100.yaml"), "--yes", "--json", "--detach", "-c", "sig", "--simulate", str(scenario)]
    proc = subprocess.Popen([sys.executable, "-m", "skyplan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ), stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(180, proc.kill)  # a broken stream must fail the test, not hang it
    watchdog.start()
    # The attempt has begun once its launching line is out (the stream is flushed line by line).
    first = json.loads(proc.stdout.readline() or "{}")
    assert first["event"] == "launching", first
    time.sleep(1.0)  # inside the provider's create
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=120)
    watchdog.cancel()
    assert proc.returncode == 130, err
    lines = [first, *_lines(rest)]
    summaries = [e for e in lines if e["event"] == "summary"]
    assert len(summaries) == 1 and lines[-1] is summaries[0], lines
    s = summaries[0]
    assert s["status"] == "INTERRUPTED" and s["exit_code"] == 130 and s["error"]["code"] == "Interrupted"
    assert s["cluster"] == "sig" and s["task"]["status"] is None
    assert "interrupted" in err
    json_contract_check(args, json.dumps(first) + "\n" + rest, proc.returncode)
    assert live_resources() == []  # the attempt in flight was cleaned up before the summary


def test_a_failed_task_exits_7_in_both_modes_and_the_summary_says_so(cli, tmp_path):
    task = tmp_path / "fail.yaml"
    task.write_text("name: failing\nresources:\n  cloud: local\nrun: |\n  echo about to fail\n  exit 3\n")
    p = cli("apply", str(task), "--yes", "--json", "-c", "failing", check=7)
    s = _lines(p.stdout)[-1]
    assert s["event"] == "summary" and s["status"] == "UP" and s["exit_code"] == 7
    assert s["task"] == {"status": "failed", "exit_code": 3, "node": 0}
    # The task's output is log events: stdout stays JSON only, and the task's own channel.
    assert {"event": "log", "node": 0, "line": "about to fail", "schema_version": 1} in _lines(p.stdout)
    assert "about to fail" not in p.stderr
    (row,) = json.loads(cli("status", "--json").stdout)["clusters"]
    assert row["task"] == s["task"] and row["task_phase"] == "failed"
    logs = _lines(cli("logs", "failing", "--json").stdout)
    assert {"event": "log", "node": 0, "line": "about to fail", "schema_version": 1} in logs
    assert logs[-1]["event"] == "summary" and logs[-1]["task"] == s["task"]
    cli("down", "failing", "--yes")
    # Without --json, the same task, the same source of truth, the same exit code.
    human = cli("apply", str(task), "--yes", "-c", "failing", check=7)
    assert "about to fail" in human.stdout and "exit code 3" in human.stderr


def test_a_task_that_succeeds_exits_0_and_detach_does_not_watch(cli):
    p = cli("apply", str(EX / "hello.yaml"), "--yes", "--json", "-c", "hello")
    s = _lines(p.stdout)[-1]
    assert s["status"] == "UP" and s["exit_code"] == 0
    assert s["task"] == {"status": "succeeded", "exit_code": 0, "node": None}
    events = _lines(p.stdout)
    assert [e["event"] for e in events if e["event"] != "log"] == ["preflight", "launching", "attempt", "summary"]
    assert "hello from skyplan (3)" in [e["line"] for e in events if e["event"] == "log"]
    again = _lines(cli("apply", str(EX / "hello.yaml"), "--yes", "--json", "--detach", "-c", "hello").stdout)
    assert again[-1]["task"]["status"] is None and again[-1]["exit_code"] == 0
