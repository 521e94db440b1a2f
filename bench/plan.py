"""Benchmark: cold `skyplan plan --json` on the embedded and a full-size catalog.

Runs the console script a user runs (`.venv/bin/skyplan`, beside this interpreter),
as a new process each time. Prints medians over several runs, each as a ratio to a
bare `python -c pass` measured in the same run (these machines are noisy), the peak
RSS, and where the start-up goes: the top modules by import time (from
`-X importtime` of the same command) and any module compiled from source at start-up
because its .pyc is missing or stale (setup byte-compiles everything, so a non-empty
list means a stale install: re-run ./setup.sh).
Run with the venv's own interpreter:  .venv/bin/python bench/plan.py
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SKYPLAN = Path(PY).parent / "skyplan"
TASK = ROOT / "examples" / "gpu-set.yaml"
TARGET_EMBEDDED_S = 0.25
TARGET_FULL_S = 0.5


def run_once(argv: list[str], env: dict) -> tuple[float, float, int, str]:
    """Wall time (s), CPU time (user + system, s), peak RSS (KiB) and stderr of one child."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read().decode() if proc.stderr else ""  # drained first: -X importtime fills a pipe
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, err


def measure(argv: list[str], env: dict, runs: int) -> tuple[float, float, int]:
    """Median wall and CPU time (s), and the peak RSS (KiB), over `runs` new processes."""
    run_once(argv, env)  # warm the page cache; cold means a new process, not a cold disk
    samples = [run_once(argv, env) for _ in range(runs)]
    med = statistics.median
    return med(s[0] for s in samples), med(s[1] for s in samples), max(s[2] for s in samples)


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)\s*$")


def import_profile(argv: list[str], env: dict, runs: int) -> dict[str, float]:
    """Median self import time (ms) per module over `runs` runs of the command.

    Self times (not cumulative ones, which nest) add up to the whole import cost, so
    they can be summed per package without counting anything twice."""
    env = dict(env, PYTHONPROFILEIMPORTTIME="1")
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        err = run_once(argv, env)[-1]
        selfs: dict[str, float] = defaultdict(float)
        for line in err.splitlines():
            m = _IMPORTTIME.match(line)
            if m:
                selfs[m[3]] += int(m[1]) / 1000
        per_run.append(selfs)
    names = set().union(*per_run)
    return {n: statistics.median(r.get(n, 0.0) for r in per_run) for n in names}


def compiled_at_startup(argv: list[str], env: dict) -> list[str]:
    """Modules the command compiled from source (no usable .pyc), from `python -v`."""
    err = run_once(argv, dict(env, PYTHONVERBOSE="1"))[-1]
    found = re.findall(r"^# code object from '?(.+?\.py)'?$", err, flags=re.M)
    return sorted(set(found))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--top", type=int, default=10, help="modules to list in the import-time breakdown")
    ap.add_argument("--scale", type=int, default=None, help="region replication factor for the full-size catalog")
    args = ap.parse_args()
    if not os.access(SKYPLAN, os.X_OK):
        raise SystemExit(f"no console script at {SKYPLAN}: run ./setup.sh, then this with .venv/bin/python")

    env = dict(os.environ)
    env.pop("SKYPLAN_CATALOG", None)
    env["SKYPLAN_HOME"] = str(ROOT / ".bench" / "home")
    full = ROOT / ".bench" / "catalog-full.json"
    full.parent.mkdir(parents=True, exist_ok=True)
    build = [PY, "-m", "skyplan.catalog.build", "--out", str(full)]
    build += ["--scale", str(args.scale) if args.scale else "auto"]
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL, env=env)

    bare, bare_cpu, bare_rss = measure([PY, "-c", "pass"], env, args.runs)
    plan = [str(SKYPLAN), "plan", str(TASK), "--json"]
    emb, emb_cpu, emb_rss = measure(plan, env, args.runs)
    full_env = dict(env, SKYPLAN_CATALOG=str(full))
    big, big_cpu, big_rss = measure(plan, full_env, args.runs)
    count = subprocess.run([PY, "-c", "from skyplan.catalog import load_catalog;"
                            f"print(len(load_catalog({str(full)!r}).offers()), len(load_catalog(None).offers()))"],
                           capture_output=True, text=True, env=env, check=True).stdout.split()
    profile_runs = min(args.runs, 5)
    selfs = import_profile(plan, env, profile_runs)
    fresh = compiled_at_startup(plan, env)

    def verdict(wall: float, target: float) -> str:
        return f"target < {target * 1000:.0f} ms: {'ok' if wall < target else 'MISSED'}"

    print(f"command: {SKYPLAN} plan {TASK.relative_to(ROOT)} --json   runs: {args.runs} (median)")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(wall times stretch with load; CPU times and ratios much less)")
    print(f"{'':34} {'wall':>9} {'vs bare':>8} {'CPU':>9} {'peak RSS':>10}")
    print(f"{'bare `python -c pass`':34} {bare*1000:6.1f} ms {'':8} {bare_cpu*1000:6.1f} ms {bare_rss/1024:6.1f} MiB")
    for label, wall, cpu, rss, target in (
        (f"plan, embedded  ({count[1]:>6} offers)", emb, emb_cpu, emb_rss, TARGET_EMBEDDED_S),
        (f"plan, full-size ({count[0]:>6} offers)", big, big_cpu, big_rss, TARGET_FULL_S),
    ):
        print(f"{label:34} {wall*1000:6.1f} ms {wall/bare:7.1f}x {cpu*1000:6.1f} ms {rss/1024:6.1f} MiB   "
              f"{verdict(wall, target)}")
    print(f"full-size / embedded: {big/emb:.2f}x")

    packages: dict[str, float] = defaultdict(float)
    for name, ms in selfs.items():
        packages[name.split(".")[0]] += ms
    print(f"\nimport time of the embedded plan (-X importtime, median of {profile_runs}): "
          f"{sum(selfs.values()):.1f} ms in all")
    top_modules = sorted(selfs.items(), key=lambda kv: -kv[1])[: args.top]
    top_packages = sorted(packages.items(), key=lambda kv: -kv[1])[: args.top]
    print(f"  {'top modules (self time)':<44}   {'top packages (self times summed)':<30}")
    for (mod, mod_ms), (pkg, pkg_ms) in zip_longest(top_modules, top_packages, fillvalue=("", 0.0)):
        print(f"  {mod:<36} {mod_ms:6.1f} ms   {pkg:<22} {pkg_ms:6.1f} ms")
    if fresh:
        print(f"\ncompiled from source at start-up ({len(fresh)}; re-run ./setup.sh to byte-compile):")
        for path in fresh[: args.top]:
            print(f"    {path}")
    else:
        print("\nevery module came from its .pyc (nothing compiled at start-up)")


if __name__ == "__main__":
    main()
