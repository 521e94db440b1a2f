"""Is a task's node gone? A verdict over status checks and the cloud's word, pure.

A check that gets no answer (``timeout``, a node ``lost``) is not yet a
preemption: networks drop, runtimes stall, and a healthy job relaunched for a
slow check loses its progress (SkyPilot relaunched one 24 times in 19 hours).
So:

* the cloud says the node is GONE or STOPPED: gone, at once ("the cloud confirmed");
* the cloud says it is RUNNING: a check that timed out, or a node that did not
  answer, is not a failure at all: the task keeps running (no recovery);
* the cloud cannot tell (UNKNOWN, or not asked): gone only once the grace
  period has expired, i.e. at least ``grace_checks`` failed checks in a row,
  spread over at least ``grace_s`` seconds ("the grace period expired").

A node that answers but holds no task (``absent``, ``stopped``) is judged the same
way, except that the cloud saying RUNNING does not excuse it: the task is not
there, so after the grace period it is gone too (a rebooted VM, a vanished runner).

The controller keeps the checks since the last healthy one and asks
``verdict`` after each; every verdict carries a one-line reason for the event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

from skyplan.jobs.executor import Check, CloudSays

DEFAULT_GRACE_CHECKS = 3
DEFAULT_GRACE_S = 60.0

#: Phases in which the task is alive.
HEALTHY_PHASES = frozenset({"run", "starting"})
#: Phases in which nothing answered for the task.
UNANSWERED = frozenset({"timeout", "lost"})
#: Phases in which the node answered but holds no task.
NO_TASK = frozenset({"absent", "stopped"})


class Outcome(str, enum.Enum):
    HEALTHY = "healthy"  # running or starting: nothing to do
    SUCCEEDED = "succeeded"  # the task exited 0
    FAILED = "failed"  # the task exited non-zero (``exit_code``, ``failed_phase``)
    GONE = "gone"  # the node is gone: recover (``confirmed`` says how we know)
    SUSPECT = "suspect"  # no answer yet: wait, check again


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    exit_code: int | None = None
    failed_phase: str | None = None
    #: GONE only: True when the cloud confirmed it, False when the grace period expired.
    confirmed: bool = False

    @property
    def needs_action(self) -> bool:
        return self.outcome in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.GONE)


def needs_cloud(check: Check) -> bool:
    """Whether the controller should ask the cloud before judging ``check``
    (every phase but a healthy or successful one)."""
    return check.phase not in HEALTHY_PHASES and check.phase != "done"


def verdict(checks: Sequence[Check], cloud_says: CloudSays | None, now: float,
            grace_checks: int = DEFAULT_GRACE_CHECKS, grace_s: float = DEFAULT_GRACE_S) -> Verdict:
    """The verdict on a task from its checks (oldest first; the last is the
    latest) and what the cloud says now (None: not asked, as UNKNOWN)."""
    if not checks:
        return Verdict(Outcome.SUSPECT, "not checked yet")
    last = checks[-1]
    if last.phase in HEALTHY_PHASES:
        return Verdict(Outcome.HEALTHY, f"the task is {'running' if last.phase == 'run' else 'starting'}")
    cloud = cloud_says or CloudSays.UNKNOWN
    if last.phase == "done" and (last.exit_code in (0, None)):
        return Verdict(Outcome.SUCCEEDED, "the task exited 0", exit_code=0)
    gone = cloud in (CloudSays.GONE, CloudSays.STOPPED)
    if last.phase in ("failed", "done"):
        # A task killed because its node went away reports a failure too: the cloud tells them apart.
        if gone:
            return Verdict(Outcome.GONE, f"the cloud confirmed the node is {cloud.value} "
                                         f"(the task ended with exit code {last.exit_code})", confirmed=True)
        phase = f" in {last.failed_phase}" if last.failed_phase else ""
        return Verdict(Outcome.FAILED, f"the task failed{phase} with exit code {last.exit_code}",
                       exit_code=last.exit_code, failed_phase=last.failed_phase)
    what = _describe(last)
    if gone:
        return Verdict(Outcome.GONE, f"{what}; the cloud confirmed the node is {cloud.value}", confirmed=True)
    if cloud is CloudSays.RUNNING and last.phase in UNANSWERED:
        return Verdict(Outcome.SUSPECT, f"{what}, but the cloud says the node is running: no recovery")
    # Unanswered with the cloud unable to tell, or no task on a node that is up: the grace period decides.
    failed = _trailing_failures(checks)
    span = now - failed[0].at
    if len(failed) >= grace_checks and span >= grace_s:
        told = "the cloud cannot tell" if cloud is CloudSays.UNKNOWN else f"the cloud says {cloud.value}"
        return Verdict(Outcome.GONE, f"{what}; the grace period expired ({len(failed)} failed checks over "
                                     f"{span:.0f} s; {told})", confirmed=False)
    return Verdict(Outcome.SUSPECT, f"{what}; {len(failed)}/{grace_checks} failed checks over {span:.0f} s "
                                    f"(grace {grace_s:.0f} s)")


def _trailing_failures(checks: Sequence[Check]) -> list[Check]:
    """The failed checks since the last healthy one (the latest run of them)."""
    out: list[Check] = []
    for c in reversed(checks):
        if c.phase in HEALTHY_PHASES or c.phase in ("done", "failed"):
            break
        out.append(c)
    return out[::-1]


def _describe(check: Check) -> str:
    detail = f" ({check.detail})" if check.detail else ""
    if check.phase == "timeout":
        return f"the status check timed out{detail}"
    if check.phase == "lost":
        return f"the node did not answer{detail}"
    return f"the node holds no task ({check.phase}){detail}"
