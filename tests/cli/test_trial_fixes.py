"""What a new user's trial found: each test fails without its fix.

A cluster whose task failed is not "already up with this task"; an interrupt while
apply follows the task exits 130; `plan --out`'s hint applies to the cluster it was
planned for; the converge diff shows the changed part of a long value; `logs`
completes cluster names; a device or FIFO error names no `$`; a bad scenario file's
error is said once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.catalog import load_catalog
from skyplan.cli.main import app
from skyplan.planner import make_plan
from skyplan.spec import load
from skyplan.state import StateDB

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def failing_task(tmp_path: Path) -> Path:
    path = tmp_path / "fail.yaml"
    path.write_text("name: failer\nresources:\n  cloud: local\nrun: exit 3\n")
    return path


def up_cluster(task: Path, name: str, sandbox: Path | None = None) -> None:
    """A cluster row as a launch of ``task`` leaves it (no engine needed to compare)."""
    p = make_plan(load(str(task)), load_catalog(None))
    c = p.chosen
    StateDB().upsert_cluster(name, status="UP", cloud=c.cloud, region=c.region, zone=c.zone,
                             instance_type=c.instance_type, use_spot=c.use_spot, hourly_cost=c.hourly_cost,
                             stack=f"{name}.a001.local.local.local.od", backend="file:///nowhere",
                             task_sha256=p.task_sha256, task=p.to_json()["task"],
                             outputs={"sandbox": str(sandbox)} if sandbox else {})


def task_ended(sandbox: Path, phase: str, returncode: int | None) -> None:
    node = sandbox / "node-0"
    node.mkdir(parents=True, exist_ok=True)
    (node / "status.json").write_text(json.dumps({"phase": phase, "returncode": returncode}))


# --- 1. a task that failed is re-run, not "already up" ------------------------------------


def test_plan_detailed_exitcode_says_a_failed_task_is_rerun(tmp_path):
    task, sandbox = failing_task(tmp_path), tmp_path / "sb"
    up_cluster(task, "failer", sandbox)
    task_ended(sandbox, "failed", 3)
    r = invoke("plan", task, "-c", "failer", "--detailed-exitcode")
    assert r.exit_code == 2, r.output
    assert "the task failed last time (exit code 3): apply would re-run the task in place" in r.stdout
    as_json = invoke("plan", task, "-c", "failer", "--json")
    converge = json.loads(as_json.stdout)["converge"]
    assert converge["action"] == "rerun" and converge["reason"] == "the task failed last time (exit code 3)"
    task_ended(sandbox, "done", 0)  # it succeeded: nothing to do
    assert invoke("plan", task, "-c", "failer", "--detailed-exitcode").exit_code == 0


def test_the_no_op_summary_carries_the_planned_placement(tmp_path):
    task, sandbox = failing_task(tmp_path), tmp_path / "sb"
    up_cluster(task, "failer", sandbox)
    task_ended(sandbox, "done", 0)
    r = invoke("apply", task, "--yes", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.splitlines()[-1])
    assert (summary["action"], summary["exit_code"]) == ("none", 0)
    planned = make_plan(load(str(task)), load_catalog(None)).chosen
    assert summary["placement"]["vcpus"] == planned.vcpus > 0
    assert summary["placement"]["memory_gib"] == planned.memory_gib > 0


# --- 2. an interrupt while apply follows the task exits 130 ---------------------------------


class _Interrupted:
    """A task's log source whose following is interrupted after one line: by Ctrl-C
    (KeyboardInterrupt), or by a real SIGTERM with the console script's handler."""

    def __init__(self, how: str) -> None:
        self.how = how

    def follow(self):
        import os
        import signal
        import time

        yield "step 1\n"
        if self.how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at once
        raise KeyboardInterrupt

    def status(self):
        return {"phase": "run", "returncode": None, "nodes": []}


def _launch_following(monkeypatch, how: str) -> None:
    import signal

    from skyplan.cli import main
    from skyplan.provision import launch as launch_mod
    from skyplan.provision.apply import LaunchResult

    class Following(LaunchResult):
        def log_source(self):
            return _Interrupted(how)

    def fake_launch(request):
        cand = request.target.chosen
        return Following("UP", request.cluster, cand, "hello.a001.local.local.local.od", {}, ())

    monkeypatch.setattr(launch_mod, "launch", fake_launch)
    signal.signal(signal.SIGTERM, main._terminated)  # as run() installs it (the caller restores it)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupt_while_following_the_task_exits_130_and_the_task_keeps_running(monkeypatch, how):
    import signal

    old = signal.getsignal(signal.SIGTERM)
    try:
        _launch_following(monkeypatch, how)
        r = invoke("apply", EX / "hello.yaml", "--yes", "--json")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert r.exit_code == 130, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0] == {"event": "log", "node": 0, "line": "step 1", "schema_version": 1}
    summary = lines[-1]
    assert (summary["event"], summary["status"], summary["exit_code"]) == ("summary", "UP", 130)
    assert summary["task"] == {"status": "running", "exit_code": None, "node": None}
    assert "the task keeps running on 'hello'" in r.stderr
    assert "`skyplan logs hello --follow`" in r.stderr


def test_an_interrupt_while_following_exits_130_for_people_too(monkeypatch):
    import signal

    old = signal.getsignal(signal.SIGTERM)
    try:
        _launch_following(monkeypatch, "ctrl-c")
        r = invoke("apply", EX / "hello.yaml", "--yes")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert r.exit_code == 130, r.output
    assert "step 1" in r.stdout and "`skyplan logs hello --follow`" in r.stderr


# --- 3. plan --out's hint applies the plan to the cluster it was planned for ----------------


def _run_hint(stderr: str, monkeypatch) -> dict:
    """Run the `skyplan apply ...` that plan printed, as printed (the launch faked:
    what it was asked to do is returned)."""
    import re
    import shlex

    from skyplan.provision import launch as launch_mod

    hint = re.search(r"`(skyplan apply [^`]*)`", stderr).group(1)
    asked: dict = {}

    def fake_launch(request):
        from skyplan.errors import InputError

        asked.update(cluster=request.cluster, simulate=request.options.simulate, plan=request.target)
        raise InputError("stop here", hint="the test's fake launch")

    monkeypatch.setattr(launch_mod, "launch", fake_launch)
    words = shlex.split(hint)
    assert words[:2] == ["skyplan", "apply"]
    r = invoke(*words[1:])
    assert r.exit_code == 2 and "stop here" in r.stderr, r.output  # it got as far as the launch
    return asked


def test_the_plan_out_hint_carries_the_cluster_and_the_scenario(tmp_path, monkeypatch):
    out, scenario = tmp_path / "p.json", EX / "scenarios" / "all-ok.yaml"
    r = invoke("plan", EX / "hello.yaml", "-c", "other", "--out", out, "--simulate", scenario)
    assert r.exit_code == 0, r.output
    assert f"`skyplan apply {out} -c other --yes --simulate {scenario}`" in r.stderr
    asked = _run_hint(r.stderr, monkeypatch)
    assert (asked["cluster"], asked["simulate"]) == ("other", str(scenario))


def test_the_plan_out_hint_carries_the_catalog_it_was_planned_with(tmp_path, monkeypatch):
    from skyplan.catalog.build import encode

    catalog = tmp_path / "gcp-only.json"
    catalog.write_bytes(encode(load_catalog().offers(clouds=["gcp"])))
    task, out = tmp_path / "l4.yaml", tmp_path / "p.json"
    task.write_text("name: l4\nresources:\n  accelerators: L4:1\nrun: nvidia-smi\n")
    r = invoke("plan", task, "--out", out, "--catalog", catalog)
    assert r.exit_code == 0, r.output
    assert f"`skyplan apply {out} --yes --catalog {catalog}`" in r.stderr
    asked = _run_hint(r.stderr, monkeypatch)  # not stale: the same catalog
    assert asked["cluster"] == "l4" and asked["plan"].chosen.cloud == "gcp"


# --- 4. the converge diff shows the changed part of a long value ----------------------------

LONG_RUN = "echo run2; cat f.txt; " + "; ".join(f"echo step{i}" for i in range(12)) + "; ls -la /tmp"


def _long_task(tmp_path: Path, run: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text("name: longrun\nresources:\n  cloud: local\nrun: " + json.dumps(run) + "\n")
    return path


def test_a_long_changed_value_shows_its_changed_part_on_both_sides():
    from skyplan.cli.converge_view import change_lines
    from skyplan.provision.converge import Change

    lines = change_lines(Change("run", LONG_RUN, LONG_RUN.replace("ls -la /tmp", "ls -l /var")))
    assert lines[0] == "~ run:"
    assert lines[1].startswith("-   …") and lines[1].endswith("ls -la /tmp")
    assert lines[2].startswith("+   …") and lines[2].endswith("ls -l /var")
    assert all(len(line) <= 78 for line in lines)  # with its indent, it fits 80 columns


def test_a_multi_line_change_is_a_bounded_line_diff():
    from skyplan.cli.converge_view import MAX_DIFF_LINES, change_lines
    from skyplan.provision.converge import Change

    old = "\n".join(f"echo line {i}" for i in range(30))
    new = old.replace("echo line 3\n", "echo line three\n").replace("echo line 25", "echo changed 25")
    lines = change_lines(Change("setup", old, new))
    assert lines == ["~ setup:", "    echo line 2", "-   echo line 3", "+   echo line three", "    echo line 4",
                     "    …", "    echo line 24", "-   echo line 25", "+   echo changed 25", "    echo line 26"]
    rewritten = change_lines(Change("setup", old, "\n".join(f"other {i}" for i in range(30))))
    assert len(rewritten) <= MAX_DIFF_LINES + 1
    assert any(line.startswith("-   ") for line in rewritten) and any(line.startswith("+   ") for line in rewritten)


def test_plan_c_and_show_markdown_show_the_changed_part(tmp_path):
    old, new = _long_task(tmp_path, LONG_RUN), _long_task(tmp_path, LONG_RUN.replace("/tmp", "/var"), "new.yaml")
    up_cluster(old, "longrun")
    r = invoke("plan", new, "-c", "longrun")
    assert r.exit_code == 0, r.output
    assert "  -   …" in r.stdout and r.stdout.count("/tmp") == 1 and "/var" in r.stdout
    out = tmp_path / "p.json"
    assert invoke("plan", new, "--out", out).exit_code == 0
    md = invoke("show", out, "--markdown", "-c", "longrun").stdout
    diff = md[md.index("```diff"):]
    assert "\n-   …" in diff and "ls -la /tmp\n" in diff and "ls -la /var\n" in diff


# --- 5. logs completes cluster names ----------------------------------------------------------


@pytest.mark.parametrize("line", ["skyplan logs he", "skyplan logs --follow he", "skyplan status he",
                                  "skyplan down he"])
def test_logs_completes_cluster_names_as_the_other_commands_do(tmp_path, line):
    task = failing_task(tmp_path)
    for name in ("hello", "help-me", "train"):
        up_cluster(task, name)
    words = line.split()
    env = {"_SKYPLAN_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    r = runner.invoke(app, [], env=env, prog_name="skyplan")
    assert r.stdout.split() == ["hello", "help-me"]


# --- 6. a device or FIFO names no `$`; a bad scenario's error is said once ----------------------


def test_a_device_or_a_fifo_error_names_no_document_root(tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = invoke("validate", "/dev/zero")
    assert r.exit_code == 2 and "error: /dev/zero: is a character device, not a task file" in r.stderr
    r = invoke("plan", fifo)
    assert r.exit_code == 2 and f"error: {fifo}: is a FIFO (named pipe), not a task file" in r.stderr
    assert "$:" not in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    r = invoke("validate", bad)
    assert r.exit_code == 2 and f"error: {bad}:2:1: invalid YAML" in r.stderr, r.stderr
    assert "$.resources.cpus:" in invoke("validate", _cpus_task(tmp_path)).stderr  # a deeper path still shows


def _cpus_task(tmp_path: Path) -> Path:
    path = tmp_path / "cpus.yaml"
    path.write_text("name: t\nresources:\n  cpus: lots\nrun: echo\n")
    return path


def test_a_bad_scenario_file_is_reported_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("bad: [\n")
    for scenario, finding in (("/dev/zero", "is a character device"), (bad, "invalid YAML")):
        r = invoke("apply", EX / "gpu-set.yaml", "--yes", "--simulate", scenario)
        assert r.exit_code == 2, r.output
        assert r.stderr.count(finding) == 1, r.stderr
        assert f"invalid sim scenario {scenario}" in r.stderr and "$:" not in r.stderr
