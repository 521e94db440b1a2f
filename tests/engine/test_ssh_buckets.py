"""A checkpoint bucket on an ssh pool, through the real engine and a real sshd on
loopback (the ``sshd`` fixture; the host is this machine as the fixture's user): the
node sees ``~/.skyplan/buckets/<name>`` on its host at /checkpoint, the same bucket
after a relaunch; the host's /checkpoint stays empty; a job's end deletes on the
host a bucket made for the job (``Ssh.release_buckets``) and keeps a named one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds.local import runner

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(runner.namespace_problem() is not None,
                                 reason=f"no private mount namespace here: {runner.namespace_problem()}")]

SKYPLAN = str(Path(sys.executable).with_name("skyplan"))


def skyplan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SKYPLAN, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)


def test_a_bucket_on_an_ssh_host_survives_a_relaunch_and_a_jobs_own_is_released(engine, skyplan_home: Path, sshd,
                                                                                tmp_path: Path):
    (skyplan_home / "config.yaml").write_text(
        "ssh:\n  pools:\n    lab:\n"
        f"      known_hosts: {sshd.known_hosts}\n      cpus: 2\n      memory_gib: 2\n      accelerators: none\n"
        f"      hosts:\n        - {{host: {sshd.host}, port: {sshd.port}, user: {sshd.user}, "
        f"identity_file: {sshd.identity_file}}}\n")
    name = f"ssh-ckpt-{os.getpid()}"
    host_base = Path.home() / ".skyplan"
    task = tmp_path / "task.yaml"
    task.write_text(f"name: sshckpt\nresources: {{cloud: ssh, region: lab, cpus: 1+}}\n"
                    f"file_mounts:\n  /checkpoint: {{name: {name}, mode: MOUNT}}\n"
                    "run: |\n  n=$(cat /checkpoint/runs 2>/dev/null || echo 0); n=$((n+1))\n"
                    "  echo $n > /checkpoint/runs; echo runs=$n\n")
    try:
        for want in ("runs=1", "runs=2"):
            r = skyplan("apply", str(task), "--yes", cwd=tmp_path)
            assert r.returncode == 0 and want in r.stdout, r.stdout + r.stderr
            assert skyplan("down", "sshckpt", "--yes", cwd=tmp_path).returncode == 0
        assert (runner.bucket_dir(host_base, name) / "runs").read_text() == "2\n"
        assert not os.path.exists("/checkpoint") or os.listdir("/checkpoint") == []

        # A job's end, on the host it ran on: its own bucket goes, the named one stays.
        from skyplan.clouds import registry

        runner.ensure_bucket(host_base, f"skyplan-job{os.getpid()}-0123456789ab", owner=f"{os.getpid()}")
        released = registry.get("ssh").release_buckets(str(os.getpid()), 0.0, {f"{sshd.host}:{sshd.port}"})
        assert released == (f"skyplan-job{os.getpid()}-0123456789ab",)
        assert not runner.bucket_dir(host_base, f"skyplan-job{os.getpid()}-0123456789ab").exists()
        assert runner.bucket_dir(host_base, name).is_dir()
    finally:
        skyplan("down", "sshckpt", "--yes", cwd=tmp_path)
        runner.release_bucket(host_base, name, owner="")  # no-op: a named bucket has no owner
        import shutil

        shutil.rmtree(runner.bucket_dir(host_base, name), ignore_errors=True)
        runner.bucket_record(host_base, name).unlink(missing_ok=True)
