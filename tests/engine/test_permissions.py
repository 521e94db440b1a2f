"""After a real apply and down through the console script, nothing under the
skyplan home (state.db, the file:// backend and its history, logs, sandboxes,
the task's own files) is readable by group or others."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

SKYPLAN = str(Path(sys.executable).parent / "skyplan")


def _readable_by_others(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                found.append(f"{oct(stat.S_IMODE(st.st_mode))} {os.path.relpath(p, root)}")
    return found


def _skyplan(*args: str) -> subprocess.CompletedProcess[str]:
    # umask 022, as most operators have it: without skyplan's own umask the
    # engine's checkpoints and the sandboxes would come out 0644 / 0755.
    return subprocess.run([SKYPLAN, *args], capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(0o022))


def test_apply_and_down_leave_a_private_home(engine, skyplan_home: Path, tmp_path: Path) -> None:  # noqa: ANN001
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (workdir / "data.txt").write_text("payload\n")
    os.chmod(workdir / "data.txt", 0o644)
    task = tmp_path / "task.yaml"
    task.write_text(
        "name: perm\n"
        "resources: {cloud: local, cpus: 1+}\n"
        f"workdir: {workdir}\n"
        "envs: {TOKEN: not-for-others}\n"
        "run: cat data.txt > copy.txt && echo done\n"
    )
    up = _skyplan("apply", str(task), "--yes")
    try:
        assert up.returncode == 0, up.stderr
        assert "done" in up.stdout
        assert any((skyplan_home / "pulumi").rglob("*.json")), "the file:// backend holds the stack"
        assert any((skyplan_home / "sandboxes").rglob("copy.txt")), "the task wrote into its sandbox"
        assert _readable_by_others(skyplan_home) == []
    finally:
        down = _skyplan("down", "perm", "--yes")
    assert down.returncode == 0, down.stderr
    assert _readable_by_others(skyplan_home) == []
