"""How the task a cluster runs is doing, as ``apply`` and ``status`` report it.

One source for every mode: the cluster's log source (``LogSource.status()``, for
the clouds whose task can be read from here: local and sim). ``apply`` exits 7
exactly when this says ``failed``, with or without ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

#: LogSource phases that mean the task ended badly on some node (``lost``: its
#: supervisor died without recording an end; ``stopped``: it was stopped from outside).
FAILED_PHASES = ("failed", "lost", "stopped")
RUNNING_PHASES = ("starting", "setup", "run")


@dataclass(frozen=True)
class TaskOutcome:
    """``status``: succeeded | failed | running, or None when skyplan does not know
    (the cloud's task cannot be read from here, or apply did not watch it: --detach).
    ``exit_code``: the task's exit code once it ended (None if it never reported one).
    ``node``: the rank of the node that failed (None unless failed).
    ``failed_phase``: ``setup`` or ``run``, where that node's task failed (when known)."""

    status: str | None = None
    exit_code: int | None = None
    node: int | None = None
    failed_phase: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "node": self.node}

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> "TaskOutcome":
        """From a LogSource's ``status()`` (``{"phase", "returncode", "nodes"}``)."""
        if not status:
            return cls()
        phase = status.get("phase")
        if phase == "done":
            return cls("succeeded", 0)
        if phase in RUNNING_PHASES:
            return cls("running")
        if phase in FAILED_PHASES:
            nodes = list(status.get("nodes") or ())
            for i, n in enumerate(nodes):
                if isinstance(n, Mapping) and n.get("phase") == phase:
                    rank = n.get("node_rank")
                    return cls("failed", _int(n.get("returncode", status.get("returncode"))),
                               _int(rank) if rank is not None else i, n.get("failed_phase") or None)
            return cls("failed", _int(status.get("returncode")))
        return cls()  # absent, or a phase this version does not know


#: A node's state as ``status --json`` lists it: the protocol's states (``state``, from the
#: node runtime) or the sandbox runner's phases, folded into the four of the contract.
_NODE_STATUS = {"starting": "running", "setup": "running", "run": "running", "running": "running",
                "done": "succeeded", "succeeded": "succeeded", "failed": "failed", "stopped": "failed",
                "lost": "failed", "unreachable": "unreachable"}


def node_states(status: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``status --json``'s ``nodes``: ``[{rank, status, exit_code}]`` from a LogSource's
    ``status()`` (``[]`` when the task cannot be read from here). ``status`` is
    running, succeeded, failed or unreachable; a node without a sandbox (absent)
    is left out."""
    out = []
    for i, n in enumerate((status or {}).get("nodes") or ()):
        if not isinstance(n, Mapping):
            continue
        state = _NODE_STATUS.get(str(n.get("state") or n.get("phase") or ""))
        if state is None:
            continue
        rank = _int(n.get("node_rank", n.get("rank")))
        out.append({"rank": i if rank is None else rank, "status": state, "exit_code": _int(n.get("returncode"))})
    return sorted(out, key=lambda n: n["rank"])


def _int(x: Any) -> int | None:
    try:
        return None if x is None else int(x)
    except (TypeError, ValueError):
        return None


def task_outcome(source: Any) -> TaskOutcome:
    """The outcome now, from a LogSource (None: the task cannot be read from here)."""
    return TaskOutcome() if source is None else TaskOutcome.from_status(source.status())
