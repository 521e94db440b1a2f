from __future__ import annotations

import multiprocessing
from pathlib import Path

from skyplan.clouds.sim import ledger


def _create(db, **kw):
    base = dict(
        cluster="c1",
        stack="c1-gcp-us-west1-a",
        cloud="gcp",
        region="us-west1",
        zone="us-west1-a",
        instance_type="n1-highmem-8",
    )
    base.update(kw)
    return ledger.record_create(db, **base)


def test_create_delete_preempt_and_counts(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    a = _create(db, use_spot=True, preempt_after_s=30, now=1000.0)
    b = _create(db, stack="other", now=1001.0)
    assert a["state"] == "live" and a["use_spot"] is True and a["preempt_at"] == 1030.0 and not a["adopted"]
    assert b["preempt_at"] is None
    assert [r["id"] for r in ledger.live_resources(db=db)] == [a["id"], b["id"]]
    assert ledger.count_live(db=db, stack="other") == 1
    assert ledger.count_live(db=db, cluster="c1") == 2

    assert ledger.record_delete(db, a["id"]) is True
    assert ledger.record_delete(db, a["id"]) is False  # idempotent
    assert ledger.record_delete(db, "sim-unknown") is False
    assert ledger.mark_preempted(db, b["id"]) is True
    assert ledger.mark_preempted(db, b["id"]) is False
    assert ledger.count_live(db=db) == 0
    states = {r["id"]: r["state"] for r in ledger.all_resources(db)}
    assert states == {a["id"]: "deleted", b["id"]: "preempted"}
    assert ledger.get(db, a["id"])["ended_at"] is not None
    # deleting a preempted node ends it, and the preemption stays on record
    assert ledger.record_delete(db, b["id"]) is True
    row = ledger.get(db, b["id"])
    assert row["state"] == "deleted" and row["preempted_at"] is not None
    assert ledger.get(db, a["id"])["preempted_at"] is None


def test_keyed_create_adopts_the_live_resource(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    first = _create(db, key="stk/node-0")
    again = _create(db, key="stk/node-0")
    assert again["id"] == first["id"] and again["adopted"] is True
    assert ledger.count_live(db=db) == 1
    ledger.record_delete(db, first["id"])
    fresh = _create(db, key="stk/node-0")
    assert fresh["id"] != first["id"] and not fresh["adopted"]


def test_default_path_and_missing_ledger(home: Path) -> None:
    assert ledger.default_path() == home / "sim" / "ledger.db"
    assert ledger.live_resources() == []
    assert not (home / "sim" / "ledger.db").exists()  # reading does not create it
    row = _create(None)
    assert ledger.live_resources(home)[0]["id"] == row["id"]
    assert ledger.count_live() == 1


def test_due_preemptions(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    soon = _create(db, preempt_after_s=10, now=100.0)
    _create(db, preempt_after_s=100, now=100.0)
    _create(db, now=100.0)
    assert [r["id"] for r in ledger.due_preemptions(db, now=115.0)] == [soon["id"]]
    assert ledger.due_preemptions(db, now=105.0) == []


def test_rule_hits_and_reset(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    assert [ledger.take_hit(db, "h1", 0, 2) for _ in range(3)] == [True, True, False]
    assert ledger.take_hit(db, "h1", 1, 1) is True
    assert ledger.take_hit(db, "h2", 0, 1) is True
    assert ledger.hits(db, "h1", 0) == 2
    assert ledger.reset_hits(db, "h1") == 2
    assert ledger.hits(db, "h1", 0) == 0 and ledger.hits(db, "h2", 0) == 1
    assert ledger.reset_hits(db) == 1


def _writer(args) -> list[str]:
    db, n, w = args
    ids = []
    for i in range(n):
        row = _create(db, stack=f"w{w}-{i}")
        ids.append(row["id"])
        if i % 2:
            ledger.record_delete(db, row["id"])
        ledger.take_hit(db, "shared", 0, 1_000_000)
    return ids


def test_concurrent_writers(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    workers, n = 6, 25
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.map(_writer, [(str(db), n, w) for w in range(workers)])
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == workers * n
    assert len(ledger.all_resources(db)) == workers * n
    assert ledger.count_live(db=db) == workers * ((n + 1) // 2)
    assert ledger.hits(db, "shared", 0) == workers * n


def test_an_older_ledger_gains_the_new_column(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE resources (id TEXT PRIMARY KEY, key TEXT, cluster TEXT NOT NULL, stack TEXT NOT NULL,"
        " cloud TEXT NOT NULL, region TEXT, zone TEXT, instance_type TEXT, use_spot INTEGER NOT NULL DEFAULT 0,"
        " node_rank INTEGER NOT NULL DEFAULT 0, sandbox TEXT, created_at REAL NOT NULL, preempt_at REAL,"
        " ended_at REAL, state TEXT NOT NULL)"
    )
    conn.commit()
    conn.close()
    row = _create(db)
    assert ledger.mark_preempted(db, row["id"]) and ledger.get(db, row["id"])["preempted_at"] is not None
