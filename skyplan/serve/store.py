"""The services' state: four tables in the jobs database (migration ``0002``).

The same database, URL, settings and transaction rules as the managed jobs
(``skyplan.jobs.store``): a ``ServeStore`` opens a jobs ``Store`` (which
creates or migrates the schema, SQLite or PostgreSQL) and runs its own short
transactions on that engine. Every method is one transaction.

* ``services``: one row per service ever created. A live service's
  ``live_name`` is its name (unique), so two live services cannot share one;
  ``delete_service`` clears it (``serve down`` has finished), and the name may
  be used again. The rows are kept.
* ``service_versions``: the task of each version (``serve update`` adds one).
* ``replicas``: ``(service, id)``, ids 1.. per service, never reused (a
  counter on the service row); ``gone`` once torn down (left out of lists).
* ``serve_events``: every transition, with its time and reason.

Replica writes of one service are serialized: SQLite's ``BEGIN IMMEDIATE``
(the jobs store's write transactions), PostgreSQL's lock on the service row
(``SELECT ... FOR UPDATE``), so the controller's worker threads never
interleave a transition with its event.

Time accounting: entering PROVISIONING sets ``launched_at`` (once), entering
READY sets ``ready_at``; a caller may pass either to override.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from skyplan.errors import NotFoundError, ServeError
from skyplan.jobs.store import Store, metadata
from skyplan.serve.states import ReplicaRecord, ReplicaStatus, ServeEvent, ServiceRecord, ServiceStatus

log = logging.getLogger("skyplan.serve.events")

__all__ = ["GONE_REASON", "REPLICA_FIELDS", "ServeError", "ServeStore", "cluster_name"]

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: The reason of the event ``gone`` records (``serve down`` counts them).
GONE_REASON = "torn down"
#: ``set_service``'s "leave it as it is" (None clears a field).
_KEEP: Any = object()

# --- the tables (the migration ``0002`` creates exactly these; they share the jobs metadata, so
# tests/jobs/test_store.py's comparison of migrations and metadata covers them) ---------------------

services_t = sa.Table(
    "services", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("live_name", sa.String(255)),  # = name while the service exists; NULL once deleted
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("endpoint", sa.String(255)),
    sa.Column("controller_pid", sa.Integer),
    sa.Column("down_requested", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("metrics", sa.Text),
    sa.Column("next_replica", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float),
    sa.UniqueConstraint("live_name", name="uq_services_live_name"),
    sqlite_autoincrement=True,  # a deleted service's id is never given to a new one
)
service_versions_t = sa.Table(
    "service_versions", metadata,
    sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("task_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
replicas_t = sa.Table(
    "replicas", metadata,
    sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("replica_id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("use_spot", sa.Boolean, nullable=False),
    sa.Column("fallback", sa.Boolean, nullable=False),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("cloud", sa.String(64)),
    sa.Column("region", sa.String(255)),
    sa.Column("zone", sa.String(255)),
    sa.Column("instance_type", sa.String(255)),
    sa.Column("endpoint", sa.String(255)),
    sa.Column("resources", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("launched_at", sa.Float),
    sa.Column("ready_at", sa.Float),
    sa.Column("gone", sa.Boolean, nullable=False),
    sa.Column("gone_at", sa.Float),
)
serve_events_t = sa.Table(
    "serve_events", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("service_id", sa.Integer, nullable=False),
    sa.Column("replica_id", sa.Integer),  # None: the service's own transition
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# Per-service lookups: a live name; a service's replicas still there; its events newest first.
sa.Index("ix_services_name", services_t.c.name, services_t.c.id)
sa.Index("ix_replicas_service_gone", replicas_t.c.service_id, replicas_t.c.gone, replicas_t.c.replica_id)
sa.Index("ix_serve_events_service", serve_events_t.c.service_id, serve_events_t.c.id)

#: Replica fields ``set_replica`` may set besides the status and reason.
REPLICA_FIELDS = frozenset({"cloud", "region", "zone", "instance_type", "endpoint", "launched_at", "ready_at",
                            "resources", "use_spot", "fallback", "cluster"})


def cluster_name(service: str, replica_id: int) -> str:
    """A replica's cluster: ``serve-<service>-<id>``."""
    return f"serve-{service}-{replica_id}"


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"no service named '{name}'", hint="`skyplan serve status` lists the services")


class ServeStore:
    """The serve tables (see the module's docstring). ``url``: an SQLAlchemy URL; None
    reads ``skyplan.jobs.settings.load().db_url``. ``clock`` stamps events and times."""

    def __init__(self, url: str | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.db = Store(url, clock=clock)  # opens (and creates or migrates) the jobs database
        self.url = self.db.url
        self.engine = self.db.engine
        self.clock = clock
        self._pg = self.engine.dialect.name == "postgresql"
        self._tls = threading.local()  # the events of this thread's open write transaction

    @property
    def safe_url(self) -> str:
        return self.db.safe_url

    def close(self) -> None:
        """Close the pooled connections (also call it in a forked child before use)."""
        self.db.close()

    def __enter__(self) -> ServeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The jobs store's transactions: one snapshot per read, BEGIN IMMEDIATE per write on SQLite.
    def _read(self) -> Any:
        return self.db._read()

    @contextmanager
    def _write(self, name: str | None = None, *, lock: bool = False) -> Iterator[tuple[sa.Connection, Any]]:
        """A write transaction and the live service ``name``'s row (None without a name);
        NotFoundError when there is none. ``lock``: PostgreSQL locks the row first.
        The events it recorded (``_event``) are logged once it has committed."""
        self._tls.events = events = []
        with self.db._write() as conn:
            row = None
            if name is not None:
                q = sa.select(services_t).where(services_t.c.live_name == name)
                row = conn.execute(q.with_for_update() if lock and self._pg else q).first()
                if row is None:
                    raise _not_found(name)
            yield conn, row
        for line in events:
            log.info("%s", line)

    def _event(self, conn: sa.Connection, name: str, service_id: int, replica_id: int | None, status: str,
               reason: str, now: float) -> None:
        """Record one transition: THE place every event is written, so every one is also
        logged (the controller's process logs to ``controller.log``: one line each)."""
        conn.execute(serve_events_t.insert().values(service_id=service_id, replica_id=replica_id, at=now,
                                                    status=status, reason=reason))
        who = f"service {name}:" + (f" replica {replica_id}" if replica_id is not None else "")
        self._tls.events.append(f"{who} {status}: {reason}" if reason else f"{who} {status}")

    @staticmethod
    def _live(conn: sa.Connection, name: str) -> Any:
        row = conn.execute(sa.select(services_t).where(services_t.c.live_name == name)).first()
        if row is None:
            raise _not_found(name)
        return row

    # --- services -------------------------------------------------------------------------------

    def create_service(self, name: str, task_json: str, options: dict[str, Any]) -> ServiceRecord:
        """A new service at version 1 (CONTROLLER_INIT). ServeError when a service of that name exists."""
        now = self.clock()
        with self._write() as (conn, _):
            self._name_free(conn, name)
            sid = conn.execute(services_t.insert().values(
                name=name, live_name=name, status=ServiceStatus.CONTROLLER_INIT.value, version=1, endpoint=None,
                controller_pid=None, down_requested=False, reason="created", options=json.dumps(options, sort_keys=True),
                metrics=None, next_replica=1, created_at=now, deleted_at=None).returning(services_t.c.id)).scalar_one()
            conn.execute(service_versions_t.insert().values(service_id=sid, version=1, task_json=task_json,
                                                            created_at=now))
            self._event(conn, name, sid, None, ServiceStatus.CONTROLLER_INIT.value, "created", now)
        return ServiceRecord(name, 1, ServiceStatus.CONTROLLER_INIT, None, now)

    def check_name_free(self, name: str) -> None:
        """ServeError (with the next step) when a service named ``name`` exists: ``serve up``
        says so before it asks anything; ``create_service`` checks again in its transaction."""
        with self._read() as conn:
            self._name_free(conn, name)

    @staticmethod
    def _name_free(conn: sa.Connection, name: str) -> None:
        old = conn.execute(sa.select(services_t.c.down_requested).where(services_t.c.live_name == name)).first()
        if old is not None:
            raise ServeError(
                f"a service named '{name}' already exists" + (" and is shutting down" if old.down_requested else ""),
                hint=(f"wait for `skyplan serve down {name}` to finish" if old.down_requested else
                      f"pick another name (-n), update it (`skyplan serve update {name} FILE`) or take it down "
                      f"first (`skyplan serve down {name}`)"))

    def service(self, name: str) -> ServiceRecord | None:
        """The live service ``name`` with its replicas (gone ones left out), or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(services_t).where(services_t.c.live_name == name)).first()
            return None if row is None else self._record(conn, [row])[0]

    def services(self) -> list[ServiceRecord]:
        """Every live service (by name), with its replicas."""
        with self._read() as conn:
            rows = conn.execute(sa.select(services_t).where(services_t.c.live_name.is_not(None))
                                .order_by(services_t.c.name)).all()
            return self._record(conn, rows)

    def _record(self, conn: sa.Connection, rows: list[Any]) -> list[ServiceRecord]:
        if not rows:
            return []
        reps = conn.execute(sa.select(replicas_t, services_t.c.name).join(services_t)
                            .where(replicas_t.c.service_id.in_([r.id for r in rows]), replicas_t.c.gone == sa.false())
                            .order_by(replicas_t.c.service_id, replicas_t.c.replica_id)).all()
        by_service: dict[int, list[ReplicaRecord]] = {}
        for r in reps:
            by_service.setdefault(r.service_id, []).append(_replica(r))
        return [ServiceRecord(r.name, r.version, ServiceStatus(r.status), r.endpoint, r.created_at,
                              controller_pid=r.controller_pid, down_requested=bool(r.down_requested),
                              replicas=tuple(by_service.get(r.id, ()))) for r in rows]

    def add_version(self, name: str, task_json: str) -> int:
        """A new version of the service's task (``serve update``): its number. ServeError while it shuts down."""
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            if row.down_requested:
                raise ServeError(f"service '{name}' is shutting down", hint="wait for `skyplan serve down` to finish, "
                                 "then `skyplan serve up` it again")
            version = row.version + 1
            conn.execute(service_versions_t.insert().values(service_id=row.id, version=version, task_json=task_json,
                                                            created_at=now))
            conn.execute(services_t.update().where(services_t.c.id == row.id).values(version=version))
            self._event(conn, name, row.id, None, row.status, f"version {version} added", now)
        return version

    def task_json(self, name: str, version: int) -> str:
        """The task of ``version`` of the live service ``name`` (NotFoundError)."""
        with self._read() as conn:
            text = conn.execute(sa.select(service_versions_t.c.task_json).join(services_t).where(
                services_t.c.live_name == name, service_versions_t.c.version == version)).scalar()
        if text is None:
            raise NotFoundError(f"service '{name}' has no version {version}",
                                hint=f"`skyplan serve status {name}` shows its version")
        return text

    def options(self, name: str) -> dict[str, Any]:
        """What the service was created with (``simulate``, ``backend``, ``catalog``)."""
        with self._read() as conn:
            return json.loads(self._live(conn, name).options)

    def set_service(self, name: str, *, status: ServiceStatus | None = None, endpoint: Any = _KEEP,
                    controller_pid: Any = _KEEP, reason: str = "") -> None:
        """Change the service row: ``status`` (with an event when it changes), ``endpoint``,
        ``controller_pid``; an argument left out keeps its value, None clears it."""
        values: dict[str, Any] = {}
        if endpoint is not _KEEP:
            values["endpoint"] = endpoint
        if controller_pid is not _KEEP:
            values["controller_pid"] = controller_pid
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            if status is not None:
                status = ServiceStatus(status)
                values["status"] = status.value
                if reason:
                    values["reason"] = reason
                if status.value != row.status:
                    self._event(conn, name, row.id, None, status.value, reason, now)
            if values:
                conn.execute(services_t.update().where(services_t.c.id == row.id).values(**values))

    def note_service(self, name: str, reason: str) -> None:
        """An event of the service that keeps its status (e.g. an update the controller abandoned)."""
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            self._event(conn, name, row.id, None, row.status, reason, now)

    def request_down(self, name: str) -> bool:
        """Ask the controller to drain and tear every replica down, then delete the service:
        True when this call asked, False when it had been asked already. NotFoundError."""
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            if row.down_requested:
                return False
            conn.execute(services_t.update().where(services_t.c.id == row.id).values(down_requested=True))
            self._event(conn, name, row.id, None, row.status, "down requested", now)
            return True

    def delete_service(self, name: str) -> None:
        """The service is gone (after ``serve down`` tore every replica down): left out of
        ``services``/``service`` from now on, its name free again; its rows are kept."""
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            conn.execute(services_t.update().where(services_t.c.id == row.id).values(live_name=None, deleted_at=now))
            self._event(conn, name, row.id, None, row.status, "deleted", now)

    def set_metrics(self, name: str, metrics: dict[str, Any]) -> None:
        """The load balancer's latest figures (qps, p50_ms, p99_ms, ...) for ``serve status``."""
        with self._write(name) as (conn, row):
            conn.execute(services_t.update().where(services_t.c.id == row.id)
                         .values(metrics=json.dumps(metrics, sort_keys=True)))

    def metrics(self, name: str) -> dict[str, Any]:
        """What ``set_metrics`` stored last ({} before the first)."""
        with self._read() as conn:
            text = self._live(conn, name).metrics
        return json.loads(text) if text else {}

    # --- replicas -------------------------------------------------------------------------------

    def add_replica(self, name: str, *, version: int, use_spot: bool, fallback: bool = False,
                    resources: str = "") -> ReplicaRecord:
        """A new replica (PENDING) with the service's next id; its cluster is ``serve-<name>-<id>``."""
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            rid = row.next_replica
            conn.execute(services_t.update().where(services_t.c.id == row.id).values(next_replica=rid + 1))
            values = dict(service_id=row.id, replica_id=rid, version=version, status=ReplicaStatus.PENDING.value,
                          use_spot=bool(use_spot), fallback=bool(fallback), cluster=cluster_name(name, rid),
                          cloud=None, region=None, zone=None, instance_type=None, endpoint=None, resources=resources,
                          reason="decided", launched_at=None, ready_at=None, gone=False, gone_at=None)
            conn.execute(replicas_t.insert().values(**values))
            self._event(conn, name, row.id, rid, ReplicaStatus.PENDING.value,
                        "fallback for spot" if fallback else "decided", now)
        return ReplicaRecord(name, rid, version, ReplicaStatus.PENDING, bool(use_spot), cluster_name(name, rid),
                             resources=resources, fallback=bool(fallback), reason="decided")

    def set_replica(self, name: str, replica_id: int, status: ReplicaStatus, reason: str, **fields: Any) -> None:
        """In ONE transaction: the replica's status and reason, the given ``fields``
        (``REPLICA_FIELDS``), the time accounting (module docstring) and an event."""
        unknown = set(fields) - REPLICA_FIELDS
        if unknown:
            raise TypeError(f"set_replica() got unknown fields {sorted(unknown)} (known: {sorted(REPLICA_FIELDS)})")
        status = ReplicaStatus(status)
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            rep = conn.execute(sa.select(replicas_t.c.launched_at).where(
                replicas_t.c.service_id == row.id, replicas_t.c.replica_id == replica_id)).first()
            if rep is None:
                raise NotFoundError(f"service '{name}' has no replica {replica_id}",
                                    hint=f"`skyplan serve status {name}` lists its replicas")
            values: dict[str, Any] = {"status": status.value, "reason": reason, **fields}
            if status is ReplicaStatus.PROVISIONING and rep.launched_at is None and "launched_at" not in fields:
                values["launched_at"] = now
            if status is ReplicaStatus.READY and "ready_at" not in fields:
                values["ready_at"] = now
            conn.execute(replicas_t.update().where(replicas_t.c.service_id == row.id,
                                                   replicas_t.c.replica_id == replica_id).values(**values))
            self._event(conn, name, row.id, replica_id, status.value, reason, now)

    def gone(self, name: str, replica_id: int) -> None:
        """The replica's cluster is torn down: left out of the lists from now on."""
        now = self.clock()
        with self._write(name, lock=True) as (conn, row):
            rep = conn.execute(sa.select(replicas_t.c.status, replicas_t.c.gone).where(
                replicas_t.c.service_id == row.id, replicas_t.c.replica_id == replica_id)).first()
            if rep is None:
                raise NotFoundError(f"service '{name}' has no replica {replica_id}")
            if rep.gone:
                return
            conn.execute(replicas_t.update().where(replicas_t.c.service_id == row.id,
                                                   replicas_t.c.replica_id == replica_id).values(gone=True, gone_at=now))
            self._event(conn, name, row.id, replica_id, rep.status, GONE_REASON, now)

    def replicas(self, name: str, include_gone: bool = False) -> list[ReplicaRecord]:
        """The live service's replicas by id (gone ones only with ``include_gone``)."""
        with self._read() as conn:
            row = self._live(conn, name)
            q = sa.select(replicas_t, services_t.c.name).join(services_t).where(replicas_t.c.service_id == row.id)
            if not include_gone:
                q = q.where(replicas_t.c.gone == sa.false())
            return [_replica(r) for r in conn.execute(q.order_by(replicas_t.c.replica_id))]

    def events(self, name: str, limit: int = 200) -> list[ServeEvent]:
        """The service's last ``limit`` transitions (its own and its replicas'), oldest first."""
        with self._read() as conn:
            row = self._live(conn, name)
            rows = conn.execute(sa.select(serve_events_t).where(serve_events_t.c.service_id == row.id)
                                .order_by(serve_events_t.c.id.desc()).limit(limit)).all()
        return [ServeEvent(r.at, r.replica_id, r.status, r.reason) for r in reversed(rows)]

    def events_after(self, name: str, after_id: int = 0) -> list[tuple[int, ServeEvent]]:
        """``(event id, event)`` of the service's events after ``after_id``, oldest first (to
        follow them). Once the service is deleted, the last service of that name: ``serve
        down`` reads the teardowns recorded just before the deletion."""
        with self._read() as conn:
            sid = conn.execute(sa.select(services_t.c.id).where(services_t.c.name == name)
                               .order_by(services_t.c.id.desc()).limit(1)).scalar()
            if sid is None:
                raise _not_found(name)
            rows = conn.execute(sa.select(serve_events_t).where(serve_events_t.c.service_id == sid,
                                                                serve_events_t.c.id > after_id)
                                .order_by(serve_events_t.c.id)).all()
        return [(r.id, ServeEvent(r.at, r.replica_id, r.status, r.reason)) for r in rows]

    def last_event_id(self, name: str) -> int:
        """The id of the live service's newest event (0 without any): follow from there."""
        with self._read() as conn:
            row = self._live(conn, name)
            return int(conn.execute(sa.select(sa.func.max(serve_events_t.c.id))
                                    .where(serve_events_t.c.service_id == row.id)).scalar() or 0)


def _replica(r: Any) -> ReplicaRecord:
    return ReplicaRecord(r.name, r.replica_id, r.version, ReplicaStatus(r.status), bool(r.use_spot), r.cluster,
                         cloud=r.cloud, region=r.region, zone=r.zone, instance_type=r.instance_type,
                         endpoint=r.endpoint, launched_at=r.launched_at, ready_at=r.ready_at, resources=r.resources,
                         fallback=bool(r.fallback), reason=r.reason)
