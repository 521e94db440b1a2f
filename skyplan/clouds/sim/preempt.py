"""Carry out a scenario's preemptions: for jobs/serve controllers and tests.

A preempted sim node behaves like a reclaimed spot VM: its processes are
killed and its ledger row says ``preempted``. The sandbox directory (and its
logs) stays until the stack is destroyed; that delete ends the row
(``deleted``, with ``preempted_at`` kept on record).
"""

from __future__ import annotations

import os
from typing import Any

from skyplan.clouds.sim import ledger


def preempt(row: dict[str, Any], *, db: str | os.PathLike[str] | None = None, grace_s: float = 2.0) -> bool:
    """Preempt one ledger row now. True if it was live."""
    from skyplan.clouds.local import runner

    if row.get("sandbox"):
        runner.stop(row["sandbox"], grace_s=grace_s)
    return ledger.mark_preempted(db, row["id"])


def preempt_due(
    home: str | os.PathLike[str] | None = None,
    *,
    db: str | os.PathLike[str] | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Preempt every live resource whose ``preempt_at`` has passed; return them."""
    path = db if db is not None else ledger.default_path(home)
    done = []
    for row in ledger.due_preemptions(path, now=now):
        if preempt(row, db=path):
            done.append({**row, "state": ledger.PREEMPTED})
    return done


def preempt_cluster(
    cluster: str,
    home: str | os.PathLike[str] | None = None,
    *,
    db: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Preempt every live node of ``cluster`` now, as the provider would
    (``skyplan sim preempt CLUSTER``); return them ([] when it has none live)."""
    path = db if db is not None else ledger.default_path(home)
    done = []
    for row in ledger.live_resources(db=path, cluster=cluster):
        if preempt(row, db=path):
            done.append({**row, "state": ledger.PREEMPTED})
    return done
