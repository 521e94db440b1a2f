"""Renderers. Each view turns a library value into text for people or JSON.

Nothing here decides anything: a field shown only for display never steers apply.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, TextIO

from skyplan.clouds import registry
from skyplan.planner.candidates import Candidate


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


num = _num


def _console(file: TextIO | None = None, *, soft_wrap: bool = False):
    from rich.console import Console

    out = file or sys.stdout
    # Piped output (CI logs, files) must not be cut at 80 columns.
    width = None if out.isatty() else 240
    return Console(file=out, highlight=False, soft_wrap=soft_wrap, width=width)


def write_json(doc: Any, file: TextIO | None = None) -> None:
    out = file or sys.stdout
    out.write(json.dumps(doc, indent=2) + "\n")
    out.flush()


def write_json_line(doc: Any, file: TextIO | None = None) -> None:
    out = file or sys.stdout
    out.write(json.dumps(doc, separators=(",", ":")) + "\n")
    out.flush()


def money(x: float) -> str:
    """Dollars with enough digits that a sub-cent price is not shown as $0.00."""
    return f"${x:.2f}" if x >= 0.1 or x == 0 else f"${x:.4f}"


def accel_text(c: Candidate) -> str:
    return ", ".join(f"{n}:{_num(k)}" for n, k in c.accelerators) or "-"


def instance_text(c: Candidate) -> str:
    return f"{c.instance_type}{'[Spot]' if c.use_spot else ''}"


def cloud_text(name: str) -> str:
    return registry.display(name)


def _runs_here(name: str | None) -> bool:
    cloud = registry.find(name)
    return cloud is not None and cloud.capabilities.runs_here


def ago(then: str, now: datetime | None = None) -> str:
    """``3m ago`` / ``1h 5m ago`` for an ISO-8601 timestamp (display only)."""
    try:
        at = datetime.fromisoformat(then.replace("Z", "+00:00"))
    except ValueError:
        return then
    minutes = max(0, int(((now or datetime.now(timezone.utc)) - at).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m ago"
    return f"{minutes // 60}h {minutes % 60}m ago" if minutes % 60 else f"{minutes // 60}h ago"


def recent_text(c: Candidate, now: datetime | None = None) -> str:
    """``CAPACITY? 3m ago``: the capacity memory's mark on a candidate, or empty."""
    rf = c.recent_failure
    return f"{rf.kind.upper()}? {ago(rf.at, now)}" if rf else ""


def candidates_table(cands: Iterable[Candidate], *, chosen_rank: int | None = 1, title: str | None = None,
                     now: datetime | None = None):
    from rich import box
    from rich.table import Table

    cands = list(cands)
    marks = [recent_text(c, now) for c in cands]
    t = Table(box=box.SIMPLE_HEAD, title=title, show_edge=False, pad_edge=False)
    cols = [("CLOUD", "left"), ("INSTANCE", "left"), ("vCPUs", "right"), ("Mem(GB)", "right"),
            ("ACCELERATORS", "left"), ("REGION/ZONE", "left"), ("COST ($/hr)", "right"), ("CHOSEN", "center")]
    if any(marks):  # only when the capacity memory has something to say
        cols.append(("RECENT", "left"))
    for col, just in cols:
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for c, mark in zip(cands, marks):
        row = [cloud_text(c.cloud), instance_text(c), _num(c.vcpus), _num(round(c.memory_gib, 1)),
               accel_text(c), c.zone or c.region, money(c.hourly_cost)[1:], "✔" if c.rank == chosen_rank else ""]
        t.add_row(*row, *([mark] if any(marks) else []))
    return t


def render_plan(plan, *, top: int = 10, file: TextIO | None = None) -> None:
    con = _console(file)
    task = plan.task
    chosen = plan.chosen
    con.print(
        f"[bold]Task:[/bold] {task.name or '(unnamed)'}   [bold]Nodes:[/bold] {task.num_nodes}   "
        f"[bold]Catalog:[/bold] {plan.catalog.fetched_at}   "
        f"[bold]Estimated cost:[/bold] {money(chosen.hourly_cost)}/hr"
    )
    shown = plan.candidates[: max(0, top)] if top else plan.candidates
    con.print(candidates_table(shown))
    con.print(f"Shown {len(shown)} of {len(plan.candidates)} candidates")
    recent = sum(1 for c in plan.candidates if c.recent_failure)
    if recent:
        con.print(f"{recent} candidate{'s' if recent != 1 else ''} ranked last: a recent capacity or quota failure "
                  "is remembered there (--fresh ignores the memory)")


def render_explain(explanations, file: TextIO | None = None, *, width: int | None = None) -> None:
    """One table for every alternative (each any_of / ordered entry x accelerator):
    a section per alternative, its constraints in the order they apply, and the
    offers each removed and left. The starting catalog, the same for every
    alternative, is said once in the title. Fits 80 columns (long labels fold)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    con = _console(file) if width is None else Console(file=file or sys.stdout, highlight=False, width=width)
    firsts = {(steps[0].constraint, steps[0].remaining) for _, steps in explanations if steps}
    common = next(iter(firsts)) if len(firsts) == 1 else None
    n = len(explanations)
    title = f"Explain: {n} alternative{'s' if n != 1 else ''}"
    if common:
        title += f", each starting from {common[0]}: {common[1]} offers"
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", show_edge=False, pad_edge=False)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("ALTERNATIVE", overflow="fold", ratio=3)
    t.add_column("CONSTRAINT", overflow="fold", ratio=4)
    t.add_column("REMOVED", justify="right", no_wrap=True)
    t.add_column("LEFT", justify="right", no_wrap=True)
    for i, (label, steps) in enumerate(explanations, 1):
        rows = steps[1:] if common and len(steps) > 1 else steps
        for j, s in enumerate(rows):
            emptied = s.remaining == 0 and s.removed > 0
            t.add_row(str(i) if j == 0 else "", label if j == 0 else "", s.constraint, str(s.removed),
                      str(s.remaining), style="bold" if emptied else None)
        if i < n:
            t.add_section()
    con.print(t)


def explain_json(explanations) -> list[dict]:
    """The same data as the table: one object per alternative, numbered as its ``#`` column."""
    return [
        {"alternative": i, "request": label,
         "steps": [{"constraint": s.constraint, "removed": s.removed, "remaining": s.remaining} for s in steps]}
        for i, (label, steps) in enumerate(explanations, 1)
    ]


# --- show-gpus -----------------------------------------------------------------


def render_accelerator_list(data: dict[str, list[float]], file: TextIO | None = None) -> None:
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False)
    t.add_column("ACCELERATOR")
    t.add_column("AVAILABLE QUANTITIES")
    for name, counts in data.items():
        t.add_row(name, ", ".join(_num(c) for c in counts))
    _console(file).print(t)


def render_gpu_rows(rows, file: TextIO | None = None) -> None:
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("CLOUD", "INSTANCE_TYPE", "ACCELERATOR", "QTY", "DEVICE_MEM", "vCPUs", "HOST_MEM",
                "HOURLY_PRICE", "HOURLY_SPOT_PRICE", "CHEAPEST_REGION"):
        t.add_column(col)
    for r in rows:
        t.add_row(cloud_text(r.cloud), r.instance_type, r.accelerator, _num(r.count),
                  f"{_num(round(r.device_memory_gib, 1))}GB" if r.device_memory_gib else "-",
                  _num(r.vcpus), f"{_num(round(r.memory_gib, 1))}GB",
                  f"$ {r.price:.3f}" if r.price is not None else "-",
                  f"$ {r.spot_price:.3f}" if r.spot_price is not None else "-",
                  r.cheapest_region or "-")
    _console(file).print(t)


# --- apply ---------------------------------------------------------------------


def _where(c: Candidate) -> str:
    return f"{cloud_text(c.cloud)} {c.region}" + (f" ({c.zone})" if c.zone else "")


class ApplyPrinter:
    """Turns launch events (``skyplan.provision.events``) into lines in the spirit of the seed logs."""

    def __init__(self, file: TextIO | None = None, *, simulated: bool = False) -> None:
        self.sim = r" \[sim]" if simulated else ""  # escaped: rich would read [sim] as markup and drop it
        # Log lines: long provider messages stay on one line, as in the seed logs.
        self.con = _console(file or sys.stderr, soft_wrap=True)

    def __call__(self, e: Any) -> None:
        from skyplan.provision.events import AttemptDone, Launching, Preflight, Recover

        if isinstance(e, Preflight) and not e.ok:
            reason = e.reason.removeprefix(f"{cloud_text(e.cloud)}: ")
            self.con.print(f"[yellow]Skipping {cloud_text(e.cloud)}:[/yellow] {reason}; to enable it: {e.fix}")
        elif isinstance(e, Recover):
            self.con.print(f"Cleaning up stack {e.stack} left by an earlier run ({e.status})")
        elif isinstance(e, Launching):
            c = e.candidate
            if _runs_here(c.cloud):
                self.con.print(f"Launching on this machine ({c.cloud})")
            else:
                spot = " [Spot]" if c.use_spot else ""
                self.con.print(f"Launching on {_where(c)}{self.sim} {c.instance_type}{spot}")
        elif isinstance(e, AttemptDone) and not e.attempt.ok:
            a, cls = e.attempt, e.attempt.classification
            msg = ((cls.message if cls else "") or "").strip()
            tail = ""
            if cls is not None and cls.kind.value == "transient":
                tail = " - retrying" if a.block is None else ""
            if a.block is not None:
                tail = f" - blocking {a.block.describe()}" + (f" (widened to {a.widened})" if a.widened else "")
            code = (cls.code or cls.kind.value) if cls else "failure"
            from rich.markup import escape  # provider texts may hold [brackets]

            self.con.print(f"[yellow]Got {escape(code)} in {a.candidate.zone or a.candidate.region}[/yellow] "
                           f"(message: {escape(msg)}){escape(tail)}", markup=True, highlight=False)
        elif isinstance(e, AttemptDone):
            c = e.attempt.candidate
            where = "this machine" if _runs_here(c.cloud) else _where(c) + self.sim
            self.con.print(f"[green]Provisioned on {where}[/green] (stack {e.attempt.detail.get('stack')})")


def render_launched(result, file: TextIO | None = None) -> None:
    """The closing line of a successful ``apply`` (a ``LaunchResult``)."""
    out = file or sys.stderr
    c = result.placement
    if result.status == "ALREADY_UP":
        out.write(f"Cluster '{result.cluster}' is already up with this task (stack {result.stack}).\n")
        return
    sim = " (simulated)" if result.simulated else ""
    out.write(f"Cluster '{result.cluster}' is UP on {cloud_text(c.cloud)} {c.zone or c.region}{sim} "
              f"{instance_text(c)} at {money(c.hourly_cost)}/hr.\n")


def render_attempts(attempts: list[dict], file: TextIO | None = None) -> None:
    """The attempt table of a failed apply, from the attempts' JSON lines (``events.attempt_json``)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, title="Attempts", title_justify="left")
    for col in ("#", "CLOUD", "REGION/ZONE", "INSTANCE", "OUTCOME", "KIND", "SCOPE", "CAUSE"):
        t.add_column(col, overflow="fold")
    for a in attempts:
        t.add_row(str(a["number"]), cloud_text(a["cloud"]), a.get("zone") or a["region"],
                  a["instance_type"] + ("[Spot]" if a["use_spot"] else ""), a["outcome"], a.get("kind") or "-",
                  a.get("scope") or "-",
                  escape((a.get("code") or "") + (f": {a['message']}" if a.get("message") else "")
                         + (f" (widened to {a['widened']})" if a.get("widened") else "")))
    _console(file or sys.stderr).print(t)


def render_status(rows, file: TextIO | None = None, task_phases: dict | None = None) -> None:
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("NAME", "STATUS", "TASK", "CLOUD", "REGION/ZONE", "INSTANCE", "COST ($/hr)", "STACK"):
        t.add_column(col)
    for r in rows:
        task = (task_phases or {}).get(r.name) or "-"
        cloud = cloud_text(r.cloud or "-") + (r" \[sim]" if r.simulate and registry.is_simulatable(r.cloud) else "")
        t.add_row(r.name, r.status, task, cloud, r.zone or r.region or "-",
                  (r.instance_type or "-") + ("[Spot]" if r.use_spot else ""),
                  f"{r.hourly_cost:.2f}" if r.hourly_cost is not None else "-", r.stack or "-")
    con = _console(file)
    if not rows:
        con.print("No clusters.")
    else:
        con.print(t)
