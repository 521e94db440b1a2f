"""The controller's HTTP API (skyplan.jobs.http) over a real store, SQLite and
PostgreSQL: the same jobs as `jobs queue -a --json`, keyset pages linked by
``Link: rel=next``, one job, its logs, the table rows the CLI draws, and what
it refuses (bad queries, foreign Host names)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from skyplan.cli.main import app as cli_app
from skyplan.errors import InputError
from skyplan.jobs import http, settings
from skyplan.jobs.store import Store, queue_json
from skyplan.testing.jobs_seed import LIVE_JOBS, TERMINAL_JOBS, Clock, log_line, seed


@pytest.fixture
def seeded(jobs_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", jobs_db_url)
    clock = Clock()
    store = Store(jobs_db_url, clock=clock)
    ids = seed(store, clock, TERMINAL_JOBS) + seed(store, clock, LIVE_JOBS)
    try:
        yield store, ids
    finally:
        store.close()


def call(store: Any, *requests: tuple[str, dict[str, str] | None]) -> list[tuple[int, dict[str, str], str]]:
    """GET each path on a test server of the app: (status, headers, body) each."""

    async def go() -> list[tuple[int, dict[str, str], str]]:
        out = []
        async with TestClient(TestServer(http.make_app(store))) as client:
            for path, headers in requests:
                r = await client.get(path, headers=headers)
                out.append((r.status, dict(r.headers), await r.text()))
        return out

    return asyncio.run(go())


def get(store: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    return call(store, (path, headers))[0]


def cli_queue() -> list[dict[str, Any]]:
    r = CliRunner().invoke(cli_app, ["jobs", "queue", "-a", "--json", "--limit", "500"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_jobs_are_what_jobs_queue_a_json_prints(seeded):
    store, ids = seeded
    status, headers, body = get(store, "/api/jobs")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert "Link" not in headers  # one page holds them all
    got = json.loads(body)
    assert got == cli_queue() == queue_json(store.queue(limit=500, include_finished=True))
    assert [j["job_id"] for j in got] == sorted(ids, reverse=True)
    from skyplan.testing import json_contract

    assert json_contract.check(["jobs", "queue", "-a", "--json"], body, 0) == []


def test_pages_follow_the_link_header_to_the_end_without_a_gap_or_a_repeat(seeded):
    store, ids = seeded
    seen: list[int] = []
    path: str | None = "/api/jobs?limit=3"
    pages = 0
    while path:
        status, headers, body = get(store, path)
        assert status == 200
        page = json.loads(body)
        assert 1 <= len(page) <= 3
        seen += [j["job_id"] for j in page]
        link = headers.get("Link")
        path = link[1:link.index(">")] if link else None
        if path:
            assert link.endswith('; rel="next"') and f"before={page[-1]['job_id']}" in path
        pages += 1
    assert seen == sorted(ids, reverse=True) and pages == -(-len(ids) // 3)


def test_status_filter_keeps_its_states_across_pages(seeded):
    store, _ = seeded
    status, headers, body = get(store, "/api/jobs?status=succeeded,CANCELLED&limit=2")
    assert status == 200
    first = json.loads(body)
    assert [j["status"] for j in first] == ["SUCCEEDED", "SUCCEEDED"]
    nxt = headers["Link"][1:headers["Link"].index(">")]
    assert "status=CANCELLED%2CSUCCEEDED" in nxt
    rest = json.loads(get(store, nxt)[2])
    want = [j for j in queue_json(store.queue(limit=500, include_finished=True))
            if j["status"] in ("SUCCEEDED", "CANCELLED")]
    assert first + rest == want and {j["status"] for j in rest} <= {"SUCCEEDED", "CANCELLED"}


@pytest.mark.parametrize("query, says", [
    ("limit=0", "limit must be an integer from 1 to 500"),
    ("limit=abc", "limit must be an integer"),
    ("limit=501", "from 1 to 500"),
    ("before=-3", "before must be a job id"),
    ("before=99999999999999999999", "before must be a job id"),
    ("status=RUNING", "'RUNING' is not a job status"),
])
def test_a_bad_query_is_400_naming_the_parameter(seeded, query, says):
    store, _ = seeded
    for path in ("/api/jobs?", "/api/queue?"):
        status, _, body = get(store, path + query)
        assert status == 400 and says in json.loads(body)["error"]


def test_one_job_and_its_logs(seeded):
    store, ids = seeded
    first = ids[0]  # train-bert: preempted once, so two runs
    (s1, _, job), (s2, h2, text), (s3, _, missing), (s4, _, nologs), (s5, _, _) = call(
        store, (f"/api/jobs/{first}", None), (f"/api/jobs/{first}/logs", None), ("/api/jobs/999", None),
        ("/api/jobs/999/logs", None), ("/api/jobs/abc", None))
    assert s1 == 200 and json.loads(job) == queue_json([store.job(first)])[0]
    assert s2 == 200 and h2["Content-Type"] == "text/plain; charset=utf-8"
    lines = text.splitlines()
    assert lines[1] == log_line(first, 0, 1) and lines[3] == log_line(first, 0, 2)
    assert "run 1" in lines[0] and "preempted" in lines[0] and "run 2" in lines[2]  # separators, in order
    assert (s3, json.loads(missing)) == (404, {"error": "no job 999"})
    assert s4 == 404 and "no job 999" in nologs and s5 == 404


def test_queue_rows_are_the_cli_table_rows_as_plain_text(seeded):
    from rich.text import Text

    from skyplan.cli.jobs_views import queue_rows

    store, ids = seeded
    now = time.time()
    doc = http.table_page(store, 4, None, None, now)
    page = store.queue(limit=4, include_finished=True)
    assert [r["cells"] for r in doc["rows"]] == [[Text.from_markup(c).plain for c in row]
                                                  for row in queue_rows(page, now)]
    assert doc["next_before"] == page[-1].job_id
    # one row per job, then one per task of a pipeline
    want = []
    for j in page:
        want.append((j.job_id, None, j.status.value))
        if len(j.tasks) > 1:
            want += [(j.job_id, t.task_index, t.status.value) for t in j.tasks]
    assert [(r["job_id"], r["task_index"], r["status"]) for r in doc["rows"]] == want
    # a job name is shown as it was given, markup and all
    odd = http.table_page(store, 1, ids[5], None, now)["rows"][0]
    assert odd["cells"][2] == "<b>odd</b> [bold]name[/]"
    status, _, body = get(store, "/api/queue?limit=500")
    assert status == 200 and json.loads(body)["next_before"] is None
    assert len({r["job_id"] for r in json.loads(body)["rows"]}) == len(ids)


def test_only_loopback_host_names_are_answered(seeded):
    store, _ = seeded
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        status, headers, body = get(store, "/api/jobs", {"Host": host})
        assert status == 421 and "loopback" in json.loads(body)["error"]
        assert "Access-Control-Allow-Origin" not in headers
    for host in ("localhost:1234", "127.0.0.1", "[::1]:80"):
        assert get(store, "/healthz", {"Host": host})[0] == 200


def test_healthz_and_the_page(seeded):
    import os

    store, _ = seeded
    (s1, _, health), (s2, h2, page), (s3, h3, page3), (s4, _, _) = call(
        store, ("/healthz", None), ("/", None), ("/jobs/3", None), ("/jobs/x", None))
    assert s1 == 200 and json.loads(health) == {"ok": True, "pid": os.getpid()}
    assert s2 == s3 == 200 and page == page3 and h2["Content-Type"] == "text/html; charset=utf-8"
    assert "<table id=\"jobs\">" in page and "http://" not in page and "https://" not in page  # nothing remote
    csp = h2["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "connect-src 'self'" in csp
    assert "Access-Control-Allow-Origin" not in h2 and h2["X-Content-Type-Options"] == "nosniff"
    assert s4 == 404


def test_writes_are_refused(seeded):
    store, ids = seeded

    async def go() -> list[int]:
        async with TestClient(TestServer(http.make_app(store))) as client:
            return [(await client.request(m, p)).status for m, p in
                    (("POST", "/api/jobs"), ("DELETE", f"/api/jobs/{ids[0]}"), ("PUT", "/"))]

    assert asyncio.run(go()) == [405, 405, 405]


def test_served_on_loopback_on_a_free_or_a_given_port(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'j.db'}")
    server = http.serve_in_thread(store)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"200 OK" in s.recv(4096)
        with pytest.raises(InputError, match=f"127.0.0.1:{server.port}"):
            http.serve_in_thread(store, server.port)  # taken
    finally:
        server.close()
        store.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)


def test_dashboard_port_setting(monkeypatch: pytest.MonkeyPatch):
    assert settings.load().dashboard_port == 0
    monkeypatch.setenv("SKYPLAN_JOBS_DASHBOARD_PORT", "8765")
    assert settings.load().dashboard_port == 8765
    for bad in ("65536", "-1", "http"):
        monkeypatch.setenv("SKYPLAN_JOBS_DASHBOARD_PORT", bad)
        with pytest.raises(InputError, match="SKYPLAN_JOBS_DASHBOARD_PORT"):
            settings.load()
