"""The serve store on SQLite and on PostgreSQL (``db_url``): services and versions,
replicas with ids never reused and their events in one transaction, gone replicas
left out, a name free again after delete, and the migration from a jobs database
at revision 0001 (its jobs kept, ``jobs queue``'s fast path still reading it)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from skyplan.errors import NotFoundError
from skyplan.serve.states import ReplicaStatus, ServiceStatus
from skyplan.serve.store import ServeError, ServeStore

TASK = json.dumps({"run": "python3 -m http.server"})


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock):  # noqa: ANN201
    s = ServeStore(db_url, clock=clock)
    yield s
    s.close()


def test_a_new_service_is_version_1_waiting_for_its_controller(store: ServeStore, clock: Clock):
    rec = store.create_service("web", TASK, {"simulate": "/s.yaml"})
    assert (rec.name, rec.version, rec.status, rec.endpoint, rec.created_at) == (
        "web", 1, ServiceStatus.CONTROLLER_INIT, None, clock.t)
    got = store.service("web")
    assert got == rec
    assert store.task_json("web", 1) == TASK and store.options("web") == {"simulate": "/s.yaml"}
    assert [s.name for s in store.services()] == ["web"]
    assert store.service("nope") is None
    with pytest.raises(NotFoundError):
        store.options("nope")


def test_a_live_name_is_taken_until_the_service_is_deleted(store: ServeStore):
    store.create_service("web", TASK, {})
    with pytest.raises(ServeError, match="already exists"):
        store.create_service("web", TASK, {})
    assert store.request_down("web") is True
    assert store.request_down("web") is False  # asked already
    with pytest.raises(ServeError, match="shutting down"):
        store.create_service("web", TASK, {})
    with pytest.raises(ServeError, match="shutting down"):
        store.add_version("web", TASK)
    store.delete_service("web")
    assert store.service("web") is None and store.services() == []
    with pytest.raises(NotFoundError):
        store.request_down("web")
    again = store.create_service("web", TASK, {"x": 1})  # the name is free again, a fresh service
    assert again.version == 1 and store.options("web") == {"x": 1}
    assert store.add_replica("web", version=1, use_spot=True).id == 1


def test_versions_and_service_fields(store: ServeStore, clock: Clock):
    store.create_service("web", TASK, {})
    assert store.add_version("web", '{"run": "v2"}') == 2
    assert store.add_version("web", '{"run": "v3"}') == 3
    assert store.task_json("web", 2) == '{"run": "v2"}' and store.service("web").version == 3
    with pytest.raises(NotFoundError):
        store.task_json("web", 4)
    clock.t += 5
    store.set_service("web", status=ServiceStatus.REPLICA_INIT, endpoint="http://127.0.0.1:4000",
                      controller_pid=4242, reason="load balancer bound")
    s = store.service("web")
    assert (s.status, s.endpoint, s.controller_pid) == (ServiceStatus.REPLICA_INIT, "http://127.0.0.1:4000", 4242)
    store.set_service("web", controller_pid=None)  # None clears; what is left out is kept
    s = store.service("web")
    assert s.controller_pid is None and s.endpoint == "http://127.0.0.1:4000"
    store.set_service("web", status=ServiceStatus.REPLICA_INIT, reason="same status: no event")
    events = [(e.replica_id, e.status, e.reason) for e in store.events("web")]
    assert events == [(None, "CONTROLLER_INIT", "created"), (None, "CONTROLLER_INIT", "version 2 added"),
                      (None, "CONTROLLER_INIT", "version 3 added"),
                      (None, "REPLICA_INIT", "load balancer bound")]
    assert store.metrics("web") == {}
    store.set_metrics("web", {"qps": 2.5, "p50_ms": 1.2, "p99_ms": None})
    assert store.metrics("web") == {"qps": 2.5, "p50_ms": 1.2, "p99_ms": None}


def test_replicas_get_ids_never_reused_and_every_transition_an_event(store: ServeStore, clock: Clock):
    store.create_service("web", TASK, {})
    a = store.add_replica("web", version=1, use_spot=True, resources="1x sim([Spot]vCPU=2)")
    b = store.add_replica("web", version=1, use_spot=False, fallback=True)
    assert (a.id, a.cluster, a.status, a.use_spot) == (1, "serve-web-1", ReplicaStatus.PENDING, True)
    assert (b.id, b.cluster, b.fallback, b.use_spot) == (2, "serve-web-2", True, False)
    clock.t += 1
    store.set_replica("web", 1, ReplicaStatus.PROVISIONING, "launching")
    clock.t += 10
    store.set_replica("web", 1, ReplicaStatus.STARTING, "up", cloud="sim", region="us-east1", zone="us-east1-b",
                      instance_type="n1-standard-2", endpoint="http://127.0.0.1:5001")
    clock.t += 3
    store.set_replica("web", 1, ReplicaStatus.READY, "probe passed")
    r1 = store.replicas("web")[0]
    assert r1.status is ReplicaStatus.READY and r1.launched_at == 1_000_001.0 and r1.ready_at == 1_000_014.0
    assert (r1.cloud, r1.region, r1.zone, r1.endpoint, r1.reason) == (
        "sim", "us-east1", "us-east1-b", "http://127.0.0.1:5001", "probe passed")
    with pytest.raises(TypeError, match="unknown fields"):
        store.set_replica("web", 1, ReplicaStatus.READY, "x", colour="red")
    with pytest.raises(NotFoundError):
        store.set_replica("web", 9, ReplicaStatus.READY, "x")
    store.set_replica("web", 2, ReplicaStatus.SHUTTING_DOWN, "spot is READY again")
    store.gone("web", 2)
    store.gone("web", 2)  # twice: once recorded
    assert [r.id for r in store.replicas("web")] == [1]
    assert [r.id for r in store.replicas("web", include_gone=True)] == [1, 2]
    assert [r.id for r in store.service("web").replicas] == [1]
    c = store.add_replica("web", version=1, use_spot=True)
    assert c.id == 3  # 2 is gone, never given again
    replica_events = [(e.replica_id, e.status, e.reason) for e in store.events("web") if e.replica_id]
    assert replica_events == [(1, "PENDING", "decided"), (2, "PENDING", "fallback for spot"),
                              (1, "PROVISIONING", "launching"), (1, "STARTING", "up"), (1, "READY", "probe passed"),
                              (2, "SHUTTING_DOWN", "spot is READY again"), (2, "SHUTTING_DOWN", "torn down"),
                              (3, "PENDING", "decided")]
    assert [e.reason for e in store.events("web", limit=2)] == ["torn down", "decided"]
    first = store.events_after("web")
    assert [i for i, _ in first] == sorted(i for i, _ in first)
    assert store.events_after("web", first[-2][0]) == [first[-1]]


def test_the_contract_json_of_a_service_and_its_replicas(store: ServeStore):
    store.create_service("web", TASK, {})
    store.set_service("web", endpoint="http://127.0.0.1:4000")
    store.add_replica("web", version=1, use_spot=True)
    doc = store.service("web").to_json()
    assert list(doc) == ["name", "version", "status", "endpoint", "replicas"]
    assert list(doc["replicas"][0])[:10] == ["id", "version", "status", "use_spot", "cloud", "region", "zone",
                                             "cluster", "endpoint", "launched_at"]
    assert doc["replicas"][0]["status"] == "PENDING" and doc["replicas"][0]["cluster"] == "serve-web-1"


def test_threads_adding_replicas_at_once_get_distinct_ids(store: ServeStore):
    # The controller's pool launches several replicas at once: the id counter must not race.
    store.create_service("web", TASK, {})
    ids: list[int] = []
    errors: list[BaseException] = []

    def add() -> None:
        try:
            for _ in range(5):
                rid = store.add_replica("web", version=1, use_spot=True).id
                store.set_replica("web", rid, ReplicaStatus.PROVISIONING, "launching")
                ids.append(rid)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(ids) == list(range(1, 21))
    assert all(r.status is ReplicaStatus.PROVISIONING for r in store.replicas("web"))


def test_a_jobs_database_at_0001_is_upgraded_and_jobs_queue_still_reads_it(db_url: str):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from skyplan.jobs import fastread
    from skyplan.jobs import store as jobs_store
    from skyplan.jobs.records import SCHEMA_REVISION

    # A database an older skyplan made (jobs only), holding a job.
    engine = jobs_store._engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(jobs_store.__file__).with_name("migrations")))
    with engine.connect().execution_options(skyplan_write=True) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
    engine.dispose()
    raw = sa.create_engine(db_url)
    with raw.begin() as conn:  # 0001's own tables, written as that skyplan wrote them
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001"
        assert "services" not in sa.inspect(conn).get_table_names()
        conn.execute(sa.text("INSERT INTO jobs (name, status, finished, submitted_at, recoveries, cancel_requested, "
                             "options) VALUES ('old', 'PENDING', false, 1.0, 0, false, '{}')"))
        conn.execute(sa.text("INSERT INTO tasks (job_id, task_index, status, task_id, recoveries, restarts_on_errors, "
                             "failures, resources, task_json, run_seconds) VALUES (1, 0, 'PENDING', 't', 0, 0, 0, "
                             "'-', '{}', 0)"))
    raw.dispose()
    with ServeStore(db_url) as s:  # opening the serve store migrates to the head
        assert s.db.schema_revision() == SCHEMA_REVISION == "0002"
        s.create_service("web", TASK, {})
        assert [j.name for j in s.db.queue(include_finished=True)] == ["old"]
    if db_url.startswith("sqlite"):  # the fast path reads a database at the new head
        reader = fastread.open_reader(db_url)
        assert isinstance(reader, fastread.SqliteReader)
        with reader:
            assert [j.name for j in reader.queue(limit=5)] == ["old"]
