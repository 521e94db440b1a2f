"""How ``skyplan serve`` shows services: the two tables of ``serve status``
(seed 002's), the lines that follow a service's transitions, and the
``serve up`` confirmation's summary. Pure rendering: records in, text out.

Services: NAME, VERSION, UPTIME, STATUS, REPLICAS (READY / replicas listed,
as the seed counts them: a replica SHUTTING_DOWN still counts until it is
gone), ENDPOINT. Service Replicas: SERVICE_NAME, ID, VERSION, ENDPOINT,
LAUNCHED (``3 mins ago``), RESOURCES, STATUS, REGION. Both fit the terminal
(``skyplan.cli.tables``): on 80 columns the replicas table gives up VERSION,
then LAUNCHED, then REGION, and RESOURCES wraps at its spaces.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from skyplan.serve.states import ServeEvent, ServiceRecord

SERVICE_HEADERS = ("NAME", "VERSION", "UPTIME", "STATUS", "REPLICAS", "ENDPOINT")
REPLICA_HEADERS = ("SERVICE_NAME", "ID", "VERSION", "ENDPOINT", "LAUNCHED", "RESOURCES", "STATUS", "REGION")
#: Replica columns given up first when the terminal is narrow (lowest rank first).
REPLICA_DROP = ("VERSION", "LAUNCHED", "REGION")
#: Style of each status (READY stands out; failures in red).
STATUS_STYLE = {"READY": "green", "PROVISIONING": "cyan", "STARTING": "cyan", "PENDING": "dim",
                "CONTROLLER_INIT": "cyan", "REPLICA_INIT": "cyan", "NOT_READY": "yellow", "NO_REPLICA": "yellow",
                "SHUTTING_DOWN": "yellow", "PREEMPTED": "yellow", "FAILED": "bold red",
                "CONTROLLER_FAILED": "bold red"}


def ago_words(then: float | None, now: float) -> str:
    """``13 secs ago`` / ``1 min ago`` / ``3 mins ago`` / ``2 hrs ago`` / ``4 days ago``
    (seed 002's LAUNCHED column); ``-`` for None."""
    if then is None:
        return "-"
    s = max(0, int(now - then))
    for size, unit in ((86400, "day"), (3600, "hr"), (60, "min"), (1, "sec")):
        if s >= size or unit == "sec":
            n = s // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "-"  # not reached


def ready_count(svc: ServiceRecord) -> str:
    """REPLICAS: ``READY/listed`` (the seed's ``2/4`` while two on-demand replicas shut down)."""
    ready = sum(1 for r in svc.replicas if r.status.value == "READY")
    return f"{ready}/{len(svc.replicas)}"


def _status(value: str) -> str:
    style = STATUS_STYLE.get(value)
    return f"[{style}]{value}[/]" if style else value


def service_rows(services: Sequence[ServiceRecord], now: float) -> list[list[str]]:
    from rich.markup import escape

    from skyplan.cli.jobs_views import duration

    return [[escape(s.name), str(s.version), duration(now - s.created_at), _status(s.status.value),
             ready_count(s), escape(s.endpoint or "-")] for s in services]


def replica_rows(services: Sequence[ServiceRecord], now: float) -> list[list[str]]:
    from rich.markup import escape

    rows = []
    for s in services:
        for r in s.replicas:
            rows.append([escape(s.name), str(r.id), str(r.version), escape(r.endpoint or "-"),
                         ago_words(r.launched_at, now), escape(r.resources or "-"), _status(r.status.value),
                         escape(r.region or "-")])
    return rows


def metrics_line(name: str, metrics: dict[str, Any]) -> str | None:
    """``web: 2.5 req/s over the last minute, p50 1.2 ms, p99 3.4 ms`` (None before the first figures)."""
    if not metrics or metrics.get("qps") is None:
        return None
    parts = [f"{float(metrics['qps']):.1f} req/s"]
    for key in ("p50_ms", "p99_ms"):
        if metrics.get(key) is not None:
            parts.append(f"{key[:3]} {float(metrics[key]):.1f} ms")
    if metrics.get("failures"):
        parts.append(f"{int(metrics['failures'])} failed since start")
    return f"{name}: " + ", ".join(parts)


def render_status(services: Sequence[ServiceRecord], *, file: TextIO | None = None, now: float | None = None,
                  metrics: dict[str, dict[str, Any]] | None = None) -> None:
    """``serve status``: the Services table, each service's load figures, then Service Replicas."""
    from skyplan.cli.tables import Col, console, print_table

    out = file or sys.stdout
    con = console(out)
    now = time.time() if now is None else now
    if not services:
        con.print("No services. Start one with `skyplan serve up SERVICE.yaml -n NAME`.", markup=False)
        return
    con.print("[bold]Services[/]")
    cols = [Col(h, "left", wrap=h == "NAME") for h in SERVICE_HEADERS]
    print_table(con, cols, service_rows(services, now), markup=True)
    for s in services:
        line = metrics_line(s.name, (metrics or {}).get(s.name) or {})
        if line:
            con.print(line, markup=False)
    con.print()
    con.print("[bold]Service Replicas[/]")
    rows = replica_rows(services, now)
    if not rows:
        failed = [s.name for s in services if s.status.value == "FAILED"]
        if failed:
            con.print(f"No replicas: {', '.join(failed)} gave up (FAILED); `skyplan serve logs {failed[0]} "
                      "--controller` says why.", markup=False)
        else:
            con.print("No replicas yet.", markup=False)
        return
    cols = [Col(h, "right" if h == "ID" else "left", wrap=h == "RESOURCES",
                drop=REPLICA_DROP.index(h) + 1 if h in REPLICA_DROP else None) for h in REPLICA_HEADERS]
    print_table(con, cols, rows, markup=True)


def event_line(name: str, e: ServeEvent, *, note: bool = False) -> str:
    """One followed transition: ``12:03:04 replica 2 PROVISIONING: launching a spot replica``.
    ``note``: an event that changed no status (``down requested``): ``service web: down requested``,
    so it does not read as a transition into the status the service already had."""
    stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
    who = f"replica {e.replica_id}" if e.replica_id is not None else f"service {name}"
    if note:
        return f"{stamp} {who}: {e.reason or e.status}"
    return f"{stamp} {who} {e.status}" + (f": {e.reason}" if e.reason else "")


class EventLines:
    """Lines for a stream of one service's events, telling notes from transitions: a
    service event into the status it already had is a note (``status``: the service's
    status when the stream starts, if known)."""

    def __init__(self, name: str, status: str | None = None) -> None:
        self.name = name
        self.status = status

    def line(self, e: ServeEvent) -> str:
        if e.replica_id is not None:
            return event_line(self.name, e)
        note = e.status == self.status
        self.status = e.status
        return event_line(self.name, e, note=note)
