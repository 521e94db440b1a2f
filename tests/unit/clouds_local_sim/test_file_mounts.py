"""file_mounts on a node of this machine: a copy into the sandbox, at the
destination read inside it (``runner.mount_path``), before setup runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skyplan.clouds.local import runner
from skyplan.clouds.local.runner import SandboxError, mount_path


def _spec(**kw) -> dict:
    return {"cluster": "c1", "stack": "stk", "task_id": "t", "node_rank": 0, "num_nodes": 1, "workdir": None,
            "setup": None, "run": None, "envs": {}, **kw}


def test_destinations_are_read_inside_the_sandbox(tmp_path: Path):
    root = tmp_path / "node-0"
    assert mount_path(root, "/data") == root / "fs" / "data"
    assert mount_path(root, "/ckpt/run-1/") == root / "fs" / "ckpt" / "run-1"
    assert mount_path(root, "~/models") == root / "workdir" / "models"
    assert mount_path(root, "models") == root / "workdir" / "models"
    for bad in ("/../../etc", "../x", "~/../../x"):
        with pytest.raises(SandboxError, match="LocalFileMountInvalid"):
            mount_path(root, bad)


def test_sources_are_copied_before_the_task_runs(tmp_path: Path, sandboxes, wait_for):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.txt").write_text("dir-payload\n")
    os.symlink("sub/a.txt", data / "link")  # a link inside the source stays a link in the copy
    single = tmp_path / "config.ini"
    single.write_text("file-payload\n")
    src_workdir = tmp_path / "wd"
    src_workdir.mkdir()
    root = sandboxes()
    runner.start(_spec(workdir=str(src_workdir),
                       file_mounts={"/data": str(data), "~/conf/config.ini": str(single)},
                       run='cat "$SKYPLAN_FS_ROOT/data/sub/a.txt" "$SKYPLAN_FS_ROOT/data/link" conf/config.ini; '
                           'echo written > "$SKYPLAN_FS_ROOT/data/out.txt"'), root)
    wait_for(lambda: runner.status(root)["phase"] in ("done", "failed"), "the node to finish")
    assert runner.status(root)["phase"] == "done"
    assert Path(runner.log_paths(root)["run"]).read_text() == "dir-payload\ndir-payload\nfile-payload\n"
    assert (root / "fs" / "data" / "out.txt").read_text() == "written\n"
    assert not (data / "out.txt").exists()  # a copy: the source is untouched
    assert os.readlink(root / "fs" / "data" / "link") == "sub/a.txt"
    assert oct((root / "workdir" / "conf" / "config.ini").stat().st_mode & 0o077) == "0o0"


def test_a_missing_source_and_a_link_leaving_a_source_are_refused_leaving_nothing(tmp_path: Path, sandboxes):
    root = sandboxes()
    with pytest.raises(SandboxError, match="LocalFileMountMissing"):
        runner.start(_spec(file_mounts={"/d": str(tmp_path / "nope")}), root)
    assert not root.exists()
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    os.symlink("/etc", leaky / "etc")
    with pytest.raises(SandboxError, match="LocalWorkdirSymlink: file mount '/d'"):
        runner.start(_spec(file_mounts={"/d": str(leaky)}), root)
    assert not root.exists()


def test_the_local_cloud_calls_a_bad_mount_invalid():
    from skyplan.clouds import registry

    verdict = registry.get("local").classify("LocalFileMountMissing: file mount '/d': source '/x' does not exist")
    assert (verdict.kind.value, verdict.scope.value) == ("invalid", "all")
