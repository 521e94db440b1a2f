"""Managed jobs on the sim cloud (latency 0), through the real controller process
and the real engine. Prints figures; asserts nothing about time.

    .venv/bin/python bench/jobs.py [--running 100] [--queued 1000] [--cycle 20] [--queue-jobs 10000] [--json]
                                   [--skip preempt,rss,cycle,queue]

1. Preemption -> RUNNING again, split into detection (the ledger's preemption ->
   the RECOVERING event), teardown (-> the relaunch's first note in its run log: the
   old cluster destroyed, verified and removed) and relaunch (-> the RUNNING event),
   with the default settings (a check every
   ``jobs.poll_s`` = 5 s), against one plain launch of the same task in the same run
   (``skyplan.provision.launch``, what the controller calls; and the console's
   ``apply --detach``, which adds a process start). Targets: detection <= 6 s;
   the whole <= detection + 1.3 x a plain launch.
2. The controller's RSS (``VmRSS`` of the daemon; the engine's own processes are
   separate) idle, with ``--running`` jobs whose tasks sleep (submitted ``--batch``
   at a time), then with ``--queued`` more jobs PENDING behind them. Target: <= 2 MiB
   per running job.
3. Jobs per minute through launch -> run -> succeed -> teardown (``--cycle`` jobs of
   ``echo``, ``jobs.max_concurrent`` 16), until the ledger holds nothing live.
4. ``jobs queue --json --limit 50`` with ``--queue-jobs`` jobs (``bench/jobs_queue.py``).

Each part runs in a skyplan home of its own under a temporary directory; the
controllers it starts are stopped (SIGTERM) before it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKYPLAN = ROOT / ".venv" / "bin" / "skyplan"
sys.path.insert(0, str(ROOT))

TASK = """\
name: {name}
resources:
  cloud: gcp
  instance_type: e2-standard-2
  use_spot: true
  any_of:
    - zone: us-west4-a
    - zone: us-central1-a
run: {run}
"""


class Home:
    """A skyplan home with its own jobs database, set in this process's environment."""

    def __init__(self, base: Path, name: str, **settings: str) -> None:
        self.path = base / name
        self.path.mkdir()
        self.saved = dict(os.environ)
        os.environ["SKYPLAN_HOME"] = str(self.path)
        os.environ["SKYPLAN_JOBS_DB_URL"] = f"sqlite:///{self.path / 'jobs.db'}"
        for var in [v for v in os.environ if v.startswith("SKYPLAN_JOBS_") and v != "SKYPLAN_JOBS_DB_URL"]:
            del os.environ[var]
        for key, value in settings.items():
            os.environ[f"SKYPLAN_JOBS_{key.upper()}"] = value
        self.scenario = self.path / "scenario.yaml"
        self.scenario.write_text("default: ok\nlatency_s: 0\n")
        from skyplan.jobs.store import Store

        self.store = Store()

    def task(self, name: str, run: str) -> Path:
        path = self.path / f"{name}.yaml"
        path.write_text(TASK.format(name=name, run=json.dumps(run)))
        return path

    def submit(self, path: Path, copies: int = 1) -> list[int]:
        """``copies`` jobs of the task at ``path``: the first through ``submit`` (planned
        and checked), the others the same rows straight into the store (fast)."""
        from skyplan.jobs.store import TaskSubmission
        from skyplan.jobs.submit import submit

        first = submit(str(path), simulate=str(self.scenario), store=self.store, start_controller=False)
        ids = [first.job_id]
        if copies > 1:
            job = self.store.job(first.job_id)
            subs = [TaskSubmission(t.name, t.task_json, t.resources) for t in job.tasks]
            options = self.store.options(first.job_id)
            ids += [self.store.submit(f"{first.name}-{i}", subs, options=options) for i in range(1, copies)]
        return ids

    def start(self) -> int:
        from skyplan.jobs import daemon

        daemon.spawn()
        return self.wait(lambda: (self.store.controller_info() or {}).get("pid"), "the controller", 60)

    def wait(self, cond, what: str, deadline_s: float = 600.0, every_s: float = 0.05):  # noqa: ANN001, ANN201
        end = time.monotonic() + deadline_s
        while True:
            got = cond()
            if got:
                return got
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(every_s)

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.store.queue(limit=100_000, include_finished=True):
            out[j.status.value] = out.get(j.status.value, 0) + 1
        return out

    def close(self) -> None:
        from skyplan.jobs.daemon import is_running

        info = self.store.controller_info() or {}
        if info.get("pid"):
            try:
                os.kill(int(info["pid"]), signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.wait(lambda: not is_running(self.store.url), "the controller to stop", 300, 0.2)
        self.store.close()
        os.environ.clear()
        os.environ.update(self.saved)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- 1. preemption -> RUNNING ------------------------------------------------------------


def plain_launch_s(h: Home) -> tuple[float, float]:
    """One in-process launch (and down) of the task, and one console ``apply --detach``."""
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.provision.launch import LaunchOptions, LaunchRequest, down, launch
    from skyplan.spec import load

    path = h.task("plain", "sleep 600")
    plan = make_plan(load(str(path)), load_catalog(None))
    t = time.monotonic()
    launch(LaunchRequest(plan, "plain", LaunchOptions(simulate=str(h.scenario))))
    inproc = time.monotonic() - t
    t = time.monotonic()
    down("plain")
    h.plain_down_s = time.monotonic() - t
    t = time.monotonic()
    subprocess.run([str(SKYPLAN), "apply", str(path), "--yes", "--detach", "--simulate", str(h.scenario)],
                   check=True, capture_output=True, timeout=600)
    cli = time.monotonic() - t
    down("plain")
    return inproc, cli


def _launching_at(log_path: str, near: float) -> float:
    """When the run's launch began: its log's first ``skyplan: HH:MM:SS.mmm launching`` note."""
    import datetime as dt

    for line in Path(log_path).read_text().splitlines():
        if line.startswith("skyplan: ") and " launching " in line:
            clock = dt.datetime.strptime(line.split()[1], "%H:%M:%S.%f").time()
            day = dt.datetime.fromtimestamp(near, dt.timezone.utc).date()
            t = dt.datetime.combine(day, clock, dt.timezone.utc).timestamp()
            return t - 86400 if t - near > 43200 else t  # across midnight
    raise SystemExit(f"no launch note in {log_path}")


def preemption(base: Path, rounds: int) -> dict[str, object]:
    from skyplan.clouds.sim import ledger
    from skyplan.clouds.sim.preempt import preempt_cluster

    h = Home(base, "preempt")  # the default settings: a check every 5 s
    try:
        inproc, cli = plain_launch_s(h)
        (job_id,) = h.submit(h.task("victim", "sleep 3600"))
        h.start()
        cluster = f"job-{job_id}-0"
        splits = []
        for k in range(rounds):
            h.wait(lambda: h.store.job(job_id).status.value == "RUNNING", "RUNNING")
            time.sleep(1.0)
            (row,) = preempt_cluster(cluster)
            preempted = ledger.get(None, row["id"])["preempted_at"]

            def again() -> object:
                t = h.store.job(job_id).tasks[0]
                return t.status.value == "RUNNING" and t.recoveries == k + 1 and t

            task = h.wait(again, f"recovery {k + 1}")
            ev = [e for e in task.events if e.at >= preempted]
            recovering = next(e.at for e in ev if e.status.value == "RECOVERING")
            running = next(e.at for e in ev if e.status.value == "RUNNING")
            relaunch = _launching_at(h.store.runs(job_id)[-1].log_path, preempted)  # the teardown is over
            splits.append({"detection_s": recovering - preempted, "teardown_s": relaunch - recovering,
                           "relaunch_s": running - relaunch, "total_s": running - preempted})
        h.store.request_cancel(job_id)
        h.wait(lambda: h.store.job(job_id).status.terminal and not ledger.live_resources(), "the cancel")
    finally:
        h.close()
    med = {k: statistics.median(s[k] for s in splits) for k in splits[0]}
    return {"rounds": splits, "median": med, "plain_launch_s": inproc, "plain_down_s": h.plain_down_s,
            "plain_apply_cli_s": cli,
            "target_total_s": med["detection_s"] + 1.3 * inproc}


# --- 2. RSS ------------------------------------------------------------------------------


def rss(base: Path, running: int, queued: int, batch: int = 10) -> dict[str, object]:
    from skyplan.clouds.sim import ledger

    h = Home(base, "rss", max_concurrent=str(running), poll_s="5")
    try:
        pid = h.start()
        time.sleep(3.0)
        idle = rss_mib(pid)
        t = time.monotonic()
        path = h.task("sleeper", "sleep 3600")
        for n in range(batch, running + batch, batch):  # a few launches at a time: the machine is shared
            h.submit(path, min(batch, running - (n - batch)))
            h.wait(lambda n=min(n, running): h.statuses().get("RUNNING", 0) >= n, f"{n} jobs RUNNING", 3600, 1.0)
        up_s = time.monotonic() - t
        time.sleep(12.0)  # a couple of passes with every job running
        with_running = rss_mib(pid)
        h.submit(h.task("waiter", "echo queued"), queued)
        time.sleep(15.0)
        counts = h.statuses()
        with_queued = rss_mib(pid)
        for j in h.store.unfinished():
            h.store.request_cancel(j.job_id)
        h.wait(lambda: not h.store.unfinished() and not ledger.live_resources(), "every job cancelled", 3600, 1.0)
    finally:
        h.close()
    return {"idle_mib": idle, "running_jobs": running, "with_running_mib": with_running,
            "per_running_job_mib": (with_running - idle) / running, "queued_jobs": queued,
            "with_queued_mib": with_queued, "statuses_with_queued": counts, "all_running_after_s": up_s}


# --- 3. jobs per minute --------------------------------------------------------------------


def cycle(base: Path, jobs: int) -> dict[str, object]:
    from skyplan.clouds.sim import ledger

    h = Home(base, "cycle", max_concurrent="16", poll_s="1")
    try:
        path = h.task("quick", "echo done")
        t = time.monotonic()
        ids = h.submit(path, jobs)
        h.start()
        h.wait(lambda: all(h.store.job(i).status.terminal for i in ids) and not ledger.live_resources(),
               "every job to end and be torn down", 3600, 0.5)
        took = time.monotonic() - t
        ok = sum(h.store.job(i).status.value == "SUCCEEDED" for i in ids)
    finally:
        h.close()
    return {"jobs": jobs, "succeeded": ok, "seconds": took, "jobs_per_minute": 60.0 * jobs / took}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--running", type=int, default=100)
    ap.add_argument("--queued", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=10, help="running jobs submitted at a time")
    ap.add_argument("--cycle", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="preemptions to time")
    ap.add_argument("--queue-jobs", type=int, default=10_000)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: preempt,rss,cycle,queue")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    out: dict[str, object] = {"loadavg_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="skyplan-bench-jobs-") as tmp:
        base = Path(tmp)
        os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "skyplan-bench")
        if "SKYPLAN_ENGINE_DIR" not in os.environ:
            from skyplan import home

            os.environ["SKYPLAN_ENGINE_DIR"] = str(home.engine_dir())
        if "preempt" not in skip:
            out["preemption"] = preemption(base, args.rounds)
            _print_part("preemption", out["preemption"], args.json)
        if "rss" not in skip:
            out["rss"] = rss(base, args.running, args.queued, args.batch)
            _print_part("rss", out["rss"], args.json)
        if "cycle" not in skip:
            out["cycle"] = cycle(base, args.cycle)
            _print_part("cycle", out["cycle"], args.json)
    if "queue" not in skip:
        from bench.jobs_queue import measure

        out["queue"] = measure(jobs=args.queue_jobs)
        _print_part("queue", out["queue"], args.json)
    out["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"load average: {out['loadavg_start']:.2f} at start, {out['loadavg_end']:.2f} at end "
              f"({out['cpus']} CPUs)")
    return 0


def _print_part(name: str, data: object, as_json: bool) -> None:
    if as_json:
        return
    d: dict = data  # type: ignore[assignment]
    if name == "preemption":
        m = d["median"]
        print(f"preemption -> RUNNING (median of {len(d['rounds'])}): detection {m['detection_s']:.2f} s, "
              f"teardown {m['teardown_s']:.2f} s, relaunch {m['relaunch_s']:.2f} s, total {m['total_s']:.2f} s; "
              f"a plain launch {d['plain_launch_s']:.2f} s, down {d['plain_down_s']:.2f} s (apply --detach from the console "
              f"{d['plain_apply_cli_s']:.2f} s); target total <= {d['target_total_s']:.2f} s")
    elif name == "rss":
        print(f"controller RSS: idle {d['idle_mib']:.1f} MiB; {d['running_jobs']} running jobs "
              f"{d['with_running_mib']:.1f} MiB ({d['per_running_job_mib']:.2f} MiB per job; all running after "
              f"{d['all_running_after_s']:.0f} s); +{d['queued_jobs']} queued {d['with_queued_mib']:.1f} MiB "
              f"({d['statuses_with_queued']})")
    elif name == "cycle":
        print(f"launch -> run -> succeed -> teardown: {d['jobs']} jobs ({d['succeeded']} succeeded) in "
              f"{d['seconds']:.1f} s: {d['jobs_per_minute']:.1f} jobs/minute")
    else:
        print(f"jobs queue --json --limit 50: {json.dumps(d, default=str)}")


if __name__ == "__main__":
    sys.exit(main())
