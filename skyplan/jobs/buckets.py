"""A managed job's checkpoint buckets at its end: the ones it created are deleted,
every other is kept.

A bucket (``file_mounts: {/checkpoint: {name: B, mode: MOUNT}}``,
``skyplan.clouds.buckets``) is mounted again after every relaunch, so it must
outlive each run's cluster; it is the job, not a cluster, that ends its life:

* **created by the job**: whoever creates a bucket records the job it belongs to,
  read from the task's ``SKYPLAN_JOB_ID`` (``skyplan.clouds.buckets.OWNER_ENV``,
  which the executor's ``run_env`` sets on every run). On local, sim and ssh the
  record is ``<base>/buckets/.<B>.json``, written when the directory is made
  (``mkdir`` decides, so exactly one run makes it); on the provider clouds, the
  bucket's ``skyplan-owner`` tag/label, set when the program creates it.
  A bucket that existed before (the user's, or another job's) is attached, never
  recorded as this job's, and so never deleted by it.
* ``since`` (the job's submission time) guards against a job id used again after
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

from skyplan.clouds.buckets import task_buckets


def bucket_names(tasks: Any) -> tuple[str, ...]:
    """The bucket names of a task or of a job's tasks, each once, in order."""
    items = tasks if isinstance(tasks, (list, tuple)) else [tasks]
    return tuple(dict.fromkeys(b.name for t in items for b in task_buckets(t) if b.name))


def release(tasks: Any, job_id: int | str, *, since: float = 0.0, placements: Iterable[Any] = (),
            simulate: bool = False) -> tuple[str, ...]:
    """Delete the buckets of ``tasks`` (a Task, or a job's list of them) that job
    ``job_id`` created at or after ``since``; keep every other. ``placements``
    (``skyplan.jobs.states.Placement``s of the job's runs, any number, None
    skipped) say which clouds, and where, to ask (``CloudBase.release_buckets``);
    under ``simulate`` a simulated cloud's buckets are the simulator's. The
    clouds whose buckets are directories on this machine are always asked
    (cheap, and a run cut off before its placement was recorded may have made
    one). Returns the names deleted, each once."""
    from skyplan.clouds import registry
    from skyplan.clouds.buckets import DIR_STORE

    names = bucket_names(tasks)
    if not names:
        return ()
    owner = str(job_id)
    zones: dict[str, set[str | None]] = {}
    for p in placements:
        if p is None or registry.find(p.cloud) is None:
            continue
        cloud = registry.runner(p.cloud, simulate)
        zones.setdefault(cloud.name, set()).add(p.zone)
    for name in registry.names():
        caps = registry.capabilities(name)
        if caps.runs_here and caps.bucket_store == DIR_STORE:
            zones.setdefault(name, set())
    released: list[str] = []
    for name, where in zones.items():
        try:
            released += registry.get(name).release_buckets(names, owner, since, where)
        except Exception:  # noqa: BLE001 - a cloud that cannot answer keeps its buckets
            continue
    return tuple(dict.fromkeys(released))
