"""Randomized fault campaign: seeded sim scenarios, applies killed at random, then counted.

    .venv/bin/python bench/campaign.py [--scenarios 500] [--seed 11] [--workers 3] [--json]

(Any python works: the script re-runs itself with the repo's .venv interpreter.)

Each scenario is a random sim scenario (per candidate: ok, capacity, quota, auth,
invalid, transient, a little latency) over a task whose candidates span two clouds,
run through the real console script (`skyplan apply`, the real engine, one shared
file:// backend and home, the sim cloud). Most runs are disturbed:

* a `kill -9` or a SIGTERM at a random moment of the apply;
* a failpoint (`SKYPLAN_FAILPOINTS`, kill or term) picked at random from the
  launch's points;
* a `down` killed at a random moment or failpoint, after an apply that came up.

After a disturbed run the apply is run again (undisturbed), then `down`. Counted:

* leaks: live sim resources of the scenario's cluster after the final `down`, and,
  after an apply that reports UP, live resources other than that stack's;
* orphan stacks: stacks of the cluster left on the backend after the final `down`;
* inconsistent states: `status` disagreeing with the world (a cluster UP whose stack
  is not on the backend, or not UP after an apply that said UP, or still listed after
  a `down` that exited 0), or a `down` that did not exit 0.

Not in CI (500 scenarios take about half an hour on two cores); the README quotes
its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
TASK = """name: campaign
resources:
  accelerators: V100:1
  any_of:
    - {cloud: gcp, region: us-central1, instance_type: n1-standard-8}
    - {cloud: aws, region: us-east-1, instance_type: p3.2xlarge}
run: 'true'
"""
ZONES = {"gcp": ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"],
         "aws": ["use1-az1", "use1-az2", "use1-az4", "use1-az5", "use1-az6"]}
OUTCOMES = (("ok", 25), ("capacity", 40), ("quota", 10), ("auth", 5), ("invalid", 3), ("transient", 17))
# How a run is disturbed, with weights.
DISTURB = (("none", 20), ("kill-at-random", 25), ("term-at-random", 15), ("failpoint", 25), ("down-killed", 15))


def _reexec_in_venv() -> None:
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


def _pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def scenario_text(rng: random.Random, i: int) -> str:
    rules = []
    for cloud, zones in ZONES.items():
        for z in zones:
            outcome = _pick(rng, OUTCOMES)
            rule = f"  - {{cloud: {cloud}, zone: {z}, outcome: {outcome}"
            rule += ", times: 1}" if outcome == "transient" else "}"
            rules.append(rule)
    latency = rng.choice([0, 0, 0, 0.2, 0.5])
    return (f"# campaign scenario {i}\ndefault: {rng.choice(['ok', 'capacity'])}\nlatency_s: {latency}\n"
            "rules:\n" + "\n".join(rules) + "\n")


class Campaign:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.backend = root / "backend"
        self.backend.mkdir(parents=True)
        self.home.mkdir(mode=0o700)
        self.task = root / "task.yaml"
        self.task.write_text(TASK)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SKYPLAN_", "PULUMI_HOME", "PULUMI_BACKEND"))}
        from skyplan import home

        self.env.update(SKYPLAN_HOME=str(self.home), SKYPLAN_BACKEND=f"file://{self.backend}",
                        SKYPLAN_ENGINE_DIR=str(home.engine_dir()), PULUMI_CONFIG_PASSPHRASE="campaign")
        self.lock = threading.Lock()
        self.figures = {"scenarios": 0, "disturbed": 0, "kills": 0, "terms": 0, "failpoints": 0, "down_kills": 0,
                        "attempts": 0, "up": 0, "failed": 0, "leaks": 0, "orphan_stacks": 0,
                        "inconsistent_states": 0, "down_failures": 0}
        self.problems: list[str] = []

    # --- the world ---------------------------------------------------------------------

    def stacks(self, cluster: str) -> set[str]:
        from skyplan.provision.names import cluster_stack_prefix

        d = self.backend / ".pulumi" / "stacks" / "skyplan"
        p = cluster_stack_prefix(cluster)
        return {n[:-5] for n in os.listdir(d) if n.startswith(p) and n.endswith(".json")} if d.is_dir() else set()

    def live(self, cluster: str) -> list[dict]:
        from skyplan.clouds.sim import ledger

        return [r for r in ledger.all_resources(self.home / "sim" / "ledger.db")
                if r["cluster"] == cluster and r["state"] != ledger.DELETED]

    def row(self, cluster: str):  # noqa: ANN201
        from skyplan.state import StateDB

        db = StateDB(self.home / "state.db")
        try:
            return db.get_cluster(cluster)
        finally:
            db.close()

    # --- running -----------------------------------------------------------------------

    def run(self, args: list[str], *, failpoints: str | None = None, kill_after: float | None = None,
            sig: int = signal.SIGKILL) -> tuple[int, str, bool]:
        """Run the console script; with ``kill_after``, send ``sig`` then if it still runs.
        Returns (exit code, stdout, whether the signal was sent)."""
        env = dict(self.env)
        if failpoints:
            env["SKYPLAN_FAILPOINTS"] = failpoints
        proc = subprocess.Popen([sys.executable, "-m", "skyplan", *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            out, _ = proc.communicate(timeout=kill_after)
            sent = False
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            sent = True
            out, _ = proc.communicate(timeout=300)
        return proc.returncode, out, sent

    def note(self, key: str, n: int = 1, problem: str | None = None) -> None:
        with self.lock:
            self.figures[key] += n
            if problem:
                self.problems.append(problem)

    def check_up(self, cluster: str, code: int, out: str) -> None:
        """After an apply that ran to its end: status and the world agree with what it said."""
        lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
        summary = next((ln for ln in reversed(lines) if ln.get("event") == "summary"), None)
        self.note("attempts", len([ln for ln in lines if ln.get("event") == "attempt"]))
        row = self.row(cluster)
        if code == 0 and summary and summary["status"] == "UP":
            self.note("up")
            stack = summary["stack"]
            live = self.live(cluster)
            extra = [r["stack"] for r in live if r["stack"] != stack]
            if extra:
                self.note("leaks", len(extra), f"{cluster}: live beside the UP stack: {extra}")
            if row is None or row.status != "UP" or row.stack != stack or self.stacks(cluster) != {stack}:
                self.note("inconsistent_states", 1, f"{cluster}: UP on {stack} but status {row and row.status} "
                          f"{row and row.stack}, backend {sorted(self.stacks(cluster))}")
        else:
            self.note("failed")
            if row is not None and row.status == "UP":
                self.note("inconsistent_states", 1, f"{cluster}: apply exited {code} but status says UP")
            if self.live(cluster) or self.stacks(cluster):
                self.note("leaks", len(self.live(cluster)),
                          f"{cluster}: a failed apply left {self.live(cluster)} {sorted(self.stacks(cluster))}")

    def check_after_crash(self, cluster: str) -> None:
        row = self.row(cluster)
        if row is not None and row.status == "UP" and row.stack not in self.stacks(cluster):
            self.note("inconsistent_states", 1, f"{cluster}: status UP on {row.stack}, not on the backend")

    def scenario(self, i: int, rng: random.Random) -> None:
        from skyplan import failpoints

        cluster = f"c{i:04d}"
        sc = self.root / f"scenario-{i:04d}.yaml"
        sc.write_text(scenario_text(rng, i))
        apply = ["apply", str(self.task), "--yes", "--json", "--detach", "-c", cluster, "--simulate", str(sc),
                 "--timeout", "60"]
        how = _pick(rng, DISTURB)
        self.note("scenarios")
        if how == "none":
            code, out, _ = self.run(apply)
            self.check_up(cluster, code, out)
        elif how in ("kill-at-random", "term-at-random"):
            code, out, sent = self.run(apply, kill_after=rng.uniform(0.3, 6.0),
                                       sig=signal.SIGKILL if how.startswith("kill") else signal.SIGTERM)
            if sent:
                self.note("disturbed")
                self.note("kills" if how.startswith("kill") else "terms")
                self.check_after_crash(cluster)
            else:
                self.check_up(cluster, code, out)
        elif how == "failpoint":
            point = rng.choice([p for p in failpoints.NAMES if not p.startswith("down.")])
            code, out, _ = self.run(apply, failpoints=f"{point}:{rng.choice(['kill', 'term'])}")
            if code in (-signal.SIGKILL, 130):
                self.note("disturbed")
                self.note("failpoints")
                self.check_after_crash(cluster)
            else:  # not passed in this run (nothing to recover, no failed attempt), or a provider's
                self.check_up(cluster, code, out)
        else:  # a down disturbed after an apply
            code, out, _ = self.run(apply)
            self.check_up(cluster, code, out)
            self.note("disturbed")
            self.note("down_kills")
            if rng.random() < 0.5:
                self.run(["down", cluster, "--yes"], kill_after=rng.uniform(0.2, 2.5),
                         sig=rng.choice([signal.SIGKILL, signal.SIGTERM]))
            else:
                point = rng.choice([p for p in failpoints.NAMES if p.startswith("down.")])
                self.run(["down", cluster, "--yes"], failpoints=f"{point}:{rng.choice(['kill', 'term'])}")
            self.check_after_crash(cluster)
        if how != "none":
            code, out, _ = self.run(apply)  # the re-run
            self.check_up(cluster, code, out)
        code, out, _ = self.run(["down", cluster, "--yes"])
        if code != 0:
            self.note("down_failures", 1, f"{cluster}: down exited {code}")
            self.note("inconsistent_states", 1)
        left = self.live(cluster)
        if left:
            self.note("leaks", len(left), f"{cluster}: live after down: {left}")
        if self.stacks(cluster):
            self.note("orphan_stacks", len(self.stacks(cluster)), f"{cluster}: stacks after down")
        if code == 0 and self.row(cluster) is not None:
            self.note("inconsistent_states", 1, f"{cluster}: down exited 0, status still lists it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=3, help="scenarios run at once (distinct clusters)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="skyplan-campaign-"))
    c = Campaign(root)
    rngs = [random.Random(f"{args.seed}-{i}") for i in range(args.scenarios)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for fut in [pool.submit(c.scenario, i, rngs[i]) for i in range(args.scenarios)]:
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - a bench reports, it does not stop
                c.note("inconsistent_states", 1, f"scenario crashed: {type(exc).__name__}: {exc}")
    took = time.monotonic() - t0
    left_stacks = sorted(n for n in os.listdir(c.backend / ".pulumi" / "stacks" / "skyplan")) \
        if (c.backend / ".pulumi" / "stacks" / "skyplan").is_dir() else []
    from skyplan.clouds.sim import ledger

    fig = {**c.figures, "seed": args.seed, "workers": args.workers, "seconds": round(took, 1),
           "backend_files_left": len(left_stacks),
           "live_sim_resources_left": ledger.count_live(db=c.home / "sim" / "ledger.db"),
           "engine_log_files": len(os.listdir(c.home / "pulumi-home" / "logs"))
           if (c.home / "pulumi-home" / "logs").is_dir() else 0,
           "problems": c.problems[:20]}
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(fig))
    else:
        print(f"skyplan fault campaign: {fig['scenarios']} scenarios (seed {args.seed}, {args.workers} at a time), "
              f"{took / 60:.1f} min")
        print(f"  disturbed: {fig['disturbed']} ({fig['kills']} kill -9, {fig['terms']} SIGTERM at random moments, "
              f"{fig['failpoints']} launch failpoints, {fig['down_kills']} downs killed)")
        print(f"  attempts {fig['attempts']}, applies up {fig['up']}, failed or cut short {fig['failed']}")
        print(f"  leaked sim resources    {fig['leaks']}")
        print(f"  orphan stacks           {fig['orphan_stacks']}")
        print(f"  inconsistent states     {fig['inconsistent_states']}  (downs not exiting 0: {fig['down_failures']})")
        print(f"  left at the end: {fig['backend_files_left']} backend files, "
              f"{fig['live_sim_resources_left']} live sim resources, {fig['engine_log_files']} engine log files")
        for p in c.problems[:20]:
            print(f"  ! {p}")
    bad = fig["leaks"] + fig["orphan_stacks"] + fig["inconsistent_states"] + fig["backend_files_left"]
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    _reexec_in_venv()
    sys.exit(main())
