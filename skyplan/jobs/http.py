"""The jobs controller's HTTP API and dashboard: read-only, on loopback only.

The controller process (``skyplan.jobs.daemon``) serves it; ``skyplan jobs
dashboard`` prints its address. One aiohttp application:

``GET /api/jobs?limit=N&before=ID&status=S[,S...]``
    The jobs, newest first: exactly the list ``skyplan jobs queue -a --json``
    prints (``limit`` default 50, at most 500; ``before``: only jobs whose id is
    lower, keyset pagination; ``status``: only jobs in these states, repeatable
    or comma-separated). When there are more, a ``Link: <...>; rel="next"``
    header holds the next page's address.
``GET /api/queue?limit=N&before=ID&status=S``
    The same page as the ``jobs queue -a`` table the CLI draws, for the dashboard:
    ``{"rows": [{"job_id", "task_index" (null on a job's own row), "status",
    "cells": [9 strings]}], "next_before": ID or null}``. The cells come from
    the CLI's own ``jobs_views.queue_rows`` (as plain text), so the page shows
    the same durations, ages and resources as the terminal, by construction.
``GET /api/jobs/{id}``
    One job's document (the same shape as one item of the list); 404 when absent.
``GET /api/jobs/{id}/logs``
    The job's run logs as ``text/plain``: every run in order, each after its
    separator line, as ``jobs logs ID`` prints them (what is there now: it never waits).
``GET /healthz``
    ``{"ok": true, "pid": N}``.
``GET /`` and ``GET /jobs/{id}``
    The dashboard page (one self-contained HTML file: no CDN, no second framework);
    ``/jobs/{id}`` opens it on that job's logs.

Why it is shaped so:

* It binds 127.0.0.1 only and answers only requests whose ``Host`` is a loopback
  name (421 otherwise), so a web page on another origin cannot read it through
  DNS rebinding; it sends no CORS headers, and the page's Content-Security-Policy
  allows its own inline script and style only (by hash) and fetches to itself.
* The store is synchronous (SQLAlchemy): each request's reads run on a small
  thread pool of their own, so a slow query never stalls the event loop (the
  daemon's main loop, which also renews the controller's lease); the
  controller's own loop runs on another thread and never waits on a request.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable
from urllib.parse import urlencode

from aiohttp import web

from skyplan.errors import InputError
from skyplan.jobs.states import JobRecord, Status

#: Page size when ``limit`` is not given, and the largest one accepted.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Host names the API answers to (the Host header's name part).
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
#: Threads reading the store for requests (bounded: a dashboard left open in
#: several tabs must not take the controller's database connections).
READ_THREADS = 2

_PAGE_PACKAGE = "skyplan.jobs"
_PAGE_NAME = "dashboard.html"


class BadRequest(ValueError):
    """A query parameter that is not valid: the 400 response's message."""


# --- what the endpoints return, pure over the store ------------------------------------------


def job_document(job: JobRecord) -> dict[str, Any]:
    """One job as ``jobs queue -a --json`` prints it (the store's JSON helper)."""
    from skyplan.jobs.store import job_to_json

    return job_to_json(job)


def parse_query(query: Any) -> tuple[int, int | None, set[Status] | None]:
    """``(limit, before, statuses)`` from a request's query (a multidict).
    Raises BadRequest naming the parameter and what it accepts."""
    raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw not in (None, ""):
        if not re.fullmatch(r"[0-9]+", raw) or not 1 <= int(raw) <= MAX_LIMIT:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}, not {raw!r}")
        limit = int(raw)
    raw = query.get("before")
    before = None
    if raw not in (None, ""):
        if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) < 1:  # (a 64-bit integer: SQLite's limit)
            raise BadRequest(f"before must be a job id (a positive integer), not {raw!r}")
        before = int(raw)
    statuses: set[Status] = set()
    for value in query.getall("status", []):
        for name in filter(None, (v.strip().upper() for v in value.split(","))):
            try:
                statuses.add(Status(name))
            except ValueError:
                raise BadRequest(f"status {name!r} is not a job status (one of: "
                                 f"{', '.join(s.value for s in Status)})") from None
    return limit, before, statuses or None


def queue_page(store: Any, limit: int, before: int | None,
               statuses: set[Status] | None) -> tuple[list[dict[str, Any]], int | None]:
    """One page of jobs as documents, and the ``before`` of the next page (None
    on the last). One extra row is read to know whether there is a next page."""
    rows = store.queue(limit=limit + 1, before=before, statuses=statuses, include_finished=True)
    page = rows[:limit]
    more = len(rows) > limit
    return [job_document(j) for j in page], (page[-1].job_id if more and page else None)


def table_page(store: Any, limit: int, before: int | None, statuses: set[Status] | None,
               now: float) -> dict[str, Any]:
    """``/api/queue``'s document: one page of the ``jobs queue -a`` table's rows."""
    from rich.text import Text

    from skyplan.cli.jobs_views import queue_rows

    rows = store.queue(limit=limit + 1, before=before, statuses=statuses, include_finished=True)
    page, more = rows[:limit], len(rows) > limit
    cells = queue_rows(page, now)
    # queue_rows gives each job a row, then (a pipeline) one row per task.
    keys = []
    for j in page:
        keys.append((j.job_id, None, j.status.value))
        if len(j.tasks) > 1:
            keys += [(j.job_id, t.task_index, t.status.value) for t in j.tasks]
    if len(keys) != len(cells):
        raise RuntimeError(f"queue_rows gave {len(cells)} rows for {len(keys)} jobs and tasks")
    return {"rows": [{"job_id": job_id, "task_index": index, "status": status,
                      "cells": [Text.from_markup(c).plain for c in row]}
                     for (job_id, index, status), row in zip(keys, cells)],
            "next_before": page[-1].job_id if more and page else None}


def next_link(limit: int, next_before: int, statuses: set[Status] | None) -> str:
    """The ``Link`` header value for the next page."""
    params: list[tuple[str, Any]] = [("limit", limit), ("before", next_before)]
    if statuses:
        params.append(("status", ",".join(sorted(s.value for s in statuses))))
    return f'</api/jobs?{urlencode(params)}>; rel="next"'


def _default_log_text(store: Any, job_id: int) -> str:
    from skyplan.jobs import logs

    return "".join(logs.job_lines(store, job_id))


# --- the page ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def page() -> tuple[bytes, str]:
    """The dashboard's HTML and its Content-Security-Policy (hashes of its one
    inline script and one inline style: nothing else runs or applies)."""
    from importlib import resources

    html = resources.files(_PAGE_PACKAGE).joinpath(_PAGE_NAME).read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
                        for b in found)

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return html.encode("utf-8"), csp


# --- the application ---------------------------------------------------------------------------


@web.middleware
async def _loopback_only(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    # A rebinding attack reaches 127.0.0.1 under the attacker's host name: refuse any other name.
    host = (request.host or "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name not in LOOPBACK_NAMES:
        return web.json_response({"error": f"this server answers on loopback names only, not {host!r}"},
                                 status=421)
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def make_app(store: Any, *, log_text: Callable[[Any, int], str] | None = None,
             pool: concurrent.futures.Executor | None = None) -> web.Application:
    """The application over ``store`` (a ``skyplan.jobs.store.Store``, read only).
    ``log_text(store, job_id)`` gives a job's logs (default: ``logs.job_lines``, as
    ``jobs logs ID`` prints them);
    ``pool`` runs the store's reads (default: a pool of READ_THREADS, shut down
    with the application)."""
    read_logs = log_text or _default_log_text
    own_pool = pool is None
    executor = pool or concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="jobs-http")

    async def blocking(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def job_id_of(request: web.Request) -> int:
        raw = request.match_info["job_id"]
        if not re.fullmatch(r"[0-9]{1,18}", raw):
            raise web.HTTPNotFound()
        return int(raw)

    async def jobs(request: web.Request) -> web.Response:
        try:
            limit, before, statuses = parse_query(request.query)
        except BadRequest as e:
            return _error(400, str(e))
        docs, next_before = await blocking(queue_page, store, limit, before, statuses)
        headers = {"Link": next_link(limit, next_before, statuses)} if next_before is not None else None
        return web.json_response(docs, headers=headers, dumps=_dumps)

    async def table(request: web.Request) -> web.Response:
        try:
            limit, before, statuses = parse_query(request.query)
        except BadRequest as e:
            return _error(400, str(e))
        return web.json_response(await blocking(table_page, store, limit, before, statuses, time.time()),
                                 dumps=_dumps)

    async def one_job(request: web.Request) -> web.Response:
        job_id = job_id_of(request)
        job = await blocking(store.job, job_id)
        if job is None:
            return _error(404, f"no job {job_id}")
        return web.json_response(job_document(job), dumps=_dumps)

    async def job_logs(request: web.Request) -> web.Response:
        job_id = job_id_of(request)
        if await blocking(store.job, job_id) is None:
            return _error(404, f"no job {job_id}")
        text = await blocking(read_logs, store, job_id)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "pid": os.getpid()})

    async def dashboard(request: web.Request) -> web.Response:
        if "job_id" in request.match_info:
            job_id_of(request)
        body, csp = page()
        return web.Response(body=body, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer"})

    app = web.Application(middlewares=[_loopback_only])
    app.router.add_get("/api/jobs", jobs, allow_head=False)
    app.router.add_get("/api/queue", table, allow_head=False)
    app.router.add_get("/api/jobs/{job_id}", one_job, allow_head=False)
    app.router.add_get("/api/jobs/{job_id}/logs", job_logs, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/", dashboard, allow_head=False)
    app.router.add_get("/jobs/{job_id}", dashboard, allow_head=False)
    if own_pool:
        async def _shutdown(_: web.Application) -> None:
            executor.shutdown(wait=False, cancel_futures=True)

        app.on_cleanup.append(_shutdown)
    return app


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- serving -----------------------------------------------------------------------------------


def bind(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: a free port). Raises
    InputError when the port is taken or not allowed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A restarted controller (SIGKILL) must get its configured port back while
    # the old connections sit in TIME_WAIT; Linux still refuses a second listener.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise InputError(f"cannot serve the jobs dashboard on 127.0.0.1:{port}: {e.strerror or e}",
                         hint="choose another port (`skyplan jobs dashboard --port P`), or 0 for a free one") from e
    sock.setblocking(False)
    return sock


@dataclass
class HttpServer:
    """A running server: its port, and how to stop it."""

    port: int
    runner: web.AppRunner
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _closed: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def aclose(self) -> None:
        """Stop serving (on the loop that serves it)."""
        if not self._closed:
            self._closed = True
            await self.runner.cleanup()

    def close(self, timeout: float = 5.0) -> None:
        """Stop a server started by ``serve_in_thread`` (from any other thread)."""
        if self._loop is None or self._thread is None:
            raise RuntimeError("close() is for serve_in_thread's servers; await aclose() otherwise")
        if not self._closed and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), self._loop).result(timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


async def start_server(store: Any, port: int = 0, **app_options: Any) -> HttpServer:
    """Serve ``make_app(store)`` on 127.0.0.1:``port`` on the running loop."""
    sock = bind(port)
    runner = web.AppRunner(make_app(store, **app_options), access_log=None, handle_signals=False,
                           shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return HttpServer(port=sock.getsockname()[1], runner=runner)


def serve_in_thread(store: Any, port: int = 0, **app_options: Any) -> HttpServer:
    """Serve on a loop of its own in a daemon thread (for a controller whose own
    loop is synchronous). Returns once it listens; raises what binding raised."""
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[HttpServer] = concurrent.futures.Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(start_server(store, port, **app_options))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            started.set_exception(e)
            loop.close()
            return
        started.set_result(server)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.aclose())
            loop.close()

    thread = threading.Thread(target=run, name="jobs-http", daemon=True)
    thread.start()
    server = started.result()
    server._thread, server._loop = thread, loop
    return server

