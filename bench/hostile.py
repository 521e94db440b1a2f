"""Benchmark: every case of the hostile-input corpus through the real console script.

    .venv/bin/python bench/hostile.py [--json] [--keep]

Builds the corpus (``skyplan.testing.hostile``: the committed files under
tests/fixtures/hostile/ plus 10 MB files, a FIFO, a directory, /dev/zero,
/dev/urandom, files just within the size limits, and edited plan files) in a
scratch directory, runs each case with the command that reads its kind (task:
validate and plan; scenario: apply --simulate; plan: apply), each as a new
process under a fresh SKYPLAN_HOME, and prints per case the exit code, the
wall time and the peak RSS (the child's own, from wait4), then the worst case
of each. Targets (issue 8): every case exits 2, in under 2 s, under 200 MB.
Exits 1 if a case misses the exit code or the RSS target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyplan.testing import hostile  # noqa: E402

TARGET_S = 2.0
TARGET_RSS = 200 * 1_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (its path is printed)")
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="skyplan-hostile-"))
    try:
        cases = hostile.build_corpus(ROOT / "tests" / "fixtures" / "hostile", scratch / "corpus", ROOT)
        runs = []
        for i, case in enumerate(cases):
            for argv in hostile.commands(case, ROOT):
                home = scratch / "homes" / str(len(runs))
                runs.append(hostile.run(case, argv, home, cwd=scratch))
    finally:
        if args.keep:
            print(f"scratch kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    bad = [r for r in runs if r.returncode != 2 or r.max_rss_bytes >= TARGET_RSS or r.timed_out]
    slow = max(runs, key=lambda r: r.seconds)
    fat = max(runs, key=lambda r: r.max_rss_bytes)
    if args.json:
        print(json.dumps({
            "cases": len(cases), "runs": len(runs),
            "worst_seconds": {"case": slow.case.name, "command": slow.args[0], "seconds": round(slow.seconds, 3)},
            "worst_rss_mb": {"case": fat.case.name, "command": fat.args[0], "mb": round(fat.max_rss_bytes / 1e6, 1)},
            "failures": [{"case": r.case.name, "command": r.args[0], "exit": r.returncode} for r in bad],
            "results": [{"case": r.case.name, "command": r.args[0], "exit": r.returncode,
                         "seconds": round(r.seconds, 3), "rss_mb": round(r.max_rss_bytes / 1e6, 1)} for r in runs],
        }, indent=2))
    else:
        print(f"{'case':<52} {'command':<9} {'exit':>4} {'time':>8} {'peak RSS':>10}")
        for r in runs:
            flag = "" if r.returncode == 2 and r.max_rss_bytes < TARGET_RSS else "   <-- MISSED"
            print(f"{r.case.name:<52} {r.args[0]:<9} {r.returncode:>4} {r.seconds * 1000:6.0f} ms "
                  f"{r.max_rss_bytes / 1e6:7.1f} MB{flag}")
        print(f"\n{len(cases)} cases, {len(runs)} runs; every run exit 2: {'yes' if not bad else 'NO'}")
        print(f"worst time: {slow.seconds * 1000:.0f} ms ({slow.case.name}, {slow.args[0]}); "
              f"target < {TARGET_S * 1000:.0f} ms: {'ok' if slow.seconds < TARGET_S else 'MISSED'}")
        print(f"worst peak RSS: {fat.max_rss_bytes / 1e6:.1f} MB ({fat.case.name}, {fat.args[0]}); "
              f"target < {TARGET_RSS / 1e6:.0f} MB: {'ok' if fat.max_rss_bytes < TARGET_RSS else 'MISSED'}")
    if bad:
        for r in bad:
            print(f"FAILED {r.case.name} {' '.join(r.args)}: exit {r.returncode}\n{r.stderr[-2000:]}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
