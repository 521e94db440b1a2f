"""SQLite state: clusters and attempts.

Every write is its own short transaction (WAL mode, busy timeout), so a process
killed at any point leaves the database consistent.

One StateDB may be shared by threads (the launch API runs several launches at
once): its connection serialises statements and hands back fetched rows, never
a live cursor another thread could step on.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyplan import home
from skyplan.contract import utc_time

SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL,            -- PROVISIONING | UP | FAILED | DOWN
    cloud TEXT, region TEXT, zone TEXT, instance_type TEXT, use_spot INTEGER,
    hourly_cost REAL,
    stack TEXT,                      -- the stack that came up
    backend TEXT,
    simulate TEXT,                   -- scenario path when the sim stood in
    task_sha256 TEXT,
    task_json TEXT,
    outputs_json TEXT,
    workdir_sha256 TEXT,             -- digest of the workdir's contents (converging apply)
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    number INTEGER NOT NULL,
    stack TEXT NOT NULL,
    backend TEXT,
    cloud TEXT, region TEXT, zone TEXT, instance_type TEXT, use_spot INTEGER,
    status TEXT NOT NULL,            -- running | up | failed | cleaned | leaked
    kind TEXT, scope TEXT, code TEXT, message TEXT,
    started_at REAL NOT NULL,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS attempts_cluster ON attempts(cluster);
"""
#: Columns of ``clusters`` newer than some databases: added on open when missing.
MIGRATIONS = ("workdir_sha256 TEXT",)


@dataclass(frozen=True)
class ClusterRow:
    name: str
    status: str
    cloud: str | None
    region: str | None
    zone: str | None
    instance_type: str | None
    use_spot: bool
    hourly_cost: float | None
    stack: str | None
    backend: str | None
    simulate: str | None
    task_sha256: str | None
    task: dict | None
    outputs: dict
    created_at: float
    updated_at: float
    #: The digest of the task's workdir contents when it was launched (``converge.workdir_digest``).
    workdir_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The row in ``status --json`` (``schemas/status.schema.json``); times in ISO-8601 UTC."""
        return {
            "name": self.name,
            "status": self.status,
            "cloud": self.cloud,
            "region": self.region,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "use_spot": self.use_spot,
            "hourly_cost": self.hourly_cost,
            "stack": self.stack,
            "backend": self.backend,
            "simulate": self.simulate,
            "outputs": self.outputs,
            "created_at": utc_time(self.created_at),
            "updated_at": utc_time(self.updated_at),
        }


@dataclass(frozen=True)
class AttemptRow:
    id: int
    cluster: str
    number: int
    stack: str
    backend: str | None
    cloud: str
    region: str
    zone: str | None
    instance_type: str
    use_spot: bool
    status: str
    kind: str | None
    scope: str | None
    code: str | None
    message: str | None
    started_at: float
    ended_at: float | None


class _Fetched:
    """A statement's result, fetched while the connection was held."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.rows = cur.fetchall()
        self.lastrowid = cur.lastrowid

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows


class _SharedConnection:
    """A sqlite3 connection any thread may use: one statement at a time."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()

    @property
    def row_factory(self) -> Any:
        return self._conn.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._conn.row_factory = factory

    def execute(self, sql: str, params: Any = ()) -> _Fetched:
        with self._lock:
            return _Fetched(self._conn.execute(sql, params))

    def executescript(self, script: str) -> None:
        with self._lock:
            self._conn.executescript(script)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class StateDB:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else home.home() / "state.db"
        if str(self.path) != ":memory:":
            home.private_file(self.path)  # 0600; SQLite gives its -wal and -shm files the same mode
        self._conn = _SharedConnection(self.path)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout=30000")
        # Switching to WAL and creating the schema take locks that SQLite's busy
        # handler does not always wait for: several launches opening a new
        # database at once (threads or processes) may see SQLITE_BUSY, so retry.
        for i in range(100):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.executescript(SCHEMA)
                self._migrate()
                break
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or i == 99:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        """Columns added after a database was created (CREATE TABLE IF NOT EXISTS keeps old tables)."""
        have = {r["name"] for r in self._conn.execute("PRAGMA table_info(clusters)").fetchall()}
        for col in MIGRATIONS:
            if col.split()[0] not in have:
                try:
                    self._conn.execute(f"ALTER TABLE clusters ADD COLUMN {col}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise

    def close(self) -> None:
        self._conn.close()

    # --- clusters ---------------------------------------------------------------

    def upsert_cluster(self, name: str, **fields: Any) -> None:
        now = time.time()
        if "task" in fields:
            fields["task_json"] = json.dumps(fields.pop("task"), sort_keys=True)
        if "outputs" in fields:
            fields["outputs_json"] = json.dumps(fields.pop("outputs"), sort_keys=True, default=str)
        if "use_spot" in fields and fields["use_spot"] is not None:
            fields["use_spot"] = int(bool(fields["use_spot"]))
        cur = self._conn.execute("SELECT 1 FROM clusters WHERE name=?", (name,)).fetchone()
        if cur is None:
            fields.setdefault("status", "PROVISIONING")
            cols = ["name", "created_at", "updated_at", *fields]
            vals = [name, now, now, *fields.values()]
            self._conn.execute(
                f"INSERT INTO clusters ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", vals
            )
        else:
            sets = ", ".join(f"{k}=?" for k in [*fields, "updated_at"])
            self._conn.execute(f"UPDATE clusters SET {sets} WHERE name=?", [*fields.values(), now, name])

    def get_cluster(self, name: str) -> ClusterRow | None:
        row = self._conn.execute("SELECT * FROM clusters WHERE name=?", (name,)).fetchone()
        return _cluster(row) if row else None

    def clusters(self) -> list[ClusterRow]:
        rows = self._conn.execute("SELECT * FROM clusters ORDER BY created_at").fetchall()
        return [_cluster(r) for r in rows]

    def delete_cluster(self, name: str) -> None:
        self._conn.execute("DELETE FROM clusters WHERE name=?", (name,))
        self._conn.execute("DELETE FROM attempts WHERE cluster=?", (name,))

    # --- attempts ---------------------------------------------------------------

    def start_attempt(self, cluster: str, number: int, stack: str, backend: str | None, cand: Any) -> int:
        cur = self._conn.execute(
            "INSERT INTO attempts (cluster, number, stack, backend, cloud, region, zone, instance_type, use_spot,"
            " status, started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (cluster, number, stack, backend, cand.cloud, cand.region, cand.zone, cand.instance_type,
             int(cand.use_spot), "running", time.time()),
        )
        return int(cur.lastrowid)

    def end_attempt(self, attempt_id: int, status: str, *, kind: str | None = None, scope: str | None = None,
                    code: str | None = None, message: str | None = None) -> None:
        self._conn.execute(
            "UPDATE attempts SET status=?, kind=COALESCE(?, kind), scope=COALESCE(?, scope),"
            " code=COALESCE(?, code), message=COALESCE(?, message), ended_at=? WHERE id=?",
            (status, kind, scope, code, message, time.time(), attempt_id),
        )

    def set_attempt_status(self, attempt_id: int, status: str) -> None:
        self._conn.execute("UPDATE attempts SET status=? WHERE id=?", (status, attempt_id))

    def attempts(self, cluster: str) -> list[AttemptRow]:
        rows = self._conn.execute("SELECT * FROM attempts WHERE cluster=? ORDER BY id", (cluster,)).fetchall()
        return [_attempt(r) for r in rows]

    def unfinished_attempts(self, cluster: str) -> list[AttemptRow]:
        """Attempts whose stacks may still hold resources: a run died mid-attempt,
        or cleanup failed."""
        rows = self._conn.execute(
            "SELECT * FROM attempts WHERE cluster=? AND status IN ('running', 'failed', 'leaked') ORDER BY id",
            (cluster,),
        ).fetchall()
        return [_attempt(r) for r in rows]


def _cluster(r: sqlite3.Row) -> ClusterRow:
    return ClusterRow(
        name=r["name"], status=r["status"], cloud=r["cloud"], region=r["region"], zone=r["zone"],
        instance_type=r["instance_type"], use_spot=bool(r["use_spot"]), hourly_cost=r["hourly_cost"],
        stack=r["stack"], backend=r["backend"], simulate=r["simulate"], task_sha256=r["task_sha256"],
        task=json.loads(r["task_json"]) if r["task_json"] else None,
        outputs=json.loads(r["outputs_json"]) if r["outputs_json"] else {},
        created_at=r["created_at"], updated_at=r["updated_at"],
        workdir_sha256=r["workdir_sha256"] if "workdir_sha256" in r.keys() else None,
    )


def _attempt(r: sqlite3.Row) -> AttemptRow:
    return AttemptRow(
        id=r["id"], cluster=r["cluster"], number=r["number"], stack=r["stack"], backend=r["backend"],
        cloud=r["cloud"], region=r["region"], zone=r["zone"], instance_type=r["instance_type"],
        use_spot=bool(r["use_spot"]), status=r["status"], kind=r["kind"], scope=r["scope"], code=r["code"],
        message=r["message"], started_at=r["started_at"], ended_at=r["ended_at"],
    )
