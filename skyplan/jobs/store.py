"""The managed jobs' state: SQLAlchemy 2 Core tables on SQLite (default) or PostgreSQL.

One ``Store`` per process (the controller, each CLI command); several processes
share one database at once. Every method is one short transaction:

* SQLite runs in WAL mode with a busy timeout; a write transaction starts with
  ``BEGIN IMMEDIATE`` (it takes the write lock at once, so two writers queue on
  the busy timeout instead of failing when a read would upgrade to a write),
  a read with a plain ``BEGIN`` (a consistent snapshot, never blocked by writers).
* PostgreSQL locks the job's row (``SELECT ... FOR UPDATE``) before it changes
  the job, so the controller's threads transitioning two tasks of one pipeline
  keep the job row consistent.

The schema is migrated by Alembic (``skyplan/jobs/migrations``), run from
here: ``Store()`` reads the ``alembic_version`` row and imports Alembic only
when it differs from ``SCHEMA_REVISION`` (a fresh database, or an older one),
so the read path (``jobs queue``) never pays for it. Two processes migrating a
fresh database at once are serialized (SQLite's write lock, a PostgreSQL
advisory lock) and the second finds the work done.

Time accounting is the store's: a task entering RUNNING gets ``started_at``
(the first time) and starts a running period; leaving RUNNING adds the
period to ``run_seconds`` (JOB DURATION); a terminal state sets ``ended_at``.
A caller may pass any of them explicitly to override.

A job's row follows its tasks: its status is the first task's that has not
SUCCEEDED (all succeeded: SUCCEEDED), so a pipeline whose first task failed is
FAILED though the rest were CANCELLED; it is *finished* once every task is
terminal; its recoveries are its tasks' sum.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from skyplan.errors import InputError, NotFoundError, SkyplanError
from skyplan.jobs import records
from skyplan.jobs.records import (  # noqa: F401 - re-exported: the store's JSON and ids
    SCHEMA_REVISION, job_status, job_to_json, queue_json, task_id_for, task_to_json)
from skyplan.jobs.states import TERMINAL, JobRecord, Placement, RunRecord, Status

_placement_json, _placement = records.placement_json, records.placement
#: How long a writer waits for SQLite's write lock before the database counts as stuck.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Ids per ``IN (...)`` when loading tasks and events of many jobs.
_CHUNK = 500
#: The PostgreSQL advisory lock key that serializes migrations ("skyplanj").
_MIGRATE_LOCK = 0x736B79706C616E6A

__all__ = ["SCHEMA_REVISION", "Store", "StoreError", "TaskSubmission", "job_to_json", "queue_json", "task_id_for",
           "task_to_json"]


class StoreError(SkyplanError):
    """The jobs database cannot be opened, migrated or written (exit 1)."""


@dataclass(frozen=True)
class TaskSubmission:
    """One task of a job being submitted (a plain job has one; a pipeline several)."""

    name: str | None
    task_json: str  # the task, serialized (skyplan.spec.serialize), no secrets
    resources: str  # one line for the RESOURCES column, e.g. "1x sim(n1-standard-4, [Spot])"


# --- the tables (the migration ``0001`` creates exactly these) -----------------------------------

metadata = sa.MetaData()
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid alias

jobs_t = sa.Table(
    "jobs", metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("finished", sa.Boolean, nullable=False),
    sa.Column("submitted_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("recoveries", sa.Integer, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused
)
tasks_t = sa.Table(
    "tasks", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("task_index", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("task_id", sa.String(512), nullable=False),
    sa.Column("cluster", sa.String(255)),
    sa.Column("placement", sa.Text),
    sa.Column("recoveries", sa.Integer, nullable=False),
    sa.Column("restarts_on_errors", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("resources", sa.Text, nullable=False),
    sa.Column("task_json", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("run_seconds", sa.Float, nullable=False),
    sa.Column("running_since", sa.Float),
)
events_t = sa.Table(
    "events", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Integer, nullable=False),
    sa.Column("task_index", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)
runs_t = sa.Table(
    "runs", metadata,
    sa.Column("job_id", sa.Integer, primary_key=True),
    sa.Column("task_index", sa.Integer, primary_key=True),
    sa.Column("run_no", sa.Integer, primary_key=True),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("log_path", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("placement", sa.Text),
    sa.Column("outcome", sa.Text),
)
controller_t = sa.Table(
    "controller", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(255)),
    sa.Column("expires_at", sa.Float),
    sa.Column("info", sa.Text),
)

# Keyset pages (``queue``): unfinished jobs newest first, a status, a name; a page's events.
sa.Index("ix_jobs_finished_id", jobs_t.c.finished, jobs_t.c.job_id)
sa.Index("ix_jobs_status_id", jobs_t.c.status, jobs_t.c.job_id)
sa.Index("ix_jobs_name_id", jobs_t.c.name, jobs_t.c.job_id)
sa.Index("ix_events_job", events_t.c.job_id, events_t.c.task_index, events_t.c.id)

#: Task fields ``transition`` may set besides the status.
TRANSITION_FIELDS = frozenset({"cluster", "placement", "recoveries", "restarts_on_errors", "failures",
                               "started_at", "ended_at", "run_seconds"})
_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)


class Store:
    """The jobs database (see the module's docstring). ``url``: an SQLAlchemy URL;
    None reads ``skyplan.jobs.settings.load().db_url``. ``clock`` stamps events."""

    def __init__(self, url: str | None = None, *, clock: Callable[[], float] = time.time) -> None:
        if url is None:
            from skyplan.jobs.settings import load

            url = load().db_url
        self.url = url
        self.clock = clock
        self.engine = _engine(url)
        self._pg = self.engine.dialect.name == "postgresql"
        try:
            current = self.schema_revision()
            if current != SCHEMA_REVISION:
                self._migrate()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open the jobs database {self.safe_url}: {_first_line(exc)}",
                             hint="check jobs.db_url in config.yaml (or SKYPLAN_JOBS_DB_URL) and that the "
                                  "database is up") from None

    # --- connections ------------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden (for messages)."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close the pooled connections (also call it in a forked child before use)."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        # One snapshot for a read's several queries (a page's jobs, tasks and events agree):
        # SQLite's deferred BEGIN in WAL mode is one; PostgreSQL needs REPEATABLE READ.
        with self.engine.connect() as conn:
            if self._pg:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect().execution_options(skyplan_write=True) as conn, conn.begin():
            yield conn

    # --- schema -----------------------------------------------------------------------------

    def schema_revision(self) -> str | None:
        """The database's Alembic revision, None for a database without the schema."""
        try:
            with self._read() as conn:
                return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.ProgrammingError:  # PostgreSQL: no such table
            return None
        except sa.exc.OperationalError as exc:  # SQLite: no such table; anything else is real
            if "no such table" in str(exc):
                return None
            raise

    def _migrate(self) -> None:
        """Run Alembic's upgrade to head, serialized against other processes doing the same."""
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
        try:
            with self._write() as conn:
                if self._pg:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK - (1 << 63)})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            unknown = self.schema_revision() != SCHEMA_REVISION
        except CommandError:  # a revision our scripts do not have: a newer skyplan wrote it
            unknown = True
        if unknown:
            found = self.schema_revision()
            self.engine.dispose()
            raise StoreError(f"the jobs database {self.safe_url} is at schema revision "
                             f"{found!r}, which this skyplan does not know",
                             hint="use the skyplan version that wrote it, or point jobs.db_url elsewhere")

    # --- submitting and reading -------------------------------------------------------------

    def submit(self, name: str, tasks: Sequence[TaskSubmission], *, options: dict[str, Any]) -> int:
        """A new job of ``tasks`` (in order), every task PENDING: its id."""
        if not tasks:
            raise InputError("a job needs at least one task")
        now = self.clock()
        with self._write() as conn:
            job_id = conn.execute(jobs_t.insert().values(
                name=name, status=Status.PENDING.value, finished=False, submitted_at=now, ended_at=None,
                recoveries=0, cancel_requested=False, options=json.dumps(options, sort_keys=True),
            ).returning(jobs_t.c.job_id)).scalar_one()
            pipeline = len(tasks) > 1
            conn.execute(tasks_t.insert(), [dict(
                job_id=job_id, task_index=i, name=t.name, status=Status.PENDING.value,
                task_id=task_id_for(now, name, t.name, job_id, i, pipeline), cluster=None, placement=None,
                recoveries=0, restarts_on_errors=0, failures=0, resources=t.resources, task_json=t.task_json,
                started_at=None, ended_at=None, run_seconds=0.0, running_since=None) for i, t in enumerate(tasks)])
            conn.execute(events_t.insert(), [dict(job_id=job_id, task_index=i, at=now, status=Status.PENDING.value,
                                                  reason="submitted") for i in range(len(tasks))])
        return job_id

    def job(self, job_id: int) -> JobRecord | None:
        with self._read() as conn:
            found = self._load(conn, conn.execute(sa.select(jobs_t).where(jobs_t.c.job_id == job_id)).all())
        return found[0] if found else None

    def jobs_named(self, name: str) -> list[JobRecord]:
        """Every job called ``name``, newest first."""
        with self._read() as conn:
            return self._load(conn, conn.execute(sa.select(jobs_t).where(jobs_t.c.name == name)
                                                 .order_by(jobs_t.c.job_id.desc())).all())

    def queue(self, *, limit: int = 50, before: int | None = None, statuses: set[Status] | None = None,
              include_finished: bool = False) -> list[JobRecord]:
        """A page of jobs, newest first: at most ``limit``, with ids below ``before``
        (keyset pagination: the next page passes the last id shown), whose status is
        among ``statuses`` (None: any), finished ones only with ``include_finished``.
        Tasks and events come for the page's jobs only."""
        q = sa.select(jobs_t)
        if before is not None:
            q = q.where(jobs_t.c.job_id < before)
        if statuses is not None:
            q = q.where(jobs_t.c.status.in_(sorted(s.value for s in statuses)))
        if not include_finished:
            q = q.where(jobs_t.c.finished == sa.false())
        with self._read() as conn:
            return self._load(conn, conn.execute(q.order_by(jobs_t.c.job_id.desc()).limit(limit)).all())

    def count(self, *, statuses: set[Status] | None = None, finished: bool | None = None) -> int:
        """How many jobs have a status among ``statuses`` (None: any) and are finished or not (None: either)."""
        q = sa.select(sa.func.count()).select_from(jobs_t)
        if statuses is not None:
            q = q.where(jobs_t.c.status.in_(sorted(s.value for s in statuses)))
        if finished is not None:
            q = q.where(jobs_t.c.finished == (sa.true() if finished else sa.false()))
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def status_counts(self, *, finished: bool | None = None) -> dict[Status, int]:
        """How many jobs are in each status (finished or not; None: either), one GROUP BY."""
        q = sa.select(jobs_t.c.status, sa.func.count()).group_by(jobs_t.c.status)
        if finished is not None:
            q = q.where(jobs_t.c.finished == (sa.true() if finished else sa.false()))
        with self._read() as conn:
            return {Status(s): int(n) for s, n in conn.execute(q)}

    def unfinished(self) -> list[JobRecord]:
        """Every job with a task not terminal yet, oldest first."""
        with self._read() as conn:
            return self._load(conn, conn.execute(sa.select(jobs_t).where(jobs_t.c.finished == sa.false())
                                                 .order_by(jobs_t.c.job_id)).all())

    def options(self, job_id: int) -> dict[str, Any]:
        """The options the job was submitted with (``simulate``, ``backend``, ``catalog``, ``use_spot``)."""
        with self._read() as conn:
            text = conn.execute(sa.select(jobs_t.c.options).where(jobs_t.c.job_id == job_id)).scalar()
        if text is None:
            raise NotFoundError(f"no managed job {job_id}", hint="`skyplan jobs queue -a` lists the jobs")
        return json.loads(text)

    def _load(self, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[JobRecord]:
        """JobRecords for ``rows`` of ``jobs`` (in their order), with tasks and events:
        one query each for the tasks and the events (per ``_CHUNK`` jobs)."""
        if not rows:
            return []
        ids = [r.job_id for r in rows]
        tasks: list[sa.Row[Any]] = []
        events: list[sa.Row[Any]] = []
        task_cols = [tasks_t.c[c] for c in records.TASK_COLUMNS]
        event_cols = [events_t.c[c] for c in records.EVENT_COLUMNS]
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            tasks += conn.execute(sa.select(*task_cols).where(tasks_t.c.job_id.in_(chunk))
                                  .order_by(tasks_t.c.job_id, tasks_t.c.task_index)).all()
            events += conn.execute(sa.select(*event_cols).where(events_t.c.job_id.in_(chunk))
                                   .order_by(events_t.c.id)).all()
        return records.build([[r._mapping[c] for c in records.JOB_COLUMNS] for r in rows], tasks, events)

    # --- transitions ------------------------------------------------------------------------

    def transition(self, job_id: int, task_index: int, status: Status, reason: str, *, at: float | None = None,
                   **fields: Any) -> None:
        """In ONE transaction: the task's status, an Event(at, status, reason), the
        given ``fields`` (``TRANSITION_FIELDS``; ``placement`` a Placement or None),
        the time accounting (module docstring) and the job row (status, finished,
        ended_at, recoveries). ``at`` defaults to the store's clock."""
        unknown = set(fields) - TRANSITION_FIELDS
        if unknown:
            raise TypeError(f"transition() got unknown fields {sorted(unknown)} (known: {sorted(TRANSITION_FIELDS)})")
        status = Status(status)
        now = self.clock() if at is None else at
        with self._write() as conn:
            if self._pg:  # one writer per job at a time (SQLite: BEGIN IMMEDIATE already is)
                conn.execute(sa.select(jobs_t.c.job_id).where(jobs_t.c.job_id == job_id).with_for_update())
            task = conn.execute(sa.select(tasks_t).where(tasks_t.c.job_id == job_id,
                                                         tasks_t.c.task_index == task_index)).first()
            if task is None:
                raise NotFoundError(f"no task {task_index} in managed job {job_id}")
            values: dict[str, Any] = {"status": status.value, **fields}
            if "placement" in fields:
                values["placement"] = _placement_json(fields["placement"])
            was_running = task.status == Status.RUNNING.value
            if was_running and status is not Status.RUNNING:
                values["running_since"] = None
                if "run_seconds" not in fields and task.running_since is not None:
                    values["run_seconds"] = task.run_seconds + max(0.0, now - task.running_since)
            elif status is Status.RUNNING and not was_running:
                values["running_since"] = now
                if task.started_at is None and "started_at" not in fields:
                    values["started_at"] = now
            if status in TERMINAL and "ended_at" not in fields:
                values["ended_at"] = now
            conn.execute(tasks_t.update().where(tasks_t.c.job_id == job_id, tasks_t.c.task_index == task_index)
                         .values(**values))
            conn.execute(events_t.insert().values(job_id=job_id, task_index=task_index, at=now,
                                                  status=status.value, reason=reason))
            self._sync_job(conn, job_id)

    @staticmethod
    def _sync_job(conn: sa.Connection, job_id: int) -> None:
        rows = conn.execute(sa.select(tasks_t.c.status, tasks_t.c.recoveries, tasks_t.c.ended_at)
                            .where(tasks_t.c.job_id == job_id).order_by(tasks_t.c.task_index)).all()
        finished = all(r.status in _TERMINAL_VALUES for r in rows)
        ended = [r.ended_at for r in rows if r.ended_at is not None]
        conn.execute(jobs_t.update().where(jobs_t.c.job_id == job_id).values(
            status=job_status([Status(r.status) for r in rows]).value, finished=finished,
            recoveries=sum(r.recoveries for r in rows), ended_at=max(ended) if finished and ended else None))

    def request_cancel(self, job_id: int) -> bool:
        """Mark the job for the controller to cancel: False when it has already
        finished. NotFoundError when there is no such job."""
        with self._write() as conn:
            row = conn.execute(sa.select(jobs_t.c.finished).where(jobs_t.c.job_id == job_id)).first()
            if row is None:
                raise NotFoundError(f"no managed job {job_id}", hint="`skyplan jobs queue -a` lists the jobs")
            if row.finished:
                return False
            conn.execute(jobs_t.update().where(jobs_t.c.job_id == job_id).values(cancel_requested=True))
            return True

    # --- runs -------------------------------------------------------------------------------

    def add_run(self, job_id: int, task_index: int, cluster: str, log_path: str) -> int:
        """Record a new run of the task (started now): its number, 1 for the first."""
        with self._write() as conn:
            last = conn.execute(sa.select(sa.func.max(runs_t.c.run_no)).where(
                runs_t.c.job_id == job_id, runs_t.c.task_index == task_index)).scalar()
            run_no = (last or 0) + 1
            conn.execute(runs_t.insert().values(job_id=job_id, task_index=task_index, run_no=run_no,
                                                cluster=cluster, log_path=str(log_path), started_at=self.clock()))
        return run_no

    def end_run(self, job_id: int, task_index: int, run_no: int, placement: Placement | None, outcome: str) -> None:
        """Close a run: where it ran (None if it never got placed) and how it ended."""
        with self._write() as conn:
            conn.execute(runs_t.update().where(runs_t.c.job_id == job_id, runs_t.c.task_index == task_index,
                                               runs_t.c.run_no == run_no)
                         .values(ended_at=self.clock(), placement=_placement_json(placement), outcome=outcome))

    def set_run_placement(self, job_id: int, task_index: int, run_no: int, placement: Placement | None) -> None:
        """Where a run landed, once its launch placed it (before it ends)."""
        with self._write() as conn:
            conn.execute(runs_t.update().where(runs_t.c.job_id == job_id, runs_t.c.task_index == task_index,
                                               runs_t.c.run_no == run_no)
                         .values(placement=_placement_json(placement)))

    def runs(self, job_id: int) -> list[RunRecord]:
        """Every run of the job, in order (task_index, run_no)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(runs_t).where(runs_t.c.job_id == job_id)
                                .order_by(runs_t.c.task_index, runs_t.c.run_no)).all()
        return [RunRecord(r.job_id, r.task_index, r.run_no, r.cluster, r.log_path, r.started_at, r.ended_at,
                          _placement(r.placement), r.outcome) for r in rows]

    # --- the controller's lease and whereabouts ---------------------------------------------

    def lease(self, owner: str, ttl_s: float) -> bool:
        """Take or renew the controller lease for ``ttl_s`` seconds: True when
        ``owner`` holds it now (it was free, expired, or already ``owner``'s)."""
        now = self.clock()
        c = controller_t.c
        with self._write() as conn:
            done = conn.execute(controller_t.update().where(
                c.id == 1, sa.or_(c.owner.is_(None), c.owner == owner, c.expires_at < now),
            ).values(owner=owner, expires_at=now + ttl_s))
            return done.rowcount == 1

    def release(self, owner: str) -> None:
        """Give the lease up (if ``owner`` holds it)."""
        with self._write() as conn:
            conn.execute(controller_t.update().where(controller_t.c.id == 1, controller_t.c.owner == owner)
                         .values(owner=None, expires_at=None))

    def lease_holder(self) -> tuple[str, float] | None:
        """``(owner, expires_at)`` of the lease, None when nobody holds it (an expired one included)."""
        with self._read() as conn:
            row = conn.execute(sa.select(controller_t.c.owner, controller_t.c.expires_at)
                               .where(controller_t.c.id == 1)).first()
        if row is None or row.owner is None or (row.expires_at or 0) < self.clock():
            return None
        return row.owner, row.expires_at

    def controller_info(self) -> dict[str, Any] | None:
        """What the running controller published (pid, host, port, started_at...), or None."""
        with self._read() as conn:
            text = conn.execute(sa.select(controller_t.c.info).where(controller_t.c.id == 1)).scalar()
        return json.loads(text) if text else None

    def set_controller_info(self, **info: Any) -> None:
        """Replace the published controller info (no arguments: clear it)."""
        with self._write() as conn:
            conn.execute(controller_t.update().where(controller_t.c.id == 1)
                         .values(info=json.dumps(info, sort_keys=True) if info else None))


# --- engines -------------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not path.startswith("file:"):
            from skyplan.home import private_file

            p = Path(path).expanduser()
            try:
                p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                private_file(p)  # 0600; the -wal and -shm files copy its mode
            except OSError as exc:
                raise StoreError(f"cannot create the jobs database {p}: {exc.strerror or exc}",
                                 hint="check jobs.db_url in config.yaml (or SKYPLAN_JOBS_DB_URL)") from None
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout":
                                                        SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=4, max_overflow=16)
    raise InputError(f"the jobs database URL {url!r} is neither sqlite:// nor postgresql://",
                     hint="set jobs.db_url in config.yaml (or SKYPLAN_JOBS_DB_URL)")


def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
    # Autocommit in the driver: ``_sqlite_begin`` says BEGIN itself (pysqlite's own
    # implicit BEGIN DEFERRED cannot be made IMMEDIATE for writes only).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("skyplan_write") else "BEGIN")
