"""A managed job's checkpoint buckets at its end: the ones made for it are
deleted, every other is kept.

A bucket (``skyplan.clouds.buckets``) is mounted again after every relaunch, so
it outlives each run's cluster; it is the job, not a cluster, that may end its
life, and only for a bucket made for it:

* a bucket **the user named** (``{name: B, mode: MOUNT}``) is the user's: made
  when missing, never deleted (the checkpoints in it are the point);
* a bucket **without a name** (``{mode: MOUNT}``, as seed 003's bert_qa.yaml
  leaves it) is made for the job: named after the task's ``SKYPLAN_TASK_ID`` and
  destination (``skyplan.clouds.buckets.job_bucket_name``), recorded as the
  job's when made (from the run's ``SKYPLAN_JOB_ID``, which the executor's
  ``run_env`` sets): on local, sim and ssh in ``<base>/buckets/.<B>.json``,
  written when the directory is made (``mkdir`` decides, so exactly one run
  makes it); on the provider clouds in the bucket's ``skyplan-owner`` tag/label.

``since`` (the job's submission time) guards against a job id used again after
the jobs database was reset: a bucket recorded for that id but made before the
job was submitted is kept.

The jobs controller calls :func:`release` once per job, after its last task
reached a terminal state and its last cluster was torn down (succeeded, failed
or cancelled alike). Nothing here prints or raises for a bucket it cannot
reach: such a bucket is kept, and is missing from the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def release(job_id: int | str, *, since: float = 0.0, placements: Iterable[Any] = (),
            simulate: bool = False) -> tuple[str, ...]:
    """Delete the buckets made for job ``job_id`` at or after ``since``; keep
    every other. ``placements`` (``skyplan.jobs.states.Placement``s of the job's
    runs, any number, None skipped) say which clouds to ask, and where
    (``CloudBase.release_buckets``); under ``simulate`` a simulated cloud's
    buckets are the simulator's. The clouds whose buckets are directories on
    this machine are always asked (cheap, and a run cut off before its placement
    was recorded may have made one). Returns the names deleted, each once."""
    from skyplan.clouds import registry
    from skyplan.clouds.buckets import DIR_STORE

    owner = str(job_id)
    zones: dict[str, set[str | None]] = {}
    for p in placements:
        if p is None or registry.find(p.cloud) is None:
            continue
        zones.setdefault(registry.runner(p.cloud, simulate).name, set()).add(p.zone)
    for name in registry.names():
        caps = registry.capabilities(name)
        if caps.runs_here and caps.bucket_store == DIR_STORE:
            zones.setdefault(name, set())
    released: list[str] = []
    for name, where in zones.items():
        try:
            released += registry.get(name).release_buckets(owner, since, where)
        except Exception:  # noqa: BLE001 - a cloud that cannot answer keeps its buckets
            continue
    return tuple(dict.fromkeys(released))
