"""file_mounts on `local` through the real engine and the console script: copied
into the node's sandbox before setup (they used to be dropped without a word);
a URL mount, which a node on this machine cannot reach, is refused before
anything exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SKYPLAN = str(Path(sys.executable).with_name("skyplan"))


def skyplan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SKYPLAN, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)


def test_mounts_are_copied_into_the_sandbox_and_the_task_reads_them(engine, skyplan_home: Path, tmp_path: Path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "x.txt").write_text("mounted-payload\n")
    (project / "task.yaml").write_text(
        "name: mounts\nresources: {cloud: local}\n"
        "file_mounts:\n  /data: ./data\n  notes.txt: data/x.txt\n"
        "run: cat \"$SKYPLAN_FS_ROOT/data/x.txt\" notes.txt\n")
    elsewhere = tmp_path / "elsewhere"  # sources are relative to the task file, not the cwd
    elsewhere.mkdir()
    try:
        r = skyplan("apply", str(project / "task.yaml"), "--yes", cwd=elsewhere)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("mounted-payload") == 2, r.stdout
    finally:
        assert skyplan("down", "mounts", "--yes", cwd=elsewhere).returncode == 0


def test_a_url_mount_on_local_is_refused_before_anything_exists(engine, skyplan_home: Path, tmp_path: Path):
    # A bucket ({name, mode: MOUNT}) is mounted on local (tests/engine/test_checkpoint_buckets.py);
    # a URL is not something this machine can reach.
    task = tmp_path / "task.yaml"
    task.write_text("name: bucket\nresources: {cloud: local}\n"
                    "file_mounts:\n  /ckpt: s3://my-bucket/ckpt\nrun: 'true'\n")
    r = skyplan("apply", str(task), "--yes", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "file_mounts '/ckpt': a URL, or a bucket in COPY mode, cannot be mounted on Local" in r.stderr
    assert "nothing was created" in r.stderr
    assert not (skyplan_home / "sandboxes").exists() or not any((skyplan_home / "sandboxes").iterdir())
