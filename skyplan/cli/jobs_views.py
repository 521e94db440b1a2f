"""``skyplan jobs queue``: the managed jobs, newest first, a page at a time.

The command (registered on the ``jobs`` sub-app by ``skyplan.cli.jobs``) reads
one keyset page from the store (``--limit`` jobs, older than ``--before``) and
prints it as a table, or with ``--json`` as the contract's list. Without
``-a`` finished jobs are hidden, and the footer says how many. When there is
a next page, a hint line gives the command that shows it.

Columns: ID, TASK, NAME, RESOURCES, SUBMITTED, TOT. DURATION (submission to
end, or to now), JOB DURATION (time spent RUNNING, summed over runs),
#RECOVERIES, STATUS. A pipeline gets a row of its own and one ``↳`` row per task.

Start-up cost matters here (``jobs queue --json`` is benchmarked): an existing
SQLite database at the current schema is read with the stdlib's sqlite3
(``skyplan.jobs.fastread``), anything else through the Store (SQLAlchemy);
Rich is imported for the table only; the planner and clouds never.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, TextIO

import typer

from skyplan.cli.errors import handle_errors

if TYPE_CHECKING:
    from skyplan.jobs.states import JobRecord, Status, TaskRecord

#: Style of each status in the table (finished and failed stand out).
STATUS_STYLE = {"PENDING": "dim", "STARTING": "cyan", "RUNNING": "green", "RECOVERING": "yellow",
                "CANCELLING": "yellow", "SUCCEEDED": "bold green", "CANCELLED": "dim"}
#: Columns given up first when the terminal is narrow (lowest rank first).
DROP_ORDER = ("TOT. DURATION", "SUBMITTED", "JOB DURATION")
HEADERS = ("ID", "TASK", "NAME", "RESOURCES", "SUBMITTED", "TOT. DURATION", "JOB DURATION", "#RECOVERIES", "STATUS")


@handle_errors
def queue(
    all_jobs: bool = typer.Option(False, "--all", "-a", help="Finished jobs too (SUCCEEDED, CANCELLED, FAILED...)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most N jobs (one page)."),
    status: Optional[list[str]] = typer.Option(None, "--status", "-s", metavar="STATUS",
                                               help="Only jobs in this state (repeat it, or comma-separate: "
                                                    "RUNNING,RECOVERING); finished states imply -a."),
    before: Optional[int] = typer.Option(None, "--before", min=1, metavar="ID",
                                         help="The page of jobs older than job ID (the hint below a page gives it)."),
) -> None:
    """List managed jobs, newest first, one page at a time (--limit, --before)."""
    statuses = parse_statuses(status)
    include_finished = all_jobs or statuses is not None
    with _reader() as store:
        page = store.queue(limit=limit + 1, before=before, statuses=statuses, include_finished=include_finished)
        more = len(page) > limit
        page = page[:limit]
        # The footer's count, on the first page of the table only (JSON has no footer).
        hidden = 0 if include_finished or as_json or before is not None else store.count(finished=True)
        in_progress = store.status_counts(finished=False) if not as_json and before is None else {}
    next_page = next_page_command(all_jobs, status, limit, page[-1].job_id) if more else None
    if as_json:
        import json

        from skyplan.jobs.records import queue_json

        # One line: json's C encoder (an indent makes it fall back to pure Python, ~5x slower on a
        # page of 50 jobs with their events); not views.write_json, whose module imports the planner.
        sys.stdout.write(json.dumps(queue_json(page)) + "\n")
        sys.stdout.flush()
        if next_page:
            sys.stderr.write(f"More jobs: `{next_page} --json`\n")
        return
    render_queue(page, file=sys.stdout, hidden_finished=hidden, next_page=next_page, in_progress=in_progress,
                 first_page=before is None)


def _reader():  # noqa: ANN202 - a Store or a fastread.SqliteReader (the same read methods)
    """The jobs database for reading: the stdlib's sqlite3 when it is an existing SQLite
    database at the current schema (no SQLAlchemy to import), else the Store."""
    from skyplan.jobs import fastread
    from skyplan.jobs.settings import load

    url = load().db_url
    reader = fastread.open_reader(url)
    if reader is not None:
        return reader
    from skyplan.jobs.store import Store

    return Store(url)


def parse_statuses(values: Sequence[str] | None) -> set[Status] | None:
    """``--status`` values (repeated and/or comma-separated, any case) as Statuses; None without any."""
    from skyplan.errors import UsageError
    from skyplan.jobs.states import Status

    if not values:
        return None
    out: set[Status] = set()
    for value in values:
        for word in value.split(","):
            word = word.strip().upper().replace("-", "_")
            if not word:
                continue
            try:
                out.add(Status(word))
            except ValueError:
                import difflib

                close = difflib.get_close_matches(word, [s.value for s in Status], n=1)
                raise UsageError(f"--status {word!r} is not a job state"
                                 + (f" (did you mean {close[0]}?)" if close else ""),
                                 hint="states: " + ", ".join(s.value for s in Status)) from None
    return out or None


def next_page_command(all_jobs: bool, status: Sequence[str] | None, limit: int, last_id: int) -> str:
    """The command that shows the page after the one whose last (oldest) job is ``last_id``."""
    words = ["skyplan jobs queue"]
    if all_jobs:
        words.append("-a")
    for s in status or ():
        words.append(f"--status {s}")
    if limit != 50:
        words.append(f"--limit {limit}")
    words.append(f"--before {last_id}")
    return " ".join(words)


# --- the table ---------------------------------------------------------------------------------------

def duration(seconds: float | None) -> str:
    """``2h 47m 18s`` / ``47m 45s`` / ``12s``; ``-`` for None."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h {m}m"
    if h:
        return f"{h}h {m}m {s}s"
    return f"{m}m {s}s" if m else f"{s}s"


def ago(then: float | None, now: float) -> str:
    """``5s ago`` / ``3m ago`` / ``2h 5m ago`` / ``3d ago`` (the style of ``status``); ``-`` for None."""
    if then is None:
        return "-"
    s = max(0, int(now - then))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m ago" if m else f"{h}h ago"
    return f"{s // 86400}d ago"


def task_started(t: TaskRecord) -> float | None:
    """When the task left PENDING the first time (its first launch), None if it never did."""
    return next((e.at for e in t.events if e.status.value != "PENDING"), None)


def run_time(t: TaskRecord, now: float) -> float | None:
    """JOB DURATION: time spent RUNNING, summed over runs, the current one up to now."""
    total = t.run_seconds
    if t.status.value == "RUNNING":
        since, previous = None, None
        for e in t.events:  # the current period began where RUNNING was entered last
            if e.status.value == "RUNNING" and previous != "RUNNING":
                since = e.at
            previous = e.status.value
        if since is not None:
            total += max(0.0, now - since)
    if total <= 0 and t.started_at is None:
        return None
    return total


def _total(start: float | None, end: float | None, now: float) -> float | None:
    return None if start is None else (end if end is not None else now) - start


def _status_cell(status: str) -> str:
    style = STATUS_STYLE.get(status, "bold red" if status.startswith("FAILED") else "")
    return f"[{style}]{status}[/]" if style else status


def queue_rows(jobs: Sequence[JobRecord], now: float) -> list[list[str]]:
    """The table's rows (plain text; the STATUS cell carries Rich markup)."""
    from rich.markup import escape

    rows: list[list[str]] = []
    for j in jobs:
        pipeline = len(j.tasks) > 1
        job_runs = [run_time(t, now) for t in j.tasks]
        run_total = None if all(r is None for r in job_runs) else sum(r or 0 for r in job_runs)
        resources = "-" if pipeline else (j.tasks[0].resources if j.tasks else "-")
        rows.append([str(j.job_id), "", escape(j.name), escape(resources),
                     ago(j.submitted_at, now), duration(_total(j.submitted_at, j.ended_at, now)),
                     duration(run_total), str(j.recoveries), _status_cell(j.status.value)])
        if not pipeline:
            continue
        for t in j.tasks:
            started = task_started(t)
            rows.append([" ↳", str(t.task_index), escape(t.name or "-"), escape(t.resources),
                         ago(j.submitted_at if started is not None else None, now),
                         duration(_total(j.submitted_at if started is not None else None, t.ended_at, now)),
                         duration(run_time(t, now)), str(t.recoveries), _status_cell(t.status.value)])
    return rows


def render_queue(jobs: Sequence[JobRecord], *, file: TextIO | None = None, now: float | None = None,
                 hidden_finished: int = 0, next_page: str | None = None,
                 in_progress: dict[Status, int] | None = None, first_page: bool = True) -> None:
    """Print a page of ``jobs queue``: a summary of what is in progress, the table, then
    what is hidden and how to see the next page."""
    from skyplan.cli.tables import Col, console, print_table

    out = file or sys.stdout
    con = console(out)
    now = time.time() if now is None else now
    if not jobs:
        if hidden_finished:
            con.print(f"No unfinished managed jobs ({hidden_finished} finished: `skyplan jobs queue -a` "
                      f"shows them).", markup=False)
        else:
            con.print("No managed jobs." if first_page else "No more managed jobs.", markup=False)
        return
    if in_progress:
        from skyplan.jobs.states import Status

        order = list(Status)  # the lifecycle's order: PENDING, STARTING, RUNNING, RECOVERING, ...
        parts = ", ".join(f"{n} {s.value}" for s, n in sorted(in_progress.items(), key=lambda kv: order.index(kv[0])))
        con.print(f"In progress: {parts}", markup=False)
    # RESOURCES wraps only once the droppable columns are gone: "1x sim(n1-standard-4, [Spot])"
    # cut over three lines reads worse than a table without TOT. DURATION.
    cols = [Col(h, "right" if h in ("ID", "#RECOVERIES") else "left", wrap=h in ("RESOURCES", "NAME"),
                drop=DROP_ORDER.index(h) + 1 if h in DROP_ORDER else None) for h in HEADERS]
    print_table(con, cols, queue_rows(jobs, now), markup=True)
    if hidden_finished:
        con.print(f"{hidden_finished} finished job{'s are' if hidden_finished != 1 else ' is'} hidden: "
                  f"`skyplan jobs queue -a` shows {'them' if hidden_finished != 1 else 'it'}.", markup=False)
    if next_page:
        con.print(f"More jobs: `{next_page}`", markup=False)
