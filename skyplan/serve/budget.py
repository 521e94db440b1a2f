"""The failure budget of a service's versions: when a replacement may launch, and when to give up.

A replica that fails on its own account (its task or setup ended, it never
passed its probe, it stayed NOT_READY, a launch error other than capacity)
spends its version's budget; a preemption, a node the cloud took, or a launch
that found no capacity does not. Each such failure makes the next launches of
that version wait ``backoff_s``, doubling per failure in a row (up to
``BACKOFF_CAP`` times); a replica of the version that becomes READY resets
both. After ``max_failures`` failures in a row of a version none of whose
replicas was ever READY, the budget is ``exhausted``: the controller gives the
version up (the service FAILED, or an update abandoned while an older version
serves). A new version (``serve update``) starts with a full budget.

Pure bookkeeping on the controller's thread: no I/O, the time is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

#: The back-off doubles per failure in a row, up to this many times ``backoff_s``.
BACKOFF_CAP = 8


@dataclass
class VersionBudget:
    failures: int = 0  # replicas of the version that failed in a row (since one became READY)
    ever_ready: bool = False  # one of its replicas passed its probe (in this controller's life)
    retry_at: float | None = None  # its launches wait until then
    last_replica: int | None = None
    last_reason: str = ""


class FailureBudget:
    """Per-version budgets (see the module docstring)."""

    def __init__(self, backoff_s: float, max_failures: int) -> None:
        self.backoff_s = float(backoff_s)
        self.max_failures = max(1, int(max_failures))
        self.versions: dict[int, VersionBudget] = {}

    def of(self, version: int) -> VersionBudget:
        return self.versions.setdefault(int(version), VersionBudget())

    def failed(self, version: int, replica_id: int, reason: str, now: float, *, fatal: bool = False) -> float | None:
        """Spend one failure (``fatal``: the whole budget, e.g. a task that cannot run as
        written). The seconds the version's next launch waits, or None once exhausted."""
        b = self.of(version)
        b.failures = max(b.failures + 1, self.max_failures if fatal else 0)
        b.last_replica, b.last_reason = int(replica_id), reason
        if self.exhausted(version):
            b.retry_at = None
            return None
        wait = self.backoff_s * min(BACKOFF_CAP, 2 ** (b.failures - 1))
        b.retry_at = now + wait
        return wait

    def ready(self, version: int) -> None:
        """A replica of ``version`` passed its probe: the streak and the back-off end."""
        b = self.of(version)
        b.failures, b.ever_ready, b.retry_at = 0, True, None

    def held(self, version: int, now: float) -> bool:
        """Whether launches of ``version`` wait for its back-off."""
        b = self.versions.get(int(version))
        return b is not None and b.retry_at is not None and now < b.retry_at

    def exhausted(self, version: int) -> bool:
        b = self.versions.get(int(version))
        return b is not None and not b.ever_ready and b.failures >= self.max_failures

    def due(self) -> list[float]:
        """When held launches may go (for the controller's nap)."""
        return [b.retry_at for b in self.versions.values() if b.retry_at is not None]

    def verdict(self, version: int) -> str:
        """Why ``version`` was given up: its failures and the last one, for the service's reason."""
        b = self.of(version)
        if b.failures <= 1:
            return f"replica {b.last_replica} failed, none READY ({b.last_reason})"
        return f"{b.failures} replicas failed in a row, none READY (the last, replica {b.last_replica}: " \
               f"{b.last_reason})"


# The service events a give-up records (the controller writes them; ``given_up`` reads them back
# after a restart, so a FAILED service is not launched again by its next controller).
_FAILED = re.compile(r"^version (\d+) failed: ")
_ABANDONED = re.compile(r"^update to version (\d+) abandoned, version (\d+) keeps serving: ")


def failed_reason(version: int, verdict: str, next_step: str) -> str:
    return f"version {version} failed: {verdict}; {next_step}"


def abandoned_reason(version: int, serving: int, verdict: str, next_step: str) -> str:
    return f"update to version {version} abandoned, version {serving} keeps serving: {verdict}; {next_step}"


def given_up(events: Iterable[tuple[str, str]]) -> dict[int, int | None]:
    """From the service's own events ``(status, reason)``, oldest first: each version
    given up -> the older version kept serving (None: the service FAILED)."""
    out: dict[int, int | None] = {}
    for status, reason in events:
        m = _FAILED.match(reason)
        if m is not None and status == "FAILED":
            out[int(m.group(1))] = None
            continue
        m = _ABANDONED.match(reason)
        if m is not None:
            out[int(m.group(1))] = int(m.group(2))
    return out


__all__ = ["BACKOFF_CAP", "FailureBudget", "VersionBudget", "abandoned_reason", "failed_reason", "given_up"]
