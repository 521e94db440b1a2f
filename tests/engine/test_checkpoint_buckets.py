"""Checkpoint buckets on `local` and `sim` through the real engine and the console
script: a task writes to /checkpoint (the exact path it asked for), its cluster is
torn down, the same task relaunched reads it back; a task without the bucket,
running meanwhile, sees the host's /checkpoint: an empty mountpoint."""

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
REPO = Path(__file__).resolve().parents[2]
ALL_OK = REPO / "examples" / "scenarios" / "all-ok.yaml"
#: Counts its runs in the bucket, so a relaunch that lost it would print 1 again.
COUNTER = """
file_mounts:
  /checkpoint: {name: BUCKET, mode: MOUNT}
run: |
  n=$(cat /checkpoint/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /checkpoint/runs
  echo "runs=$n"
  SLEEP
"""


def skyplan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SKYPLAN, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)


def _task(tmp_path: Path, name: str, resources: str, bucket: str, sleep: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nresources: {resources}\n"
                    + COUNTER.replace("BUCKET", bucket).replace("SLEEP", sleep))
    return path


def _apply(task: Path, tmp_path: Path, *extra: str) -> str:
    r = skyplan("apply", str(task), "--yes", *extra, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.parametrize("cloud", ["local", "sim"])
def test_a_bucket_survives_a_relaunch_and_only_its_task_sees_it(engine, skyplan_home: Path, tmp_path: Path,
                                                                 cloud: str):
    bucket = f"ckpt-{cloud}-{os.getpid()}"
    simulate = ("--simulate", str(ALL_OK)) if cloud == "sim" else ()
    resources = "{cloud: gcp, cpus: 2+}" if cloud == "sim" else "{cloud: local}"
    task = _task(tmp_path, "counter", resources, bucket)
    try:
        assert "runs=1" in _apply(task, tmp_path, *simulate)
        assert skyplan("down", "counter", "--yes", cwd=tmp_path).returncode == 0
        # Relaunched (a new stack, a new sandbox): the same bucket, mounted at the same path.
        holder = _task(tmp_path, "counter", resources, bucket, sleep="sleep 120")
        out = _apply(holder, tmp_path, *simulate)
        assert "runs=2" in out, out
        # While it runs with /checkpoint bound, a task without the bucket sees the host's path.
        other = tmp_path / "other.yaml"
        other.write_text("name: other\nresources: {cloud: local}\n"
                         "run: 'echo \"entries=$(ls -A /checkpoint | wc -l)\"'\n")
        seen = _apply(other, tmp_path)
        assert "entries=0" in seen, seen
        assert os.listdir("/checkpoint") == []
        assert (skyplan_home / "buckets" / bucket / "runs").read_text() == "2\n"
    finally:
        for cluster in ("counter", "other"):
            skyplan("down", cluster, "--yes", cwd=tmp_path)
    # Down removes clusters, never a bucket: it is kept for the next launch.
    assert (skyplan_home / "buckets" / bucket / "runs").read_text() == "2\n"
