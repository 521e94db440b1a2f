"""Failover-hop overhead against a bare Pulumi round trip, measured in one run.

    .venv/bin/python bench/failover.py [--runs N] [--json]

(Any python works: the script re-runs itself with the repo's .venv interpreter.)

Both sides use the real engine on the same fresh file:// backend, one dynamic
resource, the same CLI environment:

* bare: the stock Automation API, ``Stack.up()`` then ``Stack.destroy()`` of a
  stack created beforehand (creating and removing it are not timed);
* hop: what failover pays per failed placement, through StackDriver: ``up``
  whose create raises a capacity error, then ``destroy_and_remove`` (destroy,
  verify nothing is left, remove the stack). Stack creation is included.

Prints medians, the ratio (target: hop <= 1.3x bare), the cost of one CLI call
and of the fork each stack operation runs in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
TARGET = 1.3
CAPACITY_TEXT = (
    "ZONE_RESOURCE_POOL_EXHAUSTED: The zone 'projects/bench/zones/us-central1-a' does not have enough "
    "resources available to fulfill the request.  Try a different zone, or try again later."
)


def _reexec_in_venv() -> None:
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


def _ok_program() -> None:
    import pulumi

    from skyplan.testing.providers import scripted_resource

    pulumi.export("rid", scripted_resource("r").id)


def _failing_program() -> None:
    from skyplan.testing.providers import scripted_resource

    scripted_resource("r", fail=CAPACITY_TEXT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per side (after one warm-up)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()

    from skyplan import home

    os.environ["SKYPLAN_ENGINE_DIR"] = str(home.engine_dir())  # the real engine, before moving the home
    scratch = Path(tempfile.mkdtemp(prefix="skyplan-bench-"))
    os.environ["SKYPLAN_HOME"] = str(scratch / "home")
    os.environ["PULUMI_CONFIG_PASSPHRASE"] = "bench"
    os.environ.pop("SKYPLAN_BACKEND", None)

    from pulumi import automation as auto

    from skyplan.provision import forked
    from skyplan.provision.driver import StackDriver

    driver = StackDriver(f"file://{scratch / 'backend'}")
    engine = driver.engine

    # The stock Automation API on the same backend and CLI environment.
    bare_dir = scratch / "bare-work"
    bare_dir.mkdir()
    workspace = auto.LocalWorkspace(
        work_dir=str(bare_dir),
        program=_ok_program,
        env_vars=dict(driver.env),
        project_settings=auto.ProjectSettings(name="skyplan", runtime="python"),
        pulumi_command=auto.PulumiCommand(root=str(engine.bin_dir.parent)),
    )

    def bare_round_trip(i: int) -> float:
        stack = auto.Stack.create(f"bare-{i}", workspace)
        try:
            t0 = time.perf_counter()
            result = stack.up()
            stack.destroy()
            took = time.perf_counter() - t0
            assert result.outputs["rid"].value, "the bare up produced no resource"
            return took
        finally:
            workspace.remove_stack(stack.name)

    def hop(i: int) -> float:
        stack = f"bench.a{i:03d}.gcp.us-central1-a.n1-standard-4.od"
        t0 = time.perf_counter()
        res = driver.up(stack, _failing_program, timeout_s=120)
        driver.destroy_and_remove(stack)
        took = time.perf_counter() - t0
        assert not res.ok and res.error == CAPACITY_TEXT, res
        return took

    def success_round_trip(i: int) -> float:
        stack = f"bench.s{i:03d}"
        t0 = time.perf_counter()
        res = driver.up(stack, _ok_program, timeout_s=120)
        driver.destroy_and_remove(stack)
        took = time.perf_counter() - t0
        assert res.ok, res.error
        return took

    def cli_call() -> float:
        t0 = time.perf_counter()
        workspace.list_stacks()
        return time.perf_counter() - t0

    def fork_cost() -> float:
        t0 = time.perf_counter()
        for _ in range(20):
            forked.run(lambda emit: None, timeout_s=30, grace_s=1.0)
        return (time.perf_counter() - t0) / 20

    bare_round_trip(-1)
    hop(999)
    bare, hops, success = [], [], []
    for i in range(args.runs):  # interleaved, so that drift hits both sides alike
        bare.append(bare_round_trip(i))
        hops.append(hop(i))
        success.append(success_round_trip(i))
    cli = statistics.median(cli_call() for _ in range(7))
    fork = statistics.median(fork_cost() for _ in range(3))
    leftover = driver.list_stacks() + [s.name for s in workspace.list_stacks()]
    shutil.rmtree(scratch, ignore_errors=True)

    fig = {
        "pulumi_version": engine.version,
        "runs": args.runs,
        "cli_call_s": round(cli, 3),
        "fork_s": round(fork, 4),
        "bare_up_destroy_s": round(statistics.median(bare), 3),
        "skyplan_up_destroy_s": round(statistics.median(success), 3),
        "hop_s": round(statistics.median(hops), 3),
        "ratio": round(statistics.median(hops) / statistics.median(bare), 3),
        "target_ratio": TARGET,
        "stacks_left": leftover,
    }
    fig["pass"] = fig["ratio"] <= TARGET and not leftover
    if args.json:
        print(json.dumps(fig))
    else:
        print(f"skyplan failover bench: pulumi v{engine.version}, file:// backend, median of {args.runs} runs")
        print(f"  one pulumi CLI call (stack ls)        {cli:6.3f} s")
        print(f"  fork per stack operation              {fork * 1000:6.1f} ms")
        print(f"  bare Automation API up + destroy      {fig['bare_up_destroy_s']:6.3f} s")
        print(f"  skyplan up + destroy_and_remove       {fig['skyplan_up_destroy_s']:6.3f} s   (success, for reference)")
        print(f"  failover hop (failed up + cleanup)    {fig['hop_s']:6.3f} s")
        verdict = "ok" if fig["pass"] else "OVER TARGET" if fig["ratio"] > TARGET else "STACKS LEFT"
        print(f"  hop / bare                            {fig['ratio']:6.2f} x   (target <= {TARGET}x: {verdict})")
        if leftover:
            print(f"  stacks left on the backend: {leftover}")
    return 0 if fig["pass"] else 1


if __name__ == "__main__":
    _reexec_in_venv()
    sys.exit(main())
