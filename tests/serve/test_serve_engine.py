"""Serve end to end: the CLI, the service's controller process and the real engine on ``sim``.

Every test starts its service through ``skyplan serve up ... --simulate
scenario.yaml --yes --detach --json`` (a subprocess), which starts the
service's daemon (``skyplan.serve.daemon``: the load balancer and the
controller) detached. The replicas are real HTTP servers on loopback ports
(``tests/fixtures/serve/replica.py`` on ``$SKYPLAN_PORT``), each in its own
sim cluster launched through the planner, the failover loop and Pulumi. The
test watches the service through ``skyplan serve status NAME --json``,
disturbs it the way the world would (``skyplan sim switch spot-out on|off``:
spot capacity gone or back, per the scenario's rule; ``skyplan sim preempt
CLUSTER``), sends bounded loopback load through the endpoint, and ends with
``skyplan serve down`` and a check that nothing is left.

The tasks are pinned to one region of the sim catalog (GCP us-central1, four
zones) so that a failover over every spot zone takes seconds; the controller's
poll and retry times are small (``SKYPLAN_SERVE_*``).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skyplan import home

pytestmark = pytest.mark.engine

REAL_ENGINE_DIR = home.engine_dir()  # before any fixture moves the home
PASSPHRASE = "skyplan-engine-tests"
REPLICA = Path(__file__).resolve().parents[1] / "fixtures" / "serve" / "replica.py"

#: Spot capacity is gone while the switch ``spot-out`` is on.
SCENARIO = """\
default: ok
switches:
  spot-out: {spot_out}
rules:
  - {{use_spot: true, outcome: capacity, switch: spot-out}}
"""

SEED_POLICY = """\
    min_replicas: 2
    max_replicas: 3
    target_qps_per_replica: 1
    dynamic_ondemand_fallback: true
"""


def service_yaml(policy: str, *, spot: bool = True, version: str = "1", extra: str = "") -> str:
    """A service of replica.py pinned to GCP us-central1 (four zones in the sim catalog)."""
    return f"""\
name: web
service:
  readiness_probe:
    path: /health
    initial_delay_seconds: 60
    timeout_seconds: 2
  replica_policy:
{policy}{extra}resources:
  cloud: gcp
  region: us-central1
  instance_type: e2-standard-2
  ports: 8081
  use_spot: {'true' if spot else 'false'}
envs:
  VERSION: '{version}'
run: exec python3 {REPLICA}
"""


def _sh(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skyplan", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Load:
    """Bounded loopback load: ``rate`` GETs a second of ``path`` through ``endpoint``
    until stopped (at most ``max_s`` seconds), from a small pool of threads. Every
    answer that is not a 200, and every error, is a failure."""

    def __init__(self, endpoint: str, rate: float, path: str = "/", max_s: float = 300.0) -> None:
        self.url = endpoint.rstrip("/") + path
        self.rate = rate
        self.max_s = max_s
        self.stop_event = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.bodies: list[str] = []
        self._lock = threading.Lock()
        self._pool = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="load")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _one(self) -> None:
        try:
            code, body = _get(self.url, timeout=30)
        except Exception as e:  # noqa: BLE001 - a failure to count
            with self._lock:
                self.failures.append(f"{type(e).__name__}: {e}")
            return
        with self._lock:
            if code == 200:
                self.ok += 1
                self.bodies.append(body)
            else:
                self.failures.append(f"{code}: {body.strip()[:100]}")

    def _run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self.stop_event.is_set() and time.monotonic() - start < self.max_s:
            self._pool.submit(self._one)
            n += 1
            delay = start + n / self.rate - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


class Serve:
    """One test's world: its home, database, scenario, and the services it started."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.scenario = tmp / "scenario.yaml"
        self.scenario.write_text(SCENARIO.format(spot_out="off"))
        self.env = dict(os.environ)
        self.names: list[str] = []
        self.seen: dict[int, list[str]] = {}  # replica id -> statuses seen, in order
        self.max_live = 0
        self.max_ready = 0

    # --- commands ----------------------------------------------------------------------

    def up(self, text: str, name: str = "web") -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        r = _sh(self.env, "serve", "up", str(path), "-n", name, "--simulate", str(self.scenario), "--yes",
                "--detach", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["service"] == name and doc["endpoint"].startswith("http://127.0.0.1:"), doc
        self.names.append(name)
        return doc["endpoint"]

    def update(self, name: str, text: str) -> int:
        path = self.tmp / f"{name}-update.yaml"
        path.write_text(text)
        r = _sh(self.env, "serve", "update", name, str(path), "--yes", "--json")
        assert r.returncode == 0, r.stderr
        return int(json.loads(r.stdout)["version"])

    def status(self, name: str = "web") -> dict[str, Any]:
        r = _sh(self.env, "serve", "status", name, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        live = 0
        for rep in doc["replicas"]:
            seen = self.seen.setdefault(rep["id"], [])
            if not seen or seen[-1] != rep["status"]:
                seen.append(rep["status"])
            live += rep["status"] in ("PENDING", "PROVISIONING", "STARTING", "READY", "NOT_READY")
        self.max_live = max(self.max_live, live)
        self.max_ready = max(self.max_ready, len(ready(doc)))
        return doc

    def switch(self, on: bool) -> None:
        r = _sh(self.env, "sim", "switch", "spot-out", "on" if on else "off", "--json")
        assert r.returncode == 0, r.stderr

    def preempt(self, cluster: str) -> None:
        r = _sh(self.env, "sim", "preempt", cluster, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["preempted"]

    def down(self, name: str = "web") -> None:
        r = _sh(self.env, "serve", "down", name, "--yes", "--json", timeout=300)
        assert r.returncode == 0, r.stderr
        if name in self.names:
            self.names.remove(name)

    # --- watching ----------------------------------------------------------------------

    def wait(self, cond: Callable[[dict[str, Any]], bool], what: str, name: str = "web",
             deadline_s: float = 180.0) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while True:
            doc = self.status(name)
            if cond(doc):
                return doc
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what}; status {json.dumps(doc)}\n"
                            f"controller log:\n{self.controller_log(name)[-6000:]}")
            time.sleep(0.2)

    def controller_log(self, name: str = "web") -> str:
        from skyplan.serve import paths

        p = paths.controller_log(name)
        return p.read_text(errors="replace") if p.exists() else ""

    def replica_log(self, name: str, rid: int) -> str:
        from skyplan.serve import paths

        p = paths.replica_log(name, rid)
        return p.read_text(errors="replace") if p.exists() else ""

    def events(self, name: str = "web") -> list[Any]:
        from skyplan.serve.store import ServeStore

        with ServeStore() as s:
            return s.events(name, limit=10_000)

    def stop_all(self) -> None:
        """``serve down`` for every service still up, then no controller is left."""
        from skyplan.serve.store import ServeStore

        for name in list(self.names):
            try:
                self.down(name)
            except Exception:  # noqa: BLE001 - kill its controller at least
                with ServeStore() as s:
                    svc = s.service(name)
                pid = svc.controller_pid if svc is not None else None
                if pid:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                raise

    def assert_nothing_left(self) -> None:
        from skyplan.clouds.sim import ledger
        from skyplan.state import StateDB

        end = time.monotonic() + 60
        while (ledger.live_resources() or StateDB().clusters()) and time.monotonic() < end:
            time.sleep(0.2)
        assert ledger.live_resources() == []
        assert [c.name for c in StateDB().clusters()] == []


def ready(doc: dict[str, Any], spot: bool | None = None) -> list[dict[str, Any]]:
    return [r for r in doc["replicas"] if r["status"] == "READY" and (spot is None or r["use_spot"] is spot)]


def of(doc: dict[str, Any], spot: bool) -> list[dict[str, Any]]:
    return [r for r in doc["replicas"] if r["use_spot"] is spot]


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    from skyplan.provision import engine as engine_mod

    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    for var in list(os.environ):
        if var.startswith(("SKYPLAN_JOBS_", "SKYPLAN_SERVE_")) or var in ("SKYPLAN_CATALOG", "SKYPLAN_SIMULATE",
                                                                         "SKYPLAN_BACKEND"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("SKYPLAN_ENGINE_DIR", str(REAL_ENGINE_DIR))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    for var in ("PULUMI_HOME", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(var, raising=False)
    try:
        engine_mod.find_engine()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("SKYPLAN_REQUIRE_ENGINE") == "1":
            pytest.fail(f"SKYPLAN_REQUIRE_ENGINE=1 but the engine is missing: {exc}")
        pytest.skip(f"pulumi engine not installed: {exc}")
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.setenv("SKYPLAN_SERVE_POLL_S", "0.3")
    monkeypatch.setenv("SKYPLAN_SERVE_SPOT_RETRY_S", "1")
    monkeypatch.setenv("SKYPLAN_SERVE_REPLACE_BACKOFF_S", "1")
    monkeypatch.setenv("SKYPLAN_SERVE_NOT_READY_S", "5")
    monkeypatch.setenv("SKYPLAN_SERVE_AVOID_S", "300")
    monkeypatch.setenv("SKYPLAN_SERVE_LB_WINDOW_S", "4")
    world = Serve(tmp_path)
    try:
        yield world
    finally:
        world.stop_all()


# --- seed 002 -----------------------------------------------------------------------------


@pytest.mark.parametrize("base", [0, 1], ids=["dynamic_fallback", "base_ondemand_1_and_dynamic"])
def test_seed_002_walkthrough(serve: Serve, base: int) -> None:
    """Seed 002's story: spot unavailable -> on-demand READY; spot returns -> spot READY, the
    on-demand fallbacks SHUTTING_DOWN then gone; a spot replica preempted -> an on-demand one
    launched while spot retries elsewhere; spot back -> the on-demand fallback scaled down.
    With ``base_ondemand_fallback_replicas: 1`` one on-demand replica stays READY throughout."""
    extra = f"    base_ondemand_fallback_replicas: {base}\n" if base else ""
    serve.scenario.write_text(SCENARIO.format(spot_out="on"))
    endpoint = serve.up(service_yaml(SEED_POLICY, extra=extra))
    # 1. spot unavailable: two on-demand replicas READY (the base one and fallbacks)
    doc = serve.wait(lambda d: len(ready(d, spot=False)) == 2, "two on-demand READY")
    # From now on a light load runs through the endpoint: not one request may fail.
    with Load(endpoint, rate=4) as load:
        assert doc["status"] == "READY" and ready(doc, spot=True) == []
        for r in ready(doc):
            assert (r["cloud"], r["region"], r["cluster"]) == ("gcp", "us-central1", f"serve-web-{r['id']}")
            assert r["endpoint"].startswith("http://127.0.0.1:") and r["launched_at"]
            assert _get(r["endpoint"] + "/health")[0] == 200
        base_ids = set()
        if base:
            # the base replica is the on-demand one that is not a fallback: it outlives the story
            base_ids = {e.replica_id for e in serve.events() if e.status == "PENDING" and e.reason == "decided"
                        and e.replica_id in {r["id"] for r in ready(doc, spot=False)}}
            assert len(base_ids) == 1, base_ids
        fallbacks = {r["id"] for r in ready(doc, spot=False)} - base_ids
        assert len(fallbacks) == 2 - base
        # the spot replicas launched beside them found no capacity, and are retried with a backoff
        serve.wait(lambda d: any("no resource" in e.reason for e in serve.events() if e.status == "FAILED"),
                   "a spot launch that found no capacity")

        # 2. spot returns: spot READY; the on-demand fallbacks SHUTTING_DOWN, then gone
        serve.switch(False)
        doc = serve.wait(lambda d: len(ready(d, spot=True)) == 2 - base and {r["id"] for r in of(d, False)} == base_ids,
                         "spot READY and the fallbacks gone")
        for rid in fallbacks:
            assert "SHUTTING_DOWN" in serve.seen[rid], (rid, serve.seen[rid])
        # 3. a spot replica preempted while spot is out again: an on-demand fallback stands
        # in, and spot is retried elsewhere (not in the zone that preempted it)
        serve.switch(True)
        victim = ready(doc, spot=True)[0]
        before = max(e.replica_id or 0 for e in serve.events())
        serve.preempt(victim["cluster"])
        doc = serve.wait(lambda d: victim["id"] not in {r["id"] for r in d["replicas"]}
                         and len([r for r in ready(d, spot=False) if r["id"] not in base_ids]) == 1,
                         "the victim gone and an on-demand fallback READY")
        assert "PREEMPTED" in serve.seen[victim["id"]], serve.seen[victim["id"]]
        standin = next(r for r in ready(doc, spot=False) if r["id"] not in base_ids)
        retries = [e.replica_id for e in serve.events() if e.status == "PENDING" and e.replica_id > before
                   and e.replica_id != standin["id"]]
        spot_retries = [rid for rid in retries if "spot" in serve.replica_log("web", rid)
                        and "attempt 1: launching" in serve.replica_log("web", rid)]
        assert spot_retries, retries
        first = serve.replica_log("web", spot_retries[0]).split("attempt 1: launching on ", 1)[1].splitlines()[0]
        assert victim["zone"] not in first, (victim["zone"], first)

        # 4. spot back: a spot replica READY again, the on-demand fallback scaled down
        serve.switch(False)
        doc = serve.wait(lambda d: len(ready(d, spot=True)) == 2 - base and {r["id"] for r in of(d, False)} == base_ids,
                         "spot READY again and the fallback gone")
        assert "SHUTTING_DOWN" in serve.seen[standin["id"]]
        for rid in base_ids:  # the base on-demand replica served throughout
            assert serve.seen[rid][-1] == "READY" and serve.seen[rid].count("READY") == 1
        assert doc["status"] == "READY" and len(ready(doc)) == 2
    assert load.failures == [] and load.ok > 0, load.failures[:5]
    serve.down()
    serve.assert_nothing_left()


# --- autoscaling ------------------------------------------------------------------------------


def test_autoscaling_up_and_down_under_a_bounded_load(serve: Serve) -> None:
    policy = ("    min_replicas: 1\n    max_replicas: 3\n    target_qps_per_replica: 2\n"
              "    upscale_delay_seconds: 1\n    downscale_delay_seconds: 3\n")
    endpoint = serve.up(service_yaml(policy, spot=False))
    serve.wait(lambda d: len(ready(d)) == 1, "one READY")
    with Load(endpoint, rate=5, path="/slow?ms=100") as load:
        serve.wait(lambda d: len(ready(d)) == 3, "scaled up to 3 under 5 requests/s")
    serve.wait(lambda d: len(ready(d)) == 1 and len(d["replicas"]) == 1, "scaled down to 1 without load")
    assert serve.max_live <= 3
    assert load.failures == [] and load.ok > 0
    serve.down()
    serve.assert_nothing_left()


# --- rolling update and scale-down under steady load ----------------------------------------------


def test_rolling_update_and_scale_down_under_steady_load_fail_no_request(serve: Serve) -> None:
    policy = ("    min_replicas: 1\n    max_replicas: 2\n    target_qps_per_replica: 3\n"
              "    upscale_delay_seconds: 1\n    downscale_delay_seconds: 3\n")
    endpoint = serve.up(service_yaml(policy, spot=False))
    serve.wait(lambda d: len(ready(d)) == 1, "one READY")  # before: 503s, by design
    with Load(endpoint, rate=5, path="/slow?ms=300") as load:
        serve.wait(lambda d: len(ready(d)) == 2, "two READY under 5 requests/s")
        assert serve.update("web", service_yaml(policy, spot=False, version="2")) == 2
        doc = serve.wait(lambda d: d["version"] == 2 and len(ready(d)) == 2
                         and all(r["version"] == 2 for r in d["replicas"]), "version 2 rolled out")
        v2_seen = len([b for b in load.bodies if b.endswith("v2\n")])
        assert v2_seen > 0
    # the update never ran more than max_replicas + max_surge (1) replicas
    assert serve.max_live <= 3 and serve.max_ready <= 3, (serve.max_live, serve.max_ready)
    assert load.failures == [], load.failures[:5]
    with Load(endpoint, rate=1, path="/slow?ms=300") as light:
        serve.wait(lambda d: len(ready(d)) == 1 and len(d["replicas"]) == 1, "scaled down to 1 under 1 request/s")
    assert light.failures == [], light.failures[:5]
    assert light.ok > 0 and doc["status"] == "READY"
    serve.down()
    serve.assert_nothing_left()


# --- retry on another replica ---------------------------------------------------------------------


def test_a_request_whose_replica_dies_mid_request_is_retried_on_another(serve: Serve) -> None:
    endpoint = serve.up(service_yaml("    min_replicas: 2\n", spot=False))
    doc = serve.wait(lambda d: len(ready(d)) == 2, "two READY")
    marker = serve.tmp / "died"
    code, body = _get(f"{endpoint}/die?marker={marker}")
    died = int(marker.read_text())
    assert code == 200, body
    assert body.startswith("replica ") and int(body.split()[1]) != died and int(body.split()[1]) in \
        {r["id"] for r in ready(doc)}
    # The dead replica is FAILED (its task ended), torn down and replaced.
    serve.wait(lambda d: died not in {r["id"] for r in d["replicas"]} and len(ready(d)) == 2,
               "the dead replica replaced")
    assert "FAILED" in serve.seen.get(died, []) or any(e.replica_id == died and e.status == "FAILED"
                                                        for e in serve.events())
    serve.down()
    serve.assert_nothing_left()


# --- a controller killed and started again ----------------------------------------------------------


def test_a_sigkilled_controller_comes_back_on_its_endpoint_with_its_ready_replicas(serve: Serve) -> None:
    from skyplan.serve.store import ServeStore

    endpoint = serve.up(service_yaml("    min_replicas: 2\n", spot=False))
    doc = serve.wait(lambda d: len(ready(d)) == 2, "two READY")
    with ServeStore() as s:
        pid = s.service("web").controller_pid
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    # ``serve status`` starts a controller again; it binds the same endpoint and, having
    # probed both replicas first, serves them without relaunching anything.
    serve.status()
    end = time.monotonic() + 60
    while True:
        try:
            code, body = _get(endpoint + "/", timeout=2)
            if code == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < end, serve.controller_log()[-4000:]
        time.sleep(0.1)
    after = serve.wait(lambda d: len(ready(d)) == 2, "two READY after the restart")
    assert after["endpoint"] == endpoint
    assert [r["id"] for r in after["replicas"]] == [r["id"] for r in doc["replicas"]] == [1, 2]
    with ServeStore() as s:
        assert s.service("web").controller_pid != pid
    launches = [e for e in serve.events() if e.status == "PROVISIONING"]
    assert len(launches) == 2  # none after the restart
    serve.down()
    serve.assert_nothing_left()
