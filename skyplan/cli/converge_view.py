"""Rendering what a converging apply does to a cluster (``provision.converge`` actions).

Used by ``plan -c`` (what apply would do), ``apply``'s confirmation (the diff a
replacement asks about) and ``apply``'s closing line. Text only; nothing here
decides anything.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from skyplan.cli.views import cloud_text, money
from skyplan.provision.converge import LAST_TASK, Action, Change, Create, InPlace, NoChange, Placement, Replace

#: A changed value is cut to this many characters on its line.
VALUE_WIDTH = 60


def value_text(v: Any) -> str:
    """A changed value on one line: JSON, multi-line text as its first line and a count."""
    if v is None:
        return "(none)"
    if isinstance(v, str) and "\n" in v.strip():
        lines = v.strip().splitlines()
        text = json.dumps(lines[0]) + f" (+{len(lines) - 1} more line{'s' if len(lines) > 2 else ''})"
    else:
        text = json.dumps(v.strip() if isinstance(v, str) else v)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def change_line(c: Change) -> str:
    """``~ run: "a" -> "b"``, ``+ envs.X: "1"``, ``- envs.Y: "2"``."""
    if c.old is None:
        return f"+ {c.path}: {value_text(c.new)}"
    if c.new is None:
        return f"- {c.path}: {value_text(c.old)}"
    return f"~ {c.path}: {value_text(c.old)} -> {value_text(c.new)}"


def placement_text(p: Placement) -> str:
    from skyplan.clouds import registry

    cloud = registry.find(p.cloud)
    if cloud is not None and cloud.capabilities.runs_here:
        nodes = f", {p.num_nodes} nodes" if p.num_nodes != 1 else ""
        return f"this machine ({cloud_text(p.cloud)}{nodes})"
    where = p.region + (f" ({p.zone})" if p.zone else "")
    market = "spot" if p.use_spot else "on-demand"
    nodes = f", {p.num_nodes} nodes" if p.num_nodes != 1 else ""
    cost = f" at {money(p.hourly_cost)}/hr" if p.hourly_cost is not None else ""
    sim = " [sim]" if p.simulated else ""
    return f"{cloud_text(p.cloud)} {where}{sim} {p.instance_type} ({market}{nodes}){cost}"


def action_lines(action: Action, cluster: str) -> list[str]:
    """What applying would do to ``cluster``, as lines for people."""
    if isinstance(action, NoChange):
        return [f"Cluster '{cluster}' is up and matches the task: no changes; apply has nothing to do."]
    if isinstance(action, Create):
        if action.reason == "no such cluster":
            head = f"Cluster '{cluster}' does not exist: apply would create it"
        else:
            head = f"Cluster '{cluster}' is not up ({action.reason.removeprefix('the cluster is ')}): " \
                   "apply would launch it afresh"
        return [head + (f", first trying {placement_text(action.new)}." if action.new else ".")]
    if isinstance(action, InPlace):
        why = f"{action.reason}: " if action.reason else ""
        lines = [f"Cluster '{cluster}' is up; {why}apply would re-run the task in place (same nodes: the task is "
                 "stopped, its workdir re-synced, setup and run started again):"]
        return lines + ["  " + change_line(c) for c in action.changes]
    assert isinstance(action, Replace)
    lines = [f"Cluster '{cluster}' is up; apply would REPLACE it ({action.reason}): the new placement is launched, "
             "then the old one destroyed.",
             f"  - {placement_text(action.old)}"]
    if action.new is not None:
        same = " (the same placement, new nodes)" if action.new.same_place(action.old) else ""
        lines.append(f"  + {placement_text(action.new)}{same} (the plan's first candidate; failover may pick another)")
    return lines + ["  " + change_line(c) for c in action.changes]


def render_action(action: Action, cluster: str, file: TextIO | None = None) -> None:
    out = file or sys.stderr
    out.write("".join(line + "\n" for line in action_lines(action, cluster)))
    out.flush()


def action_json(action: Action, cluster: str) -> dict[str, Any]:
    """``{"cluster", "action", "changes", ...}``: what ``plan -c --json`` adds under ``"converge"``."""
    return {"cluster": cluster, **action.to_json()}


def done_line(result: Any) -> str | None:
    """The closing line of an apply that converged (a ``LaunchResult``), or None for a plain launch."""
    n = len(result.changes)
    what = f"{n} change{'s' if n != 1 else ''}"
    if result.action == "rerun":
        if [c.path for c in result.changes] == [LAST_TASK]:  # nothing changed: the task did not succeed last time
            what = f"last time it {result.changes[0].old}"
        return f"Cluster '{result.cluster}': the task re-runs in place ({what}; stack {result.stack})."
    if result.action == "replace":
        return f"Cluster '{result.cluster}' was replaced ({what}): now on stack {result.stack}; the old one is destroyed."
    return None

