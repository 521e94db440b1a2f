"""Renderers. Each view turns a library value into text for people or JSON.

Nothing here decides anything: a field shown only for display never steers apply.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, TextIO

from skyplan.clouds import registry
from skyplan.planner.candidates import Candidate


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


num = _num


def _console(file: TextIO | None = None, *, soft_wrap: bool = False):
    # The terminal's width, or COLUMNS, or wide when piped (``tables.console_width``).
    from skyplan.cli.tables import console

    return console(file, soft_wrap=soft_wrap)


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


def place_text(cloud: str, region: str | None, zone: str | None, *, text: str = "",
               outputs: Mapping[str, Any] | None = None) -> str:
    """Where a placement is, for people. The zone when its name holds the region
    (``us-central1-a``), else the region and the zone (``us-west-2 usw2-az1``).
    A zone the catalog spells otherwise than people do shows as its name with
    the catalog's spelling in brackets (``us-east-1a [use1-az1]``) where the
    cloud knows the name: from the provider's own ``text`` about a request
    there, or a stack's ``outputs`` (``Cloud.zone_name``)."""
    if not zone:
        return region or "-"
    found = registry.find(cloud)
    name = found.zone_name(zone, region or "", text=text, outputs=outputs) if found is not None else None
    label = f"{name} [{zone}]" if name and name != zone else zone
    return label if not region or label.startswith(region) else f"{region} {label}"


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


def candidate_columns(cands: Iterable[Candidate], *, chosen_rank: int | None = 1,
                      now: datetime | None = None) -> tuple[list, list[list[str]]]:
    """The plan table's columns (``tables.Col``) and rows. Too narrow a terminal
    drops, in this order: CHOSEN (the first row is the chosen one), Mem(GB),
    vCPUs, RECENT; REGION/ZONE and ACCELERATORS wrap at their spaces."""
    from skyplan.cli.tables import Col

    cands = list(cands)
    marks = [recent_text(c, now) for c in cands]
    cols = [Col("CLOUD"), Col("INSTANCE"), Col("vCPUs", "right", drop=3), Col("Mem(GB)", "right", drop=2),
            Col("ACCELERATORS", wrap=True), Col("REGION/ZONE", wrap=True), Col("COST ($/hr)", "right"),
            Col("CHOSEN", "center", drop=1)]
    if any(marks):  # only when the capacity memory has something to say
        cols.append(Col("RECENT", wrap=True, drop=4))
    rows = []
    for c, mark in zip(cands, marks):
        row = [cloud_text(c.cloud), instance_text(c), _num(c.vcpus), _num(round(c.memory_gib, 1)),
               accel_text(c), place_text(c.cloud, c.region, c.zone), money(c.hourly_cost)[1:],
               "✔" if c.rank == chosen_rank else ""]
        rows.append(row + ([mark] if any(marks) else []))
    return cols, rows


def render_plan(plan, *, top: int = 10, file: TextIO | None = None) -> None:
    from skyplan.cli.tables import print_table

    con = _console(file)
    task = plan.task
    chosen = plan.chosen
    con.print(
        f"[bold]Task:[/bold] {task.name or '(unnamed)'}   [bold]Nodes:[/bold] {task.num_nodes}   "
        f"[bold]Catalog:[/bold] {plan.catalog.fetched_at}   "
        f"[bold]Estimated cost:[/bold] {money(chosen.hourly_cost)}/hr"
    )
    shown = plan.candidates[: max(0, top)] if top else plan.candidates
    cols, rows = candidate_columns(shown)
    lay = print_table(con, cols, rows)
    # A narrow terminal drops the CHOSEN column first: say in words which row it marked.
    chosen = "" if any(cols[i].header == "CHOSEN" for i in lay.shown) else "; the first is the chosen one"
    con.print(f"Shown {len(shown)} of {len(plan.candidates)} candidates{chosen}")
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
    from skyplan.cli.tables import Col, print_table

    rows = [[name, ", ".join(_num(c) for c in counts)] for name, counts in data.items()]
    print_table(_console(file), [Col("ACCELERATOR"), Col("AVAILABLE QUANTITIES", wrap=True, prose=True)], rows)


#: show-gpus columns, and the order a narrow terminal drops them in (lowest first).
GPU_COLUMNS = ("CLOUD", "INSTANCE_TYPE", "ACCELERATOR", "QTY", "DEVICE_MEM", "vCPUs", "HOST_MEM",
               "HOURLY_PRICE", "HOURLY_SPOT_PRICE", "CHEAPEST_REGION")
GPU_DROP_ORDER = ("DEVICE_MEM", "HOST_MEM", "vCPUs", "CHEAPEST_REGION", "HOURLY_SPOT_PRICE")


def render_gpu_rows(rows, file: TextIO | None = None) -> None:
    from skyplan.cli.tables import Col, print_table

    right = {"QTY", "vCPUs", "HOURLY_PRICE", "HOURLY_SPOT_PRICE"}
    cols = [Col(h, "right" if h in right else "left",
                drop=GPU_DROP_ORDER.index(h) + 1 if h in GPU_DROP_ORDER else None) for h in GPU_COLUMNS]
    cells = [[cloud_text(r.cloud), r.instance_type, r.accelerator, _num(r.count),
              f"{_num(round(r.device_memory_gib, 1))}GB" if r.device_memory_gib else "-",
              _num(r.vcpus), f"{_num(round(r.memory_gib, 1))}GB",
              f"$ {r.price:.3f}" if r.price is not None else "-",
              f"$ {r.spot_price:.3f}" if r.spot_price is not None else "-",
              r.cheapest_region or "-"] for r in rows]
    print_table(_console(file), cols, cells)


# --- apply ---------------------------------------------------------------------


def render_launched(result, file: TextIO | None = None) -> None:
    """The closing line of a successful ``apply`` (a ``LaunchResult``)."""
    out = file or sys.stderr
    c = result.placement
    if result.status == "ALREADY_UP":
        out.write(f"Cluster '{result.cluster}' is already up with this task (stack {result.stack}).\n")
        return
    sim = " (simulated)" if result.simulated else ""
    where = place_text(c.cloud, c.region, c.zone, outputs=result.outputs)
    if _runs_here(c.cloud):  # "on Local local local" said nothing: it is this machine
        line = f"Cluster '{result.cluster}' is UP on this machine ({c.cloud})."
    else:
        line = (f"Cluster '{result.cluster}' is UP on {cloud_text(c.cloud)} {where}{sim} "
                f"{instance_text(c)} at {money(c.hourly_cost)}/hr.")
    out.write(_fit_terminal(line, out) + "\n")


def _fit_terminal(line: str, out: TextIO) -> str:
    """``line`` wrapped between words on a terminal narrower than it (a terminal
    would cut a word or a price anywhere); unchanged in a pipe or a log."""
    from skyplan.cli.tables import console_width, wrap_line

    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "\n".join(wrap_line(line, console_width(out))) if tty else line


#: status columns; a narrow terminal drops STACK, then the cost, then the instance type.
STATUS_DROP_ORDER = ("STACK", "COST ($/hr)", "INSTANCE")


def render_status(rows, file: TextIO | None = None, task_phases: dict | None = None) -> None:
    from skyplan.cli.tables import Col, print_table

    con = _console(file)
    if not rows:
        con.print("No clusters.")
        return
    headers = ("NAME", "STATUS", "TASK", "CLOUD", "REGION/ZONE", "INSTANCE", "COST ($/hr)", "STACK")
    cols = [Col(h, "right" if h.startswith("COST") else "left", wrap=h == "REGION/ZONE",
                drop=STATUS_DROP_ORDER.index(h) + 1 if h in STATUS_DROP_ORDER else None) for h in headers]
    cells = []
    for r in rows:
        task = (task_phases or {}).get(r.name) or "-"
        cloud = cloud_text(r.cloud or "-") + (" [sim]" if r.simulate and registry.is_simulatable(r.cloud) else "")
        cells.append([r.name, r.status, task, cloud, place_text(r.cloud or "", r.region, r.zone, outputs=r.outputs),
                      (r.instance_type or "-") + ("[Spot]" if r.use_spot else ""),
                      f"{r.hourly_cost:.2f}" if r.hourly_cost is not None else "-", r.stack or "-"])
    print_table(con, cols, cells)
