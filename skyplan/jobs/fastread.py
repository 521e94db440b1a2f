"""The read path of ``jobs queue`` on SQLite, through the stdlib's sqlite3.

``jobs queue --json --limit 50`` is benchmarked against ``skyplan --version``
(target: 0.5 s with 10,000 jobs). Its query takes ~15 ms; importing SQLAlchemy
takes ~10x that. So for the default database, once it exists at the schema
this code knows, ``open_reader`` gives a ``SqliteReader`` with the store's
read methods that ``jobs queue`` uses (``queue``, ``count``, ``status_counts``,
same signatures, same records: both build them with ``records.build``).
Anything else (PostgreSQL, a database still to create or migrate, a URL with
options) gets None, and the caller uses the ``Store``.

Read only: it never writes, so the store's write rules (BEGIN IMMEDIATE, the
job row's consistency) are untouched; a read is one deferred transaction, a
consistent WAL snapshot however the controller writes meanwhile.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from skyplan.jobs import records
from skyplan.jobs.states import JobRecord, Status

_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")
_BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///PATH`` URL, None for any other URL."""
    for prefix in _PREFIXES:
        if url.startswith(prefix):
            path = url[len(prefix):]
            if not path or path == ":memory:" or "?" in path or path.startswith("file:"):
                return None
            return path
    return None


def open_reader(url: str) -> SqliteReader | NoJobs | None:
    """A reader for ``url`` when it is an existing SQLite database at ``records.SCHEMA_REVISION``
    (``NoJobs`` when the file does not exist yet), else None."""
    path = sqlite_path(url)
    if path is None:
        return None
    if not os.path.lexists(path):
        return NoJobs()
    if not os.path.isfile(path):
        return None  # the Store says what is wrong with it
    try:
        reader = SqliteReader(path)
    except sqlite3.Error:
        return None
    if reader.schema_revision() != records.SCHEMA_REVISION:
        reader.close()
        return None
    return reader


class NoJobs:
    """The reader of an SQLite database that does not exist yet: no jobs (a read creates no file)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> NoJobs:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def queue(self, **_: Any) -> list[JobRecord]:
        return []

    def count(self, **_: Any) -> int:
        return 0

    def status_counts(self, **_: Any) -> dict[Status, int]:
        return {}


class SqliteReader:
    """``Store``'s read methods for ``jobs queue``, on one sqlite3 connection."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_revision(self) -> str | None:
        try:
            row = self.conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def queue(self, *, limit: int = 50, before: int | None = None, statuses: set[Status] | None = None,
              include_finished: bool = False) -> list[JobRecord]:
        """As ``Store.queue``."""
        where, args = _filters(statuses, None if include_finished else False)
        if before is not None:
            where.append("job_id < ?")
            args.append(before)
        sql = (f"SELECT {', '.join(records.JOB_COLUMNS)} FROM jobs"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY job_id DESC LIMIT ?")
        c = self.conn
        c.execute("BEGIN")
        try:
            jobs = c.execute(sql, [*args, limit]).fetchall()
            ids = [j[0] for j in jobs]
            tasks: list[Any] = []
            events: list[Any] = []
            if ids:
                marks = ", ".join("?" * len(ids))
                tasks = c.execute(f"SELECT {', '.join(records.TASK_COLUMNS)} FROM tasks WHERE job_id IN ({marks}) "
                                  "ORDER BY job_id, task_index", ids).fetchall()
                events = c.execute(f"SELECT {', '.join(records.EVENT_COLUMNS)} FROM events WHERE job_id IN ({marks}) "
                                   "ORDER BY id", ids).fetchall()
        finally:
            c.execute("COMMIT")
        return records.build(jobs, tasks, events)

    def count(self, *, statuses: set[Status] | None = None, finished: bool | None = None) -> int:
        """As ``Store.count``."""
        where, args = _filters(statuses, finished)
        sql = "SELECT count(*) FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self.conn.execute(sql, args).fetchone()[0])

    def status_counts(self, *, finished: bool | None = None) -> dict[Status, int]:
        """As ``Store.status_counts``."""
        where, args = _filters(None, finished)
        sql = ("SELECT status, count(*) FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
               + " GROUP BY status")
        return {Status(s): int(n) for s, n in self.conn.execute(sql, args)}


def _filters(statuses: set[Status] | None, finished: bool | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if statuses is not None:
        values: Sequence[str] = sorted(s.value for s in statuses)
        where.append(f"status IN ({', '.join('?' * len(values))})" if values else "0")
        args += values
    if finished is not None:
        where.append("finished = ?")  # SQLAlchemy's Boolean on SQLite: 0 or 1
        args.append(1 if finished else 0)
    return where, args
