"""A managed job's buckets at its end: ``skyplan.jobs.buckets.release`` deletes the
ones made for the job (an unnamed ``{mode: MOUNT}``) and keeps every other (one the
user named, made by the job or not, and another job's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyplan import home
from skyplan.clouds.buckets import job_bucket_name, task_buckets
from skyplan.clouds.local import runner
from skyplan.errors import InputError
from skyplan.jobs.buckets import release
from skyplan.jobs.states import Placement
from skyplan.spec.models import FileMount, ResourceRequest, Resources, Task

TASK_ID = "skyplan-managed-2026-12-02-00-05-51-123456_train_12-0"
RUN_ENV = (("SKYPLAN_JOB_ID", "12"), ("SKYPLAN_TASK_ID", TASK_ID))


def _task(*mounts: FileMount, envs: tuple = ()) -> Task:
    return Task(name="train", run="true", envs=envs, file_mounts=mounts,
                resources=Resources(candidates=(ResourceRequest(cloud="local"),)))


def test_release_deletes_what_was_made_for_the_job_and_keeps_the_rest() -> None:
    base = home.home()
    runner.ensure_bucket(base, "skyplan-job5-0123456789ab", owner="5")
    runner.ensure_bucket(base, "named-by-user", owner="")  # the job made it, but the user named it
    runner.ensure_bucket(base, "skyplan-job6-0123456789ab", owner="6")
    runner.bucket_dir(base, "by-hand").mkdir(parents=True)  # no record at all
    (runner.bucket_dir(base, "skyplan-job5-0123456789ab") / "ckpt").write_text("x")
    assert release(5, placements=[Placement("local", "local", None, "local", False), None]) == (
        "skyplan-job5-0123456789ab",)
    assert not runner.bucket_dir(base, "skyplan-job5-0123456789ab").exists()
    for kept in ("named-by-user", "skyplan-job6-0123456789ab", "by-hand"):
        assert runner.bucket_dir(base, kept).is_dir()
    assert release(5) == ()  # idempotent


def test_a_job_id_used_again_after_a_reset_does_not_delete_an_older_bucket() -> None:
    base = home.home()
    runner.ensure_bucket(base, "skyplan-job1-aaaaaaaaaaaa", owner="1")
    created = json.loads(runner.bucket_record(base, "skyplan-job1-aaaaaaaaaaaa").read_text())["created_at"]
    assert release(1, since=created + 3600) == ()
    assert runner.bucket_dir(base, "skyplan-job1-aaaaaaaaaaaa").is_dir()


def test_a_simulated_placement_releases_the_simulators_buckets() -> None:
    runner.ensure_bucket(home.home(), "skyplan-job9-bbbbbbbbbbbb", owner="9")
    placement = Placement("gcp", "us-central1", "us-central1-a", "e2-standard-2", True)
    assert release(9, placements=[placement], simulate=True) == ("skyplan-job9-bbbbbbbbbbbb",)


def test_an_unnamed_bucket_is_the_jobs_own_the_same_across_recoveries_and_refused_outside_a_job() -> None:
    mounts = (FileMount("/checkpoint", mode="MOUNT"), FileMount("/data", name="team-data", mode="MOUNT"))
    (ckpt, data) = task_buckets(_task(*mounts, envs=RUN_ENV))
    assert ckpt.name == job_bucket_name(TASK_ID, "/checkpoint", "12") and ckpt.name.startswith("skyplan-job12-")
    assert ckpt.owner == "12"
    assert (data.name, data.owner) == ("team-data", "")  # named: the user's, never deleted
    again = task_buckets(_task(*mounts, envs=RUN_ENV + (("SKYPLAN_NUM_RECOVERIES", "2"),)))
    assert again[0].name == ckpt.name  # a recovery mounts the same bucket
    other_task = task_buckets(_task(*mounts, envs=(("SKYPLAN_JOB_ID", "12"),
                                                   ("SKYPLAN_TASK_ID", TASK_ID[:-1] + "1"))))
    assert other_task[0].name != ckpt.name  # each pipeline task has its own
    from skyplan.clouds.buckets import check_names

    with pytest.raises(InputError, match="needs a name outside a managed job") as err:
        check_names(task_buckets(_task(*mounts)))
    assert "skyplan jobs launch" in (err.value.hint or "")


def test_a_launch_hands_each_bucket_and_its_owner_to_the_nodes(tmp_path: Path) -> None:
    from skyplan.catalog import load_catalog
    from skyplan.clouds.local.provider import node_props
    from skyplan.planner import make_plan
    from skyplan.provision.apply import request_for

    task = _task(FileMount("/checkpoint", mode="MOUNT"), FileMount("/data", name="team-data"), envs=RUN_ENV)
    plan = make_plan(task, load_catalog(None))
    request = request_for(plan, plan.candidates[0], "job-12-0", "job-12-0-stk", None)
    name = job_bucket_name(TASK_ID, "/checkpoint", "12")
    assert request.buckets == ({"dst": "/checkpoint", "name": name, "store": None, "owner": "12"},
                               {"dst": "/data", "name": "team-data", "store": None, "owner": ""})
    props = node_props(request, 0, tmp_path / "node-0")
    assert props["buckets"] == [{"dst": "/checkpoint", "name": name, "owner": "12"},
                                {"dst": "/data", "name": "team-data", "owner": ""}]
    # A task without buckets gives its nodes no such input: a node made before buckets
    # existed sees no change (no needless re-run).
    plain = make_plan(_task(), load_catalog(None))
    props = node_props(request_for(plain, plain.candidates[0], "c", "c-stk", None), 0, tmp_path / "node-0")
    assert "buckets" not in props
