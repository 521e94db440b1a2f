"""The sim cloud's ledger: every resource it ever created, in SQLite.

Tests and benches count leaks here (``count_live``), and ``skyplan sim ledger
--json`` lists ``live_resources``. The ledger also keeps the per-rule hit
counters behind a scenario's ``times: N``, and the scenario switches that
``skyplan sim switch`` sets: each create runs in a fresh provider process, so
both have to live outside the process.

Writers are many short-lived processes (one dynamic-provider process per engine
operation, plus tests), so every write is one short ``BEGIN IMMEDIATE``
transaction on a WAL database with a generous busy timeout.

Stdlib only: this module is imported inside the dynamic provider's process.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator
from contextlib import contextmanager

LIVE = "live"
DELETED = "deleted"
PREEMPTED = "preempted"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY,
    key TEXT,                        -- "<stack>/<resource name>": idempotent create
    cluster TEXT NOT NULL,
    stack TEXT NOT NULL,
    cloud TEXT NOT NULL,
    region TEXT,
    zone TEXT,
    instance_type TEXT,
    use_spot INTEGER NOT NULL DEFAULT 0,
    node_rank INTEGER NOT NULL DEFAULT 0,
    sandbox TEXT,
    created_at REAL NOT NULL,
    preempt_at REAL,                 -- when the scenario will preempt it
    preempted_at REAL,               -- when it was preempted (kept after delete)
    ended_at REAL,
    state TEXT NOT NULL              -- live | deleted | preempted
);
CREATE INDEX IF NOT EXISTS resources_state ON resources(state);
CREATE INDEX IF NOT EXISTS resources_key ON resources(key);
CREATE TABLE IF NOT EXISTS switches (
    name TEXT PRIMARY KEY,           -- a scenario's switch (rules with `switch: NAME`)
    value INTEGER NOT NULL,          -- 1 on, 0 off
    set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_hits (
    scenario TEXT NOT NULL,          -- sha256 of the scenario file
    rule INTEGER NOT NULL,           -- index in rules:
    hits INTEGER NOT NULL,
    PRIMARY KEY (scenario, rule)
);
"""

_COLUMNS = (
    "id",
    "key",
    "cluster",
    "stack",
    "cloud",
    "region",
    "zone",
    "instance_type",
    "use_spot",
    "node_rank",
    "sandbox",
    "created_at",
    "preempt_at",
    "preempted_at",
    "ended_at",
    "state",
)


def default_path(home: str | os.PathLike[str] | None = None) -> Path:
    """``<SKYPLAN_HOME>/sim/ledger.db`` (or under ``home`` when given)."""
    if home is None:
        from skyplan import home as _home

        base = _home.home()
    else:
        base = Path(home)
    return base / "sim" / "ledger.db"


def _resolve(db: str | os.PathLike[str] | None, home: str | os.PathLike[str] | None = None) -> Path:
    return Path(db) if db is not None else default_path(home)


@contextmanager
def connect(db: str | os.PathLike[str] | None = None) -> Iterator[sqlite3.Connection]:
    """Open (and create) the ledger. Autocommit; callers open their own transactions."""
    path = _resolve(db)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    from skyplan.home import private_file

    private_file(path)  # 0600; SQLite gives its -wal and -shm files the same mode
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        # Switching to WAL takes a lock of its own; under a burst of first
        # openers one of them may still see SQLITE_BUSY, so retry briefly.
        for i in range(50):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                _migrate(conn)
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == 49:
                    raise
                time.sleep(0.05)
        conn.execute("PRAGMA synchronous = NORMAL")
        yield conn
    finally:
        conn.close()


def _migrate(conn: sqlite3.Connection) -> None:
    cols = {r[1] for r in conn.execute("PRAGMA table_info(resources)")}
    if "preempted_at" not in cols:  # ledgers written before the column existed
        conn.execute("ALTER TABLE resources ADD COLUMN preempted_at REAL")


@contextmanager
def _write(db: str | os.PathLike[str] | None) -> Iterator[sqlite3.Connection]:
    with connect(db) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = {k: r[k] for k in _COLUMNS}
    d["use_spot"] = bool(d["use_spot"])
    return d


def record_create(
    db: str | os.PathLike[str] | None = None,
    *,
    cluster: str,
    stack: str,
    cloud: str,
    region: str | None,
    zone: str | None,
    instance_type: str | None,
    use_spot: bool = False,
    node_rank: int = 0,
    sandbox: str | None = None,
    preempt_after_s: float | None = None,
    key: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Record a new live resource and return its row.

    With ``key``, create is idempotent the way a client token makes a cloud API
    idempotent: a live row with the same key is returned as it is (with
    ``adopted: True``) instead of a second resource. That is what lets a re-run
    of an attempt whose engine was killed mid-create take over the resource the
    dead attempt made, so that its destroy can account for it.
    """
    created = time.time() if now is None else now
    with _write(db) as conn:
        if key is not None:
            r = conn.execute("SELECT * FROM resources WHERE key = ? AND state = ?", (key, LIVE)).fetchone()
            if r is not None:
                row = _row(r)
                row["adopted"] = True
                return row
        rid = "sim-" + uuid.uuid4().hex[:12]
        preempt_at = created + float(preempt_after_s) if preempt_after_s is not None else None
        conn.execute(
            "INSERT INTO resources (id, key, cluster, stack, cloud, region, zone, instance_type, use_spot,"
            " node_rank, sandbox, created_at, preempt_at, preempted_at, ended_at, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
            (
                rid,
                key,
                cluster,
                stack,
                cloud,
                region,
                zone,
                instance_type,
                int(bool(use_spot)),
                int(node_rank),
                sandbox,
                created,
                preempt_at,
                LIVE,
            ),
        )
        r = conn.execute("SELECT * FROM resources WHERE id = ?", (rid,)).fetchone()
    row = _row(r)
    row["adopted"] = False
    return row


def record_delete(db: str | os.PathLike[str] | None, rid: str) -> bool:
    """Mark a resource deleted. True if it was live or preempted (a preempted
    node is a stopped spot VM: its delete still ends it); False if unknown or
    already deleted. ``preempted_at`` keeps the preemption on record."""
    with _write(db) as conn:
        cur = conn.execute(
            "UPDATE resources SET state = ?, ended_at = ? WHERE id = ? AND state IN (?, ?)",
            (DELETED, time.time(), rid, LIVE, PREEMPTED),
        )
        return cur.rowcount > 0


def mark_preempted(db: str | os.PathLike[str] | None, rid: str) -> bool:
    """Mark a live resource preempted (the sim took it away). True if it was live."""
    with _write(db) as conn:
        cur = conn.execute(
            "UPDATE resources SET state = ?, preempted_at = ? WHERE id = ? AND state = ?",
            (PREEMPTED, time.time(), rid, LIVE),
        )
        return cur.rowcount > 0


def get(db: str | os.PathLike[str] | None, rid: str) -> dict[str, Any] | None:
    with connect(db) as conn:
        r = conn.execute("SELECT * FROM resources WHERE id = ?", (rid,)).fetchone()
    return _row(r) if r is not None else None


def live_by_key(db: str | os.PathLike[str] | None, key: str) -> list[dict[str, Any]]:
    """Live rows created under ``key`` (``"<stack>/node-<rank>"``)."""
    path = _resolve(db)
    if not path.exists():
        return []
    with connect(path) as conn:
        rows = conn.execute("SELECT * FROM resources WHERE key = ? AND state = ?", (key, LIVE)).fetchall()
    return [_row(r) for r in rows]


def live_resources(
    home: str | os.PathLike[str] | None = None,
    *,
    db: str | os.PathLike[str] | None = None,
    stack: str | None = None,
    cluster: str | None = None,
) -> list[dict[str, Any]]:
    """Every live resource, oldest first: the data of ``skyplan sim ledger --json``.

    A missing ledger is an empty one (the sim never ran), and is not created.
    """
    path = _resolve(db, home)
    if not path.exists():
        return []
    sql = "SELECT * FROM resources WHERE state = ?"
    args: list[Any] = [LIVE]
    if stack is not None:
        sql += " AND stack = ?"
        args.append(stack)
    if cluster is not None:
        sql += " AND cluster = ?"
        args.append(cluster)
    with connect(path) as conn:
        rows = conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
    return [_row(r) for r in rows]


def count_live(
    home: str | os.PathLike[str] | None = None,
    *,
    db: str | os.PathLike[str] | None = None,
    stack: str | None = None,
    cluster: str | None = None,
) -> int:
    """How many resources are live: after a clean run, 0."""
    return len(live_resources(home, db=db, stack=stack, cluster=cluster))


def held(db: str | os.PathLike[str] | None, stack_prefix: str = "") -> list[dict[str, Any]]:
    """Rows not deleted (live or preempted) of the stacks whose names start with
    ``stack_prefix``, oldest first: what the sim still holds for them."""
    path = _resolve(db)
    if not path.exists():
        return []
    with connect(path) as conn:
        rows = conn.execute(
            "SELECT * FROM resources WHERE state != ? AND substr(stack, 1, ?) = ? ORDER BY created_at, id",
            (DELETED, len(stack_prefix), stack_prefix),
        ).fetchall()
    return [_row(r) for r in rows]


def all_resources(db: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every row, whatever its state, oldest first (for tests and debugging)."""
    path = _resolve(db)
    if not path.exists():
        return []
    with connect(path) as conn:
        rows = conn.execute("SELECT * FROM resources ORDER BY created_at, id").fetchall()
    return [_row(r) for r in rows]


def due_preemptions(db: str | os.PathLike[str] | None = None, *, now: float | None = None) -> list[dict[str, Any]]:
    """Live resources whose ``preempt_at`` has passed."""
    t = time.time() if now is None else now
    return [r for r in live_resources(db=db) if r["preempt_at"] is not None and r["preempt_at"] <= t]


# --- scenario rule counters -------------------------------------------------------


def take_hit(db: str | os.PathLike[str] | None, scenario: str, rule: int, limit: int) -> bool:
    """Atomically count one use of a ``times: limit`` rule.

    True (and the count goes up) while fewer than ``limit`` uses were counted;
    False once the rule is spent. Safe across processes.
    """
    with _write(db) as conn:
        r = conn.execute("SELECT hits FROM rule_hits WHERE scenario = ? AND rule = ?", (scenario, rule)).fetchone()
        hits = int(r["hits"]) if r is not None else 0
        if hits >= limit:
            return False
        conn.execute(
            "INSERT INTO rule_hits (scenario, rule, hits) VALUES (?, ?, 1)"
            " ON CONFLICT (scenario, rule) DO UPDATE SET hits = hits + 1",
            (scenario, rule),
        )
        return True


def hits(db: str | os.PathLike[str] | None, scenario: str, rule: int) -> int:
    with connect(db) as conn:
        r = conn.execute("SELECT hits FROM rule_hits WHERE scenario = ? AND rule = ?", (scenario, rule)).fetchone()
    return int(r["hits"]) if r is not None else 0


def reset_hits(db: str | os.PathLike[str] | None = None, scenario: str | None = None) -> int:
    """Forget rule counters (of one scenario hash, or all), so a scenario replays
    from its start. Returns how many counters were dropped."""
    with _write(db) as conn:
        if scenario is None:
            cur = conn.execute("DELETE FROM rule_hits")
        else:
            cur = conn.execute("DELETE FROM rule_hits WHERE scenario = ?", (scenario,))
        return cur.rowcount


# --- scenario switches ------------------------------------------------------------


def set_switch(db: str | os.PathLike[str] | None, name: str, on: bool) -> bool | None:
    """Set switch ``name`` on or off from now on; returns what the ledger held
    before (None: never set, so the scenario's own start value applied)."""
    with _write(db) as conn:
        r = conn.execute("SELECT value FROM switches WHERE name = ?", (name,)).fetchone()
        conn.execute(
            "INSERT INTO switches (name, value, set_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value, set_at = excluded.set_at",
            (name, int(bool(on)), time.time()),
        )
    return bool(r["value"]) if r is not None else None


def reset_switches(db: str | os.PathLike[str] | None = None, names: Iterable[str] | None = None) -> int:
    """Forget the switches set (all, or ``names``): each is back at its scenario's
    start value. How many were forgotten."""
    path = _resolve(db)
    if not path.exists():
        return 0
    with _write(db) as conn:
        if names is None:
            return conn.execute("DELETE FROM switches").rowcount
        return sum(conn.execute("DELETE FROM switches WHERE name = ?", (n,)).rowcount for n in names)


def switch(db: str | os.PathLike[str] | None, name: str) -> bool | None:
    """Switch ``name`` as last set, or None when it never was (a missing ledger is
    an empty one, and is not created)."""
    path = _resolve(db)
    if not path.exists():
        return None
    with connect(path) as conn:
        r = conn.execute("SELECT value FROM switches WHERE name = ?", (name,)).fetchone()
    return bool(r["value"]) if r is not None else None
