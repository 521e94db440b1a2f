"""The SSH node runtime against a real sshd (the ``sshd`` fixture, tests/conftest.py).

The sshd serves this machine as the current user, so a node's remote sandbox is
also a local path: tests give each node a sandbox under tmp_path and look at it
directly where that says more than the runtime's own answer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import asyncssh
import pytest

from skyplan.clouds.local import runner
from skyplan.runtime import ssh, sync_api
from skyplan.runtime.protocol import NodeAddress, NodeRuntime, NodeStatus, RuntimeFailure, TaskSpec

#: Test deadlines (not assertions about speed): how long a task may take to end here.
DEADLINE_S = 60


def _address(server, sandbox: Path | str, **kw) -> NodeAddress:
    base = dict(transport="ssh", rank=0, sandbox=str(sandbox), host=server.host, port=server.port,
                user=server.user, identity_file=server.identity_file, known_hosts=server.known_hosts)
    base.update(kw)
    return NodeAddress(**base)


def _node(server, sandbox: Path | str, **kw) -> NodeRuntime:
    return sync_api.open_node(_address(server, sandbox, **kw), fresh=True)


def _wait_finished(node: NodeRuntime) -> NodeStatus:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        st = sync_api.run(node.status())
        if st.finished or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def _wait_state(node: NodeRuntime, state: str) -> NodeStatus:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        st = sync_api.run(node.status())
        if st.state == state or st.finished or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    wd = tmp_path / "project"
    (wd / "sub").mkdir(parents=True)
    (wd / "train.py").write_text("print('training')\n")
    (wd / "sub" / "link").symlink_to("../train.py")  # a link inside the workdir is kept
    data = tmp_path / "dataset.csv"
    data.write_text("a,b\n1,2\n")
    return {"workdir": wd, "data": data}


def test_task_with_workdir_and_file_mount_runs_and_reports_exit(sshd, project, tmp_path):
    node = _node(sshd, tmp_path / "sb" / "node-0")
    try:
        sync_api.run(node.sync(str(project["workdir"]), {"/data/d.csv": str(project["data"]),
                                                         "extra.txt": str(project["data"])}))
        task = TaskSpec(cluster="c1", stack="c1-ssh", setup="echo setting-up",
                        run="cat train.py sub/link; cat $SKYPLAN_FS_ROOT/data/d.csv extra.txt; "
                            "echo rank=$SKYPLAN_NODE_RANK ips=$SKYPLAN_NODE_IPS greeting=$GREETING",
                        envs={"GREETING": "hello"}, node_ips=("10.0.0.5",))
        sync_api.run(node.start(task))
        st = _wait_finished(node)
        out = b"".join(sync_api.follow(node, poll_s=0.1)).decode()
    finally:
        sync_api.run(node.close())
    assert st.state == "succeeded" and st.exit_code == 0, st
    assert st.to_json() == {"rank": 0, "status": "succeeded", "exit_code": 0}
    assert out.splitlines() == [
        "setting-up", "print('training')", "print('training')", "a,b", "1,2", "a,b", "1,2",
        "rank=0 ips=10.0.0.5 greeting=hello",
    ]
    # The sandbox is private, as the local runner's is.
    assert os.stat(tmp_path / "sb" / "node-0" / "workdir" / "train.py").st_mode & 0o077 == 0


def test_failing_run_reports_its_exit_code(sshd, tmp_path):
    node = _node(sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", run="echo about-to-fail; exit 3")))
    st = _wait_finished(node)
    sync_api.run(node.close())
    assert (st.state, st.exit_code, st.failed_phase) == ("failed", 3, "run")


def test_failing_setup_is_reported_as_setup_and_run_is_skipped(sshd, tmp_path):
    node = _node(sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", setup="echo broken-setup; exit 7", run="echo ran")))
    st = _wait_finished(node)
    log, _ = sync_api.run(node.read_log(0))
    sync_api.run(node.close())
    assert (st.state, st.exit_code, st.failed_phase) == ("failed", 7, "setup")
    assert log == b"broken-setup\n"


def _command_lines_holding(text: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_secrets_reach_the_task_environment_only(sshd, tmp_path):
    node = _node(sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", run='echo "token=$TOKEN"; sleep 1',
                                     secrets={"TOKEN": "s3cr3t-v4lue"})))
    # While it runs, no command line on the host (runner, shell, sshd session) holds the value.
    assert _command_lines_holding("s3cr3t-v4lue") == []
    assert _wait_finished(node).state == "succeeded"
    log, _ = sync_api.run(node.read_log(0))
    sync_api.run(node.close())
    assert log == b"token=s3cr3t-v4lue\n"
    # Not written anywhere in the sandbox (node.json carries no envs or secrets).
    for p in (tmp_path / "sb").rglob("*.json"):
        assert "s3cr3t-v4lue" not in p.read_text()


def test_exec_runs_in_the_workdir_and_returns_output_and_exit_code(sshd, project, tmp_path):
    node = _node(sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(str(project["workdir"]), {}))
    res = sync_api.run(node.exec("ls; echo err >&2; exit 4"))
    sync_api.run(node.close())
    assert res.exit_code == 4
    assert res.output.decode().split() == ["sub", "train.py", "err"]


def test_remove_stops_the_task_and_deletes_the_remote_sandbox(sshd, tmp_path):
    stack = f"rm-{os.getpid()}-{time.monotonic_ns()}"
    addr = _address(sshd, ssh.remote_sandbox(stack, 0))  # the default place, under ~/.skyplan
    node = sync_api.open_node(addr, fresh=True)
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c1", stack, run="sleep 300")))
    assert _wait_state(node, "running").state == "running"
    remote = Path(os.path.expanduser(f"~{sshd.user}")) / ".skyplan" / "sandboxes" / stack
    pgid = json.loads((remote / "node-0" / "proc.json").read_text())["pgid"]
    assert (remote / "node-0").is_dir()
    sync_api.run(node.remove())
    after = sync_api.run(node.status())
    sync_api.run(node.remove())  # idempotent
    sync_api.run(node.close())
    assert not remote.exists()
    assert after.state == "absent"
    assert not runner.group_alive(pgid)  # zombies aside: nothing of the task runs


def test_task_survives_the_connection_closing(sshd, tmp_path):
    addr = _address(sshd, tmp_path / "sb" / "node-0")
    node = sync_api.open_node(addr, fresh=True)
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", run="sleep 1; echo still-here")))
    sync_api.run(node.close())  # the connection that started it is gone
    later = sync_api.open_node(addr, fresh=True)
    st = _wait_finished(later)
    log, _ = sync_api.run(later.read_log(0))
    sync_api.run(later.close())
    assert st.state == "succeeded"
    assert log == b"still-here\n"


def test_one_connection_is_reused_and_reopened_after_a_drop(private_sshd, tmp_path):
    node = _node(private_sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    first = node._conn
    for _ in range(3):
        assert sync_api.run(node.status()).state == "starting"  # synced, not started
    assert node._conn is first
    # The connection's own sshd process dies (the listener lives): the next call re-opens.
    from skyplan.testing.sshd import _children

    for pid in _children(private_sshd.pid):
        os.kill(pid, signal.SIGKILL)
    st = sync_api.run(node.status(timeout_s=10))
    assert st.state == "starting", st
    assert node._conn is not first
    sync_api.run(node.close())


def test_kill_9_of_sshd_and_the_task_makes_status_unreachable(private_sshd, tmp_path):
    node = _node(private_sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", run="sleep 300")))
    assert _wait_state(node, "running").state == "running"
    pgid = json.loads((tmp_path / "sb" / "node-0" / "proc.json").read_text())["pgid"]
    private_sshd.kill()  # the server and the connection's session
    os.killpg(pgid, signal.SIGKILL)  # the task
    st = sync_api.run(node.status(timeout_s=3))
    sync_api.run(node.close())
    assert st.state == "unreachable"
    assert "SshUnreachable" in st.detail and "connection refused" in st.detail
    assert st.to_json() == {"rank": 0, "status": "unreachable", "exit_code": None}


def test_a_host_that_never_answers_is_unreachable_within_the_bound(sshd, tmp_path):
    # A socket that accepts connections (the kernel's backlog) and never speaks SSH.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        node = _node(sshd, tmp_path / "sb", port=silent.getsockname()[1])
        st = sync_api.run(node.status(timeout_s=1), timeout=DEADLINE_S)
        sync_api.run(node.close())
    finally:
        silent.close()
    assert st.state == "unreachable"
    assert "no answer within 1 s" in st.detail


def _other_key_line(server) -> str:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()[:2]
    return f"[{server.host}]:{server.port} {other[0]} {other[1]}\n"


def test_a_changed_host_key_is_refused_with_a_clear_message(sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(_other_key_line(sshd))
    node = _node(sshd, tmp_path / "sb" / "node-0", known_hosts=str(kh))
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(node.sync(None, {}))
    st = sync_api.run(node.status())
    sync_api.run(node.close())
    assert e.value.code == "SshHostKeyChanged"
    assert "not the one recorded in" in e.value.message and f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in e.value.message
    assert not (tmp_path / "sb").exists()  # nothing reached the host
    assert st.state == "unreachable" and st.detail.startswith("SshHostKeyChanged: ")


def test_an_unknown_host_is_refused_for_a_users_own_machine(sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    node = _node(sshd, tmp_path / "sb" / "node-0", known_hosts=str(kh))
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(node.exec("true"))
    sync_api.run(node.close())
    assert e.value.code == "SshHostKeyUnknown"
    assert "ssh-keyscan" in e.value.message
    assert kh.read_text() == ""


def test_a_vm_key_is_recorded_on_first_contact_then_checked(sshd, tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    kh = ssh.cluster_known_hosts("c9")
    node = _node(sshd, tmp_path / "sb" / "node-0", known_hosts=str(kh), record_host_key=True)
    assert sync_api.run(node.exec("echo hi")).output == b"hi\n"
    sync_api.run(node.close())
    recorded = kh.read_text()
    assert recorded == Path(sshd.known_hosts).read_text()  # the server's real key, one line
    assert os.stat(kh).st_mode & 0o777 == 0o600
    # Recorded means checked from now on: another key for the same host is refused.
    kh.write_text(_other_key_line(sshd))
    again = _node(sshd, tmp_path / "sb" / "node-0", known_hosts=str(kh), record_host_key=True)
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(again.exec("true"))
    sync_api.run(again.close())
    assert e.value.code == "SshHostKeyChanged"
    ssh.forget_cluster("c9")
    assert not kh.exists()
    ssh.forget_cluster("c9")  # idempotent


def test_a_refused_key_is_an_auth_failure(sshd, tmp_path):
    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    node = _node(sshd, tmp_path / "sb", identity_file=str(wrong))
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(node.exec("true"))
    sync_api.run(node.close())
    assert e.value.code == "SshAuthFailed"
    assert "authorized_keys" in e.value.message


def test_a_link_leaving_the_workdir_is_refused_before_anything_is_sent(sshd, tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "creds").symlink_to("/etc/passwd")
    node = _node(sshd, tmp_path / "sb" / "node-0")
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(node.sync(str(wd), {}))
    sync_api.run(node.close())
    assert e.value.code == "NodeSyncFailed"
    assert "'creds' -> '/etc/passwd'" in e.value.message
    assert not (tmp_path / "sb").exists()


def test_sync_replaces_an_earlier_sandbox(sshd, tmp_path):
    first, second = tmp_path / "v1", tmp_path / "v2"
    first.mkdir()
    second.mkdir()
    (first / "old.txt").write_text("old")
    (second / "new.txt").write_text("new")
    node = _node(sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(str(first), {}))
    sync_api.run(node.sync(str(second), {}))
    sync_api.run(node.close())
    assert sorted(p.name for p in (tmp_path / "sb" / "node-0" / "workdir").iterdir()) == ["new.txt"]


def test_many_nodes_share_one_loop_thread(sshd, tmp_path):
    nodes = [_node(sshd, tmp_path / "sb" / f"node-{i}", rank=i) for i in range(24)]
    before = threading.active_count()

    async def watch():
        import asyncio

        return await asyncio.gather(*(n.status() for n in nodes))

    states = sync_api.run(watch())
    during = threading.active_count()
    assert all(n._conn is not None and not n._conn.is_closed() for n in nodes)  # 24 open connections
    for n in nodes:
        sync_api.run(n.close())
    assert [s.state for s in states] == ["absent"] * 24
    assert [s.rank for s in states] == list(range(24))
    # No thread per node: at most the loop's few shared I/O threads were added.
    assert during - before <= sync_api.IO_THREADS


@pytest.mark.parametrize("transport", ["ssh", "local"])
def test_exec_streams_output_as_it_arrives(sshd, tmp_path, transport):
    gate = tmp_path / "gate"
    if transport == "ssh":
        node = _node(sshd, tmp_path / "sb" / "node-0")
    else:
        node = sync_api.open_node(NodeAddress("local", sandbox=str(tmp_path / "sb" / "node-0")), fresh=True)
    sync_api.run(node.sync(None, {}))
    seen: list[bytes] = []

    def on_output(chunk: bytes) -> None:
        seen.append(chunk)
        if b"first" in chunk:
            gate.touch()  # the command only goes on once its first line has been seen here

    res = sync_api.run(node.exec(f"echo first; until [ -e {gate} ]; do sleep 0.05; done; echo second",
                                 timeout_s=DEADLINE_S, on_output=on_output))
    sync_api.run(node.close())
    assert res.exit_code == 0 and res.output == b""
    assert b"".join(seen) == b"first\nsecond\n"


def test_mounts_at_root_are_written_in_place_on_a_vm(sshd, tmp_path):
    # What a VM's boot script prepared: the destinations exist and belong to the login user.
    target_dir, target_file = tmp_path / "vm" / "data", tmp_path / "vm" / "etc" / "app.ini"
    target_dir.mkdir(parents=True)
    target_file.parent.mkdir(parents=True)
    target_file.write_text("")
    src_dir = tmp_path / "dataset"
    (src_dir / "part").mkdir(parents=True)
    (src_dir / "part" / "x.csv").write_text("1,2\n")
    src_file = tmp_path / "app.ini"
    src_file.write_text("k=v\n")
    node = _node(sshd, tmp_path / "sb" / "node-0", mounts_at_root=True)
    sync_api.run(node.sync(None, {str(target_dir): str(src_dir), str(target_file): str(src_file),
                                  "rel.txt": str(src_file)}))
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", run='echo "[${SKYPLAN_FS_ROOT-unset}]"; cat rel.txt')))
    st = _wait_finished(node)
    log, _ = sync_api.run(node.read_log(0))
    sync_api.run(node.close())
    assert st.state == "succeeded"
    assert (target_dir / "part" / "x.csv").read_text() == "1,2\n"
    assert target_file.read_text() == "k=v\n"
    assert log == b"[unset]\nk=v\n"
    assert not (tmp_path / "sb" / "node-0" / "fs" / str(target_dir).lstrip("/")).exists()


def test_an_unusable_identity_file_is_an_auth_failure(sshd, tmp_path):
    locked = tmp_path / "locked_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(locked), passphrase="pw")
    node = _node(sshd, tmp_path / "sb", identity_file=str(locked))
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(node.exec("true"))
    sync_api.run(node.close())
    assert e.value.code == "SshAuthFailed"
    assert "passphrase" in e.value.message


def test_a_large_log_is_read_whole_in_chunks(sshd, tmp_path):
    node = _node(sshd, tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    # 3 MiB of output: several reads of at most READ_CHUNK, each one JSON line on the runner's channel.
    sync_api.run(node.start(TaskSpec("c1", "c1-ssh", run="head -c 3145728 /dev/zero | tr '\\0' x")))
    assert _wait_finished(node).state == "succeeded"
    out = b"".join(sync_api.follow(node, poll_s=0.1))
    sync_api.run(node.close())
    assert out == b"x" * 3145728
