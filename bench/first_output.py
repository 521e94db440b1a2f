"""Time from `skyplan apply` to the task's first output line: the ssh cloud on the
sshd fixture (this machine over loopback) against `local`, on the same task.

    .venv/bin/python bench/first_output.py [--runs N] [--json]

Each run is the console script in a fresh process (`apply TASK --yes`), timed from
its start to the first line of stdout (the task's `echo`); `down` follows, untimed.
Runs alternate between the two clouds, each with its own skyplan home. The ssh
pool states its hardware, so no probe is timed (a probe is one SSH round trip per
host, cached for a day). Prints medians and the load average beside them.
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

TASK = "name: first\nresources: {{cloud: {cloud}{region}, cpus: 1+}}\nworkdir: .\nrun: echo first-line\n"


def first_line_s(home: Path, task: Path) -> float:
    env = {**os.environ, "SKYPLAN_HOME": str(home)}
    start = time.monotonic()
    proc = subprocess.Popen([str(SKYPLAN), "apply", str(task), "--yes"], cwd=task.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    took = time.monotonic() - start
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0 or "first-line" not in line:
        raise SystemExit(f"apply failed ({proc.returncode}): {line}{out}{err}")
    subprocess.run([str(SKYPLAN), "down", "first", "--yes"], env=env, capture_output=True, check=True, timeout=600)
    return took


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from skyplan.testing.sshd import Sshd

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sshd = Sshd.start(t / "sshd")
        try:
            homes = {c: t / f"home-{c}" for c in ("local", "ssh")}
            tasks = {}
            for cloud, home in homes.items():
                home.mkdir()
                (home / "tasks").mkdir()
                task = home / "tasks" / "first.yaml"
                task.write_text(TASK.format(cloud=cloud, region=", region: try" if cloud == "ssh" else ""))
                tasks[cloud] = task
            sshd.write_config(homes["ssh"] / "config.yaml")
            cfg = homes["ssh"] / "config.yaml"
            cfg.write_text(cfg.read_text().replace("    try:\n", "    try:\n      cpus: 2\n      memory_gib: 2\n"
                                                   "      accelerators: none\n"))
            times: dict[str, list[float]] = {"local": [], "ssh": []}
            for _ in range(args.runs):
                for cloud in ("local", "ssh"):
                    times[cloud].append(first_line_s(homes[cloud], tasks[cloud]))
        finally:
            sshd.stop()
    med = {c: statistics.median(v) for c, v in times.items()}
    result = {"runs": args.runs, "median_s": med, "all_s": times, "ratio_ssh_local": med["ssh"] / med["local"],
              "loadavg": os.getloadavg()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"apply -> first output line, median of {args.runs} (load average {os.getloadavg()[0]:.1f}):")
        for c in ("local", "ssh"):
            print(f"  {c:6} {med[c]:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in times[c])})")
        print(f"  ssh / local: {result['ratio_ssh_local']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
