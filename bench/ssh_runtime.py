"""Benchmark: the SSH node runtime against a throwaway sshd on this machine.

    .venv/bin/python bench/ssh_runtime.py [--calls 50] [--nodes 50] [--json]

Starts ``skyplan.testing.sshd`` on a loopback port and prints, each against a
floor measured in the same run:

- ``status`` over the node's reused connection (median of ``--calls``) against
  a bare ``true`` run on the same connection (the floor: one SSH channel and a
  shell) and against the local transport's ``status`` of the same task;
- asyncssh against paramiko (the ``bench`` extra) for the same status command
  and the same bare ``true``, each over one reused connection;
- sync + start to the first output line, SSH against local, and the workdir
  sync itself (300 small files + one 4 MiB file): one tar stream against SFTP;
- the controller's RSS and threads while watching ``--nodes`` nodes (that
  many sandboxes on the one sshd, one connection each, every node's status
  read at once) against the process before, and the same connections held
  with paramiko.

Figures, not assertions; the machine is shared, so the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyplan.runtime import ssh, sync_api  # noqa: E402
from skyplan.runtime.protocol import NodeAddress, TaskSpec  # noqa: E402
from skyplan.testing.sshd import Sshd  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_ms(fn, n: int) -> float:
    fn()  # warm
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def address(server: Sshd, sandbox: str, rank: int = 0) -> NodeAddress:
    return NodeAddress("ssh", rank=rank, sandbox=sandbox, host=server.host, port=server.port, user=server.user,
                       identity_file=server.identity_file, known_hosts=server.known_hosts)


def wait_finished(node) -> None:
    while not sync_api.run(node.status()).finished:
        time.sleep(0.05)


def first_line_s(node, workdir: str) -> float:
    """Seconds from sync's start to the first output line of the task."""
    t = time.perf_counter()
    sync_api.run(node.sync(workdir, {}))
    sync_api.run(node.start(TaskSpec("bench", "bench", run="echo first-line; sleep 0.5")))
    while True:
        data, _ = sync_api.run(node.read_log(0))
        if b"\n" in data:
            return time.perf_counter() - t
        time.sleep(0.01)


def paramiko_client(server: Sshd):
    import paramiko

    c = paramiko.SSHClient()
    c.load_host_keys(server.known_hosts)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(server.host, port=server.port, username=server.user, key_filename=server.identity_file,
              allow_agent=False, look_for_keys=False)
    return c


def paramiko_run(client, command: str) -> bytes:
    _, out, _ = client.exec_command(command)
    data = out.read()
    out.channel.recv_exit_status()
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=["asyncssh", "paramiko"], help=argparse.SUPPRESS)
    ap.add_argument("--sshd-dir", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(watch_child(args.child, Sshd.load(args.sshd_dir), Path(args.scratch), args.nodes)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="skyplan-bench-ssh-"))
    os.environ["SKYPLAN_HOME"] = str(scratch / "home")
    server = Sshd.start(scratch / "sshd")
    fig: dict[str, object] = {"load_before": os.getloadavg()[0]}
    try:
        fig.update(run(server, scratch, args))
    finally:
        sync_api.close_all()
        server.stop()
        from skyplan.clouds.local import runner

        for sandbox in scratch.glob("*/node-*"):  # whatever a failed run left running
            runner.remove(sandbox)
        shutil.rmtree(scratch, ignore_errors=True)
    fig["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(fig, indent=2))
        return
    f = fig
    print(f"load average {f['load_before']:.1f} -> {f['load_after']:.1f}; medians of {args.calls} calls")
    print(f"status over the reused connection   {f['ssh_status_ms']:7.1f} ms  "
          f"(local status of the same task {f['local_status_ms']:.1f} ms: {f['ssh_status_ms'] / f['local_status_ms']:.1f}x, "
          f"per-node SSH overhead {f['ssh_status_ms'] - f['local_status_ms']:.1f} ms)")
    print(f"  floor: a line echoed by `cat` on a kept channel {f['ssh_echo_ms']:.1f} ms (status is "
          f"{f['ssh_status_ms'] / f['ssh_echo_ms']:.1f}x, +{f['ssh_status_ms'] - f['ssh_echo_ms']:.1f} ms)")
    print(f"  a bare `true` on the same connection {f['ssh_true_ms']:.1f} ms "
          f"(status is {f['ssh_status_ms'] / f['ssh_true_ms']:.2f}x); a one-shot status command "
          f"{f['ssh_oneshot_status_ms']:.1f} ms")
    print(f"first connection (connect + auth)   {f['connect_ms']:7.1f} ms")
    print(f"paramiko, same calls: status on a kept channel {f['paramiko_status_ms']:.1f} ms "
          f"(asyncssh {f['ssh_status_ms'] / f['paramiko_status_ms']:.2f}x), one-shot status "
          f"{f['paramiko_oneshot_status_ms']:.1f} ms ({f['ssh_oneshot_status_ms'] / f['paramiko_oneshot_status_ms']:.2f}x), "
          f"`true` {f['paramiko_true_ms']:.1f} ms ({f['ssh_true_ms'] / f['paramiko_true_ms']:.2f}x)")
    print(f"sync+start to first output line     SSH {f['ssh_first_line_s']:.2f} s, local "
          f"{f['local_first_line_s']:.2f} s ({f['ssh_first_line_s'] / f['local_first_line_s']:.1f}x)")
    print(f"workdir sync ({f['sync_files']} files, {f['sync_mib']:.1f} MiB): tar stream {f['sync_tar_s']:.2f} s, "
          f"SFTP {f['sync_sftp_s']:.2f} s ({f['sync_sftp_s'] / f['sync_tar_s']:.1f}x)")
    for lib in ("asyncssh", "paramiko"):
        w = f[f"watch_{lib}"]
        grew = w["rss_mib"] - w["rss_before_mib"]
        print(f"watching {args.nodes} nodes, {lib:8} (a fresh process): RSS {w['rss_before_mib']:.1f} -> "
              f"{w['rss_mib']:.1f} MiB (+{grew:.1f} MiB, {grew * 1024 / args.nodes:.0f} KiB/node), threads "
              f"{w['threads_before']} -> {w['threads']}; one status of every node in {w['round_s']:.2f} s")


def run(server: Sshd, scratch: Path, args) -> dict[str, object]:
    fig: dict[str, object] = {}
    wd = scratch / "workdir"
    wd.mkdir()
    (wd / "main.sh").write_text("echo hi\n")

    # --- status vs floor ------------------------------------------------------------------
    t = time.perf_counter()
    node = sync_api.open_node(address(server, str(scratch / "sb" / "node-0")))
    sync_api.run(node.exec("true"))
    fig["connect_ms"] = (time.perf_counter() - t) * 1000
    sync_api.run(node.sync(str(wd), {}))
    # A running task: what a watcher mostly asks about.
    sync_api.run(node.start(TaskSpec("bench", "bench", run="sleep 600")))
    while sync_api.run(node.status()).state != "running":
        time.sleep(0.05)

    # The very command a one-shot status would run (a new channel, a shell, python3).
    status_cmd = (f'R="$HOME/{ssh.RUNNER_REMOTE}"; [ -f "$R" ] || exit 97; exec python3 -I -S "$R" status '
                  f'{ssh._sh_path(str(scratch / "sb" / "node-0"))}')

    async def one_shot(cmd: str) -> None:
        conn = await node._connection()
        await conn.run(cmd, check=True)

    fig["ssh_status_ms"] = median_ms(lambda: sync_api.run(node.status()), args.calls)
    fig["ssh_true_ms"] = median_ms(lambda: sync_api.run(one_shot("true")), args.calls)
    fig["ssh_oneshot_status_ms"] = median_ms(lambda: sync_api.run(one_shot(status_cmd)), args.calls)

    # The transport's own floor: one line echoed back by `cat` on a channel kept open.
    async def open_cat():
        conn = await node._connection()
        return await conn.create_process("exec cat", encoding=None)

    cat = sync_api.run(open_cat())

    async def echo() -> None:
        cat.stdin.write(b"ping\n")
        assert await cat.stdout.readline() == b"ping\n"

    fig["ssh_echo_ms"] = median_ms(lambda: sync_api.run(echo()), args.calls)
    cat.close()
    local = sync_api.open_node(NodeAddress("local", sandbox=str(scratch / "local" / "node-0")))
    sync_api.run(local.sync(str(wd), {}))
    sync_api.run(local.start(TaskSpec("bench", "bench", run="sleep 600")))
    while sync_api.run(local.status()).state != "running":
        time.sleep(0.05)
    fig["local_status_ms"] = median_ms(lambda: sync_api.run(local.status()), args.calls)

    # --- paramiko, same commands -----------------------------------------------------------
    pc = paramiko_client(server)
    assert json.loads(paramiko_run(pc, status_cmd))["phase"] == "run"
    fig["paramiko_oneshot_status_ms"] = median_ms(lambda: paramiko_run(pc, status_cmd), args.calls)
    fig["paramiko_true_ms"] = median_ms(lambda: paramiko_run(pc, "true"), args.calls)
    # The runtime's way with paramiko: one request line on a serve channel kept open.
    pin, pout, _ = pc.exec_command(ssh._SERVE)
    request = json.dumps({"op": "status", "root": str(scratch / "sb" / "node-0")}) + "\n"

    def paramiko_request() -> None:
        pin.write(request)
        pin.flush()
        assert json.loads(pout.readline())["phase"] == "run"

    fig["paramiko_status_ms"] = median_ms(paramiko_request, args.calls)
    pc.close()

    sync_api.run(node.stop())
    sync_api.run(local.stop())

    # --- first output line, SSH vs local ---------------------------------------------------
    ssh_first = [first_line_s(node, str(wd)) for _ in range(5)]
    local_first = [first_line_s(local, str(wd)) for _ in range(5)]
    fig["ssh_first_line_s"] = statistics.median(ssh_first)
    fig["local_first_line_s"] = statistics.median(local_first)
    wait_finished(node)
    wait_finished(local)

    # --- sync: tar stream vs SFTP ----------------------------------------------------------
    big = scratch / "big"
    for i in range(300):
        (big / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
        (big / f"d{i % 10}" / f"f{i}.py").write_text(f"x = {i}\n" * 20)
    (big / "blob.bin").write_bytes(os.urandom(4 << 20))
    fig["sync_files"] = 301
    fig["sync_mib"] = sum(p.stat().st_size for p in big.rglob("*") if p.is_file()) / (1 << 20)
    tar_times, sftp_times = [], []
    for _ in range(3):
        t = time.perf_counter()
        sync_api.run(node.sync(str(big), {}))
        tar_times.append(time.perf_counter() - t)

        async def sftp_put() -> None:
            conn = await node._connection()
            await conn.run(f"rm -rf {ssh._sh_path(str(scratch / 'sftp'))}", check=True)
            async with conn.start_sftp_client() as sftp:
                await sftp.put(str(big), str(scratch / "sftp"), recurse=True)

        t = time.perf_counter()
        sync_api.run(sftp_put())
        sftp_times.append(time.perf_counter() - t)
    fig["sync_tar_s"] = statistics.median(tar_times)
    fig["sync_sftp_s"] = statistics.median(sftp_times)
    sync_api.run(node.remove())
    sync_api.run(local.remove())

    # --- watching N nodes: each library in a fresh process of its own --------------------------
    for lib in ("asyncssh", "paramiko"):
        out = subprocess.run([sys.executable, __file__, "--child", lib, "--nodes", str(args.nodes),
                              "--sshd-dir", str(server.dir), "--scratch", str(scratch)],
                             capture_output=True, text=True, check=True)
        fig[f"watch_{lib}"] = json.loads(out.stdout)
    return fig


def watch_child(lib: str, server: Sshd, scratch: Path, n: int) -> dict[str, object]:
    """RSS and threads of a fresh process watching ``n`` nodes (one connection each,
    every status read at once), against the same process before its first connection."""
    import gc

    root = scratch / f"many-{lib}"
    if lib == "asyncssh":
        sync_api.loop()
        gc.collect()
        before, threads = rss_mib(), threading.active_count()
        nodes = [sync_api.open_node(address(server, str(root / f"node-{i}"), rank=i)) for i in range(n)]

        async def start_all() -> None:
            async def one(node) -> None:
                await node.sync(None, {})
                await node.start(TaskSpec("bench", "many", num_nodes=n, run="sleep 600"))
            await asyncio.gather(*(one(node) for node in nodes))

        async def watch() -> list:
            return await asyncio.gather(*(node.status() for node in nodes))

        sync_api.run(start_all())
        rounds = []
        for _ in range(5):
            t = time.perf_counter()
            states = sync_api.run(watch())
            rounds.append(time.perf_counter() - t)
        assert all(st.state in ("starting", "running") for st in states), states
        fig = {"rss_before_mib": before, "rss_mib": rss_mib(), "threads_before": threads,
               "threads": threading.active_count(), "round_s": statistics.median(rounds)}

        async def remove_all() -> None:
            await asyncio.gather(*(node.remove() for node in nodes))
            await asyncio.gather(*(node.close() for node in nodes))
        sync_api.run(remove_all())
        return fig
    import paramiko  # noqa: F401 - imported before the baseline, like asyncssh above

    gc.collect()
    before, threads = rss_mib(), threading.active_count()
    # The runtime's way with paramiko: a connection and a kept serve channel per node.
    chans = []
    for i in range(n):
        c = paramiko_client(server)
        pin, pout, _ = c.exec_command(ssh._SERVE)
        chans.append((c, pin, pout, str(root / f"node-{i}")))
    rounds = []
    for _ in range(5):  # the first round also starts each host-side runner, as start_all does above
        t = time.perf_counter()
        for _, pin, pout, sandbox in chans:  # blocking: one after another (or a thread each)
            pin.write(json.dumps({"op": "status", "root": sandbox}) + "\n")
            pin.flush()
            assert json.loads(pout.readline())["phase"] == "absent"
        rounds.append(time.perf_counter() - t)
    fig = {"rss_before_mib": before, "rss_mib": rss_mib(), "threads_before": threads,
           "threads": threading.active_count(), "round_s": statistics.median(rounds[1:])}
    for c, *_ in chans:
        c.close()
    return fig


if __name__ == "__main__":
    main()
