"""The jobs store, on SQLite and on PostgreSQL (``jobs_db_url``): submitting,
transitions with their event in one transaction, the time accounting, keyset
pages newest first, runs, the controller lease, migrations from an empty
database, and two processes writing at once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from skyplan.errors import NotFoundError
from skyplan.jobs import store as store_mod
from skyplan.jobs.states import Placement, Status
from skyplan.jobs.store import SCHEMA_REVISION, Store, TaskSubmission, queue_json


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def one(name: str | None = None, resources: str = "1x sim(n1, [Spot])") -> TaskSubmission:
    return TaskSubmission(name, json.dumps({"run": "echo hi"}), resources)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(jobs_db_url: str, clock: Clock):  # noqa: ANN201
    s = Store(jobs_db_url, clock=clock)
    yield s
    s.close()


def test_a_fresh_database_is_migrated_to_the_head(jobs_db_url: str):
    s = Store(jobs_db_url)
    try:
        assert s.schema_revision() == SCHEMA_REVISION
        assert s.queue(include_finished=True) == []
        assert s.lease("a", 10)  # the controller row exists
    finally:
        s.close()


def test_submit_makes_every_task_pending_with_its_task_id(store: Store, clock: Clock):
    job_id = store.submit("bert", [one()], options={"use_spot": True, "simulate": None})
    job = store.job(job_id)
    assert job is not None and job.name == "bert" and job.status is Status.PENDING
    assert job.submitted_at == clock.t and job.recoveries == 0 and not job.cancel_requested
    (task,) = job.tasks
    assert task.status is Status.PENDING and task.resources == "1x sim(n1, [Spot])"
    assert re.fullmatch(rf"skyplan-managed-\d{{4}}(-\d\d){{5}}-\d{{6}}_bert_{job_id}-0", task.task_id), task.task_id
    assert [(e.status, e.reason) for e in task.events] == [(Status.PENDING, "submitted")]
    assert store.options(job_id) == {"use_spot": True, "simulate": None}

    pipe = store.submit("pipe", [one("train"), one("eval")], options={})
    ids = [t.task_id for t in store.job(pipe).tasks]
    assert ids[0].endswith(f"_pipe_train_{pipe}-0") and ids[1].endswith(f"_pipe_eval_{pipe}-1")
    assert pipe > job_id
    assert store.job(10_000) is None
    with pytest.raises(NotFoundError):
        store.options(10_000)


def test_a_transition_records_its_event_and_fields_and_keeps_the_job_row(store: Store, clock: Clock):
    job_id = store.submit("j", [one()], options={})
    clock.t += 5
    store.transition(job_id, 0, Status.STARTING, "launching", cluster=f"job-{job_id}-0")
    clock.t += 10
    where = Placement("sim", "us-east-1", "us-east-1a", "n1-standard-4", True)
    store.transition(job_id, 0, Status.RUNNING, "running", placement=where)
    clock.t += 15
    store.transition(job_id, 0, Status.RECOVERING, "preempted (the cloud says gone)", recoveries=1, failures=1)
    clock.t += 20
    store.transition(job_id, 0, Status.RUNNING, "running again", placement=None)
    clock.t += 7
    store.transition(job_id, 0, Status.SUCCEEDED, "exit 0")

    job = store.job(job_id)
    (t,) = job.tasks
    assert [e.status for e in t.events] == [Status.PENDING, Status.STARTING, Status.RUNNING, Status.RECOVERING,
                                            Status.RUNNING, Status.SUCCEEDED]
    assert t.events[3].reason == "preempted (the cloud says gone)" and t.events[3].at == 1_000_030.0
    assert t.cluster == f"job-{job_id}-0" and t.placement is None
    assert (t.recoveries, t.failures, t.restarts_on_errors) == (1, 1, 0)
    # started at the first RUNNING; 15 s + 7 s of RUNNING (not the 20 s of RECOVERING)
    assert (t.started_at, t.ended_at, t.run_seconds) == (1_000_015.0, 1_000_057.0, 22.0)
    assert job.status is Status.SUCCEEDED and job.recoveries == 1 and job.ended_at == 1_000_057.0
    assert store.unfinished() == []


def test_a_transition_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch):
    job_id = store.submit("j", [one()], options={})

    def broken(conn, job_id):  # noqa: ANN001, ANN202
        raise RuntimeError("the job row could not be written")

    monkeypatch.setattr(Store, "_sync_job", staticmethod(broken))
    with pytest.raises(RuntimeError):
        store.transition(job_id, 0, Status.STARTING, "launching", cluster="c")
    monkeypatch.undo()
    (t,) = store.job(job_id).tasks
    assert t.status is Status.PENDING and t.cluster is None and len(t.events) == 1
    with pytest.raises(NotFoundError):
        store.transition(job_id, 3, Status.STARTING, "no such task")
    with pytest.raises(TypeError, match="unknown fields"):
        store.transition(job_id, 0, Status.STARTING, "x", colour="red")


def test_a_pipeline_job_follows_its_first_task_that_has_not_succeeded(store: Store):
    job_id = store.submit("p", [one("train"), one("eval")], options={})
    store.transition(job_id, 0, Status.RUNNING, "running")
    assert store.job(job_id).status is Status.RUNNING
    store.transition(job_id, 0, Status.SUCCEEDED, "exit 0")
    assert store.job(job_id).status is Status.PENDING  # the next task waits its turn
    failed = store.submit("p2", [one("train"), one("eval")], options={})
    store.transition(failed, 0, Status.RECOVERING, "preempted", recoveries=1)
    store.transition(failed, 0, Status.FAILED, "exit 3")
    assert [j.job_id for j in store.unfinished()] == [job_id, failed]  # oldest first; eval still PENDING
    store.transition(failed, 1, Status.CANCELLED, "an earlier task failed")
    job = store.job(failed)
    assert job.status is Status.FAILED and job.recoveries == 1 and job.ended_at is not None
    assert [j.job_id for j in store.unfinished()] == [job_id]


def test_queue_pages_newest_first_with_filters(store: Store, clock: Clock):
    ids = []
    for i in range(25):
        clock.t += 1
        ids.append(store.submit(f"job{i % 3}", [one()], options={}))
    for done in ids[::4]:  # 7 finished
        store.transition(done, 0, Status.SUCCEEDED, "exit 0")
    store.transition(ids[1], 0, Status.RUNNING, "running")
    store.transition(ids[2], 0, Status.RUNNING, "running")

    everything = [j.job_id for j in store.queue(limit=100, include_finished=True)]
    assert everything == ids[::-1]
    pages, before = [], None
    while True:
        page = store.queue(limit=10, before=before, include_finished=True)
        if not page:
            break
        pages.append([j.job_id for j in page])
        before = page[-1].job_id
    assert [len(p) for p in pages] == [10, 10, 5] and sum(pages, []) == everything

    unfinished = [j.job_id for j in store.queue(limit=100)]
    assert unfinished == [i for i in everything if i not in ids[::4]]
    assert [j.job_id for j in store.queue(statuses={Status.RUNNING})] == [ids[2], ids[1]]
    assert [j.job_id for j in store.queue(statuses={Status.SUCCEEDED})] == []  # finished: hidden
    assert len(store.queue(statuses={Status.SUCCEEDED}, include_finished=True)) == 7
    assert store.count(finished=True) == 7 and store.count() == 25
    assert store.count(statuses={Status.RUNNING}) == 2
    page = store.queue(limit=3, before=ids[10])
    assert [j.job_id for j in page] == [ids[9], ids[7], ids[6]]
    assert all(len(j.tasks) == 1 and j.tasks[0].events for j in page)
    assert [j.job_id for j in store.jobs_named("job1")] == [i for i in everything if ids.index(i) % 3 == 1]


def test_queue_loads_a_pages_tasks_and_events_in_one_query_each(store: Store):
    from sqlalchemy import event

    for _ in range(30):
        store.submit("j", [one("a"), one("b")], options={})
    statements: list[str] = []

    def record(conn, cursor, statement, *a):  # noqa: ANN001, ANN202
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        page = store.queue(limit=20)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert len(page) == 20 and all(len(j.tasks) == 2 for j in page)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3, selects  # the jobs, their tasks, their events


def test_the_queue_json_is_the_contracts_shape(store: Store):
    job_id = store.submit("p", [one("train"), one()], options={})
    store.transition(job_id, 0, Status.RUNNING, "running", cluster="job-1-0",
                     placement=Placement("sim", "r1", None, "n1", False))
    doc = queue_json(store.queue())
    assert list(doc[0]) == ["job_id", "name", "status", "submitted_at", "recoveries", "tasks"]
    t0, t1 = doc[0]["tasks"]
    assert list(t0) == ["task_index", "name", "status", "task_id", "cluster", "placement", "recoveries", "events"]
    assert t0["placement"] == {"cloud": "sim", "region": "r1", "zone": None, "instance_type": "n1",
                               "use_spot": False}
    assert t1["placement"] is None and t1["name"] is None
    assert [e["status"] for e in t0["events"]] == ["PENDING", "RUNNING"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t0["events"][0]["at"])
    from skyplan.testing import json_contract

    assert list(json_contract.validator("jobs-queue").iter_errors(doc)) == []


def test_cancel_requests(store: Store):
    job_id = store.submit("j", [one()], options={})
    assert store.request_cancel(job_id) is True
    assert store.job(job_id).cancel_requested
    store.transition(job_id, 0, Status.CANCELLED, "cancelled by the user")
    assert store.request_cancel(job_id) is False
    with pytest.raises(NotFoundError):
        store.request_cancel(999)


def test_runs_are_numbered_per_task_in_order(store: Store, clock: Clock):
    job_id = store.submit("p", [one("a"), one("b")], options={})
    where = Placement("sim", "r1", "z1", "n1", True)
    assert store.add_run(job_id, 0, "job-1-0", "/l/run-1.log") == 1
    clock.t += 3
    store.end_run(job_id, 0, 1, where, "preempted")
    assert store.add_run(job_id, 0, "job-1-0", "/l/run-2.log") == 2
    assert store.add_run(job_id, 1, "job-1-1", "/l/t1-run-1.log") == 1
    runs = store.runs(job_id)
    assert [(r.task_index, r.run_no) for r in runs] == [(0, 1), (0, 2), (1, 1)]
    assert runs[0].placement == where and runs[0].outcome == "preempted" and runs[0].ended_at == clock.t
    assert runs[1].ended_at is None and runs[1].log_path == "/l/run-2.log"


def test_the_controller_lease_is_held_by_one_owner_until_it_expires(store: Store, clock: Clock):
    assert store.lease("ctl-1", 30)
    assert not store.lease("ctl-2", 30)
    assert store.lease("ctl-1", 30)  # renewed
    assert store.lease_holder() == ("ctl-1", clock.t + 30)
    clock.t += 31
    assert store.lease_holder() is None
    assert store.lease("ctl-2", 30)  # expired: taken over
    store.release("ctl-1")  # not ctl-1's any more: no effect
    assert not store.lease("ctl-1", 30)
    store.release("ctl-2")
    assert store.lease("ctl-1", 30)
    assert store.controller_info() is None
    store.set_controller_info(pid=42, host="127.0.0.1", port=8123, started_at=1.0)
    assert store.controller_info() == {"pid": 42, "host": "127.0.0.1", "port": 8123, "started_at": 1.0}
    store.set_controller_info()
    assert store.controller_info() is None


_WRITER = textwrap.dedent("""
    import sys
    from skyplan.jobs.states import Status
    from skyplan.jobs.store import Store, TaskSubmission
    url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = Store(url)
    for i in range(n):
        j = s.submit(f"{tag}-{i}", [TaskSubmission(None, "{}", "1x")], options={})
        s.transition(j, 0, Status.STARTING, "launching")
        s.transition(j, 0, Status.RUNNING, "running")
        s.transition(j, 0, Status.SUCCEEDED, "exit 0")
    print("alembic" in sys.modules)
""")


def test_two_processes_write_at_once_on_a_fresh_database(jobs_db_url: str):
    # Both migrate the empty database and then write, interleaved: nothing is lost.
    n = 40
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, jobs_db_url, tag, str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    s = Store(jobs_db_url)
    try:
        jobs = s.queue(limit=1000, include_finished=True)
        assert len(jobs) == 2 * n and len({j.job_id for j in jobs}) == 2 * n
        assert {j.name for j in jobs} == {f"{t}-{i}" for t in "ab" for i in range(n)}
        assert all(j.status is Status.SUCCEEDED and len(j.tasks[0].events) == 4 for j in jobs)
    finally:
        s.close()


def test_the_read_path_does_not_import_alembic_once_the_schema_is_current(jobs_db_url: str):
    Store(jobs_db_url).close()  # migrated here
    code = ("import sys; from skyplan.jobs.store import Store; s = Store(sys.argv[1]); s.queue(); "
            "print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, jobs_db_url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_an_unknown_newer_schema_is_refused(jobs_db_url: str):
    import sqlalchemy as sa

    Store(jobs_db_url).close()
    engine = sa.create_engine(jobs_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(store_mod.StoreError):
        Store(jobs_db_url)


def test_a_database_that_cannot_be_reached_is_one_error_with_a_next_step(tmp_path):
    with pytest.raises(store_mod.StoreError, match="cannot open the jobs database") as err:
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "jobs.db_url" in err.value.hint


def test_the_migrations_make_exactly_the_tables_the_store_uses(jobs_db_url: str):
    # A column or index added to store.py without a migration (or the reverse) fails here.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import skyplan.serve.store as serve_store  # its tables (migration 0002) join the jobs metadata

    assert {"services", "service_versions", "replicas", "serve_events"} <= set(serve_store.metadata.tables)
    s = Store(jobs_db_url)
    try:
        with s.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), store_mod.metadata)
    finally:
        s.close()
    assert diff == []
