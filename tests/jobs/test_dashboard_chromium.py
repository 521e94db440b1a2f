"""The jobs dashboard in real headless Chromium (Debian's, driven by Playwright;
Playwright's own browsers are never downloaded).

* Served by the real controller process that ``skyplan jobs dashboard --json``
  starts: the page's table, page after page, holds the jobs and pipeline tasks
  that ``skyplan jobs queue -a --json`` prints, "Newer" comes back, and a job's
  link opens its run logs. (Finished jobs only: the controller acts on the others.)
* Served in-process on a real socket, with jobs still going: every cell is the
  CLI's own row (``jobs_views.queue_rows``), names stay text, and a transition
  shows up by itself (the page refreshes).

Skipped when /usr/bin/chromium is missing, unless SKYPLAN_REQUIRE_CHROMIUM=1 (CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from skyplan.jobs.states import Status
from skyplan.testing.jobs_seed import LIVE_JOBS, TERMINAL_JOBS, Clock, log_line, seed, stop_controller

CHROMIUM = Path("/usr/bin/chromium")
SKYPLAN = Path(sys.executable).with_name("skyplan")
#: Columns of the table, as the page names its cells (data-col).
COLS = ["id", "task", "name", "resources", "submitted", "total", "job_duration", "recoveries", "status"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("SKYPLAN_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{CHROMIUM} is missing and SKYPLAN_REQUIRE_CHROMIUM=1: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.errors_expected = False
    try:
        yield pg
    finally:
        ctx.close()
    if not pg.errors_expected:
        assert problems == [], problems  # no script error, no CSP violation, no failed fetch


def table(pg: Any) -> list[dict[str, Any]]:
    """The rows the page shows: kind, job id, task index, the cells by column, the link."""
    return pg.eval_on_selector_all("#jobs tbody tr", """rows => rows.map(tr => ({
        kind: tr.className, job_id: Number(tr.dataset.jobId),
        task_index: tr.dataset.taskIndex === undefined ? null : Number(tr.dataset.taskIndex),
        cells: Object.fromEntries([...tr.cells].map(td => [td.dataset.col, td.textContent])),
        link: tr.querySelector('a') ? tr.querySelector('a').getAttribute('href') : null}))""")


def wait_loaded(pg: Any, first_id: int | None = None) -> None:
    pg.wait_for_selector("body[data-loaded=queue]")
    if first_id is not None:
        pg.wait_for_function("id => document.querySelector('#jobs tbody tr')?.dataset.jobId == String(id)",
                             arg=first_id)


def expected_rows(jobs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What `jobs queue -a --json` says each table row must show:
    (kind, job id, task index, name, #recoveries, status)."""
    rows: list[tuple[Any, ...]] = []
    for j in jobs:
        rows.append(("job", j["job_id"], None, j["name"], str(j["recoveries"]), j["status"]))
        if len(j["tasks"]) > 1:
            rows += [("task", j["job_id"], t["task_index"], t["name"] or "-", str(t["recoveries"]), t["status"])
                     for t in j["tasks"]]
    return rows


def shown(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["kind"], r["job_id"], r["task_index"], r["cells"]["name"], r["cells"]["recoveries"],
             r["cells"]["status"]) for r in rows]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(SKYPLAN), *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def controller(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The finished jobs in the home's store, and the real controller process
    serving them (started by `skyplan jobs dashboard --json`), stopped after."""
    from skyplan.jobs.store import Store

    monkeypatch.setenv("SKYPLAN_JOBS_IDLE_STOP_S", "600")  # it must outlive the test; stopped below
    clock = Clock()
    store = Store(None, clock=clock)
    ids = seed(store, clock, TERMINAL_JOBS)
    info: dict[str, Any] = {"ids": ids, "store": store}
    try:
        yield info
    finally:
        try:
            stop_controller(store)
        finally:
            store.close()


def test_the_controllers_page_holds_what_jobs_queue_prints_page_by_page(controller, page):
    out = json.loads(run_cli("jobs", "dashboard", "--json", "--no-open").stdout)
    url, ids = out["url"], controller["ids"]
    assert url == f"http://127.0.0.1:{out['port']}/"
    info = controller["store"].controller_info()
    assert info["port"] == out["port"] and info["pid"] != os.getpid()  # served by the controller process
    assert json.loads(run_cli("jobs", "dashboard", "--json", "--no-open").stdout) == out  # the same one, again

    queue = json.loads(run_cli("jobs", "queue", "-a", "--json").stdout)
    assert [j["job_id"] for j in queue] == sorted(ids, reverse=True)

    page.goto(url + "?limit=3")
    wait_loaded(page, queue[0]["job_id"])
    assert page.inner_text("#jobs thead").strip().split("\t") == ["ID", "TASK", "NAME", "RESOURCES", "SUBMITTED",
                                                         "TOT. DURATION", "JOB DURATION", "#RECOVERIES", "STATUS"]
    seen: list[dict[str, Any]] = []
    firsts = []
    while True:
        rows = table(page)
        jobs_here = [r["job_id"] for r in rows if r["kind"] == "job"]
        assert 1 <= len(jobs_here) <= 3
        firsts.append(jobs_here[0])
        seen += rows
        if page.is_disabled("#next"):
            break
        page.click("#next")
        page.wait_for_function("id => Number(document.querySelector('#jobs tbody tr')?.dataset.jobId) < id",
                               arg=jobs_here[-1])
    assert shown(seen) == expected_rows(queue)
    assert len(firsts) == 3 and "before=" in page.url  # 7 jobs, 3 a page
    for r in seen:  # each row links to its job's logs; a pipeline's task rows to their job's
        assert r["link"] == f"/jobs/{r['job_id']}"
        assert r["cells"]["id"].strip() == (str(r["job_id"]) if r["kind"] == "job" else "↳")

    page.click("#prev")
    wait_loaded(page, firsts[-2])
    page.click("#prev")
    wait_loaded(page, firsts[0])
    assert page.is_disabled("#prev")

    bert = ids[0]  # preempted once: two runs, in order
    page.goto(url + "?limit=50")
    wait_loaded(page, queue[0]["job_id"])
    page.click(f'#jobs tr[data-job-id="{bert}"] td[data-col=id] a')
    page.wait_for_selector("body[data-loaded=logs]")
    assert page.url == f"{url}jobs/{bert}"
    text = page.inner_text("#logtext")
    assert text.index(log_line(bert, 0, 1)) < text.index(log_line(bert, 0, 2))
    assert "run 1" in text and "preempted" in text
    assert run_cli("jobs", "logs", str(bert)).stdout.strip() == text.strip()  # what `jobs logs` prints
    assert page.inner_text("#jobstatus") == "SUCCEEDED"


def test_live_jobs_every_cell_is_the_clis_and_the_page_refreshes_itself(page, tmp_path: Path):
    from rich.text import Text

    from skyplan.cli.jobs_views import queue_rows
    from skyplan.jobs import http
    from skyplan.jobs.store import Store

    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'live.db'}", clock=clock)
    ids = seed(store, clock, TERMINAL_JOBS) + seed(store, clock, LIVE_JOBS)
    server = http.serve_in_thread(store)
    try:
        before = time.time()
        page.goto(server.url)
        wait_loaded(page, ids[-1])
        rows = table(page)
        after = time.time()
        jobs = store.queue(limit=50, include_finished=True)
        # The cells are the CLI's, as of some moment while the page loaded (ages and running durations move).
        at_load = [[Text.from_markup(c).plain for c in row] for row in queue_rows(jobs, before)]
        at_end = [[Text.from_markup(c).plain for c in row] for row in queue_rows(jobs, after)]
        assert len(rows) == len(at_load)
        for r, a, b in zip(rows, at_load, at_end):
            cells = [r["cells"][c] for c in COLS]
            assert all(x in (y, z) for x, y, z in zip(cells, a, b)), (cells, a, b)
        statuses = {r["cells"]["status"] for r in rows}
        assert {"PENDING", "RUNNING", "RECOVERING", "SUCCEEDED", "FAILED", "CANCELLED"} <= statuses
        # A name is text, never markup (the odd one holds tags and Rich markup).
        odd = next(r for r in rows if r["job_id"] == ids[4])
        assert odd["cells"]["name"] == "<b>odd</b> [bold]name[/]"
        assert page.locator("#jobs b").count() == 0

        waiting = ids[len(TERMINAL_JOBS)]
        status_cell = f'#jobs tr[data-job-id="{waiting}"] td[data-col=status]'
        assert page.inner_text(status_cell) == "PENDING"
        store.transition(waiting, 0, Status.STARTING, "a slot is free", cluster=f"job-{waiting}-0")
        page.wait_for_function("sel => document.querySelector(sel).textContent === 'STARTING'", arg=status_cell,
                               timeout=15_000)  # no reload: the page fetched it itself
        assert page.url == server.url

        # The status menu filters (the address keeps it, for a reload or a link).
        page.select_option("#status", "SUCCEEDED")
        page.wait_for_function("() => [...document.querySelectorAll('#jobs tr.job td[data-col=status]')]"
                               ".every(td => td.textContent === 'SUCCEEDED')")
        want = [j.job_id for j in store.queue(limit=50, statuses={Status.SUCCEEDED}, include_finished=True)]
        assert [r["job_id"] for r in table(page) if r["kind"] == "job"] == want and len(want) == 3
        assert page.url == server.url + "?status=SUCCEEDED"
    finally:
        server.close()
        store.close()


def test_the_page_says_when_the_controller_is_gone(page, tmp_path: Path):
    from skyplan.jobs import http
    from skyplan.jobs.store import Store

    store = Store(f"sqlite:///{tmp_path / 'gone.db'}")
    server = http.serve_in_thread(store)
    try:
        page.goto(server.url)
        wait_loaded(page)
        assert page.is_visible("#empty")  # no jobs yet
    finally:
        server.close()
        store.close()
    page.wait_for_function("() => document.querySelector('#state').classList.contains('down')", timeout=15_000)
    assert "controller unreachable" in page.inner_text("#state")
    page.errors_expected = True  # the failed fetches are the point here
