"""The Executor: how the jobs controller acts on the world.

The controller (``controller.py``) decides; an Executor does. Everything that
touches a cloud, a node or a log file goes through this Protocol, so the
controller's decisions are tested with a fake (``skyplan.testing.jobs_fakes``)
and run for real over ``skyplan.provision.launch`` and the node runtime.

This module holds the Protocol and the small values it exchanges (``Check``,
``CloudSays``, ``RunLog``). The real implementation lives beside it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from skyplan.jobs.states import Placement
    from skyplan.planner.plan import Plan
    from skyplan.spec.models import Task

#: A Check's phase: a LogSource phase (``run``, ``starting``, ``done``, ``failed``,
#: ``lost``, ``stopped``, ``absent``) or ``timeout`` (the check itself got no answer in time).
PHASES = ("run", "starting", "done", "failed", "lost", "stopped", "absent", "timeout")


@dataclass(frozen=True)
class Check:
    """One status check of a task's cluster, through the node runtime.

    ``exit_code`` is set once the task has ended (``done``: 0; ``failed``: the
    code). ``failed_phase`` is ``setup`` or ``run`` for a failed task. ``detail``
    says why a node did not answer (refused, timed out ...), for the event.
    """

    at: float  # unix time the check was made
    phase: str
    exit_code: int | None = None
    failed_phase: str | None = None
    detail: str = ""


class CloudSays(str, enum.Enum):
    """What the cloud itself says of a cluster's node (sim ledger, local processes,
    the provider's instance state)."""

    RUNNING = "running"
    GONE = "gone"  # preempted, terminated, deleted
    STOPPED = "stopped"
    UNKNOWN = "unknown"  # the cloud cannot tell: only the grace period decides


class RunLog(Protocol):
    """One run's log file (``logs.py``): the launch's events and the task's output."""

    path: str

    def write(self, text: str) -> None:
        """Append ``text`` (one or more whole lines) to the run's log."""
        ...


class Executor(Protocol):
    """What the controller needs done. Every method may be called from the
    controller's worker threads at once for distinct clusters; each is bounded
    in time (``check`` and ``cloud_says`` by a few seconds)."""

    def plan(self, task: Task, options: dict) -> Plan:
        """The task planned against the catalog (``options``: simulate, backend,
        catalog, use_spot override)."""
        ...

    def launch(self, cluster: str, plan: Plan, options: dict, log: RunLog) -> Placement:
        """Bring ``cluster`` up on the first candidate of ``plan`` that works and
        start its task; blocking. Writes the launch's events to ``log``. Raises
        ProvisionFailed / NoCandidatesError (no resource), InputError (the task
        cannot run as written), CleanupError (an attempt could not be cleaned)."""
        ...

    def check(self, cluster: str) -> Check:
        """The task's phase on ``cluster``, through the node runtime, bounded."""
        ...

    def cloud_says(self, cluster: str) -> CloudSays:
        """What the cloud says of the cluster's node(s)."""
        ...

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        """Append the task's new output to ``log``."""
        ...

    def teardown(self, cluster: str) -> None:
        """Destroy ``cluster`` and verify nothing is left (``launch.down``); a
        cluster that is not there is fine. Raises CleanupError when it cannot."""
        ...

    def tick(self) -> None:
        """Called once per controller pass (the sim's scenario preemptions due now)."""
        ...
