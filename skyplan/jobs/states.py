"""Job and task states, their events, and the typed records the store hands out.

Data only: no I/O. The store (``store.py``) persists these; the controller's
decisions (``controller.py``) are pure functions over them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """A managed task's (and job's) state, spelled as ``jobs queue --json`` prints it."""

    PENDING = "PENDING"  # submitted; waits for a slot (``jobs.max_concurrent``) or its turn in a pipeline
    STARTING = "STARTING"  # its cluster is being launched (first run)
    RUNNING = "RUNNING"  # its task runs
    RECOVERING = "RECOVERING"  # preempted or failed: torn down and relaunched
    CANCELLING = "CANCELLING"  # cancel requested: its cluster is torn down
    SUCCEEDED = "SUCCEEDED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"  # the user's code failed (budget spent)
    FAILED_SETUP = "FAILED_SETUP"  # the task's setup failed
    FAILED_NO_RESOURCE = "FAILED_NO_RESOURCE"  # failover exhausted every candidate
    FAILED_CONTROLLER = "FAILED_CONTROLLER"  # the controller itself failed (a bug, a cleanup that failed)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def failed(self) -> bool:
        return self.value.startswith("FAILED")


TERMINAL = frozenset({Status.SUCCEEDED, Status.CANCELLED, Status.FAILED, Status.FAILED_SETUP,
                      Status.FAILED_NO_RESOURCE, Status.FAILED_CONTROLLER})
#: States in which a task holds (or is getting) a cluster.
ACTIVE = frozenset({Status.STARTING, Status.RUNNING, Status.RECOVERING, Status.CANCELLING})


@dataclass(frozen=True)
class Event:
    """One recorded transition: when, into which state, and why (one line)."""

    at: float  # unix time
    status: Status
    reason: str


@dataclass(frozen=True)
class Placement:
    cloud: str
    region: str | None
    zone: str | None
    instance_type: str | None
    use_spot: bool

    def to_json(self) -> dict[str, object]:
        return {"cloud": self.cloud, "region": self.region, "zone": self.zone,
                "instance_type": self.instance_type, "use_spot": self.use_spot}


@dataclass(frozen=True)
class TaskRecord:
    """One task of a job (a plain job has one, index 0)."""

    job_id: int
    task_index: int
    name: str | None
    status: Status
    task_id: str  # SKYPLAN_TASK_ID: the same across every recovery
    cluster: str | None  # the cluster of its current (or last) run
    placement: Placement | None
    recoveries: int  # relaunches after a preemption or failure (not the first launch)
    restarts_on_errors: int  # user failures spent (max_restarts_on_errors budget)
    failures: int  # every failure, evictions included (backoffLimit budget)
    resources: str  # one line, e.g. "1x sim(n1-standard-4, [Spot])"
    task_json: str  # the task, serialized (skyplan.spec.serialize), secrets never included
    started_at: float | None  # first RUNNING
    ended_at: float | None
    run_seconds: float  # time spent RUNNING, summed over runs (JOB DURATION)
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    name: str
    status: Status  # the job's: the first non-terminal task's, else the last task's
    submitted_at: float
    ended_at: float | None
    recoveries: int  # summed over its tasks
    cancel_requested: bool
    tasks: tuple[TaskRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RunRecord:
    """One run of a task: its first launch is run 1, each recovery adds one.
    Its log (provisioning events and the task's output) is kept at ``log_path``."""

    job_id: int
    task_index: int
    run_no: int  # 1..
    cluster: str
    log_path: str
    started_at: float
    ended_at: float | None
    placement: Placement | None  # where it ran (None until known)
    outcome: str | None  # one word or line, e.g. "succeeded", "preempted"; None while it runs
