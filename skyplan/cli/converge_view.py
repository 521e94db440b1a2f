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


#: A line of a text diff is cut to this many characters, around its first change.
LINE_WIDTH = 72
#: Characters kept before a line's first change when the line is cut.
LEAD = 24
#: A text diff shows at most this many lines (then how many more changed).
MAX_DIFF_LINES = 12
#: Lines shown of each side of one changed block (so a rewrite shows both sides).
BLOCK_LINES = 4


def change_line(c: Change) -> str:
    """``~ run: "a" -> "b"``, ``+ envs.X: "1"``, ``- envs.Y: "2"`` (a long or multi-line
    text: ``change_lines``, joined)."""
    return "\n".join(change_lines(c))


def change_lines(c: Change) -> list[str]:
    """One change, for people. A text that is long or spans lines, on both sides, is
    a line diff below its path (``-``/``+`` first, so a markdown diff block colours
    them), each line cut around its first change: the changed part always shows."""
    if c.old is None:
        return [f"+ {c.path}: {value_text(c.new)}"]
    if c.new is None:
        return [f"- {c.path}: {value_text(c.old)}"]
    if isinstance(c.old, str) and isinstance(c.new, str) and any(
            "\n" in v.strip() or len(json.dumps(v.strip())) > VALUE_WIDTH for v in (c.old, c.new)):
        return [f"~ {c.path}:"] + text_diff(c.old, c.new)
    return [f"~ {c.path}: {value_text(c.old)} -> {value_text(c.new)}"]


def _cut(line: str, start: int) -> str:
    """``line`` from about ``start``, at most LINE_WIDTH characters, ``…`` where it was cut."""
    if len(line) <= LINE_WIDTH:
        return line
    if start <= 0:
        return line[:LINE_WIDTH - 1] + "…"
    if len(line) - start <= LINE_WIDTH - 1:
        return "…" + line[start:]
    return "…" + line[start:start + LINE_WIDTH - 2] + "…"


def text_diff(old: str, new: str) -> list[str]:
    """A line diff of two texts (``difflib``): changed lines as ``-   line`` / ``+   line``,
    one line of context around them as ``    line``, ``    …`` between distant
    changes; a replaced line and its replacement are cut at the same place, a
    little before their first difference. At most MAX_DIFF_LINES lines."""
    import difflib

    a, b = old.strip().splitlines() or [""], new.strip().splitlines() or [""]
    out: list[str] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(1):
        if out:
            out.append("    …")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += ["    " + _cut(line, 0) for line in a[i1:i2]]
                continue
            olds, news = a[i1:i2], b[j1:j2]
            starts = [0] * max(len(olds), len(news))
            for k, (x, y) in enumerate(zip(olds, news)):
                same = next((n for n, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
                # Both cut at one place, no later than where both ends would show whole.
                starts[k] = max(0, min(same - LEAD, max(len(x), len(y)) - (LINE_WIDTH - 1)))
            for mark, side in (("-", olds), ("+", news)):  # a long block: its first lines, then a count
                out += [f"{mark}   " + _cut(line, starts[k]) for k, line in enumerate(side[:BLOCK_LINES])]
                if len(side) > BLOCK_LINES:
                    gone = "removed" if mark == "-" else "added"
                    out.append(f"{mark}   … ({len(side) - BLOCK_LINES} more lines {gone})")
    if len(out) > MAX_DIFF_LINES:
        rest = len(out) - (MAX_DIFF_LINES - 1)
        out = out[:MAX_DIFF_LINES - 1] + [f"    … ({rest} more line{'s' if rest != 1 else ''} of the diff)"]
    return out


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
        return lines + ["  " + line for c in action.changes for line in change_lines(c)]
    assert isinstance(action, Replace)
    lines = [f"Cluster '{cluster}' is up; apply would REPLACE it ({action.reason}): the new placement is launched, "
             "then the old one destroyed.",
             f"  - {placement_text(action.old)}"]
    if action.new is not None:
        same = " (the same placement, new nodes)" if action.new.same_place(action.old) else ""
        lines.append(f"  + {placement_text(action.new)}{same} (the plan's first candidate; failover may pick another)")
    return lines + ["  " + line for c in action.changes for line in change_lines(c)]


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

