"""Every run's output, kept under the job; ``jobs logs`` reads it back.

Layout, under the skyplan home::

    jobs/controller.log                      the controller process's own log
    jobs/<job_id>/task-<idx>/run-<n>.log     one run of a task: the launch's events
                                             (lines starting ``skyplan: ``), then the
                                             task's output as the controller pumped it
    jobs/<job_id>/task-<idx>/run-<n>.log.pumped   how many output lines were copied

A run's log outlives its cluster: the controller pumps the task's output each
poll and once more before the teardown, so a preempted run's last lines are
kept (SkyPilot lost them with the replaced cluster). ``job_lines`` prints the
runs in order, each after a separator line naming its placement;
``follow_job`` streams them until the job has ended. Nothing here prints.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

#: What starts the lines skyplan writes into a run log itself (launch events, teardown).
NOTE_PREFIX = "skyplan: "


def jobs_dir() -> Path:
    from skyplan import home

    return home.sub("jobs")


def controller_log_path() -> Path:
    return jobs_dir() / "controller.log"


def run_log_path(job_id: int, task_index: int, run_no: int) -> Path:
    return jobs_dir() / str(int(job_id)) / f"task-{int(task_index)}" / f"run-{int(run_no)}.log"


class RunLogFile:
    """One run's log file (satisfies ``executor.RunLog``). Appends only; safe from
    several threads of one process (the controller's workers and its loop)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)

    def note(self, line: str) -> None:
        """One line of skyplan's own (a launch event, a teardown), time-stamped."""
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}"
        self.write(f"{NOTE_PREFIX}{stamp} {line.rstrip()}\n")


def note(log: Any, line: str) -> None:
    """``log.note(line)`` for a RunLogFile, else the same line through ``log.write``."""
    if hasattr(log, "note"):
        log.note(line)
    else:
        log.write(f"{NOTE_PREFIX}{line.rstrip()}\n")


def pump(log: Any, lines: Iterable[str]) -> int:
    """Append to ``log`` the lines of ``lines`` (the task's whole output as it is now)
    past those already copied; returns how many were new. The count is kept
    beside the log (``.pumped``), so a restarted controller copies no line twice."""
    marker = Path(str(log.path) + ".pumped")
    try:
        done = int(marker.read_text() or 0)
    except (OSError, ValueError):
        done = 0
    new: list[str] = []
    for i, line in enumerate(lines):
        if i >= done:
            new.append(line if line.endswith("\n") else line + "\n")
    if new:
        log.write("".join(new))
        marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(str(done + len(new)))
        os.replace(tmp, marker)
    return len(new)


def open_run(store: Any, job_id: int, task_index: int, cluster: str) -> RunLogFile:
    """Record a new run of the task in ``store`` and return its (new) log file."""
    done = [r for r in store.runs(job_id) if r.task_index == task_index]
    run_no = 1 + max((int(r.run_no) for r in done), default=0)
    path = run_log_path(job_id, task_index, run_no)
    got = store.add_run(job_id, task_index, cluster, str(path))
    if got != run_no:  # another writer raced us: keep the store's numbering
        path = run_log_path(job_id, task_index, got)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch()
    return RunLogFile(path)


# --- reading ---------------------------------------------------------------------


def separator(job: Any, run: Any, runs: Iterable[Any] = ()) -> str:
    """The line before each run: job, task, run number and the run's placement
    (``runs``: all the job's runs, to tell the task's current run)."""
    from skyplan.jobs.executor import describe

    task = next((t for t in job.tasks if t.task_index == run.task_index), None)
    placement = getattr(run, "placement", None)  # the controller records it once the launch placed it
    last = max((r.run_no for r in runs if r.task_index == run.task_index), default=run.run_no)
    name = f" ({task.name})" if task is not None and task.name else ""
    if placement is not None:
        where = describe(placement)
    elif getattr(run, "ended_at", None) is None and run.run_no == last:
        where = "launching"  # followed live: the run's log says where it lands
    else:
        where = "no placement (its launch did not come up)"
    outcome = getattr(run, "outcome", None)
    tail = f" · {outcome}" if outcome else ""
    return f"──── job {job.job_id} · task {run.task_index}{name} · run {run.run_no} · {where}{tail} ────\n"


def job_lines(store: Any, job_id: int) -> Iterator[str]:
    """Every run of the job in order (task, then run number), each after its separator."""
    for job, run, runs, line in walk(store, job_id, follow=False):
        yield separator(job, run, runs) if line is None else line


def follow_job(store: Any, job_id: int, *, poll_s: float = 0.5,
               stop: Callable[[], bool] | None = None) -> Iterator[str]:
    """Stream the job's runs in order until it has ended: a run's file is followed
    until a later run exists or the job is over (then its last lines are read)."""
    for job, run, runs, line in walk(store, job_id, follow=True, poll_s=poll_s, stop=stop):
        yield separator(job, run, runs) if line is None else line


def _begun(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def walk(store: Any, job_id: int, *, follow: bool, poll_s: float = 0.5,
         stop: Callable[[], bool] | None = None) -> Iterator[tuple[Any, Any, list[Any], str | None]]:
    """``(job, run, runs, line)`` for each line of each run in order (lines end in a
    newline), ``line`` None where a run begins. ``follow``: each run's file is
    followed until the run is over, and the walk ends when the job has ended."""
    from skyplan.clouds.local.logs import follow as follow_file

    shown = 0
    while True:
        job = store.job(job_id)
        if job is None:
            return
        runs = list(store.runs(job_id))
        if shown < len(runs):
            run = runs[shown]
            yield job, run, runs, None
            if not follow:
                try:
                    with open(run.log_path, encoding="utf-8", errors="replace") as fh:
                        for line in fh:
                            yield job, run, runs, line if line.endswith("\n") else line + "\n"
                except FileNotFoundError:
                    pass
                shown += 1
                continue

            def run_over(i: int = shown) -> bool:
                if stop is not None and stop():
                    return True
                j = store.job(job_id)
                if j is None or j.status.terminal:
                    return True
                now = store.runs(job_id)
                # A later run exists once its relaunch is decided, but the old cluster's last
                # lines are copied during its teardown, before the next launch writes its first
                # line: the old run is over when it is closed, or its successor has begun.
                return len(now) > i + 1 and (now[i].ended_at is not None or _begun(now[i + 1].log_path))

            for line in follow_file(run.log_path, run_over, poll_s=poll_s):
                yield job, run, runs, line + "\n"
            shown += 1
            continue
        if not follow or job.status.terminal or (stop is not None and stop()):
            return
        time.sleep(poll_s)


def controller_lines(store: Any, job: Any) -> Iterator[str]:
    """``jobs logs --controller``: the job's recorded transitions (time, task, state,
    reason), then the controller log's lines that name the job or its clusters."""
    import re

    from skyplan.contract import utc_time

    for task in job.tasks:
        for e in task.events:
            yield f"{utc_time(e.at)} job {job.job_id} task {task.task_index}: {e.status.value}: {e.reason}\n"
    mention = re.compile(rf"\bjob[ -]{int(job.job_id)}\b|\bjob-{int(job.job_id)}-\d+\b")
    try:
        with open(controller_log_path(), encoding="utf-8", errors="replace") as fh:
            first = True
            for line in fh:
                if mention.search(line):
                    if first:
                        yield "──── controller log ────\n"
                        first = False
                    yield line
    except FileNotFoundError:
        return
