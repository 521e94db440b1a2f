"""Crash safety, proven at every named failpoint (``skyplan debug failpoints``).

For every failpoint x {kill, term}: run ``skyplan apply`` (the real console
process, the real engine, a file:// backend, the sim cloud at latency 0 with one
capacity failure so that a failover hop and its cleanup are passed) with the
failpoint on, so that it crashes exactly there; then ``apply`` again without it,
then ``down``. After the re-run the cluster is UP on exactly one stack that holds
exactly one sim resource; after ``down`` (exit 0) the backend directory holds no
file of the cluster, the sim ledger no live resource, the home no sandbox or lock
file, and ``status`` no cluster. Down's failpoints crash a ``down`` instead; then
``down`` again, ``apply`` again and ``down``. A converging apply's points
(``rerun.*``, ``replace.*``) crash an apply of a changed task on a cluster that is
up. The local cloud runs the points where its own code is what a crash interrupts.

Cases run a few at a time in threads (each its own cluster, on one shared home and
backend): the matrix is several hundred CLI runs. The ``matrix`` fixture runs the
cases the session selected, once; each parametrized test then checks its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from skyplan import failpoints, home
from skyplan.clouds.sim import ledger
from skyplan.provision.names import cluster_stack_prefix
from skyplan.state import StateDB

pytestmark = pytest.mark.engine

SIM_TASK = "name: fp\nresources:\n  cloud: gcp\n  region: us-central1\n  accelerators: V100:1\nrun: 'true'\n"
LOCAL_TASK = "name: fp\nresources:\n  cloud: local\nrun: 'true'\n"
# A converging apply of a cluster that is up: a new `run` re-runs in place, a new region replaces.
CHANGED = {"rerun.": SIM_TASK.replace("run: 'true'", "run: 'echo changed'"),
           "replace.": SIM_TASK.replace("us-central1", "us-west1")}
# Zone a fails once (per scenario file: each case has its own), so the first run hops
# and the re-run does not have to.
SCENARIO = ("default: ok\nlatency_s: 0\nrules:\n"
            "  - {{cloud: gcp, zone: us-central1-a, outcome: capacity, times: 1}}\n# case {case}\n")
ACTIONS = ("kill", "term")
#: Where the local cloud's own code is what a crash interrupts (its provider's create, its
#: sandbox's delete) and the issue's leak; the other points run the same code for both clouds.
LOCAL_POINTS = ("provider.created", "attempt.after-record-up", "down.resource-deleted")
CASES = [("sim", p, a) for p in failpoints.NAMES for a in ACTIONS] + [("local", p, a) for p in LOCAL_POINTS
                                                                      for a in ACTIONS]
WORKERS = int(os.environ.get("SKYPLAN_MATRIX_WORKERS", "3"))
REAL_ENGINE_DIR = home.engine_dir()  # read at import, before any test moves the home


def case_id(case: tuple[str, str, str]) -> str:
    return "-".join(case)


@dataclass
class World:
    root: Path
    home: Path
    backend: Path
    env: dict[str, str]
    results: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def run(self, *args: str, failpoints: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(self.env)
        if failpoints:
            env["SKYPLAN_FAILPOINTS"] = failpoints
        with subprocess.Popen([sys.executable, "-m", "skyplan", *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL) as proc:
            out, err = proc.communicate(timeout=timeout)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        done.pid = proc.pid  # type: ignore[attr-defined] - to find its failpoint hits
        return done

    # --- what exists ---------------------------------------------------------------

    def backend_files(self, cluster: str) -> list[str]:
        """Every file or directory of the cluster's stacks on the backend: stacks, .bak
        files, history and lock directories."""
        base = self.backend / ".pulumi"
        prefix = cluster_stack_prefix(cluster)
        out = []
        for sub in ("stacks/skyplan", "history/skyplan", "locks/organization/skyplan"):
            d = base / sub
            if d.is_dir():
                out += [f"{sub}/{n}" for n in os.listdir(d) if n.startswith(prefix)]
        return sorted(out)

    def stacks(self, cluster: str) -> set[str]:
        d = self.backend / ".pulumi" / "stacks" / "skyplan"
        prefix = cluster_stack_prefix(cluster)
        return {n[: -len(".json")] for n in os.listdir(d) if n.startswith(prefix) and n.endswith(".json")} \
            if d.is_dir() else set()

    def live(self, cluster: str) -> list[dict]:
        return [r for r in ledger.all_resources(self.home / "sim" / "ledger.db")
                if r["cluster"] == cluster and r["state"] != ledger.DELETED]

    def sandboxes(self, cluster: str) -> list[str]:
        d = self.home / "sandboxes"
        return sorted(n for n in os.listdir(d) if n.startswith(cluster_stack_prefix(cluster))) if d.is_dir() else []

    def row(self, cluster: str):  # noqa: ANN201
        db = StateDB(self.home / "state.db")
        try:
            return db.get_cluster(cluster)
        finally:
            db.close()

    def hits(self) -> list[str]:
        """``pid name action`` of every failpoint hit so far (all cases: they share the home)."""
        log = self.home / "logs" / "failpoints.log"
        return log.read_text().splitlines() if log.exists() else []


def _check(cond: bool, what: str, proc: subprocess.CompletedProcess | None = None) -> None:
    if not cond:
        detail = f"\nexit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}" if proc else ""
        raise AssertionError(what + detail)


def run_case(w: World, cloud: str, point: str, action: str) -> dict:
    """One case; raises AssertionError saying what went wrong. Returns what it saw."""
    cluster = f"{cloud}-{point.replace('.', '-')}-{action}"
    task = w.root / f"{cluster}.yaml"
    task.write_text(LOCAL_TASK if cloud == "local" else SIM_TASK)
    sc = w.root / f"{cluster}.scenario.yaml"
    sc.write_text(SCENARIO.format(case=cluster))
    # --fresh: the cases share a backend, so the capacity memory would rank zone a last after the first case.
    apply = ("apply", str(task), "--yes", "--json", "--detach", "--fresh", "-c", cluster, "--simulate", str(sc))
    seen: dict = {"cluster": cluster}
    spec = f"{point}:{action}"

    # Preparation: recovery points need something to recover; down's and a converging
    # apply's, a cluster that is up (then the task changes).
    changed = next((text for head, text in CHANGED.items() if point.startswith(head)), None)
    if point.startswith("recover."):
        p = w.run(*apply, failpoints="attempt.after-record-up:kill")
        _check(p.returncode == -9, "preparing: apply killed after its attempt was recorded up", p)
        _check(len(w.stacks(cluster)) == 1, f"preparing: one stack left for the recovery: {w.stacks(cluster)}")
    if point.startswith("down.") or changed:
        p = w.run(*apply)
        _check(p.returncode == 0, "preparing: apply", p)
    if changed:
        task.write_text(changed)

    # The crash.
    crash = w.run(*(("down", cluster, "--yes") if point.startswith("down.") else apply), failpoints=spec)
    seen["crash_exit"] = crash.returncode
    if point == "provider.created":
        # The provider process dies, not skyplan: every attempt fails, nothing may leak.
        _check(any(h.endswith(f" {point} {action}") for h in w.hits()), f"the failpoint {spec} was not hit", crash)
        _check(crash.returncode == 4, "a provider killed mid-create fails the attempt (exit 4)", crash)
        _check(w.live(cluster) == [] and w.sandboxes(cluster) == [],
               f"what the dead provider made is removed: {w.live(cluster)} {w.sandboxes(cluster)}")
    else:
        _check(f"{crash.pid} {point} {action}" in w.hits(), f"the failpoint {spec} was not hit by the run", crash)
        _check(crash.returncode == (-9 if action == "kill" else 130), f"crash exit for {action}", crash)
    row = w.row(cluster)
    if point.startswith("down."):
        _check(row is not None and row.status == "DOWN", f"a down cut short shows DOWN: {row and row.status}")
        again = w.run("down", cluster, "--yes")
        _check(again.returncode == 0, "down after a crashed down", again)
        _check(w.backend_files(cluster) == [] and w.live(cluster) == [] and w.row(cluster) is None,
               f"nothing left after the second down: {w.backend_files(cluster)} {w.live(cluster)}")
    elif changed:
        _check(row is not None and row.stack in w.stacks(cluster),
               f"a converging apply cut short names a stack that exists: {row and row.stack} {w.stacks(cluster)}")
    else:
        _check(row is None or row.status != "UP", f"a crashed launch is never shown UP: {row and row.status}")

    # The re-run.
    rerun = w.run(*apply)
    _check(rerun.returncode == 0, "re-run apply", rerun)
    summary = [json.loads(ln) for ln in rerun.stdout.splitlines() if ln.startswith("{")][-1]
    _check(summary["status"] == "UP", f"re-run summary: {summary}")
    stack = summary["stack"]
    row = w.row(cluster)
    _check(row is not None and row.status == "UP" and row.stack == stack, f"status after the re-run: {row}")
    _check(w.stacks(cluster) == {stack}, f"exactly the cluster's stack on the backend: {w.stacks(cluster)}")
    if cloud == "sim":
        live = w.live(cluster)
        _check(len(live) == 1 and live[0]["stack"] == stack, f"exactly one live sim resource, its stack's: {live}")
    _check(w.sandboxes(cluster) == [stack], f"exactly the stack's sandbox: {w.sandboxes(cluster)}")

    # Down.
    down = w.run("down", cluster, "--yes", "--json")
    _check(down.returncode == 0, "down", down)
    _check(w.backend_files(cluster) == [], f"the backend holds nothing of the cluster: {w.backend_files(cluster)}")
    _check(w.live(cluster) == [], f"no live sim resource: {w.live(cluster)}")
    _check(w.sandboxes(cluster) == [], f"no sandbox: {w.sandboxes(cluster)}")
    _check(w.row(cluster) is None, "status no longer lists the cluster")
    _check(not (w.home / "locks" / f"{cluster}.lock").exists(), "the cluster's lock file is gone")
    seen["rerun_stack"] = stack
    return seen


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory) -> World:  # noqa: ANN001
    from skyplan import errors
    from skyplan.provision import engine as engine_mod

    try:
        engine_mod.find_engine()
    except errors.EngineError as exc:
        if os.environ.get("SKYPLAN_REQUIRE_ENGINE") == "1":
            pytest.fail(f"SKYPLAN_REQUIRE_ENGINE=1 but the engine is missing: {exc.message}")
        pytest.skip(f"pulumi engine not installed ({exc.message})")
    root = tmp_path_factory.mktemp("failpoints")
    home, backend = root / "home", root / "backend"
    backend.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "SKYPLAN_SIMULATE",
                        "SKYPLAN_CATALOG", "SKYPLAN_FAILPOINTS")}
    env.update(SKYPLAN_HOME=str(home), SKYPLAN_BACKEND=f"file://{backend}", SKYPLAN_ENGINE_DIR=str(REAL_ENGINE_DIR),
               PULUMI_CONFIG_PASSPHRASE="skyplan-failpoint-matrix")
    w = World(root, home, backend, env)
    wanted = [item.callspec.params["case"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_crash_then_rerun_and_down_leave_nothing"
              and hasattr(item, "callspec")]
    started = time.monotonic()

    def one(case: tuple[str, str, str]) -> None:
        try:
            w.results[case_id(case)] = run_case(w, *case)
        except BaseException as exc:  # noqa: BLE001 - each test reports its own case
            w.results[case_id(case)] = exc

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, wanted))
    w.seconds = time.monotonic() - started
    sys.stderr.write(f"\nfailpoint matrix: {len(wanted)} cases in {w.seconds:.0f}s ({WORKERS} at a time)\n")
    return w


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_crash_then_rerun_and_down_leave_nothing(matrix: World, case) -> None:  # noqa: ANN001
    result = matrix.results[case_id(case)]
    if isinstance(result, BaseException):
        raise result


def test_every_failpoint_is_in_the_matrix() -> None:
    assert {p for _, p, _ in CASES} == set(failpoints.NAMES)


def test_after_the_matrix_nothing_is_left_anywhere(matrix: World) -> None:
    status = matrix.run("status", "--json")
    assert status.returncode == 0 and _items(json.loads(status.stdout), "clusters") == []
    sim = matrix.run("sim", "ledger", "--json")
    assert sim.returncode == 0 and _items(json.loads(sim.stdout), "resources") == []
    base = matrix.backend / ".pulumi"
    for sub in ("stacks/skyplan", "history/skyplan", "locks/organization/skyplan"):
        d = base / sub
        assert not d.is_dir() or os.listdir(d) == [], f"{sub}: {os.listdir(d)}"


def _items(doc, key: str) -> list:  # noqa: ANN001
    """A listing command's items, whether it prints a bare list or a document with ``key``."""
    return doc if isinstance(doc, list) else doc[key]
