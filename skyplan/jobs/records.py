"""The jobs database's rows as records and as JSON, without SQLAlchemy.

Shared by the store (``store.py``, SQLAlchemy) and the read-only fast path of
``jobs queue`` on SQLite (``fastread.py``, the stdlib's sqlite3), so both build
the same records from the same columns. Importing it costs nothing notable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from skyplan.jobs.states import Event, JobRecord, Placement, Status, TaskRecord

#: The Alembic head this code reads and writes (``migrations/versions``).
SCHEMA_REVISION = "0002"

#: The columns each read selects, in order (the fast path's SQL names them too).
JOB_COLUMNS = ("job_id", "name", "status", "finished", "submitted_at", "ended_at", "recoveries", "cancel_requested")
TASK_COLUMNS = ("job_id", "task_index", "name", "status", "task_id", "cluster", "placement", "recoveries",
                "restarts_on_errors", "failures", "resources", "task_json", "started_at", "ended_at", "run_seconds")
EVENT_COLUMNS = ("job_id", "task_index", "at", "status", "reason")


def task_id_for(submitted_at: float, job_name: str, task_name: str | None, job_id: int, task_index: int,
                pipeline: bool) -> str:
    """``SKYPLAN_TASK_ID``: ``skyplan-managed-<UTC time to the µs>_<name>[_<task>]_<jobid>-<idx>``;
    a pipeline's tasks add their own name. The same across every recovery of the task."""
    stamp = datetime.fromtimestamp(submitted_at, timezone.utc).strftime("%Y-%m-%d-%H-%M-%S-%f")
    middle = f"{job_name}_{task_name}" if pipeline and task_name else job_name
    return f"skyplan-managed-{stamp}_{middle}_{job_id}-{task_index}"


def job_status(statuses: Sequence[Status]) -> Status:
    """A job's status from its tasks' (in order): the first that has not succeeded, else SUCCEEDED."""
    for s in statuses:
        if s is not Status.SUCCEEDED:
            return s
    return Status.SUCCEEDED


def placement_json(p: Placement | None) -> str | None:
    return json.dumps(p.to_json(), sort_keys=True) if p is not None else None


def placement(text: str | None) -> Placement | None:
    if not text:
        return None
    d = json.loads(text)
    return Placement(d["cloud"], d.get("region"), d.get("zone"), d.get("instance_type"), bool(d.get("use_spot")))


def build(jobs: Sequence[Sequence[Any]], tasks: Iterable[Sequence[Any]],
          events: Iterable[Sequence[Any]]) -> list[JobRecord]:
    """JobRecords for ``jobs`` rows (``JOB_COLUMNS``, in their order), with their
    ``tasks`` (``TASK_COLUMNS``, in task order) and ``events`` (``EVENT_COLUMNS``, oldest first)."""
    by_job: dict[int, list[Sequence[Any]]] = {}
    for t in tasks:
        by_job.setdefault(t[0], []).append(t)
    by_task: dict[tuple[int, int], list[Event]] = {}
    for e in events:
        by_task.setdefault((e[0], e[1]), []).append(Event(e[2], Status(e[3]), e[4]))
    return [JobRecord(
        job_id=j[0], name=j[1], status=Status(j[2]), submitted_at=j[4], ended_at=j[5], recoveries=j[6],
        cancel_requested=bool(j[7]),
        tasks=tuple(TaskRecord(
            job_id=t[0], task_index=t[1], name=t[2], status=Status(t[3]), task_id=t[4], cluster=t[5],
            placement=placement(t[6]), recoveries=t[7], restarts_on_errors=t[8], failures=t[9], resources=t[10],
            task_json=t[11], started_at=t[12], ended_at=t[13], run_seconds=t[14],
            events=tuple(by_task.get((t[0], t[1]), ()))) for t in by_job.get(j[0], ())),
    ) for j in jobs]


# --- JSON (the Contract's ``jobs queue -a --json`` shape) ----------------------------------------

def _time(t: float | None) -> str | None:
    from skyplan.contract import utc_time

    return utc_time(t)


def task_to_json(t: TaskRecord) -> dict[str, Any]:
    return {
        "task_index": t.task_index, "name": t.name, "status": t.status.value, "task_id": t.task_id,
        "cluster": t.cluster, "placement": t.placement.to_json() if t.placement is not None else None,
        "recoveries": t.recoveries,
        "events": [{"at": _time(e.at), "status": e.status.value, "reason": e.reason} for e in t.events],
    }


def job_to_json(j: JobRecord) -> dict[str, Any]:
    """One job as ``jobs queue --json`` prints it."""
    return {"job_id": j.job_id, "name": j.name, "status": j.status.value, "submitted_at": _time(j.submitted_at),
            "recoveries": j.recoveries, "tasks": [task_to_json(t) for t in j.tasks]}


def queue_json(jobs: Iterable[JobRecord]) -> list[dict[str, Any]]:
    """``jobs queue --json``: a list, in the order given (newest first)."""
    return [job_to_json(j) for j in jobs]
