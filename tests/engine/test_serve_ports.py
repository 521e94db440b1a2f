"""$SKYPLAN_PORT through the launch API and the real engine: on the clouds whose
nodes run here (local, sim) each replica gets a free loopback port, exported as
its node's ``port``, and its cloud's ``endpoint`` reaches the task's server there."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.clouds import registry
from skyplan.planner import make_plan
from skyplan.provision.launch import LaunchOptions, LaunchRequest, down, launch
from skyplan.spec import load_text

pytestmark = pytest.mark.engine

# The server answers with the port it was given, so the test sees which one the task got.
SERVER = """\
import http.server, os
p = int(os.environ["SKYPLAN_PORT"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = f"port={p}".encode(); self.send_response(200); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", p), H).serve_forever()
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    (d / "server.py").write_text(SERVER)
    return d


def _task(app: Path, resources: str) -> str:
    return f"name: web\nworkdir: {app}\nresources: {resources}\nrun: exec python3 server.py\n"


def _down(name: str, backend_url: str) -> None:
    from skyplan.errors import NotFoundError

    try:
        down(name, backend=backend_url)
    except NotFoundError:  # its launch failed: nothing to take down
        pass


def _get(url: str, deadline_s: float = 60.0) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
                return r.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def _up(text: str, name: str, backend_url: str, simulate: str | None = None):
    plan = make_plan(load_text(text, "web.yaml"), load_catalog())
    return launch(LaunchRequest(plan, name, LaunchOptions(backend=backend_url, simulate=simulate, timeout_s=300)))


def test_two_local_replicas_serve_on_their_own_loopback_ports(engine, skyplan_home: Path, backend_url: str,
                                                             app: Path) -> None:
    names = ["web-1", "web-2"]
    try:
        results = [_up(_task(app, "{cloud: local, ports: 8081}"), n, backend_url) for n in names]
        cloud = registry.get("local")
        urls = [cloud.endpoint(r.outputs, 8081) for r in results]
        ports = [int(u.rsplit(":", 1)[1]) for u in urls]
        assert all(u.startswith("http://127.0.0.1:") for u in urls) and len(set(ports)) == 2 and 8081 not in ports
        for url, port in zip(urls, ports):
            assert _get(url) == f"port={port}"  # the task listens on the port its node exported
    finally:
        for n in names:
            _down(n, backend_url)


def test_a_sim_replica_serves_on_its_loopback_port(engine, skyplan_home: Path, backend_url: str,
                                                   tmp_path: Path, app: Path) -> None:
    scenario = tmp_path / "ok.yaml"
    scenario.write_text("default: ok\n")
    text = _task(app, "{cloud: gcp, cpus: 2, use_spot: true, ports: 8081}")
    try:
        res = _up(text, "web-sim", backend_url, simulate=str(scenario))
        assert res.simulated
        url = registry.runner(res.placement.cloud, True).endpoint(res.outputs, 8081)
        assert url is not None and _get(url) == f"port={url.rsplit(':', 1)[1]}"
    finally:
        _down("web-sim", backend_url)


def test_a_task_without_ports_has_no_port_and_no_endpoint(engine, skyplan_home: Path, backend_url: str) -> None:
    try:
        res = _up("name: plain\nresources: {cloud: local}\nrun: echo \"[${SKYPLAN_PORT:-none}]\"\n", "plain",
                  backend_url)
        assert "port" not in res.outputs["nodes"][0]
        assert registry.get("local").endpoint(res.outputs, 8081) is None
        log = Path(res.outputs["log"])
        end = time.monotonic() + 60
        while "[none]" not in log.read_text() and time.monotonic() < end:
            time.sleep(0.05)
        assert "[none]" in log.read_text()
    finally:
        _down("plain", backend_url)
