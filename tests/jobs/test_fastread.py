"""``jobs queue``'s SQLite read path (the stdlib's sqlite3, no SQLAlchemy) reads
exactly what the Store reads, and is used only where it can be: an existing
SQLite database at the current schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.jobs import fastread
from skyplan.jobs.states import Placement, Status
from skyplan.jobs.store import Store, TaskSubmission

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def fill(store: Store) -> list[int]:
    ids = []
    lives = [[Status.SUCCEEDED], [Status.RUNNING], [Status.RUNNING, Status.RECOVERING], [],
             [Status.STARTING, Status.FAILED_NO_RESOURCE], [Status.CANCELLING]]
    for i in range(30):
        tasks = [TaskSubmission(f"t{k}" if i % 4 == 0 else None, "{}", f"{k + 1}x sim") for k in
                 range(2 if i % 4 == 0 else 1)]
        job = store.submit(f"job{i % 5}", tasks, options={})
        for n, status in enumerate(lives[i % len(lives)]):
            fields = {"placement": Placement("sim", "r1", None, "n1", n % 2 == 0)} if status is Status.RUNNING else {}
            store.transition(job, 0, status, f"step {n}", recoveries=n, **fields)
        ids.append(job)
    return ids


def test_the_reader_reads_what_the_store_reads(url: str):
    store = Store(url)
    ids = fill(store)
    reader = fastread.open_reader(url)
    assert reader is not None
    try:
        for kw in [{}, {"include_finished": True}, {"limit": 7}, {"limit": 7, "before": ids[20]},
                   {"statuses": {Status.RUNNING, Status.RECOVERING}},
                   {"statuses": {Status.SUCCEEDED}, "include_finished": True}, {"statuses": set()},
                   {"limit": 100, "include_finished": True, "before": ids[3]}]:
            assert reader.queue(**kw) == store.queue(**kw), kw
        for kw in [{}, {"finished": True}, {"finished": False}, {"statuses": {Status.PENDING}, "finished": False}]:
            assert reader.count(**kw) == store.count(**kw), kw
        for kw in [{}, {"finished": False}]:
            assert reader.status_counts(**kw) == store.status_counts(**kw), kw
        assert any(j.tasks[0].placement is not None for j in reader.queue(limit=100))
    finally:
        reader.close()
        store.close()


def test_only_an_existing_sqlite_database_at_the_current_schema_is_read_directly(url: str, tmp_path: Path):
    path = fastread.sqlite_path(url)
    empty = fastread.open_reader(url)  # not created yet: no jobs, and reading creates no file
    assert isinstance(empty, fastread.NoJobs) and empty.queue(limit=5) == [] and empty.count() == 0
    assert not Path(path).exists()
    Store(url).close()
    reader = fastread.open_reader(url)
    assert reader is not None
    reader.close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    assert fastread.open_reader(url) is None  # to migrate: the Store's job
    assert fastread.sqlite_path("postgresql+psycopg://u@h/db") is None
    assert fastread.sqlite_path("sqlite:///:memory:") is None
    assert fastread.sqlite_path("sqlite:////x/jobs.db?timeout=3") is None
    assert fastread.sqlite_path("sqlite:////x/jobs.db") == "/x/jobs.db"


def test_jobs_queue_json_reads_sqlite_without_importing_sqlalchemy(url: str, tmp_path: Path):
    store = Store(url)
    ids = fill(store)
    store.close()
    code = ("import sys; sys.argv = ['skyplan', 'jobs', 'queue', '-a', '--json', '--limit', '5']\n"
            "from skyplan.cli.main import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules), file=sys.stderr)")
    env = {**os.environ, "SKYPLAN_HOME": str(tmp_path / "home"), "SKYPLAN_JOBS_DB_URL": url}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [j["job_id"] for j in json.loads(out.stdout)] == ids[::-1][:5]
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_a_page_is_found_through_indexes_not_a_scan_of_every_job(url: str, monkeypatch: pytest.MonkeyPatch):
    # queue(limit=50) over 10,000 jobs stays as fast as over 50: each query of a page is an
    # index search (the jobs not finished, newest first; a page's tasks and events by job).
    store = Store(url)
    fill(store)
    store.close()
    reader = fastread.open_reader(url)
    plans: list[str] = []
    conn = reader.conn

    class Explaining:
        def execute(self, sql, args=()):  # noqa: ANN001, ANN202
            if sql.lstrip().startswith("SELECT"):
                plans.append(" / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args)))
            return conn.execute(sql, args)

    reader.conn = Explaining()
    try:
        reader.queue(limit=50)
        reader.count(finished=True)
    finally:
        reader.conn = conn
        reader.close()
    jobs, tasks, events, count = plans
    assert "USING INDEX ix_jobs_finished_id" in jobs, plans
    assert "USING INDEX sqlite_autoindex_tasks_1" in tasks, plans  # the primary key (job_id, task_index)
    assert "USING INDEX ix_events_job" in events, plans
    assert "USING COVERING INDEX ix_jobs_finished_id" in count, plans
    assert all("SCAN" not in p for p in plans), plans
