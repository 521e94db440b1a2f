"""`skyplan jobs queue --json --limit 50` with 10,000 jobs in the database, against
the floor `skyplan --version` in the same run. Target: <= 0.5 s.

    .venv/bin/python bench/jobs_queue.py [--jobs 10000] [--runs 9] [--db sqlite|URL] [--json]

The database is filled directly through the store's tables (one transaction):
each job has one task (every tenth a two-task pipeline) and the events of a real
life (PENDING, STARTING, RUNNING, then SUCCEEDED for most, a preemption and a
recovery for some, still RUNNING for the newest 200). Each timed run is the venv's
console script in a fresh process, its own skyplan home pointing at that database;
the first run (which may compile bytecode) is not counted. Prints medians, their
ratio and the load average. `bench/jobs.py` imports `measure`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKYPLAN = ROOT / ".venv" / "bin" / "skyplan"
TARGET_S = 0.5


def populate(url: str, n: int) -> None:
    """``n`` jobs with their tasks and events, in one transaction through the store's tables."""
    from skyplan.jobs.states import Status
    from skyplan.jobs.store import Store, events_t, jobs_t, task_id_for, tasks_t

    store = Store(url)
    t0 = time.time() - n * 60.0
    jobs, tasks, events = [], [], []
    for i in range(1, n + 1):
        sub = t0 + i * 60.0
        running = i > n - 200
        preempted = i % 7 == 0
        ntasks = 2 if i % 10 == 0 else 1
        status = Status.RUNNING if running else Status.SUCCEEDED
        jobs.append(dict(job_id=i, name=f"job-{i % 97}", status=status.value, finished=not running,
                         submitted_at=sub, ended_at=None if running else sub + 50, recoveries=int(preempted),
                         cancel_requested=False, options="{}"))
        for k in range(ntasks):
            life = [(Status.PENDING, "submitted"), (Status.STARTING, "launching"), (Status.RUNNING, "running")]
            if preempted and k == 0:
                life += [(Status.RECOVERING, "preempted: the cloud says the node is gone"),
                         (Status.RUNNING, "running again in another region")]
            if not running:
                life.append((Status.SUCCEEDED, "exit 0"))
            tasks.append(dict(job_id=i, task_index=k, name=f"t{k}" if ntasks > 1 else None,
                              status=life[-1][0].value, task_id=task_id_for(sub, f"job-{i % 97}", None, i, k, False),
                              cluster=f"job-{i}-{k}", placement=json.dumps({
                                  "cloud": "sim", "region": "us-east-1", "zone": "us-east-1a",
                                  "instance_type": "n1-standard-4", "use_spot": True}),
                              recoveries=int(preempted and k == 0), restarts_on_errors=0,
                              failures=int(preempted and k == 0), resources="1x sim(n1-standard-4, [Spot])",
                              task_json='{"run": "python train.py"}', started_at=sub + 5,
                              ended_at=None if running else sub + 50, run_seconds=40.0,
                              running_since=sub + 10 if running else None))
            events += [dict(job_id=i, task_index=k, at=sub + j, status=s.value, reason=r)
                       for j, (s, r) in enumerate(life)]
    with store.engine.begin() as conn:
        conn.execute(jobs_t.insert(), jobs)
        conn.execute(tasks_t.insert(), tasks)
        conn.execute(events_t.insert(), events)
        if store.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT setval(pg_get_serial_sequence('jobs', 'job_id'), :n)"), {"n": n})
            conn.execute(text("ANALYZE"))
    store.close()


def _median_run(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, str]:
    times, out = [], ""
    for i in range(runs + 1):
        start = time.perf_counter()
        p = subprocess.run(argv, env=env, capture_output=True, text=True)
        took = time.perf_counter() - start
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {p.returncode}: {p.stderr[-2000:]}")
        out = p.stdout
        if i:  # the first run warms the caches
            times.append(took)
    return statistics.median(times), out


def measure(jobs: int = 10_000, runs: int = 9, db: str = "sqlite") -> dict[str, object]:
    """The figures: queue and floor medians (s), their ratio, the target, the load."""
    with tempfile.TemporaryDirectory(prefix="skyplan-bench-queue-") as tmp:
        home = Path(tmp) / "home"
        url = f"sqlite:///{Path(tmp) / 'jobs.db'}" if db == "sqlite" else db
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKYPLAN_")}
        env.update(SKYPLAN_HOME=str(home), SKYPLAN_JOBS_DB_URL=url)
        os.environ.update(SKYPLAN_HOME=str(home))
        t = time.perf_counter()
        populate(url, jobs)
        fill_s = time.perf_counter() - t
        floor, _ = _median_run([str(SKYPLAN), "--version"], env, runs)
        queue, out = _median_run([str(SKYPLAN), "jobs", "queue", "--json", "--limit", "50"], env, runs)
        page = json.loads(out)
        assert len(page) == 50 and page[0]["job_id"] == jobs, "the page is not the 50 newest jobs"
    return {"jobs": jobs, "db": "sqlite" if db == "sqlite" else "postgresql", "runs": runs,
            "queue_s": round(queue, 3), "floor_s": round(floor, 3), "ratio": round(queue / floor, 2),
            "queue_minus_floor_s": round(queue - floor, 3), "target_s": TARGET_S,
            "fill_s": round(fill_s, 1), "load": round(os.getloadavg()[0], 2)}


def main() -> int:
    if Path(sys.executable).resolve() != (ROOT / ".venv" / "bin" / "python").resolve() and \
            (ROOT / ".venv" / "bin" / "python").exists():
        os.execv(str(ROOT / ".venv" / "bin" / "python"), [str(ROOT / ".venv" / "bin" / "python"), *sys.argv])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--db", default="sqlite", help="sqlite (a fresh file) or a PostgreSQL URL of an empty database")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = measure(args.jobs, args.runs, args.db)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"jobs queue --json --limit 50, {r['jobs']} jobs ({r['db']}): {r['queue_s']:.3f} s median of {r['runs']} "
          f"(target <= {TARGET_S} s)")
    print(f"floor `skyplan --version`: {r['floor_s']:.3f} s; ratio {r['ratio']}x; queue - floor "
          f"{r['queue_minus_floor_s']:.3f} s")
    print(f"(filled in {r['fill_s']} s; load average {r['load']})")
    return 0 if r["queue_s"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
