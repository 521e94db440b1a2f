"""The ssh cloud through the real engine and the console script, against a real sshd
on a loopback port (the ``sshd`` fixture): a pool in the config file, a task with a
workdir and a plain-path file mount, its output in ``logs``, its exit code in
``status --json``, ``exec``, ``ssh``, a failing setup, failover past a host that
refuses connections, and ``down`` removing the remote sandbox and the allocation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SKYPLAN = str(Path(sys.executable).with_name("skyplan"))


def skyplan(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([SKYPLAN, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    if check is not None:
        assert p.returncode == check, f"`skyplan {' '.join(args)}` exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_pool(home: Path, sshd, hosts: list[str], hardware: str = "") -> None:  # noqa: ANN001
    lines = ["ssh:", "  pools:", "    lab:", f"      known_hosts: {sshd.known_hosts}", *hardware.splitlines(),
             "      hosts:"]
    lines += [f"        - {h}" for h in hosts]
    (home / "config.yaml").write_text("\n".join(lines) + "\n")


def host_line(sshd, port: int | None = None, extra: str = "") -> str:  # noqa: ANN001
    return (f"{{host: {sshd.host}, port: {port or sshd.port}, user: {sshd.user}, "
            f"identity_file: {sshd.identity_file}{extra}}}")


def remote_sandboxes(stack: str) -> Path:
    """The stack's sandbox directory on the host, which is this machine as the fixture's user."""
    return Path.home() / ".skyplan" / "sandboxes" / stack


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "project"
    (p / "code").mkdir(parents=True)
    (p / "code" / "main.sh").write_text("echo \"main.sh says $1\"\n")
    (p / "data.txt").write_text("mounted-payload\n")
    return p


def test_a_task_lands_past_a_refusing_host_and_is_read_exec_and_removed(engine, skyplan_home: Path, sshd,
                                                                         project: Path):
    # The first host refuses connections: a capacity failure of that host; the second takes it.
    # Hardware is stated, so the refusing host is a candidate (a probe would leave it out);
    # it is the cheaper one, so it is tried first.
    write_pool(skyplan_home, sshd, [host_line(sshd, closed_port()), host_line(sshd, extra=", price: 0.01")],
               "      cpus: 2\n      memory_gib: 2\n      accelerators: none")
    (project / "task.yaml").write_text(
        "name: sshtask\nresources: {cloud: ssh, region: lab, cpus: 1+}\nworkdir: ./code\n"
        "file_mounts:\n  /data/x.txt: ./data.txt\n"
        "setup: echo setting-up\n"
        "run: |\n  bash main.sh hi\n  cat \"$SKYPLAN_FS_ROOT/data/x.txt\"\n  echo rank=$SKYPLAN_NODE_RANK\n")
    r = skyplan("apply", "task.yaml", "--yes", cwd=project)
    assert "main.sh says hi" in r.stdout and "mounted-payload" in r.stdout, r.stdout
    assert "SshUnreachable" in r.stderr and f"127.0.0.1:{sshd.port}" in r.stderr, r.stderr

    (row,) = json.loads(skyplan("status", "--json", cwd=project).stdout)["clusters"]
    assert row["zone"] == f"127.0.0.1:{sshd.port}"
    assert row["nodes"] == [{"rank": 0, "status": "succeeded", "exit_code": 0}]
    stack = row["stack"]
    assert (remote_sandboxes(stack) / "node-0" / "workdir" / "main.sh").is_file()

    logs = skyplan("logs", "sshtask", cwd=project).stdout
    assert logs.splitlines() == ["setting-up", "main.sh says hi", "mounted-payload", "rank=0"], logs

    ex = skyplan("exec", "sshtask", "--", "cat main.sh; exit 5", cwd=project, check=5)
    assert "main.sh says" in ex.stdout
    events = [json.loads(line) for line in skyplan("exec", "sshtask", "--json", "--", "pwd", cwd=project).stdout
              .splitlines()]
    assert events[0]["line"].endswith(f"{stack}/node-0/workdir") and events[-1]["exit_code"] == 0
    sh = skyplan("ssh", "sshtask", "--", "ls", "../fs/data", cwd=project)  # the system ssh, with skyplan's options
    assert sh.stdout.split() == ["x.txt"], sh.stderr
    argv = json.loads(skyplan("ssh", "sshtask", "--json", cwd=project).stdout)["argv"]
    assert argv[:3] == ["ssh", "-p", str(sshd.port)] and f"UserKnownHostsFile={sshd.known_hosts}" in argv

    skyplan("down", "sshtask", "--yes", cwd=project)
    assert not remote_sandboxes(stack).exists()
    assert json.loads((skyplan_home / "ssh" / "allocations.json").read_text()) == {}


def test_a_failing_setup_is_reported_as_such(engine, skyplan_home: Path, sshd, project: Path):
    write_pool(skyplan_home, sshd, [host_line(sshd)])
    (project / "task.yaml").write_text(
        "name: badsetup\nresources: {cloud: ssh, region: lab, cpus: 1+}\n"
        "setup: |\n  echo installing\n  exit 3\nrun: echo never\n")
    r = skyplan("apply", "task.yaml", "--yes", cwd=project, check=7)
    assert "installing" in r.stdout and "never" not in r.stdout
    assert "ended failed (exit code 3) on node 0; its setup failed" in r.stderr, r.stderr
    (row,) = json.loads(skyplan("status", "--json", cwd=project).stdout)["clusters"]
    assert row["nodes"] == [{"rank": 0, "status": "failed", "exit_code": 3}]
    assert row["task"] == {"status": "failed", "exit_code": 3, "node": 0}
    stack = row["stack"]
    # Fixed, applied again: the task re-runs in place, on the same host and stack.
    (project / "task.yaml").write_text((project / "task.yaml").read_text().replace("exit 3", "true"))
    r = skyplan("apply", "task.yaml", "--yes", cwd=project)
    assert "re-runs in place" in r.stderr and "never" in r.stdout, r.stdout + r.stderr
    (row,) = json.loads(skyplan("status", "--json", cwd=project).stdout)["clusters"]
    assert row["stack"] == stack and row["nodes"] == [{"rank": 0, "status": "succeeded", "exit_code": 0}]
    skyplan("down", "badsetup", "--yes", cwd=project)
    assert not remote_sandboxes(stack).exists()


def test_kill_9_inside_up_is_recovered_by_the_next_apply_and_down_leaves_nothing(engine, skyplan_home: Path, sshd,
                                                                                 project: Path):
    write_pool(skyplan_home, sshd, [host_line(sshd)], "      cpus: 2\n      memory_gib: 2\n      accelerators: none")
    (project / "task.yaml").write_text("name: killed\nresources: {cloud: ssh, region: lab, cpus: 1+}\n"
                                       "run: echo ran-$SKYPLAN_TASK_ID\n")
    # skyplan is killed once the engine reports the allocation created: the host is held by a stack
    # no run will finish; the next apply must destroy that stack (and release the host) before its own.
    env = {**os.environ, "SKYPLAN_FAILPOINTS": "attempt.up.created:kill"}
    killed = subprocess.run([SKYPLAN, "apply", "task.yaml", "--yes"], cwd=project, env=env, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    again = skyplan("apply", "task.yaml", "--yes", cwd=project)
    assert "ran-killed." in again.stdout and "left by an earlier run" in again.stderr, again.stdout + again.stderr
    (row,) = json.loads(skyplan("status", "--json", cwd=project).stdout)["clusters"]
    held = json.loads((skyplan_home / "ssh" / "allocations.json").read_text())
    assert [e["stack"] for e in held.values()] == [row["stack"]]  # one host, one stack: never double-booked
    skyplan("down", "killed", "--yes", cwd=project)
    assert json.loads((skyplan_home / "ssh" / "allocations.json").read_text()) == {}
    assert not list((Path.home() / ".skyplan" / "sandboxes").glob(f"killed.*-{sshd.port}.*"))


def test_num_nodes_takes_that_many_hosts_of_the_pool(engine, skyplan_home: Path, sshd, private_sshd, project: Path):
    # Two servers with the same (probed) hardware: a pool of two interchangeable hosts.
    lines = [f"{{host: 127.0.0.1, port: {s.port}, user: {s.user}, identity_file: {s.identity_file}, "
             f"known_hosts: {s.known_hosts}}}" for s in (sshd, private_sshd)]
    (skyplan_home / "config.yaml").write_text("ssh:\n  pools:\n    duo:\n      hosts:\n"
                                              + "".join(f"        - {line}\n" for line in lines))
    (project / "task.yaml").write_text(
        "name: duo\nnum_nodes: 2\nresources: {cloud: ssh, region: duo, cpus: 1+}\n"
        "run: |\n  echo rank=$SKYPLAN_NODE_RANK/$SKYPLAN_NUM_NODES\n  test $SKYPLAN_NODE_RANK = 0 || exit 9\n")
    r = skyplan("apply", "task.yaml", "--yes", cwd=project, check=7)
    assert "(node-0) rank=0/2" in r.stdout and "(node-1) rank=1/2" in r.stdout, r.stdout
    (row,) = json.loads(skyplan("status", "--json", cwd=project).stdout)["clusters"]
    assert row["nodes"] == [{"rank": 0, "status": "succeeded", "exit_code": 0},
                            {"rank": 1, "status": "failed", "exit_code": 9}]
    held = json.loads((skyplan_home / "ssh" / "allocations.json").read_text())
    assert sorted(held) == sorted(f"127.0.0.1:{s.port}" for s in (sshd, private_sshd))
    skyplan("exec", "duo", "--", "exit 3", cwd=project, check=3)  # both fail alike: node 0's code
    skyplan("down", "duo", "--yes", cwd=project)
    assert json.loads((skyplan_home / "ssh" / "allocations.json").read_text()) == {}


def test_a_host_whose_key_changed_is_refused_and_the_next_host_takes_the_task(engine, skyplan_home: Path, sshd,
                                                                              private_sshd, project: Path,
                                                                              tmp_path: Path):
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()[:2]
    changed = tmp_path / "known_hosts.changed"
    changed.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")  # not the key sshd presents
    hosts = [f"{{host: 127.0.0.1, port: {sshd.port}, user: {sshd.user}, identity_file: {sshd.identity_file}, "
             f"known_hosts: {changed}}}",
             f"{{host: 127.0.0.1, port: {private_sshd.port}, user: {private_sshd.user}, "
             f"identity_file: {private_sshd.identity_file}, known_hosts: {private_sshd.known_hosts}, price: 0.01}}"]
    (skyplan_home / "config.yaml").write_text("ssh:\n  pools:\n    lab:\n      cpus: 2\n      memory_gib: 2\n"
                                              "      accelerators: none\n      hosts:\n"
                                              + "".join(f"        - {h}\n" for h in hosts))
    (project / "task.yaml").write_text("name: keys\nresources: {cloud: ssh, region: lab, cpus: 1+}\nrun: echo landed\n")
    r = skyplan("apply", "task.yaml", "--yes", cwd=project)
    assert "landed" in r.stdout
    refused = [line for line in r.stderr.splitlines() if f"127.0.0.1:{sshd.port}" in line]
    assert refused and "SshHostKeyChanged" in refused[0] and "intercepting" in refused[0], r.stderr
    # The attempt line has the first sentence; the log has the whole text, with what to do.
    assert "ssh-keygen -R" in (skyplan_home / "logs" / "skyplan.log").read_text()
    (row,) = json.loads(skyplan("status", "--json", cwd=project).stdout)["clusters"]
    assert row["zone"] == f"127.0.0.1:{private_sshd.port}"
    assert not list((Path.home() / ".skyplan" / "sandboxes").glob(f"keys.*-{sshd.port}.*"))  # nothing reached it
    skyplan("down", "keys", "--yes", cwd=project)
    assert not remote_sandboxes(row["stack"]).exists()
