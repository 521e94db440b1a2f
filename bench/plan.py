"""Benchmark: cold `skyplan plan --json` on the embedded and a full-size catalog.

Prints medians over several runs, each as a ratio to a bare `python -c pass`
measured in the same run (these machines are noisy), and the peak RSS.
Run with the venv's own interpreter:  .venv/bin/python bench/plan.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TASK = ROOT / "examples" / "gpu-set.yaml"


def run_once(argv: list[str], env: dict) -> tuple[float, int]:
    """Wall time (s) and peak RSS (KiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_maxrss


def measure(argv: list[str], env: dict, runs: int) -> tuple[float, int]:
    run_once(argv, env)  # warm the page cache; cold means a new process, not a cold disk
    samples = [run_once(argv, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--scale", type=int, default=None, help="region replication factor for the full-size catalog")
    args = ap.parse_args()

    env = dict(os.environ)
    env.pop("SKYPLAN_CATALOG", None)
    env["SKYPLAN_HOME"] = str(ROOT / ".bench" / "home")
    full = ROOT / ".bench" / "catalog-full.json"
    full.parent.mkdir(parents=True, exist_ok=True)
    build = [PY, "-m", "skyplan.catalog.build", "--out", str(full)]
    if args.scale:
        build += ["--scale", str(args.scale)]
    else:
        build += ["--scale", "auto"]
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL, env=env)

    bare, bare_rss = measure([PY, "-c", "pass"], env, args.runs)
    plan = [PY, "-m", "skyplan", "plan", str(TASK), "--json"]
    emb, emb_rss = measure(plan, env, args.runs)
    full_env = dict(env, SKYPLAN_CATALOG=str(full))
    big, big_rss = measure(plan, full_env, args.runs)
    count = subprocess.run([PY, "-c", "from skyplan.catalog import load_catalog; import sys;"
                            f"c=load_catalog({str(full)!r}); print(len(c.offers()), len(load_catalog(None).offers()))"],
                           capture_output=True, text=True, env=env, check=True).stdout.split()

    print(f"python: {PY}")
    print(f"task: {TASK.relative_to(ROOT)}  runs: {args.runs} (median)")
    print(f"bare `python -c pass`        {bare*1000:7.1f} ms   peak RSS {bare_rss/1024:6.1f} MiB")
    print(f"plan, embedded ({count[1]:>6} offers) {emb*1000:7.1f} ms   {emb/bare:5.1f}x bare   peak RSS {emb_rss/1024:6.1f} MiB   target < 350 ms")
    print(f"plan, full-size ({count[0]:>6} offers) {big*1000:6.1f} ms   {big/bare:5.1f}x bare   peak RSS {big_rss/1024:6.1f} MiB   target < 500 ms")
    print(f"full-size / embedded: {big/emb:.2f}x")


if __name__ == "__main__":
    main()
