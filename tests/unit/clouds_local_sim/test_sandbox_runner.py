from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from skyplan.clouds.local import runner


def _spec(**kw) -> dict:
    base = {
        "cluster": "c1",
        "stack": "c1-local",
        "task_id": "task-42",
        "node_rank": 1,
        "num_nodes": 3,
        "workdir": None,
        "setup": None,
        "run": None,
        "envs": {},
    }
    base.update(kw)
    return base


def _finished(root: Path) -> bool:
    return runner.status(root)["phase"] in ("done", "failed", "stopped", "lost")


def _pid_alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def test_setup_then_run_with_env_and_workdir(tmp_path, sandboxes, wait_for, monkeypatch) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "data.txt").write_text("payload\n")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "engine-secret")
    monkeypatch.setenv("OUTER_VAR", "from-parent")
    root = sandboxes()
    info = runner.start(
        _spec(
            workdir=str(src),
            envs={"FOO": "bar", "SKYPLAN_NODE_RANK": "user-cannot-override"},
            secrets={"TOKEN": "s3cret"},
            setup="echo setup-ran; echo setup-err >&2",
            run=(
                "echo run-ran; cat sub/data.txt; pwd; "
                'echo "id=$SKYPLAN_TASK_ID rank=$SKYPLAN_NODE_RANK n=$SKYPLAN_NUM_NODES '
                'cluster=$SKYPLAN_CLUSTER foo=$FOO token=$TOKEN outer=${OUTER_VAR:-unset} '
                'pass=${PULUMI_CONFIG_PASSPHRASE:-unset}"'
            ),
        ),
        root,
    )
    assert info["sandbox"] == str(root.absolute())
    assert info["pid"] == info["pgid"]
    wait_for(lambda: _finished(root), "the node to finish")
    st = runner.status(root)
    assert (st["phase"], st["returncode"]) == ("done", 0)
    logs = info["logs"]
    setup_log = Path(logs["setup"]).read_text()
    run_log = Path(logs["run"]).read_text()
    combined = Path(logs["combined"]).read_text()
    assert "setup-ran" in setup_log and "setup-err" in setup_log and "run-ran" not in setup_log
    assert "run-ran" in run_log and "setup-ran" not in run_log
    assert combined.index("setup-ran") < combined.index("run-ran")
    assert "payload" in run_log
    assert str(root.absolute() / "workdir") in run_log
    # the task's own envs and secrets, never the environment skyplan runs in
    assert "id=task-42 rank=1 n=3 cluster=c1 foo=bar token=s3cret outer=unset pass=unset" in run_log
    # the source workdir is copied, not used in place
    assert (root / "workdir" / "sub" / "data.txt").read_text() == "payload\n"


def test_setup_failure_skips_run(sandboxes, wait_for) -> None:
    root = sandboxes()
    runner.start(_spec(setup="echo broken; exit 3", run="echo should-not-run > ran.txt"), root)
    wait_for(lambda: _finished(root), "the node to finish")
    st = runner.status(root)
    assert (st["phase"], st["failed_phase"], st["returncode"]) == ("failed", "setup", 3)
    assert not (root / "workdir" / "ran.txt").exists()
    assert Path(runner.log_paths(root)["run"]).read_text() == ""


def test_run_failure_is_recorded(sandboxes, wait_for) -> None:
    root = sandboxes()
    runner.start(_spec(run="exit 7"), root)
    wait_for(lambda: _finished(root), "the node to finish")
    st = runner.status(root)
    assert (st["phase"], st["failed_phase"], st["returncode"]) == ("failed", "run", 7)


def test_processes_outlive_nothing_but_stop_kills_the_group(sandboxes, wait_for) -> None:
    root = sandboxes()
    info = runner.start(_spec(run="sleep 300 & echo $! > bg.pid; sleep 300"), root)
    bg_file = root / "workdir" / "bg.pid"
    wait_for(lambda: bg_file.exists() and bg_file.read_text().strip() != "", "the background pid")
    bg = int(bg_file.read_text())
    assert runner.status(root)["phase"] == "run"
    assert runner.group_alive(info["pgid"]) and _pid_alive(bg)
    st = runner.stop(root, grace_s=5)
    assert st["phase"] == "stopped" and st["alive"] is False
    assert not runner.group_alive(info["pgid"])
    assert not _pid_alive(bg)


def test_stop_escalates_to_sigkill(sandboxes, wait_for) -> None:
    root = sandboxes()
    # Ignored signals are inherited: neither bash nor sleep dies on SIGTERM.
    info = runner.start(_spec(run="trap '' TERM; touch started; sleep 300"), root)
    wait_for(lambda: (root / "workdir" / "started").exists(), "the run to start")
    runner.stop(root, grace_s=0.3)
    assert not runner.group_alive(info["pgid"])


def test_stop_and_remove_are_idempotent(sandboxes, wait_for) -> None:
    root = sandboxes(stack="only")
    runner.start(_spec(run="echo hi"), root)
    wait_for(lambda: _finished(root), "the node to finish")
    assert runner.stop(root)["phase"] == "done"  # a finished node keeps its status
    runner.remove(root)
    assert not root.exists()
    assert not root.parent.exists()  # the stack directory goes with its last node
    runner.remove(root)
    assert runner.stop(root)["phase"] == "absent"


def test_remove_keeps_the_stack_dir_while_other_nodes_remain(sandboxes, wait_for) -> None:
    a, b = sandboxes("node-0", "two"), sandboxes("node-1", "two")
    runner.start(_spec(run="sleep 300"), a)
    runner.start(_spec(run="sleep 300"), b)
    runner.remove(a, grace_s=1)
    assert not a.exists() and b.exists()
    assert runner.status(b)["alive"] is True


def test_start_replaces_a_leftover_sandbox(sandboxes, wait_for) -> None:
    root = sandboxes()
    first = runner.start(_spec(run="sleep 300"), root)
    second = runner.start(_spec(run="echo second"), root)
    assert not runner.group_alive(first["pgid"])
    wait_for(lambda: _finished(root), "the second node to finish")
    assert "second" in Path(second["logs"]["run"]).read_text()


def test_missing_workdir_is_a_coded_error(tmp_path, sandboxes) -> None:
    root = sandboxes()
    with pytest.raises(runner.SandboxError, match=r"^LocalWorkdirMissing: "):
        runner.start(_spec(workdir=str(tmp_path / "nope"), run="true"), root)
    assert not root.exists()


def test_a_killed_supervisor_shows_as_lost(sandboxes, wait_for) -> None:
    root = sandboxes()
    info = runner.start(_spec(run="touch started; sleep 300"), root)
    wait_for(lambda: (root / "workdir" / "started").exists(), "the run to start")
    os.killpg(info["pgid"], signal.SIGKILL)
    wait_for(lambda: not runner.group_alive(info["pgid"]), "the group to die")
    assert runner.status(root)["phase"] == "lost"


def test_status_of_nothing() -> None:
    st = runner.status("/nonexistent/sandbox/node-0")
    assert st["phase"] == "absent" and st["alive"] is False


def test_node_json_records_the_commands(sandboxes, wait_for) -> None:
    root = sandboxes()
    runner.start(_spec(setup="echo a", run="echo b"), root)
    node = json.loads((root / "node.json").read_text())
    assert (node["setup"], node["run"], node["node_rank"], node["num_nodes"]) == ("echo a", "echo b", 1, 3)
    wait_for(lambda: _finished(root), "the node to finish")


def test_task_env_is_built_from_scratch() -> None:
    outer = {
        "PATH": "/usr/bin:/bin", "HOME": "/home/op", "LANG": "C.UTF-8", "TERM": "xterm",
        "AWS_SECRET_ACCESS_KEY": "op-cred", "GOOGLE_CREDENTIALS": "{}", "PULUMI_CONFIG_PASSPHRASE": "p",
        "SSH_AUTH_SOCK": "/tmp/agent", "LD_PRELOAD": "/evil.so", "PYTHONPATH": "/x",
    }
    env = runner.task_env(_spec(envs={"A": "1"}, secrets={"TOKEN": "t"}), outer)
    assert set(env) == {"PATH", "HOME", "LANG", "TERM", "A", "TOKEN", "SKYPLAN_TASK_ID", "SKYPLAN_NODE_RANK",
                        "SKYPLAN_NUM_NODES", "SKYPLAN_CLUSTER", "SKYPLAN_NODE_IPS"}
    assert (env["PATH"], env["HOME"], env["TOKEN"]) == ("/usr/bin:/bin", "/home/op", "t")
    assert runner.task_env(_spec(), {})["PATH"] == os.defpath  # bash is still found
