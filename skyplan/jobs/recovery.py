"""Recovery decisions, pure: strategies, budgets, backoff, the order of a relaunch.

Nothing here touches the store, a cloud or the clock; the controller passes
what it knows and acts on what comes back.

Budgets (the README's "Recovery and budgets" table says the same):

=====================  =======================  ==================  ======================
failure                max_restarts_on_errors   backoff_limit       then
=====================  =======================  ==================  ======================
PREEMPTED, HARDWARE    never spent              spent               relaunch (NO_RECOVERY:
                                                                    FAILED)
USER (exit code)       spent                    spent               relaunch, or FAILED
RECOVERABLE_EXIT       never spent              never spent         relaunch
SETUP                  --                       --                  FAILED_SETUP at once
=====================  =======================  ==================  ======================

A budget of N allows N failures of its kind; the next one ends the task.
``max_restarts_on_errors`` is SkyPilot's (the user's own failures only);
``backoff_limit`` is AIchor's ``backoffLimit`` (seed 004: every failure,
evictions included). A user failure with neither set ends the task at once
(``max_restarts_on_errors`` defaults to 0); with only ``backoff_limit`` set,
that one budget governs user failures too.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from skyplan.jobs.states import Placement, Status

if TYPE_CHECKING:
    from skyplan.planner.plan import Plan
    from skyplan.spec.models import Task

EAGER_NEXT_REGION = "EAGER_NEXT_REGION"
FAILOVER = "FAILOVER"
NO_RECOVERY = "NO_RECOVERY"
DEFAULT_STRATEGY = EAGER_NEXT_REGION

#: Backoff between recovery rounds that found no resource: ``BACKOFF_BASE_S * 2**round``,
#: capped, with full jitter (a uniform draw below it), so many jobs preempted
#: together do not all retry the same provider at the same second.
BACKOFF_BASE_S = 10.0
BACKOFF_CAP_S = 300.0


@dataclass(frozen=True)
class RecoveryPolicy:
    """A task's ``resources.job_recovery``, resolved.

    ``max_restarts_on_errors`` None means "not set" (0 unless ``backoff_limit`` is
    set, which then governs user failures alone)."""

    strategy: str = DEFAULT_STRATEGY
    max_restarts_on_errors: int | None = None
    backoff_limit: int | None = None
    recover_on_exit_codes: frozenset[int] = frozenset()

    @property
    def user_limit(self) -> int | None:
        """How many user failures restart (None: no limit of its own)."""
        if self.max_restarts_on_errors is not None:
            return self.max_restarts_on_errors
        return None if self.backoff_limit is not None else 0


def policy_for(task: Task) -> RecoveryPolicy:
    """The policy of ``task``: its first resource request's ``job_recovery``
    (an any_of / ordered entry inherits the base's; entries that set their own
    are not told apart: one task, one policy)."""
    reqs = task.resources.candidates
    r = next((c for c in reqs if c.job_recovery or c.max_restarts_on_errors is not None
              or c.backoff_limit is not None or c.recover_on_exit_codes), reqs[0])
    return RecoveryPolicy(strategy=r.job_recovery or DEFAULT_STRATEGY,
                          max_restarts_on_errors=r.max_restarts_on_errors,
                          backoff_limit=r.backoff_limit,
                          recover_on_exit_codes=frozenset(r.recover_on_exit_codes))


class Failure(str, enum.Enum):
    PREEMPTED = "PREEMPTED"  # the cloud took the node back (confirmed, or the grace period expired)
    HARDWARE = "HARDWARE"  # the node is gone on an on-demand placement; a local cluster's processes vanished
    USER = "USER"  # the run exited non-zero
    SETUP = "SETUP"  # the setup failed
    RECOVERABLE_EXIT = "RECOVERABLE_EXIT"  # the run exited with a code listed in recover_on_exit_codes

    @property
    def eviction(self) -> bool:
        return self in (Failure.PREEMPTED, Failure.HARDWARE)


def classify_exit(policy: RecoveryPolicy, exit_code: int | None, failed_phase: str | None) -> Failure:
    """The failure a task that ended non-zero stands for."""
    if failed_phase == "setup":
        return Failure.SETUP
    if exit_code is not None and exit_code in policy.recover_on_exit_codes:
        return Failure.RECOVERABLE_EXIT
    return Failure.USER


@dataclass(frozen=True)
class Counters:
    """What a task has spent: relaunches, user failures, failures of any kind."""

    recoveries: int = 0
    restarts_on_errors: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Restart:
    """Relaunch. ``counters`` are the task's after this failure; ``avoid_last``:
    the last placement's region is suspect (an eviction), so the strategy
    reorders around it."""

    counters: Counters
    reason: str
    avoid_last: bool


@dataclass(frozen=True)
class Fail:
    """End the task in ``status`` (terminal), with ``counters`` spent."""

    status: Status
    reason: str
    counters: Counters


Decision = Union[Restart, Fail]


def _budget(name: str, spent: int, limit: int) -> str:
    return f"{name} {spent}/{limit}"


def after_failure(policy: RecoveryPolicy, counters: Counters, failure: Failure, what: str = "") -> Decision:
    """Restart or end a task after ``failure`` (see the module's table).

    ``what`` says what happened (e.g. "exit code 3", "preempted: the cloud says
    the node is gone"); the reason returned starts with it and names the
    budgets spent.
    """
    what = what or failure.value.lower().replace("_", " ")
    if failure is Failure.SETUP:
        return Fail(Status.FAILED_SETUP, f"{what}: the setup failed", counters)
    if failure is Failure.RECOVERABLE_EXIT:
        c = dataclasses.replace(counters, recoveries=counters.recoveries + 1)
        return Restart(c, f"{what}: listed in recover_on_exit_codes, restarting (no budget spent)", False)
    failures = counters.failures + 1
    restarts = counters.restarts_on_errors + (failure is Failure.USER)
    spent = dataclasses.replace(counters, failures=failures, restarts_on_errors=restarts)
    if failure.eviction and policy.strategy == NO_RECOVERY:
        return Fail(Status.FAILED, f"{what}; job_recovery is NO_RECOVERY", spent)
    budgets = []
    if failure is Failure.USER and policy.user_limit is not None:
        budgets.append(("max_restarts_on_errors", restarts, policy.user_limit))
    if policy.backoff_limit is not None:
        budgets.append(("backoff_limit", failures, policy.backoff_limit))
    over = [b for b in budgets if b[1] > b[2]]
    if over:
        name, n, limit = over[0]
        return Fail(Status.FAILED, f"{what}; {name} spent ({limit} allowed, this is failure {n})", spent)
    told = ", ".join(_budget(*b) for b in budgets)
    restart = dataclasses.replace(spent, recoveries=counters.recoveries + 1)
    return Restart(restart, f"{what}; relaunching" + (f" ({told})" if told else ""), failure.eviction)


def order_for_relaunch(plan: Plan, policy: RecoveryPolicy, last: Placement | None) -> Plan:
    """The plan's candidates reordered for a relaunch after ``last`` failed.

    EAGER_NEXT_REGION: the candidates in ``last``'s region go after every other
    (they stay: when nothing else is left, it comes back to them). FAILOVER: the
    candidates in ``last``'s region go first, its zone first among them. The rest
    keep the plan's rank order (so a spot-first plan tries spot first again, even
    if the last run fell back to on-demand). No candidate is added or removed.
    """
    if last is None or policy.strategy not in (EAGER_NEXT_REGION, FAILOVER):
        return plan
    cands = plan.candidates
    here = [c.cloud == last.cloud and c.region == last.region for c in cands]
    if policy.strategy == EAGER_NEXT_REGION:
        ordered = [c for c, h in zip(cands, here) if not h] + [c for c, h in zip(cands, here) if h]
    else:
        zone = [h and last.zone is not None and c.zone == last.zone for c, h in zip(cands, here)]
        ordered = ([c for c, z in zip(cands, zone) if z] + [c for c, h, z in zip(cands, here, zone) if h and not z]
                   + [c for c, h in zip(cands, here) if not h])
    return dataclasses.replace(plan, candidates=tuple(ordered))


def backoff_s(round: int, rng: random.Random, *, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S) -> float:
    """Seconds to wait before recovery round ``round`` (1 = the first retry):
    exponential, capped, full jitter (uniform in [0, min(cap, base * 2**(round-1))])."""
    ceiling = min(cap_s, base_s * (2 ** max(0, min(round - 1, 30))))
    return rng.uniform(0, ceiling)
