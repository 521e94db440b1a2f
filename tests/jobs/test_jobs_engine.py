"""Managed jobs end to end: the CLI, the controller process and the real engine.

Every test submits through ``skyplan jobs launch`` (a subprocess), which starts
the controller daemon (``skyplan.jobs.daemon``) detached; the test watches the
job in the store and disturbs it the way the world would (``skyplan sim
preempt``, a killed sandbox, a SIGKILLed controller). Poll, grace and idle
settings are small (``SKYPLAN_JOBS_*``) so each story takes seconds. The
controller a test started is stopped when it ends, and every test checks that
the sim ledger holds nothing live and no cluster is left.

The stories that lean on the database (the counter, EAGER_NEXT_REGION, cancel
during RECOVERING, a SIGKILLed controller, a pipeline) run on SQLite and on
PostgreSQL (``jobs_db_url``); the budgets, FAILED_NO_RESOURCE and each cloud's own
path (an ssh pool, local processes, checks that time out) on SQLite, to keep
the suite's time down (their decisions are the store's same calls).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skyplan import home

pytestmark = pytest.mark.engine

REAL_ENGINE_DIR = home.engine_dir()  # before any fixture moves the home
PASSPHRASE = "skyplan-engine-tests"

#: Two spot zones in two regions: the cheaper first (the plan's order).
TWO_ZONES = """\
resources:
  cloud: gcp
  instance_type: e2-standard-2
  use_spot: true
  any_of:
    - zone: us-west4-a
    - zone: us-central1-a
"""
FIRST_ZONE, SECOND_ZONE = "us-west4-a", "us-central1-a"

#: The BERT story in miniature: a counter checkpointed every step, resumed after a recovery.
COUNTER_RUN = """\
run: |
  mkdir -p "$CKPT"
  n=$(cat "$CKPT/count" 2>/dev/null || echo 0)
  echo "start at $n task_id=$SKYPLAN_TASK_ID recoveries=$SKYPLAN_NUM_RECOVERIES job=$SKYPLAN_JOB_ID"
  echo "$SKYPLAN_TASK_ID" >> "$CKPT/task_ids"
  while [ "$n" -lt "$TOTAL" ]; do
    n=$((n + 1))
    echo "$n" > "$CKPT/count.tmp" && mv "$CKPT/count.tmp" "$CKPT/count"
    echo "step $n"
    sleep 0.25
  done
  echo "done at $n"
"""


def _sh(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skyplan", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


class Jobs:
    """One test's world: its home, database, scenario and controller."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.scenario = tmp / "scenario.yaml"
        self.scenario.write_text("default: ok\n")
        self.env = dict(os.environ)

    def launch(self, text: str, name: str = "job", *extra: str) -> int:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        r = _sh(self.env, "jobs", "launch", str(path), "-n", name, "--yes", "--detach", "--json",
                "--simulate", str(self.scenario), *extra)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["name"] == name
        return int(doc["job_id"])

    def store(self):  # noqa: ANN201
        from skyplan.jobs.store import Store

        return Store(self.db_url)

    def job(self, job_id: int):  # noqa: ANN201
        with self.store() as s:
            return s.job(job_id)

    def runs(self, job_id: int):  # noqa: ANN201
        with self.store() as s:
            return s.runs(job_id)

    def wait(self, cond: Callable[[], bool], what: str, deadline_s: float = 120.0) -> None:
        end = time.monotonic() + deadline_s
        while not cond():
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what}; controller log:\n{self.controller_log()[-4000:]}")
            time.sleep(0.1)

    def wait_status(self, job_id: int, *statuses: str, deadline_s: float = 120.0):  # noqa: ANN201
        self.wait(lambda: self.job(job_id).status.value in statuses, f"job {job_id} in {statuses}", deadline_s)
        return self.job(job_id)

    def wait_end(self, job_id: int, deadline_s: float = 180.0):  # noqa: ANN201
        """The job once every task has ended (a pipeline's job is FAILED as soon as a task
        fails; the tasks after it are CANCELLED a moment later)."""
        self.wait(lambda: all(t.status.terminal for t in self.job(job_id).tasks), f"job {job_id} to end",
                  deadline_s)
        return self.job(job_id)

    def preempt(self, cluster: str) -> None:
        r = _sh(self.env, "sim", "preempt", cluster, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["preempted"]

    def controller_pid(self) -> int | None:
        with self.store() as s:
            info = s.controller_info() or {}
        return info.get("pid")

    def controller_log(self) -> str:
        path = Path(os.environ["SKYPLAN_HOME"]) / "jobs" / "controller.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs_now(self, job_id: int) -> str:
        """The run logs as they are (``jobs logs`` waits for the job to end)."""
        home = Path(os.environ["SKYPLAN_HOME"]) / "jobs" / str(job_id)
        return "".join(p.read_text(errors="replace") for p in sorted(home.rglob("run-*.log")))

    def logs(self, job_id: int) -> str:
        r = _sh(self.env, "jobs", "logs", str(job_id))
        assert r.returncode == 0, r.stderr
        return r.stdout

    def stop_controller(self) -> None:
        from skyplan.jobs.daemon import is_running

        pid = self.controller_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            self.wait(lambda: not is_running(self.db_url), "the controller to stop", 60)

    def assert_nothing_left(self) -> None:
        """Nothing live in the sim ledger, no cluster, no sandbox (a job's end is
        recorded before its teardown finishes: wait for the teardown, bounded)."""
        from skyplan.clouds.sim import ledger
        from skyplan.state import StateDB

        self.wait(lambda: not ledger.live_resources() and not StateDB().clusters(), "the teardown", 60)
        assert ledger.live_resources() == []
        assert [c.name for c in StateDB().clusters()] == []
        sandboxes = Path(os.environ["SKYPLAN_HOME"]) / "sandboxes"
        assert not sandboxes.exists() or not any(sandboxes.iterdir())


@pytest.fixture
def jobs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Jobs]:
    """A fresh home and database (SQLite; PostgreSQL where a test asks for ``jobs_db_url``)."""
    from skyplan.provision import engine as engine_mod

    monkeypatch.setenv("SKYPLAN_ENGINE_DIR", str(REAL_ENGINE_DIR))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    for var in ("SKYPLAN_BACKEND", "PULUMI_HOME", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(var, raising=False)
    try:
        engine_mod.find_engine()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("SKYPLAN_REQUIRE_ENGINE") == "1":
            pytest.fail(f"SKYPLAN_REQUIRE_ENGINE=1 but the engine is missing: {exc}")
        pytest.skip(f"pulumi engine not installed: {exc}")
    db_url = request.getfixturevalue("jobs_db_url") if "jobs_db_url" in request.fixturenames \
        else f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", db_url)
    monkeypatch.setenv("SKYPLAN_JOBS_POLL_S", "0.3")
    monkeypatch.setenv("SKYPLAN_JOBS_GRACE_CHECKS", "3")
    monkeypatch.setenv("SKYPLAN_JOBS_GRACE_S", "2")
    monkeypatch.setenv("SKYPLAN_JOBS_IDLE_STOP_S", "30")
    jobs = Jobs(tmp_path, db_url)
    try:
        yield jobs
    finally:
        jobs.stop_controller()


def _counter(ckpt: Path, total: int, recovery: str = "") -> str:
    """The counter checkpointing to the plain directory ``ckpt``."""
    return (f"name: counter\n{TWO_ZONES}{recovery}envs:\n  CKPT: {ckpt}\n  TOTAL: '{total}'\n" + COUNTER_RUN)


def _bucket_counter(bucket: str, total: int) -> tuple[str, Path]:
    """The counter checkpointing to the MOUNT bucket ``bucket`` at /checkpoint, and where
    that bucket lives on this machine (a directory beside the sandboxes)."""
    text = (f"name: counter\n{TWO_ZONES}file_mounts:\n  /checkpoint:\n    name: {bucket}\n    mode: MOUNT\n"
            f"envs:\n  CKPT: /checkpoint\n  TOTAL: '{total}'\n" + COUNTER_RUN)
    return text, Path(os.environ["SKYPLAN_HOME"]) / "buckets" / bucket


def _count(ckpt: Path) -> int:
    try:
        return int((ckpt / "count").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_counter_preempted_twice_finishes_with_one_task_id(jobs_env: Jobs, jobs_db_url: str) -> None:
    """Seed 003's BERT story in miniature, on SQLite and PostgreSQL: the checkpoint is
    a MOUNT bucket at /checkpoint, the same one after every relaunch."""
    total = 24
    text, ckpt = _bucket_counter("bert-ckpt", total)
    job_id = jobs_env.launch(text, "bert")
    cluster = f"job-{job_id}-0"
    for k in (1, 2):
        jobs_env.wait_status(job_id, "RUNNING")
        at = _count(ckpt)
        jobs_env.wait(lambda: _count(ckpt) >= at + 3, "progress before the preemption")
        jobs_env.preempt(cluster)
        jobs_env.wait(lambda: jobs_env.job(job_id).tasks[0].recoveries >= k, f"recovery {k}")
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "SUCCEEDED", job
    task = job.tasks[0]
    assert task.recoveries == 2 and job.recoveries == 2
    assert _count(ckpt) == total
    ids = (ckpt / "task_ids").read_text().split()
    assert len(ids) == 3 and set(ids) == {task.task_id}, ids
    assert task.task_id.startswith("skyplan-managed-") and task.task_id.endswith(f"_bert_{job_id}-0")
    # Every run's output is kept, in order, each after a separator naming its placement.
    out = jobs_env.logs(job_id)
    assert out.count("──── job") == 3
    starts = [int(line.split()[2]) for line in out.splitlines() if line.startswith("start at")]
    assert len(starts) == 3 and starts[0] == 0 and 0 < starts[1] < starts[2] < total  # resumed from the checkpoint
    assert f"done at {total}" in out and "recoveries=2" in out
    assert all("preempt" in (r.outcome or "") for r in jobs_env.runs(job_id)[:2])
    jobs_env.assert_nothing_left()
    assert _count(ckpt) == total  # a bucket the user named outlives the job


def test_eager_next_region_relaunches_in_another_region(jobs_env: Jobs, jobs_db_url: str) -> None:
    ckpt = jobs_env.tmp / "ckpt"
    job_id = jobs_env.launch(_counter(ckpt, 12, "  job_recovery: EAGER_NEXT_REGION\n"), "eager")
    job = jobs_env.wait_status(job_id, "RUNNING")
    first = job.tasks[0].placement
    assert first.zone == FIRST_ZONE
    jobs_env.wait(lambda: _count(ckpt) >= 2, "progress")
    jobs_env.preempt(f"job-{job_id}-0")
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "SUCCEEDED"
    second = job.tasks[0].placement
    assert second.region != first.region and second.zone == SECOND_ZONE
    runs = jobs_env.runs(job_id)
    assert [r.placement.zone for r in runs] == [FIRST_ZONE, SECOND_ZONE]
    jobs_env.assert_nothing_left()


_FLAKY = """\
name: flaky
{zones}  job_recovery:
{policy}envs:
  MARK: {mark}
run: |
  n=$(cat "$MARK" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$MARK"
  echo "attempt $n"
  if [ "$n" -eq 1 ]; then sleep 600; fi
  exit 3
"""


@pytest.mark.parametrize("policy,runs", [
    ("    max_restarts_on_errors: 2\n", 4),  # preempted, then a failure and 2 restarts: the eviction is free
    ("    backoffLimit: 2\n", 3),  # seed 004's spelling: the eviction spends the budget, one restart fewer
], ids=["max_restarts_on_errors", "backoffLimit"])
def test_user_failures_and_a_preemption_spend_the_budgets(jobs_env: Jobs, policy: str, runs: int) -> None:
    mark = jobs_env.tmp / "attempts"
    job_id = jobs_env.launch(_FLAKY.format(zones=TWO_ZONES, policy=policy, mark=mark), "flaky")
    jobs_env.wait_status(job_id, "RUNNING")
    jobs_env.wait(lambda: mark.exists(), "the first attempt")
    jobs_env.preempt(f"job-{job_id}-0")
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "FAILED", job
    task = job.tasks[0]
    assert len(jobs_env.runs(job_id)) == runs
    assert int(mark.read_text()) == runs
    assert task.restarts_on_errors == runs - 1  # every run failed the user's way but the preempted one
    assert task.failures == runs  # the eviction included
    assert task.recoveries == runs - 1
    assert task.events[-1].status.value == "FAILED"
    jobs_env.assert_nothing_left()


def test_no_resource_anywhere_is_failed_no_resource(jobs_env: Jobs) -> None:
    jobs_env.scenario.write_text("default: capacity\n")
    job_id = jobs_env.launch(f"name: full\n{TWO_ZONES}run: echo never\n", "full")
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "FAILED_NO_RESOURCE", job
    assert "no resource" in job.tasks[0].events[-1].reason.lower() or job.tasks[0].events[-1].reason
    out = jobs_env.logs(job_id)
    assert out.count("failed on gcp") >= 2  # both zones were tried, as the run log says
    jobs_env.assert_nothing_left()


def test_cancel_mid_failover_stops_between_attempts(jobs_env: Jobs) -> None:
    # Every zone of GCP is full and each create takes a while: the failover has many
    # candidates left when the cancel comes, and must not try them all.
    jobs_env.scenario.write_text("default: capacity\nlatency_s: 0.5\n")
    job_id = jobs_env.launch("name: full\nresources:\n  cloud: gcp\n  instance_type: e2-standard-2\n"
                             "run: echo never\n", "full")
    total = len(json.loads(_sh(jobs_env.env, "plan", str(jobs_env.tmp / "full.yaml"), "--json").stdout)
                ["candidates"])
    assert total > 20, total
    jobs_env.wait(lambda: jobs_env.logs_now(job_id).count("failed on") >= 2, "two failed attempts")
    r = _sh(jobs_env.env, "jobs", "cancel", str(job_id), "--json")
    assert r.returncode == 0, r.stderr
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "CANCELLED", job
    tried = jobs_env.logs(job_id).count("failed on")
    assert tried < total // 2, (tried, total)  # without the stop: every candidate, then CANCELLED
    jobs_env.assert_nothing_left()


def test_cancel_during_recovering_leaves_nothing(jobs_env: Jobs, jobs_db_url: str) -> None:
    # Every create takes a while, so the relaunch is still under way when the cancel comes.
    jobs_env.scenario.write_text("default: ok\nlatency_s: 3\n")
    job_id = jobs_env.launch(f"name: slow\n{TWO_ZONES}run: sleep 600\n", "slow")
    jobs_env.wait_status(job_id, "RUNNING")
    jobs_env.preempt(f"job-{job_id}-0")
    jobs_env.wait_status(job_id, "RECOVERING")
    r = _sh(jobs_env.env, "jobs", "cancel", str(job_id), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cancelling"] == [job_id]
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "CANCELLED"
    jobs_env.assert_nothing_left()


def test_sigkilled_controller_resumes_without_a_needless_recovery(jobs_env: Jobs, jobs_db_url: str) -> None:
    from skyplan.jobs import daemon

    text, ckpt = _bucket_counter("survivor-ckpt", 30)
    job_id = jobs_env.launch(text, "survivor")
    jobs_env.wait_status(job_id, "RUNNING")
    jobs_env.wait(lambda: _count(ckpt) >= 2, "progress")
    pid = jobs_env.controller_pid()
    os.kill(pid, signal.SIGKILL)
    jobs_env.wait(lambda: not daemon.is_running(jobs_env.db_url), "the killed controller to be gone", 30)
    at = _count(ckpt)
    jobs_env.wait(lambda: _count(ckpt) >= at + 2, "the task to keep running without its controller")
    assert daemon.ensure_running()  # what the next CLI command does
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "SUCCEEDED", job
    assert job.tasks[0].recoveries == 0
    assert len(jobs_env.runs(job_id)) == 1
    assert jobs_env.controller_pid() != pid
    assert _count(ckpt) == 30 and (ckpt / "task_ids").read_text().split() == [job.tasks[0].task_id]
    jobs_env.assert_nothing_left()


def test_pipeline_whose_first_task_fails_cancels_the_rest(jobs_env: Jobs, jobs_db_url: str) -> None:
    text = (f"name: pipe\n---\nname: train\n{TWO_ZONES}run: echo training; exit 5\n"
            f"---\nname: eval\n{TWO_ZONES}run: echo eval\n")
    job_id = jobs_env.launch(text, "pipe")
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "FAILED", job
    assert [t.status.value for t in job.tasks] == ["FAILED", "CANCELLED"]
    assert [t.name for t in job.tasks] == ["train", "eval"]
    assert job.tasks[0].task_id.endswith(f"_pipe_train_{job_id}-0")
    assert job.tasks[1].task_id.endswith(f"_pipe_eval_{job_id}-1")
    assert [r.task_index for r in jobs_env.runs(job_id)] == [0]
    assert "training" in jobs_env.logs(job_id)
    jobs_env.assert_nothing_left()


def test_local_processes_that_vanish_are_failed_hardware_and_recovered(jobs_env: Jobs) -> None:
    from skyplan.clouds.local import runner
    from skyplan.state import StateDB

    ckpt = jobs_env.tmp / "ckpt"
    text = (f"name: here\nresources:\n  cloud: local\nenvs:\n  CKPT: {ckpt}\n  TOTAL: '16'\n" + COUNTER_RUN)
    job_id = jobs_env.launch(text, "here")
    jobs_env.wait_status(job_id, "RUNNING")
    jobs_env.wait(lambda: _count(ckpt) >= 2, "progress")
    row = StateDB().get_cluster(f"job-{job_id}-0")
    node = Path(row.outputs["sandbox"]) / "node-0"
    proc = json.loads((node / "proc.json").read_text())
    os.killpg(int(proc["pgid"]), signal.SIGKILL)  # the machine died: no exit recorded
    jobs_env.wait(lambda: runner.status(node)["phase"] == "lost", "the sandbox to count as lost", 30)
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "SUCCEEDED", job
    assert job.tasks[0].recoveries == 1
    assert _count(ckpt) == 16
    jobs_env.assert_nothing_left()


def test_checks_that_time_out_while_the_cloud_says_running_cause_no_recovery(jobs_env: Jobs) -> None:
    """The controller in this process, over the real executor, whose status checks stop
    answering for many grace periods while the sim's ledger says the node runs."""
    import threading

    from skyplan.jobs.controller import Controller
    from skyplan.jobs.executor import Check, CloudSays, ProvisionExecutor
    from skyplan.jobs.settings import load
    from skyplan.jobs.submit import submit

    class Unanswering(ProvisionExecutor):
        def __init__(self, **kw) -> None:  # noqa: ANN003
            super().__init__(**kw)
            self.answer = threading.Event()
            self.answer.set()
            self.cloud_answers: list[CloudSays] = []

        def check(self, cluster: str) -> Check:
            if not self.answer.is_set():
                return Check(time.time(), "timeout", detail="no answer within 0.1 s")
            return super().check(cluster)

        def cloud_says(self, cluster: str) -> CloudSays:
            says = super().cloud_says(cluster)
            self.cloud_answers.append(says)
            return says

    mark = jobs_env.tmp / "ran"
    path = jobs_env.tmp / "patient.yaml"
    path.write_text(f"name: patient\n{TWO_ZONES}run: |\n  sleep 8\n  echo finished >> {mark}\n")
    settings = load()
    store = jobs_env.store()
    done = submit(str(path), simulate=str(jobs_env.scenario), store=store, start_controller=False)
    ex = Unanswering(store=store)
    controller = Controller(store, ex, settings)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        jobs_env.wait_status(done.job_id, "RUNNING")
        ex.answer.clear()
        grace = float(settings.grace_s)
        time.sleep(3 * grace)  # many grace periods of failed checks
        assert ex.cloud_answers and set(ex.cloud_answers) == {CloudSays.RUNNING}
        job = jobs_env.job(done.job_id)
        assert job.status.value == "RUNNING" and job.tasks[0].recoveries == 0
        ex.answer.set()
        job = jobs_env.wait_end(done.job_id)
    finally:
        stop.set()
        thread.join(60)
        store.close()
    assert job.status.value == "SUCCEEDED", job
    assert job.tasks[0].recoveries == 0 and len(jobs_env.runs(done.job_id)) == 1
    assert mark.read_text() == "finished\n"  # one run, never interrupted
    assert not any(e.status.value == "RECOVERING" for e in job.tasks[0].events)
    jobs_env.assert_nothing_left()


def test_a_job_on_an_ssh_pool_runs_with_its_identity_and_leaves_nothing(jobs_env: Jobs, sshd) -> None:  # noqa: ANN001
    """The same launch path reaches a pool of one's own machines (a real sshd on loopback)."""
    from skyplan.state import StateDB

    home_dir = Path(os.environ["SKYPLAN_HOME"])
    home_dir.mkdir(parents=True, exist_ok=True)
    (home_dir / "config.yaml").write_text(
        f"ssh:\n  pools:\n    lab:\n      known_hosts: {sshd.known_hosts}\n      hosts:\n"
        f"        - {{host: {sshd.host}, port: {sshd.port}, user: {sshd.user}, identity_file: {sshd.identity_file}}}\n")
    path = jobs_env.tmp / "pooled.yaml"
    path.write_text("name: pooled\nresources: {cloud: ssh, region: lab, cpus: 1+}\n"
                    "run: echo \"id=$SKYPLAN_TASK_ID job=$SKYPLAN_JOB_ID recoveries=$SKYPLAN_NUM_RECOVERIES\"\n")
    r = _sh(jobs_env.env, "jobs", "launch", str(path), "--yes", "--detach", "--json")
    assert r.returncode == 0, r.stderr
    job_id = json.loads(r.stdout)["job_id"]
    job = jobs_env.wait_end(job_id)
    assert job.status.value == "SUCCEEDED", job
    assert job.tasks[0].placement.cloud == "ssh"
    assert f"id={job.tasks[0].task_id} job={job_id} recoveries=0" in jobs_env.logs(job_id)
    jobs_env.wait(lambda: not StateDB().clusters(), "the teardown", 60)
