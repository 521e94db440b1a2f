"""``skyplan serve up / status / logs / update / down`` as the CLI: the Contract's JSON,
seed 002's two tables, exit codes, errors with a next step. The store is filled
directly; the controller is a stand-in (``skyplan.cli.serve._ensure``) that records
its calls and, where a command waits on it, plays its part in the store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.cli import serve as serve_cli
from skyplan.cli.main import app
from skyplan.serve import paths
from skyplan.serve.states import ReplicaStatus, ServiceStatus
from skyplan.serve.store import ServeStore

SERVICE = """\
name: {name}
service:
  readiness_probe: /health
  replica_policy:
    min_replicas: 2
    max_replicas: 3
    target_qps_per_replica: 1
    dynamic_ondemand_fallback: true
resources:
  ports: 8081
  cpus: 2+
  use_spot: true
run: python3 -m http.server $SKYPLAN_PORT
"""


def invoke(*args: object, columns: int = 200):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.delenv("SKYPLAN_SIMULATE", raising=False)
    monkeypatch.setattr(serve_cli, "POLL_S", 0.05)
    calls: list[str] = []
    monkeypatch.setattr(serve_cli, "_ensure", lambda name: calls.append(name))
    store = ServeStore()
    yield store, calls, tmp_path
    store.close()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def seed_story(store: ServeStore, now: float) -> None:
    """Seed 002's second table: two spot replicas READY, two on-demand SHUTTING_DOWN."""
    store.create_service("http-server", "{}", {})
    store.set_service("http-server", status=ServiceStatus.READY, endpoint="http://127.0.0.1:30001",
                      controller_pid=None)
    for rid, (spot, region, status, endpoint) in enumerate([
            (True, "us-east1", ReplicaStatus.READY, "http://127.0.0.1:40001"),
            (True, "us-central1", ReplicaStatus.READY, "http://127.0.0.1:40002"),
            (False, "us-east1", ReplicaStatus.SHUTTING_DOWN, None),
            (False, "us-central1", ReplicaStatus.SHUTTING_DOWN, None)], 1):
        store.add_replica("http-server", version=1, use_spot=spot, fallback=not spot,
                          resources=f"1x GCP({'[Spot]' if spot else ''}vCPU=2)")
        store.set_replica("http-server", rid, ReplicaStatus.PROVISIONING, "launching", launched_at=now - 180)
        store.set_replica("http-server", rid, status, "as the seed", cloud="gcp", region=region,
                          zone=f"{region}-b", endpoint=endpoint)


# --- status -------------------------------------------------------------------------------------

def _rows(text: str, title: str) -> list[list[str]]:
    block = text.split(title, 1)[1].strip().split("\n\n")[0].splitlines()
    return [line.split() for line in block if line.strip() and not line.startswith("─")]


def test_status_prints_the_seeds_two_tables(world) -> None:  # noqa: ANN001
    store, calls, _ = world
    seed_story(store, time.time())
    r = invoke("serve", "status")
    assert r.exit_code == 0, r.output
    services = _rows(r.stdout, "Services")
    assert services[0] == ["NAME", "VERSION", "UPTIME", "STATUS", "REPLICAS", "ENDPOINT"]
    assert services[1][0] == "http-server" and services[1][1] == "1"
    assert services[1][-3:] == ["READY", "2/4", "http://127.0.0.1:30001"]  # the seed's 2/4
    replicas = _rows(r.stdout, "Service Replicas")
    assert replicas[0] == ["SERVICE_NAME", "ID", "VERSION", "ENDPOINT", "LAUNCHED", "RESOURCES", "STATUS", "REGION"]
    assert replicas[1] == ["http-server", "1", "1", "http://127.0.0.1:40001", "3", "mins", "ago", "1x",
                           "GCP([Spot]vCPU=2)", "READY", "us-east1"]
    assert replicas[3] == ["http-server", "3", "1", "-", "3", "mins", "ago", "1x", "GCP(vCPU=2)", "SHUTTING_DOWN",
                           "us-east1"]
    assert calls == ["http-server"]  # no controller running: one is started


def test_status_fits_80_columns_keeping_what_matters(world) -> None:  # noqa: ANN001
    store, _, _ = world
    seed_story(store, time.time())
    r = invoke("serve", "status", columns=80)
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.stdout.splitlines()) <= 80, r.stdout
    header = next(line for line in r.stdout.splitlines() if line.startswith("SERVICE_NAME"))
    for kept in ("SERVICE_NAME", "ID", "ENDPOINT", "RESOURCES", "STATUS"):
        assert kept in header
    assert "http://127.0.0.1:40001" in r.stdout  # an endpoint is never cut


def test_status_json_is_the_contract(world) -> None:  # noqa: ANN001
    store, _, _ = world
    seed_story(store, time.time())
    store.gone("http-server", 4)
    r = invoke("serve", "status", "http-server", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert list(doc) == ["name", "version", "status", "endpoint", "replicas"]
    assert (doc["name"], doc["version"], doc["status"], doc["endpoint"]) == (
        "http-server", 1, "READY", "http://127.0.0.1:30001")
    assert [x["id"] for x in doc["replicas"]] == [1, 2, 3]  # gone ones left out
    first = doc["replicas"][0]
    assert list(first) == ["id", "version", "status", "use_spot", "cloud", "region", "zone", "cluster", "endpoint",
                           "launched_at"]
    assert (first["status"], first["use_spot"], first["cluster"], first["zone"]) == (
        "READY", True, "serve-http-server-1", "us-east1-b")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["launched_at"])
    r = invoke("serve", "status", "--json")
    assert r.exit_code == 0 and [s["name"] for s in json.loads(r.stdout)] == ["http-server"]


def test_status_of_an_unknown_service_is_not_found_with_a_hint(world) -> None:  # noqa: ANN001
    r = invoke("serve", "status", "nope")
    assert r.exit_code == 2
    assert "no service named 'nope'" in r.stderr and "skyplan serve status" in r.stderr
    r = invoke("serve", "status", "nope", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["code"] == "NotFoundError"
    r = invoke("serve", "status")
    assert r.exit_code == 0 and "No services." in r.stdout
    assert json.loads(invoke("serve", "status", "--json").stdout) == []


def test_status_restarts_a_dead_controller_only(world) -> None:  # noqa: ANN001
    import os

    store, calls, _ = world
    store.create_service("alive", "{}", {})
    store.set_service("alive", controller_pid=os.getpid())
    store.create_service("dead", "{}", {})
    store.set_service("dead", controller_pid=_dead_pid())
    assert invoke("serve", "status").exit_code == 0
    assert calls == ["dead"]


# --- logs ---------------------------------------------------------------------------------------

def _write_logs(name: str) -> None:
    d = paths.service_dir(name, create=True)
    (d / "controller.log").write_text("controller line\n")
    (d / "lb.log").write_text("lb line\n")
    (d / "replica-1.log").write_text("skyplan: launching\nhello from replica 1\n")


def test_logs_print_a_replica_the_lb_or_the_controller(world) -> None:  # noqa: ANN001
    store, _, _ = world
    store.create_service("web", "{}", {})
    store.add_replica("web", version=1, use_spot=False)
    _write_logs("web")
    r = invoke("serve", "logs", "web", "1")
    assert r.exit_code == 0 and r.stdout == "skyplan: launching\nhello from replica 1\n"
    assert invoke("serve", "logs", "web", "--lb").stdout == "lb line\n"
    assert invoke("serve", "logs", "web", "--controller").stdout == "controller line\n"
    r = invoke("serve", "logs", "web", "1", "--json")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["event"] for x in lines] == ["log", "log", "summary"]
    assert lines[1]["line"] == "hello from replica 1"
    assert (lines[2]["source"], lines[2]["replica_id"]) == ("replica", 1)


def test_logs_refuse_an_ambiguous_or_unknown_target(world) -> None:  # noqa: ANN001
    store, _, _ = world
    store.create_service("web", "{}", {})
    r = invoke("serve", "logs", "web")
    assert r.exit_code == 2 and "give a REPLICA_ID, --lb or --controller" in r.stderr
    r = invoke("serve", "logs", "web", "7")
    assert r.exit_code == 2 and "has no replica 7" in r.stderr
    r = invoke("serve", "logs", "nope", "--controller")
    assert r.exit_code == 2 and "no service named 'nope'" in r.stderr


def test_logs_follow_a_replica_until_it_is_gone(world) -> None:  # noqa: ANN001
    store, _, _ = world
    store.create_service("web", "{}", {})
    store.add_replica("web", version=1, use_spot=False)
    _write_logs("web")

    def later() -> None:
        time.sleep(0.3)
        with open(paths.replica_log("web", 1), "a") as fh:
            fh.write("a last line\n")
        store.gone("web", 1)

    t = threading.Thread(target=later)
    t.start()
    r = invoke("serve", "logs", "web", "1", "--follow")
    t.join()
    assert r.exit_code == 0, r.output
    assert r.stdout.endswith("hello from replica 1\na last line\n")


# --- update -------------------------------------------------------------------------------------

def _service_file(tmp: Path, name: str = "web", text: str = SERVICE) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(text.format(name=name))
    return str(path)


def test_update_adds_a_version_for_the_controller(world) -> None:  # noqa: ANN001
    store, calls, tmp = world
    store.create_service("web", "{}", {})
    r = invoke("serve", "update", "web", _service_file(tmp), "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"schema_version": 1, "service": "web", "version": 2}
    assert json.loads(store.task_json("web", 2))["service"]["replica_policy"]["max_replicas"] == 3
    assert calls == ["web"]


def test_update_refuses_a_bad_file_an_unknown_or_leaving_service(world) -> None:  # noqa: ANN001
    store, _, tmp = world
    store.create_service("web", "{}", {})
    no_service = _service_file(tmp, "plain", "name: plain\nresources:\n  cpus: 2\nrun: echo hi\n")
    r = invoke("serve", "update", "web", no_service, "--yes")
    assert r.exit_code == 2 and "no 'service' section" in r.stderr
    assert invoke("serve", "update", "nope", _service_file(tmp), "--yes").exit_code == 2
    r = invoke("serve", "update", "web", _service_file(tmp))
    assert r.exit_code == 2 and "--yes" in r.stderr  # no terminal to confirm on
    store.request_down("web")
    r = invoke("serve", "update", "web", _service_file(tmp), "--yes")
    assert r.exit_code == 2 and "shutting down" in r.stderr
    assert store.service("web").version == 1


# --- up -----------------------------------------------------------------------------------------

def _binding_controller(store: ServeStore, calls: list[str], *, then=None):  # noqa: ANN001, ANN202
    """A stand-in controller: binds the 'load balancer' at once, then runs ``then`` in a thread."""
    def ensure(name: str) -> None:
        calls.append(name)
        store.set_service(name, status=ServiceStatus.NO_REPLICA, endpoint="http://127.0.0.1:4321",
                          reason="controller and load balancer up")
        if then is not None:
            threading.Thread(target=then, args=(name,)).start()
    return ensure


def test_up_detach_json_is_the_contract(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, tmp = world
    monkeypatch.setattr(serve_cli, "_ensure", _binding_controller(store, calls))
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes", "--detach", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"service": "web", "endpoint": "http://127.0.0.1:4321"}
    assert calls == ["web"]
    svc = store.service("web")
    assert (svc.version, svc.status) == (1, ServiceStatus.NO_REPLICA)
    assert json.loads(store.task_json("web", 1))["run"] == "python3 -m http.server $SKYPLAN_PORT"
    assert store.options("web") == {"simulate": None, "backend": None, "catalog": None}
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes", "--detach")
    assert r.exit_code == 2 and "already exists" in r.stderr


def test_up_moves_an_earlier_services_files_of_the_same_name_aside(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # Found trying it: after `serve down web`, a new `serve up -n web` appended to the old replica-1.log.
    from skyplan.serve import paths

    store, calls, tmp = world
    old = paths.service_dir("web", create=True) / "replica-1.log"
    old.write_text("the earlier service's replica 1\n")
    monkeypatch.setattr(serve_cli, "_ensure", _binding_controller(store, calls))
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes", "--detach", "--json")
    assert r.exit_code == 0, r.output
    assert not old.exists()
    moved = list((paths.service_dir("web").parent / ".previous").glob("web-*/replica-1.log"))
    assert [p.read_text() for p in moved] == ["the earlier service's replica 1\n"]


def test_up_follows_the_replicas_until_the_service_is_ready(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, tmp = world

    def replicas(name: str) -> None:
        time.sleep(0.1)
        rid = store.add_replica(name, version=1, use_spot=True).id
        store.set_replica(name, rid, ReplicaStatus.PROVISIONING, "launching a spot replica")
        store.set_replica(name, rid, ReplicaStatus.READY, "its probe passed")
        store.set_service(name, status=ServiceStatus.READY, reason="1 replica(s) READY")

    monkeypatch.setattr(serve_cli, "_ensure", _binding_controller(store, calls, then=replicas))
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes")
    assert r.exit_code == 0, r.output
    assert "replica 1 PROVISIONING: launching a spot replica" in r.stdout
    assert "replica 1 READY: its probe passed" in r.stdout
    assert "Service 'web' is READY at http://127.0.0.1:4321" in r.stdout


def test_up_follow_starts_a_controller_that_died_again(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, tmp = world

    def ensure(name: str) -> None:
        calls.append(name)
        if len(calls) == 1:  # binds, records its pid, dies
            store.set_service(name, status=ServiceStatus.NO_REPLICA, endpoint="http://127.0.0.1:4321",
                              controller_pid=_dead_pid(), reason="controller and load balancer up")
        else:
            store.set_service(name, status=ServiceStatus.READY, reason="1 replica(s) READY")

    monkeypatch.setattr(serve_cli, "_ensure", ensure)
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes")
    assert r.exit_code == 0, r.output
    assert calls == ["web", "web"] and "starting it again" in r.stdout and "is READY" in r.stdout


def test_up_refuses_a_name_in_use_before_asking(world) -> None:  # noqa: ANN001
    store, calls, tmp = world
    store.create_service("web", "{}", {})
    r = invoke("serve", "up", _service_file(tmp), "-n", "web")  # no --yes, no terminal: the name is said first
    assert r.exit_code == 2 and "a service named 'web' already exists" in r.stderr
    assert "serve update web" in r.stderr and calls == []


def test_up_gives_up_on_a_controller_that_never_binds(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, tmp = world
    monkeypatch.setattr(serve_cli, "START_WAIT_S", 0.3)
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes", "--detach", "--json")
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "ServeControllerError" and "did not start its load balancer" in err["message"]
    assert "serve logs web --controller" in err["hint"]


def test_up_says_at_once_that_the_controller_died(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, tmp = world
    monkeypatch.setattr(serve_cli, "_ensure", lambda name: store.set_service(name, controller_pid=_dead_pid()))
    r = invoke("serve", "up", _service_file(tmp), "-n", "web", "--yes", "--detach")  # within the 60 s wait
    assert r.exit_code == 1
    assert "exited before its load balancer was up" in r.stderr and "serve down web" in r.stderr


def test_up_records_nothing_when_nothing_is_feasible(world) -> None:  # noqa: ANN001
    store, calls, tmp = world
    infeasible = SERVICE.replace("  cpus: 2+\n", "  cpus: 2+\n  max_hourly_cost: 0.000001\n")
    r = invoke("serve", "up", _service_file(tmp, text=infeasible), "-n", "web", "--yes", "--detach")
    assert r.exit_code == 3, r.output
    assert store.services() == [] and calls == []
    r = invoke("serve", "up", _service_file(tmp), "-n", "Bad Name!", "--yes", "--detach")
    assert r.exit_code == 2 and "not a valid service name" in r.stderr


# --- down ---------------------------------------------------------------------------------------

def _tearing_controller(store: ServeStore, calls: list[str], *, die_first: bool = False):  # noqa: ANN001, ANN202
    """A stand-in controller for ``down``: drains and tears every replica down, then deletes
    the service. ``die_first``: the first one records a pid and dies without doing anything."""
    def teardown(name: str) -> None:
        time.sleep(0.1)
        for r in store.replicas(name):
            store.set_replica(name, r.id, ReplicaStatus.SHUTTING_DOWN, "serve down")
            store.gone(name, r.id)
        store.delete_service(name)

    def ensure(name: str) -> None:
        calls.append(name)
        if die_first and len(calls) == 1:
            store.set_service(name, controller_pid=_dead_pid())
            return
        threading.Thread(target=teardown, args=(name,)).start()
    return ensure


def test_down_waits_until_every_replica_is_torn_down(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, _ = world
    seed_story(store, time.time())
    monkeypatch.setattr(serve_cli, "_ensure", _tearing_controller(store, calls))
    r = invoke("serve", "down", "http-server", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"schema_version": 1, "service": "http-server", "existed": True,
                                    "replicas_torn_down": 4}
    assert "replica 3 SHUTTING_DOWN: serve down" in r.stderr and "as the seed" not in r.stderr  # only what followed
    assert store.service("http-server") is None
    r = invoke("serve", "down", "http-server", "--yes")  # again: nothing left, exit 0
    assert r.exit_code == 0 and "nothing to take down" in r.stdout


def test_down_restarts_a_controller_that_died(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, calls, _ = world
    seed_story(store, time.time())
    monkeypatch.setattr(serve_cli, "_ensure", _tearing_controller(store, calls, die_first=True))
    r = invoke("serve", "down", "http-server", "--yes")
    assert r.exit_code == 0, r.output
    assert calls == ["http-server", "http-server"]
    assert "starting it again to finish" in r.stdout and "Service 'http-server' is down." in r.stdout


def test_down_without_yes_off_a_terminal_changes_nothing(world) -> None:  # noqa: ANN001
    store, calls, _ = world
    store.create_service("web", "{}", {})
    r = invoke("serve", "down", "web")
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert not store.service("web").down_requested and calls == []


def test_a_note_reads_as_a_note_not_a_transition() -> None:
    # Found trying it: `serve down` printed "service web READY: down requested", which reads
    # as if the service had just become READY.
    from skyplan.cli.serve_views import EventLines
    from skyplan.serve.states import ServeEvent

    lines = EventLines("web", "READY")
    assert lines.line(ServeEvent(0.0, None, "READY", "down requested")).endswith("service web: down requested")
    assert lines.line(ServeEvent(0.0, 2, "SHUTTING_DOWN", "serve down")).endswith("replica 2 SHUTTING_DOWN: serve down")
    assert lines.line(ServeEvent(0.0, None, "SHUTTING_DOWN", "draining")).endswith(
        "service web SHUTTING_DOWN: draining")
    assert EventLines("web").line(ServeEvent(0.0, None, "CONTROLLER_INIT", "created")).endswith(
        "service web CONTROLLER_INIT: created")


def test_a_failed_service_without_replicas_says_why_not_yet() -> None:
    import io

    from skyplan.cli.serve_views import render_status
    from skyplan.serve.states import ServiceRecord

    out = io.StringIO()
    render_status([ServiceRecord("web", 1, ServiceStatus.FAILED, "http://127.0.0.1:1", 0.0)], file=out, now=10.0)
    assert "No replicas yet" not in out.getvalue()
    assert "web gave up (FAILED); `skyplan serve logs web --controller` says why" in " ".join(out.getvalue().split())
