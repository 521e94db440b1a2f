"""Converging apply: what applying a task to a cluster that is up would change.

``classify(old_task, new_task, old_placement, ...)`` is pure: it compares the
task a cluster runs (as ``skyplan.spec.task_to_dict`` wrote it) with the task
being applied, and returns one of

* ``NoChange``: same placement and spec; apply does nothing (exit 0);
* ``InPlace(changes)``: only what runs on the nodes changed (``setup``, ``run``,
  ``envs``, ``secrets``, ``workdir`` and its contents, ``file_mounts``, the
  task's ``name``): the task is re-run on the same nodes;
* ``Replace(changes, old, new, reason)``: what the nodes are changed
  (``resources``, ``num_nodes``, anything else), or the cloud cannot re-run a
  task in place: a new placement is launched, then the old one destroyed.

``A cluster whose last task did not succeed (it failed, was stopped, or was lost)
does not match the task either, even when nothing changed (Terraform's
"tainted"): ``rerun_if_tainted`` makes that a re-run (in place, or a replacement
where the cloud cannot re-run in place).

``Create`` is what ``plan -c`` reports for a cluster that is not up. Secrets are
compared by name only: skyplan keeps no trace of their values, so a value that
alone changed is not seen (``apply --rerun`` re-runs the task anyway).

The rest of the module is the little IO the comparison needs around it: the
digest of a workdir's contents, and the record a cluster's stack exports so
that another machine (a CI runner with an empty skyplan home, sharing the
backend) can see what the cluster runs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

#: Top-level task fields whose change re-runs the task on the same nodes.
RERUN_FIELDS = frozenset({"setup", "run", "envs", "secrets", "workdir", "workdir_contents", "file_mounts", "name"})
#: The pseudo-field a workdir whose contents changed (same path) shows as.
WORKDIR_CONTENTS = "workdir_contents"
#: Why a cloud without a node runtime replaces instead of re-running.
NO_RERUN_REASON = ("re-running a task in place needs a node runtime that can stop, re-sync and restart it, which "
                   "this cloud does not have: the cluster is replaced instead")
#: The pseudo-field a task that did not succeed last time shows as (it is re-run).
LAST_TASK = "last_task"
#: The pseudo-field ``apply --rerun`` shows as on a task that did not change.
RERUN_REQUESTED = "rerun"
#: What a task's last state, from its nodes, says; a task in one of these states is re-run.
TAINTED = {"failed": "the task failed last time", "stopped": "the task was stopped",
           "lost": "the task was lost (its supervisor died)"}
#: The name of the stack output that records what a cluster runs (see ``stack_record``).
RECORD_OUTPUT = "skyplan_cluster"
RECORD_VERSION = 1


@dataclass(frozen=True)
class Placement:
    """Where a cluster runs (or would run): the fields a replacement changes."""

    cloud: str
    region: str
    zone: str | None
    instance_type: str
    use_spot: bool
    num_nodes: int = 1
    hourly_cost: float | None = None
    #: The simulator stands in for the cloud.
    simulated: bool = False

    def same_place(self, other: Placement) -> bool:
        """Same cloud, region, zone, type, market and mode (cost aside)."""
        return (self.cloud, self.region, self.zone, self.instance_type, self.use_spot, self.simulated) == (
            other.cloud, other.region, other.zone, other.instance_type, other.use_spot, other.simulated)

    def to_json(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "region": self.region, "zone": self.zone, "instance_type": self.instance_type,
                "use_spot": self.use_spot, "num_nodes": self.num_nodes, "hourly_cost": self.hourly_cost,
                "simulated": self.simulated}


@dataclass(frozen=True)
class Change:
    """One changed leaf of the task: ``path`` is dotted (``envs.GREETING``,
    ``resources.candidates[0].accelerators.L4``); ``old``/``new`` are None when
    the leaf is added or removed."""

    path: str
    old: Any
    new: Any

    @property
    def field(self) -> str:
        return self.path.split(".", 1)[0].split("[", 1)[0]

    @property
    def reruns(self) -> bool:
        return self.field in RERUN_FIELDS

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class NoChange:
    kind: str = field(default="none", init=False)
    changes: tuple[Change, ...] = field(default=(), init=False)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.kind, "changes": []}


@dataclass(frozen=True)
class InPlace:
    changes: tuple[Change, ...]
    #: Why, when it is not the changes themselves (a task that failed last time).
    reason: str | None = None
    kind: str = field(default="rerun", init=False)

    def to_json(self) -> dict[str, Any]:
        reason = {"reason": self.reason} if self.reason else {}
        return {"action": self.kind, **reason, "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class Replace:
    changes: tuple[Change, ...]
    old: Placement
    #: The new plan's first candidate (failover may end elsewhere); None if unknown.
    new: Placement | None
    reason: str
    kind: str = field(default="replace", init=False)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.kind, "reason": self.reason, "changes": [c.to_json() for c in self.changes],
                "old": self.old.to_json(), "new": self.new.to_json() if self.new else None}


@dataclass(frozen=True)
class Create:
    """The cluster is not up (absent, failed, down): apply launches it."""

    new: Placement | None
    reason: str
    kind: str = field(default="create", init=False)
    changes: tuple[Change, ...] = field(default=(), init=False)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.kind, "reason": self.reason, "changes": [],
                "new": self.new.to_json() if self.new else None}


Action = Union[NoChange, InPlace, Replace, Create]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a JSON value by dotted path. An empty mapping or list is a leaf
    whose value is None: an absent field, a null and an empty one are the same
    (a record written before a field existed must not look changed)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k in value:
            out.update(flatten(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: None if isinstance(value, (Mapping, list)) else value}


def diff_tasks(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    """Every changed leaf, in the order of the new task's fields (then removed ones).
    A field missing on one side compares as null (an older record lacks newer fields)."""
    changes = []
    for key in dict.fromkeys([*new, *old]):
        a, b = flatten(old.get(key), key), flatten(new.get(key), key)
        for path in dict.fromkeys([*b, *a]):
            if a.get(path) != b.get(path):
                changes.append(Change(path, a.get(path), b.get(path)))
    return tuple(changes)


def classify(old_task: Mapping[str, Any], new_task: Mapping[str, Any], old_placement: Placement, *,
             new_placement: Placement | None = None, old_workdir: str | None = None,
             new_workdir: str | None = None, rerun_in_place: bool = True) -> Action:
    """What applying ``new_task`` to a cluster up on ``old_placement`` with
    ``old_task`` does (see the module docstring).

    ``new_placement``: the new plan's first candidate, shown in a replacement's
    diff; a different mode (simulated or not) is a replacement by itself.
    ``old_workdir``/``new_workdir``: digests of the workdir's contents
    (``workdir_digest``); compared when both are known. ``rerun_in_place``: the
    cloud the cluster runs on can re-run a task on its nodes.
    """
    changes = list(diff_tasks(old_task, new_task))
    if old_workdir is not None and new_workdir is not None and old_workdir != new_workdir:
        changes.append(Change(WORKDIR_CONTENTS, old_workdir[:12], new_workdir[:12]))
    found = tuple(changes)
    if new_placement is not None and new_placement.simulated != old_placement.simulated:
        mode = "simulated" if new_placement.simulated else "real"
        return Replace(found, old_placement, new_placement, f"the new placement is {mode}")
    structural = [c for c in found if not c.reruns]
    if structural:
        fields = ", ".join(dict.fromkeys(c.field for c in structural))
        return Replace(found, old_placement, new_placement, f"{fields} changed")
    if not found:
        return NoChange()
    if not rerun_in_place:
        return Replace(found, old_placement, new_placement or old_placement, NO_RERUN_REASON)
    return InPlace(found)


def rerun_if_tainted(action: Action, phase: str | None, exit_code: int | None, old_placement: Placement, *,
                     new_placement: Placement | None = None, rerun_in_place: bool = True) -> Action:
    """``action`` (``classify``'s), unless it is ``NoChange`` and the cluster's last
    task did not succeed (``phase``: its state from the nodes, one of ``TAINTED``;
    None or any other when it ran, succeeded or cannot be read): then the task is
    re-run, as ``apply --rerun`` would, with a ``last_task`` change saying why."""
    if not isinstance(action, NoChange) or phase not in TAINTED:
        return action
    code = f" (exit code {exit_code})" if exit_code is not None and phase == "failed" else ""
    change = Change(LAST_TASK, f"{phase}{code}", "re-run")
    reason = f"{TAINTED[phase]}{code}"
    if not rerun_in_place:
        return Replace((change,), old_placement, new_placement or old_placement, NO_RERUN_REASON)
    return InPlace((change,), reason)


def forced(action: Action) -> bool:
    """A re-run that no task field asks for (``--rerun``, a task that failed last time):
    the node inputs are the same, so the re-run must be forced."""
    return isinstance(action, (InPlace, Replace)) and bool(action.changes) and all(
        c.path in (LAST_TASK, RERUN_REQUESTED) for c in action.changes)


# --- around the comparison (IO) --------------------------------------------------------


def workdir_digest(path: str | None) -> str | None:
    """sha256 of a workdir's contents: every entry's relative path, kind, executable
    bit and bytes (a link's text), in sorted order; None without a workdir. Times
    are left out: a fresh checkout of the same files (CI) is no change."""
    if not path or not os.path.isdir(path):
        return None
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, path)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(full):
                h.update(b"L\0" + rel.encode() + b"\0" + os.readlink(full).encode() + b"\0")
            elif os.path.isdir(full):
                h.update(b"D\0" + rel.encode() + b"\0")
            elif os.path.isfile(full):
                mode = b"x" if os.access(full, os.X_OK) else b"-"
                h.update(b"F\0" + rel.encode() + b"\0" + mode + b"\0")
                with open(full, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                h.update(b"\0")
    return h.hexdigest()


def stack_record(cluster: str, task: Mapping[str, Any], task_sha256: str, workdir_sha256: str | None,
                 placement: Mapping[str, Any], num_nodes: int, simulate: str | None) -> dict[str, Any]:
    """What a cluster's stack exports as ``RECORD_OUTPUT``: enough for another
    machine sharing the backend to compare a task with the cluster (no secret
    value: the task holds secret names only)."""
    return {"version": RECORD_VERSION, "cluster": cluster, "task": dict(task), "task_sha256": task_sha256,
            "workdir_sha256": workdir_sha256, "placement": dict(placement), "num_nodes": int(num_nodes),
            "simulate": simulate}


def read_record(outputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record in a stack's outputs, if it is one this version reads."""
    rec = outputs.get(RECORD_OUTPUT)
    if isinstance(rec, Mapping) and rec.get("version") == RECORD_VERSION and isinstance(rec.get("task"), Mapping) \
            and isinstance(rec.get("placement"), Mapping):
        return dict(rec)
    return None
