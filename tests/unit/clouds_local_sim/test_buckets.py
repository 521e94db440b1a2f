"""Checkpoint buckets on this machine: a directory beside the sandboxes, bound at
the mount's exact path in the node's own private mount namespace; who made it is
recorded, so a managed job deletes only the buckets it created."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from skyplan.clouds import buckets
from skyplan.clouds.local import runner
from skyplan.errors import InputError
from skyplan.spec.models import FileMount, ResourceRequest, Resources, Task

needs_namespaces = pytest.mark.skipif(runner.namespace_problem() is not None,
                                      reason=f"no private mount namespace here: {runner.namespace_problem()}")


def _finish(root: Path, wait_for) -> dict:
    wait_for(lambda: runner.status(root)["phase"] in ("done", "failed", "stopped", "lost"), "the node to finish")
    return runner.status(root)


def _spec(dst: str, run: str, **kw) -> dict:
    return {"cluster": "c1", "stack": "stk", "run": run, "buckets": [{"dst": dst, "name": "ckpt-a", "owner": "3"}],
            **kw}


@needs_namespaces
def test_a_node_sees_its_bucket_at_the_exact_path_and_the_host_path_stays_empty(sandboxes, tmp_path, wait_for):
    dst = str(tmp_path / "mnt" / "checkpoint")  # absolute: the very path, not under the sandbox's fs/
    root = sandboxes()
    runner.start(_spec(dst, f"echo one > {dst}/state; grep -c ' {dst} ' /proc/self/mountinfo"), root)
    st = _finish(root, wait_for)
    assert st["phase"] == "done", (root / "logs" / "combined.log").read_text()
    assert (root / "logs" / "run.log").read_text().strip() == "1"  # bound there, in the node's namespace
    bucket = runner.bucket_dir(runner.base_of(root), "ckpt-a")
    assert (bucket / "state").read_text() == "one\n"
    assert json.loads(runner.bucket_record(runner.base_of(root), "ckpt-a").read_text())["owner"] == "3"
    assert os.listdir(dst) == []  # the host's mountpoint: an empty directory, not the bucket
    assert f" {dst} " not in Path("/proc/self/mountinfo").read_text()


@needs_namespaces
def test_the_same_bucket_is_mounted_after_a_relaunch_and_a_node_without_it_does_not_see_it(
        sandboxes, tmp_path, wait_for):
    dst = str(tmp_path / "checkpoint")
    count = f'n=$(cat {dst}/n 2>/dev/null || echo 0); echo $((n+1)) > {dst}/n; cat {dst}/n'
    first = sandboxes("node-0", "stk-1")
    runner.start(_spec(dst, count), first)
    assert _finish(first, wait_for)["phase"] == "done"
    runner.remove(first)  # the cluster is gone (preempted, torn down); its bucket is not
    again = sandboxes("node-0", "stk-2")
    runner.start(_spec(dst, count), again)
    assert _finish(again, wait_for)["phase"] == "done"
    assert (again / "logs" / "run.log").read_text().strip() == "2"
    other = sandboxes("node-0", "stk-3")
    runner.start({"cluster": "c2", "stack": "stk-3", "run": f"ls -A {dst} | wc -l"}, other)
    assert _finish(other, wait_for)["phase"] == "done"
    assert (other / "logs" / "run.log").read_text().strip() == "0"


@needs_namespaces
def test_a_relative_bucket_destination_is_bound_in_the_workdir(sandboxes, wait_for):
    root = sandboxes()
    runner.start(_spec("~/ckpt", "echo x > ckpt/f && ls ckpt"), root)
    assert _finish(root, wait_for)["phase"] == "done"
    assert (runner.bucket_dir(runner.base_of(root), "ckpt-a") / "f").read_text() == "x\n"


def test_the_supervisor_binds_nothing_outside_a_private_namespace() -> None:
    # A supervisor started without unshare (in the launcher's namespace) must not bind
    # onto the host's paths: the bucket would show to every process here.
    same = os.readlink("/proc/self/ns/mnt")
    problem = runner._bind_buckets({"buckets": [{"name": "b", "dir": "/nonexistent", "target": "/nowhere"}],
                                    "launcher_mnt_ns": same})
    assert problem and "private mount namespace" in problem


def test_whoever_makes_a_bucket_records_its_owner_and_only_that_owner_releases_it(tmp_path: Path) -> None:
    base = tmp_path / "home"
    assert runner.ensure_bucket(base, "ckpt-a", owner="7") is True
    assert runner.ensure_bucket(base, "ckpt-a", owner="8") is False  # exists: the record is not rewritten
    (runner.bucket_dir(base, "ckpt-a") / "model.pt").write_text("w")
    record = json.loads(runner.bucket_record(base, "ckpt-a").read_text())
    assert record["owner"] == "7"
    assert runner.release_bucket(base, "ckpt-a", owner="8") is False
    assert runner.release_bucket(base, "ckpt-a", owner="7", since=record["created_at"] + 60) is False  # reused id
    assert runner.bucket_dir(base, "ckpt-a").is_dir()
    assert runner.release_bucket(base, "ckpt-a", owner="7") is True
    assert not runner.bucket_dir(base, "ckpt-a").exists() and not runner.bucket_record(base, "ckpt-a").exists()
    assert runner.release_bucket(base, "ckpt-a", owner="7") is False  # idempotent
    runner.ensure_bucket(base, "ckpt-b", owner="7")
    runner.ensure_bucket(base, "ckpt-c", owner="8")
    assert runner.release_owned(base, "7") == ["ckpt-b"]
    assert runner.bucket_dir(base, "ckpt-c").is_dir()


def test_a_bucket_the_user_made_has_no_owner_and_is_never_released(tmp_path: Path) -> None:
    base = tmp_path / "home"
    runner.bucket_dir(base, "mine").mkdir(parents=True)
    assert runner.ensure_bucket(base, "mine", owner="7") is False
    assert runner.release_bucket(base, "mine", owner="7") is False
    assert runner.release_bucket(base, "mine", owner="") is False
    assert runner.bucket_dir(base, "mine").is_dir()


def _task(*mounts: FileMount, cloud: str = "local") -> Task:
    return Task(name="t", run="true", file_mounts=mounts,
                resources=Resources(candidates=(ResourceRequest(cloud=cloud),)))


def test_buckets_are_the_named_mounts_in_mount_mode() -> None:
    task = _task(FileMount("/ckpt", name="ckpt-a", mode="MOUNT"), FileMount("/b", name="b-b", store="S3"),
                 FileMount("/data", source="./data"), FileMount("/c", name="copy-me", mode="COPY"),
                 FileMount("/u", source="s3://x/y", mode="MOUNT"))
    assert buckets.task_buckets(task) == (buckets.Bucket("/b", "b-b", "s3"), buckets.Bucket("/ckpt", "ckpt-a"))


@pytest.mark.parametrize("name", ["A-b", "ab", "a--b", "-ab", "a_b", "a.b", "x" * 64])
def test_a_bucket_name_no_store_accepts_is_refused(name: str) -> None:
    with pytest.raises(InputError, match="bucket"):
        buckets.check_names((buckets.Bucket("/ckpt", name),))


def _plan(task: Task):
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan

    return make_plan(task, load_catalog(None))


def test_without_a_private_namespace_a_local_launch_fails_before_anything_exists(home: Path, monkeypatch) -> None:
    from skyplan.provision import launch

    monkeypatch.setattr(runner, "namespace_problem", lambda: "`unshare --mount` failed: Operation not permitted")
    task = _task(FileMount("/checkpoint", name="ckpt-a", mode="MOUNT"))
    with pytest.raises(InputError) as err:
        launch.launch(launch.LaunchRequest(task, cluster="ckpt"))
    assert "private mount namespace" in str(err.value) and "Operation not permitted" in str(err.value)
    assert "nothing was created" in (err.value.hint or "")
    assert not (home / "sandboxes").exists() and not (home / "buckets").exists()
    assert not (home / "pulumi").exists() or not any((home / "pulumi").rglob("*.json"))


def test_under_simulate_a_provider_cloud_is_checked_as_the_simulator_that_runs_it(home: Path, monkeypatch) -> None:
    from skyplan.provision import launch

    monkeypatch.setattr(runner, "namespace_problem", lambda: "no namespaces")
    plan = _plan(_task(FileMount("/checkpoint", name="ckpt-a", store="gcs"), cloud="gcp"))
    launch.check_task(plan)  # a real GCP VM mounts it with gcsfuse: nothing to check here
    with pytest.raises(InputError, match="no namespaces"):
        launch.check_task(plan, simulate="scenario.yaml")


def test_a_vm_mounts_a_bucket_at_an_absolute_path_only(home: Path) -> None:
    # Its sandbox is replaced at each sync: a bucket mounted inside it would be emptied.
    from skyplan.provision import launch

    with pytest.raises(InputError, match="absolute path only"):
        launch.check_task(_plan(_task(FileMount("~/ckpt", name="ckpt-a"), cloud="gcp")))


def test_a_store_the_cloud_does_not_mount_is_refused(home: Path) -> None:
    from skyplan.provision import launch

    plan = _plan(_task(FileMount("/checkpoint", name="ckpt-a", store="s3"), cloud="gcp"))
    with pytest.raises(InputError, match="store 's3'"):
        launch.check_task(plan)


def test_a_cloud_whose_program_picks_the_store_is_left_to_it_and_one_without_buckets_refuses() -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from skyplan.clouds.capabilities import Capabilities

    task = _task(FileMount("/checkpoint", name="ckpt-a", store="azure"))
    picks = SimpleNamespace(display="K", capabilities=replace(Capabilities(), bucket_store="program"))
    buckets.check_buckets(task, [picks])
    cannot = SimpleNamespace(display="Nowhere", capabilities=Capabilities())
    with pytest.raises(InputError, match="Nowhere cannot mount a bucket"):
        buckets.check_buckets(task, [cannot])


def _as_nobody_possible() -> str | None:
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("runuser") or not os.path.exists("/usr/bin/python3"):
        return "needs root (to become nobody), runuser and /usr/bin/python3"
    r = subprocess.run(["runuser", "-u", "nobody", "--", "unshare", "--user", "--map-root-user", "--mount", "true"],
                       capture_output=True)
    return None if r.returncode == 0 else "unprivileged user namespaces are off here"


@pytest.mark.skipif(_as_nobody_possible() is not None, reason=str(_as_nobody_possible()))
def test_as_an_unprivileged_user_a_user_namespace_binds_the_bucket(wait_for) -> None:
    # The runner as an ssh host runs it (stdlib only, the system's python3), as a user who is not root.
    import shutil
    import subprocess
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="skyplan-nobody-"))  # pytest's own tmp is root's alone
    tmp_path.chmod(0o777)
    root, dst = tmp_path / "base" / "sandboxes" / "s" / "node-0", tmp_path / "mnt"
    spec = {"cluster": "c", "stack": "s", "buckets": [{"dst": str(dst), "name": "bk-a", "owner": ""}],
            "run": f"echo hi > {dst}/x; grep -c ' {dst} ' /proc/self/mountinfo"}
    r = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-I", runner.__file__, "start",
                        str(root)], input=json.dumps(spec), capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        wait_for(lambda: runner.status(root)["phase"] in ("done", "failed"), "the node to finish")
        assert runner.status(root)["phase"] == "done", (root / "logs" / "combined.log").read_text()
        assert (root / "logs" / "run.log").read_text().strip() == "1"
        bucket = runner.bucket_dir(tmp_path / "base", "bk-a")
        assert (bucket / "x").read_text() == "hi\n" and (bucket / "x").stat().st_uid != 0  # written as nobody
        assert os.listdir(dst) == []
        # A mountpoint such a user cannot make is named, before anything runs.
        probe = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-I", "-c",
                                f"import sys; sys.path.insert(0, {os.path.dirname(runner.__file__)!r}); "
                                "import runner; print(runner.mountpoint_problem('/skyplan-no-such-dir/ckpt'))"],
                               capture_output=True, text=True)
        assert "is not writable (not root)" in probe.stdout, probe.stdout + probe.stderr
    finally:
        runner.remove(root, grace_s=0.5)
        shutil.rmtree(tmp_path, ignore_errors=True)
