"""The VM boot script, run for real with bash (its /opt/skyplan root moved to a temp dir)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from stackmocks import make_request

from skyplan.clouds import plugins
from skyplan.clouds.plugins import plugin_status
from skyplan.clouds.vm import REMOTE_ROOT, all_ports, node_name, skyplan_labels, startup_script


def run_script(request, rank: int, root: Path) -> subprocess.CompletedProcess:
    script = startup_script(request, rank).replace(REMOTE_ROOT, str(root))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_setup_then_run_in_the_workdir_with_the_env(tmp_path: Path) -> None:
    r = make_request(
        "aws", num_nodes=4, envs={"GREETING": "it's a \"test\" $HOME"},
        setup="echo setup-ran > marker",
        run='echo "run rank=$SKYPLAN_NODE_RANK of $SKYPLAN_NUM_NODES task=$SKYPLAN_TASK_ID greeting=$GREETING"; cat marker; pwd',
    )
    proc = run_script(r, 2, tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "task.log").read_text()
    assert log.index("== setup") < log.index("== run")
    assert "run rank=2 of 4 task=demo-a1b2 greeting=it's a \"test\" $HOME" in log
    assert "setup-ran" in log
    assert str(tmp_path / "workdir") in log
    assert (tmp_path / "setup.rc").read_text().strip() == "0"
    assert (tmp_path / "run.rc").read_text().strip() == "0"


def test_failed_setup_skips_run(tmp_path: Path) -> None:
    r = make_request("gcp", setup="echo broken; exit 7", run="echo should-not-run")
    proc = run_script(r, 0, tmp_path)
    assert proc.returncode == 7
    log = (tmp_path / "task.log").read_text()
    assert "broken" in log and "should-not-run" not in log
    assert not (tmp_path / "run.rc").exists()


def test_script_bodies_are_literal_even_with_heredoc_lookalikes(tmp_path: Path) -> None:
    tricky = "cat <<'EOF'\nliteral $NOT_EXPANDED `nope`\nEOF\necho done"
    r = make_request("azure", setup=None, run=tricky)
    proc = run_script(r, 0, tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "task.log").read_text()
    assert "literal $NOT_EXPANDED `nope`" in log and "done" in log


def test_a_task_env_cannot_override_the_rank(tmp_path: Path) -> None:
    r = make_request("aws", envs={"SKYPLAN_NODE_RANK": "99"}, run="echo rank=$SKYPLAN_NODE_RANK")
    run_script(r, 1, tmp_path)
    assert "rank=1" in (tmp_path / "task.log").read_text()


def test_names_labels_and_ports() -> None:
    r = make_request("aws", stack="Team_A/run 1", ports=(8080, 22, 8080), labels={"skyplan-cluster": "spoof"})
    assert node_name(r, 3) == "team-a-run-1-3"
    assert skyplan_labels(r)["skyplan-cluster"] == "demo"  # the task cannot relabel its cluster
    assert all_ports(r) == [22, 8080]


def test_plugin_status_reports_version_and_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    status = plugin_status("aws", "pulumi-aws")
    assert not status.installed and status.version and f"v{status.version}" in status.reason
    plugin_dir = tmp_path / "plugins" / f"resource-aws-v{status.version}"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "pulumi-resource-aws").write_text("")
    assert plugins.plugin_status("aws", "pulumi-aws").path == str(plugin_dir)


def test_secrets_are_exported_after_envs_and_before_skyplan_variables(tmp_path: Path) -> None:
    from skyplan.clouds.base import SecretValues

    r = make_request("aws", envs={"A": "env"}, secrets=SecretValues({"TOKEN": "it's $ecret", "SKYPLAN_NODE_RANK": "x"}),
                     run='echo "token=$TOKEN rank=$SKYPLAN_NODE_RANK"')
    proc = run_script(r, 1, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "token=it's $ecret rank=1" in (tmp_path / "task.log").read_text()
