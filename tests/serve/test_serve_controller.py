"""The service controller against a fake executor and load balancer and a real store.

Each test drives ``ServeController.step`` pass by pass on a manual clock and
looks at what was recorded (the store's replicas and events), what was pushed
to the load balancer, and what the executor was asked to do, in which order.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyplan.errors import InputError
from skyplan.jobs.logs import RunLogFile
from skyplan.serve.controller import ServeController, ServeSettings, resources_line
from skyplan.serve.executor import probe_url
from skyplan.serve.states import LIVE, ReplicaStatus, ServiceStatus
from skyplan.serve.store import ServeStore
from skyplan.spec import load_text, task_to_dict
from skyplan.testing.serve_fakes import FakeBalancer, FakeServeExecutor

R = ReplicaStatus


def service_yaml(policy: str, *, spot: bool = False, delay: int = 30, extra: str = "") -> str:
    return (f"service:\n  readiness_probe:\n    path: /health\n    initial_delay_seconds: {delay}\n"
            f"  replica_policy:\n{policy}{extra}"
            f"resources:\n  ports: 8081\n  use_spot: {'true' if spot else 'false'}\nrun: python3 server.py\n")


FIXED_2 = "    min_replicas: 2\n"
SPOT_DYNAMIC = ("    min_replicas: 2\n    max_replicas: 3\n    target_qps_per_replica: 1\n"
                "    dynamic_ondemand_fallback: true\n")


def task_json(text: str) -> str:
    return json.dumps(task_to_dict(load_text(text)))


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class World:
    """One service with its store, fake executor and fake load balancer."""

    def __init__(self, tmp: Path, text: str, **settings: float) -> None:
        self.tmp = tmp
        self.clock = Clock()
        self.store = ServeStore(f"sqlite:///{tmp / 'serve.db'}", clock=self.clock)
        self.store.create_service("web", task_json(text), {"simulate": "s.yaml"})
        self.ex = FakeServeExecutor()
        self.lb = FakeBalancer()
        base = dict(poll_s=1.0, not_ready_s=10.0, avoid_s=100.0, spot_retry_s=5.0, workers=4, replace_backoff_s=2.0)
        base.update(settings)
        self.settings = ServeSettings(**base)
        self.ctl = self.controller()

    def controller(self, lb: FakeBalancer | None = None) -> ServeController:
        return ServeController("web", self.store, self.ex, lb or self.lb, self.settings, clock=self.clock,
                               poll_wait_s=10.0, open_log=lambda rid: RunLogFile(self.tmp / f"replica-{rid}.log"))

    def step(self, n: int = 1, dt: float = 1.0) -> None:
        for _ in range(n):
            self.clock.t += dt
            self.ctl.step()
            assert self.ctl.wait_actions(10)

    def replicas(self) -> list:
        return self.store.replicas("web")

    def status(self) -> dict[int, str]:
        return {r.id: r.status.value for r in self.replicas()}

    def ready(self) -> list[int]:
        return sorted(r.id for r in self.replicas() if r.status is R.READY)

    def history(self, rid: int) -> list[str]:
        return [e.status for e in self.store.events("web", limit=1000) if e.replica_id == rid]

    def launches(self) -> int:
        return sum(1 for c in self.ex.calls if c[0] == "launch")

    def events_of(self, status: str, replica: bool = True) -> list:
        """Transitions into ``status`` (a replica's, or the service's), teardowns (gone) left out."""
        return [e for e in self.store.events("web", limit=5000)
                if e.status == status and (e.replica_id is not None) == replica and e.reason != "torn down"]

    def until(self, cond, what: str, n: int = 40) -> None:  # noqa: ANN001
        for _ in range(n):
            if cond():
                return
            self.step()
        pytest.fail(f"{what}: not after {n} passes; replicas {self.status()}")

    def close(self) -> None:
        self.ctl.close()
        self.store.close()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))


@pytest.fixture
def world_of(tmp_path: Path) -> Iterator:
    made: list[World] = []

    def make(text: str, **settings: float) -> World:
        w = World(tmp_path, text, **settings)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def test_replicas_launch_with_their_env_become_ready_and_are_pushed(world_of) -> None:
    w = world_of(service_yaml(FIXED_2))
    w.until(lambda: w.ready() == [1, 2], "two READY replicas")
    assert w.lb.current == {1: "http://serve-web-1:8081", 2: "http://serve-web-2:8081"}
    assert w.history(1)[:4] == ["PENDING", "PROVISIONING", "STARTING", "READY"]
    assert w.events_of("PROVISIONING")[0].reason == "launching an on-demand replica (version 1)"
    envs = {c: e for c, _, e in w.ex.launched}
    assert envs["serve-web-2"] == {"SKYPLAN_SERVICE": "web", "SKYPLAN_REPLICA_ID": "2"}
    assert [r.use_spot for r in w.replicas()] == [False, False]
    r1 = w.replicas()[0]
    assert (r1.zone, r1.endpoint, r1.launched_at is not None) == ("r1-a", "http://serve-web-1:8081", True)
    assert w.store.service("web").status is ServiceStatus.READY
    # A pass with nothing new pushes nothing (pushes follow changes, not a timer).
    pushes = len(w.lb.pushes)
    w.step(3)
    assert len(w.lb.pushes) == pushes
    assert len(w.ex.launched) == 2


def test_provisioning_is_recorded_before_the_launch_runs(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 1\n"))
    w.ex.gate = threading.Event()
    w.clock.t += 1
    w.ctl.step()  # the launch waits on the gate: the store already says PROVISIONING
    assert w.status() == {1: "PROVISIONING"}
    assert w.replicas()[0].resources == "1x fake(vCPU=4)"  # the plan's first candidate, before it is up
    assert w.ex.ops("serve-web-1") == ["launch"]
    w.ex.gate.set()
    w.until(lambda: w.ready() == [1], "READY")


def test_a_preempted_spot_replica_leaves_the_ready_set_at_once_and_its_zone_is_avoided(world_of) -> None:
    w = world_of(service_yaml(SPOT_DYNAMIC, spot=True))
    # At first spot is not READY: two on-demand fallbacks launch beside the spot replicas, then go.
    w.until(lambda: w.ready() == [1, 2] and len(w.replicas()) == 2, "two spot READY, fallbacks gone")
    assert all(r.use_spot for r in w.replicas())
    zone = w.replicas()[0].zone
    w.ex.preempt("serve-web-1")
    pushes = len(w.lb.pushes)
    w.step()
    assert w.history(1)[-1] == "PREEMPTED" or 1 not in w.status()
    # In that very pass: recorded PREEMPTED, then pushed without it, then torn down.
    assert 1 not in w.lb.pushes[pushes]
    assert "PREEMPTED" in w.history(1)
    assert "teardown" in w.ex.ops("serve-web-1")
    assert zone in w.ctl.avoid
    # ... and in the capacity memory every plan reads (spot only, for a while).
    from skyplan.provision.memory import for_planning

    rec = next(r for r in for_planning().records if r.code == "preempted")
    assert (rec.pattern.zone, rec.pattern.use_spot, rec.kind) == (zone, True, "capacity")
    assert 99 <= (rec.expires_at - rec.at).total_seconds() <= 101  # avoid_s
    # Its replacement spot replica tries the avoided zone last; an on-demand fallback stands in meanwhile.
    spot_plans = [p for p in w.ex.plans[2:] if p and p[0].endswith("/spot")]
    assert spot_plans and spot_plans[0][-1] == f"{zone}/spot", spot_plans
    w.until(lambda: 1 not in w.status(), "replica 1 gone")
    text = (w.tmp / "replica-1.log").read_text()
    assert "serve-web-1 torn down (preempted: the cloud says its node is stopped)" in text, text
    assert "preempted: preempted" not in text
    w.until(lambda: len(w.ready()) >= 2 and all(r.use_spot for r in w.replicas() if r.status is R.READY)
            and not any(r.fallback for r in w.replicas()), "back to two spot replicas, fallback drained")


def test_a_failed_spot_launch_backs_off_and_an_on_demand_fallback_covers(world_of) -> None:
    w = world_of(service_yaml(SPOT_DYNAMIC, spot=True))
    w.ex.spot_out = True
    w.until(lambda: len(w.ready()) == 2, "two READY")
    reps = w.replicas()
    ready = [r for r in reps if r.status is R.READY]
    assert all(not r.use_spot and r.fallback for r in ready), reps
    assert w.ctl.spot_retry_at is not None and w.ctl.spot_retry_at > w.clock.t
    # No spot launch before the retry time.
    launches = len([c for c in w.ex.calls if c[0] == "launch"])
    w.step(2, dt=0.5)
    assert w.clock.t < w.ctl.spot_retry_at
    assert len([c for c in w.ex.calls if c[0] == "launch"]) == launches
    # Spot returns: spot READY, the fallbacks drained (out of the READY set before their teardown), then gone.
    w.ex.spot_out = False
    w.until(lambda: len(w.ready()) == 2 and all(r.use_spot for r in w.replicas()), "spot back, fallbacks gone")
    for rid, when in zip([d[0] for d in w.lb.drain_waits], w.lb.sets_at_drain):
        assert rid not in when
    assert all("SHUTTING_DOWN" in w.history(r.id) for r in ready)


def test_starting_past_the_initial_delay_fails_and_is_replaced(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 1\n", delay=5))
    w.ex.ready_after_for["serve-web-1"] = 10**6
    w.until(lambda: "FAILED" in w.history(1) and 1 not in w.status(), "replica 1 failed and gone")
    failed = next(e for e in w.store.events("web", 1000) if e.replica_id == 1 and e.status == "FAILED")
    assert "initial delay" in failed.reason
    w.until(lambda: w.ready() == [2], "its replacement READY")


def test_not_ready_leaves_the_set_comes_back_and_fails_when_it_lasts(world_of) -> None:
    w = world_of(service_yaml(FIXED_2), not_ready_s=4.0)
    w.until(lambda: w.ready() == [1, 2], "READY")
    w.ex.unhealthy("serve-web-1")
    w.step()
    assert w.status()[1] == "NOT_READY" and set(w.lb.current) == {2}
    w.ex.unhealthy("serve-web-1", on=False)
    w.step()
    assert w.status()[1] == "READY" and set(w.lb.current) == {1, 2}
    w.ex.unhealthy("serve-web-1")
    w.until(lambda: "FAILED" in w.history(1) and 1 not in w.status(), "replica 1 failed and torn down")
    assert w.history(1)[-1] == "FAILED"
    assert "teardown" in w.ex.ops("serve-web-1")
    w.until(lambda: len(w.ready()) == 2, "replaced")


def test_a_task_that_ends_fails_at_once(world_of) -> None:
    w = world_of(service_yaml(FIXED_2), not_ready_s=1000.0)
    w.until(lambda: w.ready() == [1, 2], "READY")
    w.ex.crash("serve-web-2")
    w.step()
    assert "FAILED" in w.history(2) and 2 not in w.lb.current
    assert "NOT_READY" not in w.history(2)


def test_a_restarted_controller_keeps_ready_replicas_and_relaunches_provisioning_ones(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 3\n"))
    w.ex.gate = threading.Event()
    w.clock.t += 1
    w.ctl.step()
    assert w.status() == {1: "PROVISIONING", 2: "PROVISIONING", 3: "PROVISIONING"}
    w.ex.gate.set()
    w.until(lambda: w.ready() == [1, 2, 3], "READY")
    w.ctl.close()
    # The controller died with replica 3 PROVISIONING (as if killed mid-launch), and
    # replica 2's server stopped answering while no controller watched.
    w.store.set_replica("web", 3, R.PROVISIONING, "launching")
    w.ex.unhealthy("serve-web-2")
    lb2 = FakeBalancer()
    w.ctl = w.controller(lb2)
    w.step()
    # Every replica was probed before anything was decided: the first push holds replica 1
    # (still READY, never relaunched nor torn down), not replica 2 (NOT_READY now).
    assert lb2.pushes[0] == {1: "http://serve-web-1:8081"}
    assert w.status()[1] == "READY" and w.status()[2] == "NOT_READY"
    assert w.ex.ops("serve-web-1") == ["launch"]
    assert w.ex.ops("serve-web-3") == ["launch", "launch"]  # converges on the cluster that is up
    w.ex.unhealthy("serve-web-2", on=False)
    w.until(lambda: w.ready() == [1, 2, 3], "replicas 2 and 3 READY again")
    assert len(w.replicas()) == 3 and sum(1 for c in w.ex.calls if c[0] == "launch") == 4


def test_down_drains_tears_down_and_deletes_the_service(world_of) -> None:
    w = world_of(service_yaml(FIXED_2))
    w.until(lambda: w.ready() == [1, 2], "READY")
    w.store.request_down("web")
    for _ in range(10):
        w.step()
        if w.ctl.finished:
            break
    assert w.ctl.finished
    assert w.store.service("web") is None
    assert w.lb.current == {}
    assert sorted(d[0] for d in w.lb.drain_waits) == [1, 2]
    assert all(not when for when in w.lb.sets_at_drain[1:]) and all(1 not in s for s in w.lb.sets_at_drain)
    assert w.ex.up == {}


def test_a_rolling_update_never_exceeds_the_surge_and_drains_old_after_new_ready(world_of) -> None:
    w = world_of(service_yaml(FIXED_2))
    w.until(lambda: w.ready() == [1, 2], "v1 READY")
    w.store.add_version("web", task_json(service_yaml(FIXED_2, extra="").replace("server.py", "server2.py")))
    seen_live = []
    for _ in range(40):
        w.step()
        reps = w.replicas()
        seen_live.append(sum(1 for r in reps if r.status in LIVE))
        assert len(w.lb.current) <= 3
        old_ready = [r for r in reps if r.version == 1 and r.status is R.READY]
        new_ready = [r for r in reps if r.version == 2 and r.status is R.READY]
        assert old_ready or new_ready  # the service never goes without a READY replica
        if not [r for r in reps if r.version == 1] and len(new_ready) == 2:
            break
    else:
        pytest.fail(f"update did not finish: {w.status()}")
    assert max(seen_live) <= 3  # max_replicas 2 + the default surge of 1
    for rid, when in zip([d[0] for d in w.lb.drain_waits], w.lb.sets_at_drain):
        assert rid not in when


def test_a_task_that_cannot_run_as_written_fails_the_service_without_a_launch_loop(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 1\n"))
    w.ex.launch_errors["serve-web-1"] = [InputError("the workdir ./src is missing", hint="restore it")]
    w.step(6)
    assert w.store.service("web").status is ServiceStatus.FAILED
    assert sum(1 for c in w.ex.calls if c[0] == "launch") == 1
    failed = w.events_of("FAILED", replica=False)[-1].reason
    assert "the workdir ./src is missing" in failed and "`skyplan serve logs web 1`" in failed


# --- the failure budget ---------------------------------------------------------------------------


def test_a_task_that_exits_backs_off_then_fails_the_service_with_nothing_left(world_of) -> None:
    # ``run: exit 3``: each replica's task ends at once. Replacements back off (2 s, then
    # 4 s), and after 3 failed replicas with none READY the service is FAILED, for good.
    w = world_of(service_yaml("    min_replicas: 1\n"), replace_backoff_s=2.0, max_failures=3)
    w.ex.exits = 3
    w.until(lambda: w.store.service("web").status is ServiceStatus.FAILED, "the service FAILED", n=60)
    w.step(30)
    assert w.launches() == 3
    assert w.store.service("web").status is ServiceStatus.FAILED
    reason = w.events_of("FAILED", replica=False)[-1].reason
    assert "exit 3" in reason and "3 replicas failed" in reason and "`skyplan serve logs web 3`" in reason
    # The READY set is empty and every replica torn down.
    assert w.replicas() == [] and w.ex.up == {} and w.lb.current == {}
    # Each replacement waited for its back-off, doubling: 2 s after the first failure, 4 s after the second.
    failed = {e.replica_id: e.at for e in w.events_of("FAILED")}
    began = {e.replica_id: e.at for e in w.events_of("PROVISIONING")}
    assert "its task ended (exit 3); replaced in 2 s" in [e.reason for e in w.events_of("FAILED")]
    assert began[2] - failed[1] >= 2 and began[3] - failed[2] >= 4
    # ``serve update`` gives the new version a budget of its own: it launches, and serves.
    w.ex.exits = None
    w.store.add_version("web", task_json(service_yaml("    min_replicas: 1\n").replace("server.py", "fixed.py")))
    w.until(lambda: w.ready() == [4], "version 2 READY")
    assert w.store.service("web").status is ServiceStatus.READY


def test_a_broken_update_is_abandoned_and_the_old_version_keeps_serving(world_of) -> None:
    w = world_of(service_yaml(FIXED_2), replace_backoff_s=1.0, max_failures=3)
    w.until(lambda: w.ready() == [1, 2], "version 1 READY")
    w.ex.exits = 3  # every replica launched from now on: version 2's
    w.store.add_version("web", task_json(service_yaml(FIXED_2).replace("server.py", "broken.py")))
    statuses = set()
    for _ in range(60):
        w.step()
        statuses.add(w.store.service("web").status)
        assert set(w.lb.current) == {1, 2}  # version 1 serves throughout
    assert statuses == {ServiceStatus.READY}
    v2 = [e.replica_id for e in w.events_of("PENDING") if e.replica_id not in (1, 2)]
    assert len(v2) == 3 and w.launches() == 2 + 3  # launches of version 2 stopped
    note = [e.reason for e in w.events_of("READY", replica=False) if "abandoned" in e.reason]
    assert note and note[0].startswith("update to version 2 abandoned, version 1 keeps serving: ")
    assert sorted(r.id for r in w.replicas()) == [1, 2]  # version 2's replicas torn down
    # A later update starts again with a full budget and rolls out.
    w.ex.exits = None
    w.store.add_version("web", task_json(service_yaml(FIXED_2).replace("server.py", "fixed.py")))
    w.until(lambda: len(w.ready()) == 2 and all(r.version == 3 for r in w.replicas()), "version 3 rolled out",
            n=60)


def test_a_restarted_controller_keeps_a_failed_service_failed(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 1\n"), replace_backoff_s=1.0, max_failures=2)
    w.ex.exits = 3
    w.until(lambda: w.store.service("web").status is ServiceStatus.FAILED and not w.replicas(), "FAILED")
    w.ctl.close()
    w.ctl = w.controller(FakeBalancer())
    w.step(10)
    assert w.launches() == 2 and w.store.service("web").status is ServiceStatus.FAILED


def test_preemptions_and_capacity_do_not_spend_the_budget(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 1\n", spot=True), max_failures=2, spot_retry_s=1.0)
    for rid in range(1, 5):  # four spot replicas preempted while STARTING, none ever READY
        w.ex.ready_after_for[f"serve-web-{rid}"] = 10**6
    for rid in range(1, 5):
        w.until(lambda rid=rid: w.status().get(rid) == "STARTING", f"replica {rid} STARTING")
        w.ex.preempt(f"serve-web-{rid}")
        w.ex.spot_out = rid == 4  # and then launches that find no capacity
        w.step()
    w.until(lambda: len(w.events_of("FAILED")) >= 3, "three launches without capacity", n=80)
    assert all("no resource" in e.reason for e in w.events_of("FAILED"))
    w.ex.spot_out = False
    w.until(lambda: len(w.ready()) == 1, "a spot replica READY at last", n=80)
    assert ServiceStatus.FAILED.value not in [e.status for e in w.events_of("FAILED", replica=False)]


# --- service status, the controller log, launches -------------------------------------------------


def test_the_service_is_no_replica_while_its_replicas_provision(world_of) -> None:
    # Seed 002: every replica PROVISIONING shows ``NO_REPLICA 0/4``.
    w = world_of(service_yaml(FIXED_2))
    w.ex.gate = threading.Event()
    w.clock.t += 1
    w.ctl.step()
    assert w.status() == {1: "PROVISIONING", 2: "PROVISIONING"}
    assert w.store.service("web").status is ServiceStatus.NO_REPLICA
    w.ex.gate.set()
    w.until(lambda: w.ready() == [1, 2], "READY")
    assert w.store.service("web").status is ServiceStatus.READY
    assert "REPLICA_INIT" not in [e.status for e in w.store.events("web", 1000)]


def test_every_transition_the_store_records_is_one_line_of_the_controller_log(world_of, caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="skyplan.serve")
    w = world_of(service_yaml("    min_replicas: 1\n"))
    w.until(lambda: w.ready() == [1], "READY")
    w.ex.crash("serve-web-1")
    w.until(lambda: w.ready() == [2] and 1 not in w.status(), "replica 1 replaced and gone")
    from collections import Counter

    events = w.store.events("web", 1000)
    assert {"PENDING", "PROVISIONING", "STARTING", "READY", "FAILED"} <= {e.status for e in events}
    assert {"NO_REPLICA", "READY"} <= {e.status for e in events if e.replica_id is None}
    assert any(e.reason == "torn down" for e in events)  # gone
    want = Counter("service web:" + (f" replica {e.replica_id}" if e.replica_id is not None else "")
                   + f" {e.status}: {e.reason}" for e in events)
    assert Counter(r.getMessage() for r in caplog.records if r.name == "skyplan.serve.events") == want


def test_a_launch_tries_only_the_first_candidates_of_its_ordered_plan(world_of) -> None:
    w = world_of(service_yaml("    min_replicas: 1\n", spot=True), max_attempts=2, spot_retry_s=100.0)
    w.ex.rows = tuple((f"r{i}", f"r{i}-a", True) for i in range(12))
    w.ctl.avoid["r0-a"] = w.clock.t + 1000  # preempted there lately: last in the order
    w.ex.spot_out = True
    w.step(3)
    assert w.ex.plans and all(p == ("r1-a/spot", "r2-a/spot") for p in w.ex.plans), w.ex.plans
    assert w.launches() == 1  # found nothing in its 2 candidates: spot waits for its retry time
    assert w.ctl.spot_retry_at is not None


def test_settings_from_env_name_a_bad_variable() -> None:
    assert ServeSettings.from_env({"SKYPLAN_SERVE_POLL_S": "0.3"}).poll_s == 0.3
    got = ServeSettings.from_env({"SKYPLAN_SERVE_MAX_FAILURES": "5", "SKYPLAN_SERVE_MAX_ATTEMPTS": "16",
                                  "SKYPLAN_SERVE_REPLACE_BACKOFF_S": "1.5"})
    assert (got.max_failures, got.max_attempts, got.replace_backoff_s) == (5, 16, 1.5)
    with pytest.raises(InputError, match="SKYPLAN_SERVE_MAX_FAILURES"):
        ServeSettings.from_env({"SKYPLAN_SERVE_MAX_FAILURES": "2.5"})
    with pytest.raises(InputError, match="SKYPLAN_SERVE_POLL_S"):
        ServeSettings.from_env({"SKYPLAN_SERVE_POLL_S": "soon"})
    with pytest.raises(InputError, match="SKYPLAN_SERVE_WORKERS"):
        ServeSettings.from_env({"SKYPLAN_SERVE_WORKERS": "0"})


def test_resources_line_is_the_seeds_style() -> None:
    assert resources_line(1, "gcp", True, 2.0) == "1x GCP([Spot]vCPU=2)"
    assert resources_line(1, "gcp", False, 2.0) == "1x GCP(vCPU=2)"
    assert resources_line(2, None, False) == "2x -()"


# --- the real probe ----------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, bytes]] = []

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        _Handler.seen.append((self.command, self.path, self.headers.get("X-Token", ""), body))
        code = 200 if self.path == "/health" else 503
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.seen.clear()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _cfg(path: str, post: str | None = None, headers: tuple = (), timeout: float = 2.0):  # noqa: ANN202
    from types import SimpleNamespace

    return SimpleNamespace(probe_path=path, probe_post_data=post, probe_headers=headers, probe_timeout_s=timeout)


def test_probe_gets_or_posts_with_headers_and_wants_2xx(server: str) -> None:
    assert probe_url(server, _cfg("/health"))
    assert not probe_url(server, _cfg("/other"))  # 503
    assert probe_url(server, _cfg("/health", post='{"q": 1}', headers=(("X-Token", "t"),)))
    assert _Handler.seen[-1] == ("POST", "/health", "t", b'{"q": 1}')
    assert _Handler.seen[0][0] == "GET"


def test_probe_of_nothing_listening_is_a_failure() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert not probe_url(f"http://127.0.0.1:{port}", _cfg("/health", timeout=1.0))


# --- the real executor's endpoint -------------------------------------------------------------------


def test_endpoint_asks_the_clusters_cloud_with_its_outputs() -> None:
    from types import SimpleNamespace

    from skyplan.serve.executor import ProvisionServeExecutor

    asked = []

    class Cloud:
        def endpoint(self, outputs, port):  # noqa: ANN001, ANN201
            asked.append((outputs, port))
            return f"http://127.0.0.1:{outputs['nodes'][0]['port']}" if outputs.get("nodes") else None

    rows = {"up": SimpleNamespace(status="UP", outputs={"nodes": [{"rank": 0, "port": 41234}]}),
            "bare": SimpleNamespace(status="UP", outputs={}),
            "down": SimpleNamespace(status="DOWN", outputs={"nodes": [{"rank": 0, "port": 1}]})}
    inner = SimpleNamespace(_row=rows.get, _runner=lambda row: Cloud())
    ex = ProvisionServeExecutor(inner)
    assert ex.endpoint("up", 8081) == "http://127.0.0.1:41234"
    assert asked[-1] == ({"nodes": [{"rank": 0, "port": 41234}]}, 8081)
    assert ex.endpoint("bare", 8081) is None  # the outputs do not say: not known yet
    assert ex.endpoint("down", 8081) is None and ex.endpoint("missing", 8081) is None
    assert len(asked) == 2  # a cluster that is not up is not asked about


def test_a_live_replicas_output_reaches_its_log_while_it_serves(world_of) -> None:
    # Found trying it: `serve logs NAME ID` showed a READY replica's launch lines only; its
    # task's output was copied at teardown alone.
    w = world_of(service_yaml(FIXED_2))
    w.until(lambda: w.ready() == [1, 2], "two READY replicas")
    w.step(2)
    assert all(r.status is R.READY for r in w.replicas())
    assert "fake: output of serve-web-1" in (w.tmp / "replica-1.log").read_text()


def test_spot_launches_failing_in_one_wave_wait_once(world_of) -> None:
    # Found trying it: two spot replicas failing together doubled the wait (60 s) while the
    # first one's event said 30 s.
    w = world_of(service_yaml(SPOT_DYNAMIC, spot=True), spot_retry_s=5.0)
    w.ex.spot_out = True
    w.until(lambda: len(w.events_of("FAILED")) >= 2, "both spot launches failed")
    first = [e for e in w.events_of("FAILED") if "spot tried again" in e.reason][:2]
    assert len(first) == 2 and all("spot tried again in 5 s" in e.reason or "spot tried again in 4 s" in e.reason
                                   for e in first), [e.reason for e in first]
    assert w.ctl.spot_retry_at - w.clock.t <= 5.0
