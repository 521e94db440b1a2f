"""A managed job's buckets at its end: ``skyplan.jobs.buckets.release`` deletes the
ones the job created and keeps every other; a launch records its job as the owner
of a bucket it creates (from the run's SKYPLAN_JOB_ID)."""

from __future__ import annotations

import json
from pathlib import Path

from skyplan import home
from skyplan.clouds.local import runner
from skyplan.jobs.buckets import bucket_names, release
from skyplan.jobs.states import Placement
from skyplan.spec.models import FileMount, ResourceRequest, Resources, Task


def _task(*names: str, envs: tuple = ()) -> Task:
    return Task(name="train", run="true", envs=envs,
                file_mounts=tuple(FileMount(f"/m{i}", name=n, mode="MOUNT") for i, n in enumerate(names)),
                resources=Resources(candidates=(ResourceRequest(cloud="local"),)))


def test_release_deletes_what_the_job_created_and_keeps_the_rest() -> None:
    base = home.home()
    runner.ensure_bucket(base, "made-by-job", owner="5")
    runner.ensure_bucket(base, "other-job", owner="6")
    runner.bucket_dir(base, "users-own").mkdir(parents=True)  # made by hand: no record
    (runner.bucket_dir(base, "made-by-job") / "ckpt").write_text("x")
    tasks = [_task("made-by-job", "users-own"), _task("other-job", "made-by-job")]  # a pipeline sharing one
    assert bucket_names(tasks) == ("made-by-job", "users-own", "other-job")
    assert release(tasks, 5, placements=[Placement("local", "local", None, "local", False), None]) == (
        "made-by-job",)
    assert not runner.bucket_dir(base, "made-by-job").exists()
    assert runner.bucket_dir(base, "users-own").is_dir() and runner.bucket_dir(base, "other-job").is_dir()
    assert release(tasks, 5) == ()  # idempotent


def test_a_job_id_used_again_after_a_reset_does_not_delete_an_older_bucket() -> None:
    base = home.home()
    runner.ensure_bucket(base, "old-ckpt", owner="1")
    created = json.loads(runner.bucket_record(base, "old-ckpt").read_text())["created_at"]
    assert release(_task("old-ckpt"), 1, since=created + 3600) == ()
    assert runner.bucket_dir(base, "old-ckpt").is_dir()


def test_a_simulated_placement_releases_the_simulators_buckets() -> None:
    base = home.home()
    runner.ensure_bucket(base, "sim-ckpt", owner="9")
    placement = Placement("gcp", "us-central1", "us-central1-a", "e2-standard-2", True)
    assert release(_task("sim-ckpt"), 9, placements=[placement], simulate=True) == ("sim-ckpt",)


def test_a_launch_records_its_job_as_the_owner_of_the_buckets_it_creates(tmp_path: Path) -> None:
    from skyplan.catalog import load_catalog
    from skyplan.clouds.local.provider import node_props
    from skyplan.planner import make_plan
    from skyplan.provision.apply import request_for

    plan = make_plan(_task("ckpt-a", envs=(("SKYPLAN_JOB_ID", "12"),)), load_catalog(None))
    request = request_for(plan, plan.candidates[0], "job-12-0", "job-12-0-stk", None)
    assert request.buckets == ({"dst": "/m0", "name": "ckpt-a", "store": None},)
    assert request.bucket_owner == "12"
    props = node_props(request, 0, tmp_path / "node-0")
    assert props["buckets"] == [{"dst": "/m0", "name": "ckpt-a"}] and props["bucket_owner"] == "12"
    # A task without buckets gives its nodes no such inputs: a node made before buckets
    # existed sees no change (no needless re-run).
    plain = make_plan(_task(), load_catalog(None))
    props = node_props(request_for(plain, plain.candidates[0], "c", "c-stk", None), 0, tmp_path / "node-0")
    assert "buckets" not in props and "bucket_owner" not in props
