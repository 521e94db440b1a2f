"""The local transport behind the protocol, the runner's subcommands, and the
parity of local and SSH nodes on the same task."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skyplan.clouds.local import runner
from skyplan.runtime import sync_api
from skyplan.runtime.local import LocalNode
from skyplan.runtime.protocol import NodeAddress, NodeRuntime, NodeStatus, RuntimeFailure, TaskSpec

DEADLINE_S = 60


def _wait_finished(node: NodeRuntime) -> NodeStatus:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        st = sync_api.run(node.status())
        if st.finished or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def _local(sandbox: Path) -> NodeRuntime:
    return sync_api.open_node(NodeAddress("local", sandbox=str(sandbox)), fresh=True)


def test_open_node_picks_the_transport_and_keeps_one_object_per_address(tmp_path):
    addr = NodeAddress("local", sandbox=str(tmp_path / "n"))
    node = sync_api.open_node(addr)
    assert isinstance(node, LocalNode)
    assert sync_api.open_node(addr) is node
    assert sync_api.open_node(addr, fresh=True) is not node
    with pytest.raises(RuntimeFailure) as e:
        sync_api.open_node(NodeAddress("carrier-pigeon"))  # type: ignore[arg-type]
    assert e.value.code == "RuntimeUnknownTransport"


def test_run_times_out_with_a_runtime_failure():
    import asyncio

    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(asyncio.sleep(30), timeout=0.2)
    assert e.value.code == "RuntimeTimeout"


def test_local_sync_start_status_logs_exec_remove(tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "hello.txt").write_text("hi\n")
    mount = tmp_path / "m.txt"
    mount.write_text("mounted\n")
    sandbox = tmp_path / "sandboxes" / "st" / "node-0"
    node = _local(sandbox)
    sync_api.run(node.sync(str(wd), {"/data/m.txt": str(mount)}))
    assert sync_api.run(node.status()).state == "starting"  # synced, nothing started
    sync_api.run(node.start(TaskSpec("c", "st", setup="echo s", run="cat hello.txt $SKYPLAN_FS_ROOT/data/m.txt")))
    st = _wait_finished(node)
    assert (st.state, st.exit_code) == ("succeeded", 0)
    assert b"".join(sync_api.follow(node, poll_s=0.05)) == b"s\nhi\nmounted\n"
    data, nxt = sync_api.run(node.read_log(2))
    assert (data, nxt) == (b"hi\nmounted\n", 13)
    res = sync_api.run(node.exec("ls; exit 5"))
    assert (res.exit_code, res.output) == (5, b"hello.txt\n")
    sync_api.run(node.remove())
    assert not sandbox.exists()
    assert sync_api.run(node.status()).state == "absent"


def test_local_failures_are_runtime_failures(tmp_path):
    node = _local(tmp_path / "sb" / "node-0")
    with pytest.raises(RuntimeFailure) as e:
        sync_api.run(node.sync(str(tmp_path / "missing"), {}))
    assert e.value.code == "NodeSyncFailed" and "LocalWorkdirMissing" in e.value.message


def test_a_killed_task_is_failed_with_a_detail(tmp_path):
    import os
    import signal

    node = _local(tmp_path / "sb" / "node-0")
    sync_api.run(node.sync(None, {}))
    sync_api.run(node.start(TaskSpec("c", "st", run="sleep 300")))
    pgid = json.loads((tmp_path / "sb" / "node-0" / "proc.json").read_text())["pgid"]
    os.killpg(pgid, signal.SIGKILL)
    st = _wait_finished(node)
    assert st.state == "failed" and "killed from outside" in st.detail


def _runner(*args: str, stdin: str = "") -> tuple[int, dict]:
    p = subprocess.run([sys.executable, "-I", "-S", runner.__file__, *args], input=stdin,
                       capture_output=True, text=True, timeout=DEADLINE_S)
    return p.returncode, json.loads(p.stdout)


def test_runner_subcommands_print_json_and_start_reads_the_spec_from_stdin(tmp_path):
    root = tmp_path / "node-0"
    assert _runner("status", str(root)) == (0, {"alive": False, "phase": "absent", "sandbox": str(root)})
    (root / "workdir").mkdir(parents=True)
    spec = {"cluster": "c", "stack": "st", "run": 'echo "$SECRET"', "secrets": {"SECRET": "from-stdin"}}
    rc, out = _runner("start", str(root), stdin=json.dumps(spec))
    assert rc == 0 and out["sandbox"] == str(root) and out["pgid"]
    deadline = time.monotonic() + DEADLINE_S
    while _runner("status", str(root))[1]["phase"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (root / "logs" / "combined.log").read_text() == "from-stdin\n"
    rc, out = _runner("stop", str(root))
    assert rc == 0 and out["phase"] == "done"
    assert _runner("remove", str(root)) == (0, {"removed": True, "sandbox": str(root)})
    assert not root.exists()


def test_runner_start_failure_is_a_json_error(tmp_path):
    # A sandbox that cannot be created is a JSON error (exit 3), which the SSH transport reads.
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, out = _runner("start", str(blocker / "node-0"), stdin="{}")
    assert rc == 3 and out["error"].startswith("LocalSandboxFailed: ")


def test_the_same_task_gives_the_same_answers_on_both_transports(sshd, tmp_path):
    wd = tmp_path / "wd"
    (wd / "d").mkdir(parents=True)
    (wd / "d" / "f.txt").write_text("f\n")
    (wd / "ln").symlink_to("d/f.txt")
    mount = tmp_path / "cfg"
    mount.mkdir()
    (mount / "c.ini").write_text("x=1\n")
    task = TaskSpec("c", "st", setup="echo setup", envs={"E": "e"},
                    run="cat ln; cat $SKYPLAN_FS_ROOT/etc/app/c.ini; echo $E $SKYPLAN_NUM_NODES; exit 2")
    local = _local(tmp_path / "local" / "node-0")
    remote = sync_api.open_node(NodeAddress(
        "ssh", sandbox=str(tmp_path / "remote" / "node-0"), host=sshd.host, port=sshd.port, user=sshd.user,
        identity_file=sshd.identity_file, known_hosts=sshd.known_hosts), fresh=True)
    results = []
    for node in (local, remote):
        sync_api.run(node.sync(str(wd), {"/etc/app": str(mount)}))
        sync_api.run(node.start(task))
        st = _wait_finished(node)
        out = b"".join(sync_api.follow(node, poll_s=0.05))
        ex = sync_api.run(node.exec("readlink ln; ls -R ."))
        stopped = sync_api.run(node.stop())
        results.append((st, out, ex, stopped))
        sync_api.run(node.remove())
        sync_api.run(node.close())
    assert results[0] == results[1]
    assert results[0][0] == NodeStatus(0, "failed", 2, "run")
    assert results[0][1] == b"setup\nf\nx=1\ne 1\n"


def test_runner_serve_answers_json_lines_until_stdin_ends(tmp_path):
    import base64

    root = tmp_path / "node-0"
    (root / "workdir").mkdir(parents=True)
    p = subprocess.Popen([sys.executable, "-I", "-S", runner.__file__, "serve"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)

    def ask(**req) -> dict:
        p.stdin.write(json.dumps(req) + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    try:
        assert ask(op="status", root=str(tmp_path / "nowhere"))["phase"] == "absent"
        started = ask(op="start", root=str(root), spec={"run": "printf 'out'", "stack": "st"})
        assert started["sandbox"] == str(root)
        deadline = time.monotonic() + DEADLINE_S
        while ask(op="status", root=str(root))["phase"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        read = ask(op="read", root=str(root), offset=1)
        assert (base64.b64decode(read["data"]), read["offset"]) == (b"ut", 3)
        assert ask(op="bogus", root=str(root)) == {"error": "unknown request 'bogus'"}
        assert ask(op="remove", root=str(root)) == {"removed": True, "sandbox": str(root)}
    finally:
        p.stdin.close()
        assert p.wait(timeout=DEADLINE_S) == 0
    assert not root.exists()


def test_a_forked_child_gets_a_runtime_loop_of_its_own(tmp_path):
    import asyncio
    import os

    assert sync_api.run(asyncio.sleep(0, "parent")) == "parent"  # the parent's loop thread exists
    with sync_api._lock:  # held at the fork, as another thread of the parent might hold it
        pid = os.fork()
        if pid == 0:  # the child: its own loop, not the parent's (absent) thread, no deadlock
            import signal

            signal.alarm(20)  # a deadlock ends the child (SIGALRM) instead of the test run
            try:
                ok = sync_api.run(asyncio.sleep(0, "child"), timeout=20) == "child"
            except BaseException:  # noqa: BLE001
                ok = False
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
