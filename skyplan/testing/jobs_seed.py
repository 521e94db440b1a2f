"""Managed jobs written straight into a store, for the dashboard's and the queue's tests.

``seed(store, ...)`` submits jobs and walks them through transitions with the
store's own calls (no controller, no cloud), three days in the past so that
their ages and durations read the same for the whole test ("3 days ago").
Each job that ran has one run log per run (``skyplan.jobs.logs``) whose lines
name the job, so a test can tell that a page shows the right job's logs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from skyplan.jobs.states import Placement, Status

#: Seconds before now the seeded jobs were submitted.
AGE_S = 3 * 86400.0


@dataclass
class Clock:
    """A store clock that moves only when told to."""

    now: float = field(default_factory=lambda: time.time() - AGE_S)

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def log_line(job_id: int, task_index: int, run_no: int) -> str:
    """The line each seeded run's log holds."""
    return f"hello from job {job_id} task {task_index} run {run_no}"


#: (name, [(task name, resources, [statuses walked through after PENDING])]) — in submission order.
TERMINAL_JOBS: list[tuple[str, list[tuple[str | None, str, list[Status]]]]] = [
    ("train-bert", [(None, "1x sim(n1-standard-4, [Spot])",
                     [Status.STARTING, Status.RUNNING, Status.RECOVERING, Status.RUNNING, Status.SUCCEEDED])]),
    ("etl", [("extract", "1x sim(n1-standard-2)", [Status.STARTING, Status.RUNNING, Status.SUCCEEDED]),
             ("load", "1x sim(n1-standard-2)", [Status.STARTING, Status.RUNNING, Status.FAILED]),
             ("report", "1x sim(n1-standard-2)", [Status.CANCELLED])]),
    ("setup-broken", [(None, "1x sim(n1-standard-2)", [Status.STARTING, Status.FAILED_SETUP])]),
    ("no-gpus", [(None, "1x sim(a2-highgpu-8g, [Spot])", [Status.STARTING, Status.FAILED_NO_RESOURCE])]),
    ("<b>odd</b> [bold]name[/]", [(None, "1x sim(n1-standard-2)", [Status.CANCELLED])]),
    ("eval", [(None, "1x sim(n1-standard-8)", [Status.STARTING, Status.RUNNING, Status.SUCCEEDED])]),
    ("sweep", [("a", "1x sim(n1-standard-2, [Spot])", [Status.STARTING, Status.RUNNING, Status.SUCCEEDED]),
               ("b", "1x sim(n1-standard-2, [Spot])", [Status.STARTING, Status.RUNNING, Status.SUCCEEDED])]),
]

#: Jobs that are still going (a controller would act on them: serve these without one).
LIVE_JOBS: list[tuple[str, list[tuple[str | None, str, list[Status]]]]] = [
    ("waiting", [(None, "1x sim(n1-standard-2)", [])]),
    ("finetune", [(None, "1x sim(n1-standard-4, [Spot])", [Status.STARTING, Status.RUNNING])]),
    ("pipeline", [("train", "1x sim(n1-standard-8, [Spot])",
                   [Status.STARTING, Status.RUNNING, Status.RECOVERING]),
                  ("eval", "1x sim(n1-standard-2)", [])]),
]

_PLACEMENT = Placement(cloud="sim", region="us-central1", zone="us-central1-a", instance_type="n1-standard-4",
                       use_spot=True)


def seed(store: Any, clock: Clock, jobs: list[tuple[str, list[tuple[str | None, str, list[Status]]]]]) -> list[int]:
    """Submit ``jobs`` (oldest first) and walk each task through its statuses;
    the new job ids, in the same order. ``store`` must use ``clock``."""
    from skyplan.jobs import logs
    from skyplan.jobs.store import TaskSubmission

    ids = []
    for name, tasks in jobs:
        job_id = store.submit(name, [TaskSubmission(n, json.dumps({"run": "echo hi"}), r) for n, r, _ in tasks],
                              options={})
        ids.append(job_id)
        for index, (_, _, walk) in enumerate(tasks):
            cluster = f"job-{job_id}-{index}"
            recoveries = run_no = 0
            for status in walk:
                clock.tick(30)
                fields: dict[str, Any] = {}
                if status is Status.STARTING:
                    fields["cluster"] = cluster
                if status is Status.RECOVERING:
                    recoveries += 1
                    fields["recoveries"] = recoveries
                    store.end_run(job_id, index, run_no, _PLACEMENT, "preempted")
                if status is Status.RUNNING:
                    fields["placement"] = _PLACEMENT
                store.transition(job_id, index, status, f"seeded: {status.value.lower()}", **fields)
                if status is Status.RUNNING:  # each run has its log
                    log = logs.open_run(store, job_id, index, cluster)
                    run_no = len([r for r in store.runs(job_id) if r.task_index == index])
                    log.write(log_line(job_id, index, run_no) + "\n")
        clock.tick(60)
    return ids


def stop_controller(store: Any, timeout_s: float = 30.0) -> int | None:
    """SIGTERM the controller serving ``store``'s database (from its published
    info), and wait for it to exit; its pid, or None when none was published.
    Raises TimeoutError (after a SIGKILL) when it did not stop."""
    import os
    import signal

    pid = (store.controller_info() or {}).get("pid")
    if not pid:
        return None
    pid = int(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # our own child (spawned in this process): reap it
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    raise TimeoutError(f"the controller {pid} did not stop within {timeout_s:g} s of SIGTERM")
