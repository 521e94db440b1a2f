"""`skyplan jobs dashboard`: it starts the controller (a process of its own) when
none runs, prints where that process serves the page, keeps one controller and
one port, takes --port when it starts one, and refuses a taken port at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.jobs.store import Store
from skyplan.testing.jobs_seed import stop_controller

SKYPLAN = Path(sys.executable).with_name("skyplan")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("SKYPLAN_JOBS_IDLE_STOP_S", "600")  # stopped by the test, not by idleness
    s = Store()
    try:
        yield s
    finally:
        try:
            stop_controller(s)
        finally:
            s.close()


def dashboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SKYPLAN), "jobs", "dashboard", "--no-open", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "healthz", timeout=10) as r:
        return json.loads(r.read())


def test_it_starts_one_controller_and_prints_where_it_serves(store: Store):
    assert store.controller_info() is None
    first = dashboard("--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    info = store.controller_info()
    assert doc["port"] == info["port"] and doc["url"] == f"http://127.0.0.1:{info['port']}/"
    assert health(doc["url"]) == {"ok": True, "pid": info["pid"]}  # the controller's own process answers
    assert info["pid"] not in (os.getpid(), None)

    again = dashboard()  # the same controller, the same port; human output
    assert again.returncode == 0 and again.stdout == f"Jobs dashboard: {doc['url']}\n"
    other = dashboard("--port", str(free_port()), "--json")
    assert other.returncode == 0 and json.loads(other.stdout) == doc
    assert f"already serving on port {doc['port']}" in other.stderr
    assert store.controller_info()["pid"] == info["pid"]


def test_port_is_taken_when_it_starts_the_controller(store: Store):
    port = free_port()
    r = dashboard("--port", str(port), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["url"] == f"http://127.0.0.1:{port}/"
    assert store.controller_info()["port"] == port


def test_a_taken_port_is_refused_at_once_and_no_controller_starts(store: Store, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = dashboard("--port", str(port), "--json")
        assert r.returncode == 2
        error = json.loads(r.stdout)["error"]
        assert f"127.0.0.1:{port}" in error["message"] and "--port" in error["hint"]
        monkeypatch.setenv("SKYPLAN_JOBS_DASHBOARD_PORT", str(port))  # the configured port: the same
        r = dashboard()
        assert r.returncode == 2 and f"127.0.0.1:{port}" in r.stderr
    assert store.controller_info() is None


def test_a_browser_opens_only_when_asked_and_possible(monkeypatch: pytest.MonkeyPatch):
    import webbrowser

    from skyplan.cli import jobs_dashboard

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url))
    monkeypatch.setattr("skyplan.jobs.daemon.ensure_dashboard", lambda port=None: 4321)
    monkeypatch.setattr("skyplan.jobs.daemon.is_running", lambda url, store=None: True)
    runner = CliRunner()
    assert runner.invoke(app, ["jobs", "dashboard"]).exit_code == 0 and opened == []  # not a terminal
    monkeypatch.setattr(jobs_dashboard, "_can_open_a_browser", lambda: True)
    assert runner.invoke(app, ["jobs", "dashboard", "--no-open"]).exit_code == 0 and opened == []
    r = runner.invoke(app, ["jobs", "dashboard"])
    assert r.exit_code == 0 and r.stdout == "Jobs dashboard: http://127.0.0.1:4321/\n"
    assert opened == ["http://127.0.0.1:4321/"]
