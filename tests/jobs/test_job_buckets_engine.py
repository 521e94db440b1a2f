"""A managed job's buckets end to end (the CLI, the controller process, the real
engine, on sim): an unnamed ``{mode: MOUNT}`` bucket is made for the job, is the
same after a preemption, and is deleted when the job ends; a bucket the user named
is kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_jobs_engine import TWO_ZONES, Jobs, jobs_env  # noqa: F401 - the fixture

from skyplan.clouds.buckets import job_bucket_name
from skyplan.clouds.local import runner

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(runner.namespace_problem() is not None,
                                 reason=f"no private mount namespace here: {runner.namespace_problem()}")]

RUN = """\
run: |
  n=$(cat /checkpoint/count 2>/dev/null || echo 0)
  echo "start at $n"
  while [ "$n" -lt 12 ]; do n=$((n + 1)); echo "$n" > /checkpoint/count; echo "$n" > /keep/count; sleep 0.25; done
  echo "done at $n"
"""


def _count(d: Path) -> int:
    try:
        return int((d / "count").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_the_jobs_own_bucket_survives_a_preemption_and_goes_with_the_job(jobs_env: Jobs) -> None:  # noqa: F811
    kept = f"kept-{os.getpid()}"
    text = (f"name: made\n{TWO_ZONES}file_mounts:\n  /checkpoint:\n    mode: MOUNT\n"
            f"  /keep:\n    name: {kept}\n    mode: MOUNT\n" + RUN)
    job_id = jobs_env.launch(text, "made")
    buckets = Path(os.environ["SKYPLAN_HOME"]) / "buckets"
    jobs_env.wait_status(job_id, "RUNNING")
    task_id = jobs_env.job(job_id).tasks[0].task_id
    own = buckets / job_bucket_name(task_id, "/checkpoint", str(job_id))
    jobs_env.wait(lambda: _count(own) >= 3, "progress in the job's bucket")
    jobs_env.preempt(f"job-{job_id}-0")
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "SUCCEEDED" and job.recoveries == 1, job
    starts = [int(line.split()[2]) for line in jobs_env.logs(job_id).splitlines() if line.startswith("start at")]
    assert len(starts) == 2 and starts[1] >= 3  # the relaunch mounted the same bucket
    jobs_env.assert_nothing_left()
    jobs_env.wait(lambda: not own.exists(), "the job's own bucket to be deleted", 60)
    assert "deleted the bucket(s) made for job" in jobs_env.logs(job_id)
    assert _count(buckets / kept) == 12  # the named one is the user's
