"""The service daemon in this process: the real load balancer on its loop, the
controller in its thread, a fake executor whose replicas are real HTTP servers."""

from __future__ import annotations

import http.server
import os
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyplan.serve.controller import ServeSettings
from skyplan.serve.daemon import ServeDaemon, _port_of
from skyplan.serve.store import ServeStore
from skyplan.spec import load_text, task_to_dict
from skyplan.testing.serve_fakes import FakeServeExecutor

TASK = """\
service:
  readiness_probe: /health
  replicas: 2
resources:
  ports: 8081
run: python3 server.py
"""


class _Replica(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        body = f"{self.server.name}\n".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def replicas() -> Iterator[dict[str, str]]:
    """Two real servers: cluster name -> base URL."""
    servers = []
    urls = {}
    for i in (1, 2):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Replica)
        srv.name = f"replica {i}"  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        urls[f"serve-web-{i}"] = f"http://127.0.0.1:{srv.server_address[1]}"
    yield urls
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class _Executor(FakeServeExecutor):
    def __init__(self, urls: dict[str, str]) -> None:
        super().__init__()
        self.urls = urls

    def endpoint(self, cluster: str, port: int) -> str | None:
        return self.urls.get(cluster) if cluster in self.up else None

    def probe(self, url: str, cfg: object) -> bool:
        from skyplan.serve.executor import probe_url

        return probe_url(url, cfg)


def _get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(cond, what: str, timeout: float = 30.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_daemon_serves_the_ready_replicas_on_its_recorded_endpoint(tmp_path: Path, monkeypatch, replicas) -> None:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    store = ServeStore(f"sqlite:///{tmp_path / 'serve.db'}")
    store.create_service("web", json.dumps(task_to_dict(load_text(TASK))), {})
    settings = ServeSettings(poll_s=0.1)

    def start() -> tuple[ServeDaemon, threading.Thread]:
        d = ServeDaemon("web", store, executor=_Executor(replicas), settings=settings)
        t = threading.Thread(target=d.run, daemon=True)
        t.start()
        _wait(lambda: d.port is not None and store.service("web").endpoint, "the endpoint recorded")
        return d, t

    daemon, thread = start()
    endpoint = store.service("web").endpoint
    assert endpoint == f"http://127.0.0.1:{daemon.port}"
    # NO_REPLICA from the moment the load balancer is bound (seed 002: NO_REPLICA 0/4 while all provision).
    assert store.service("web").status.value in ("NO_REPLICA", "READY")
    _wait(lambda: store.service("web").status.value == "READY"
          and sum(r.status.value == "READY" for r in store.replicas("web")) == 2, "two READY")
    bodies = {_get(endpoint + "/")[1] for _ in range(6)}
    assert bodies == {"replica 1\n", "replica 2\n"}  # both pushed to the load balancer
    daemon.stop.set()
    thread.join(30)
    assert not thread.is_alive()
    # A restarted daemon listens on the same recorded port, and serves the replicas it kept.
    daemon, thread = start()
    assert daemon.port == _port_of(endpoint)
    _wait(lambda: _get(endpoint + "/")[0] == 200, "served again after the restart")
    assert [r.id for r in store.replicas("web")] == [1, 2]
    store.request_down("web")
    thread.join(30)
    assert not thread.is_alive() and store.service("web") is None
    store.close()


def test_a_spawned_controller_that_exited_is_not_alive_though_unreaped():
    """``serve down`` restarts a dead controller and waits for it to exit: the
    child it spawned stays a zombie until reaped, which ``kill(pid, 0)`` alone
    calls alive (down then waited out its whole deadline)."""
    import subprocess
    import sys
    import time

    from skyplan.serve.daemon import _alive

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # exited, never waited on: a zombie
        with open(f"/proc/{proc.pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                break
        time.sleep(0.05)
    assert not _alive(proc.pid)
    assert _alive(os.getpid())
