"""`skyplan plan --json` imports only what planning needs.

Start-up time is mostly import time (bench/plan.py prints it). Tests never assert times,
so these assert the cause instead: the heavy packages a plan has no use for stay out of
the process. pydantic came in with typer 0.29 (pyproject keeps typer below it); rich is
for the human views only; jsonschema only explains an invalid file; pulumi is the
engine's, which a plan never starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_THE_JSON_PLAN_PATH = ("pydantic", "rich", "jsonschema", "pulumi")

# Runs the CLI's entry point as the console script does, then writes the names of the
# modules the process imported to the file named by argv[1].
PROBE = """
import atexit, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = ["skyplan", *sys.argv[2:]]
from skyplan.cli.main import run
run()
"""


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.txt"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {name.split(".")[0] for name in out.read_text().split()}


def test_json_plan_imports_none_of_the_heavy_packages(tmp_path):
    top_level = imported_by(tmp_path, "plan", "examples/gpu-set.yaml", "--json")
    assert "skyplan" in top_level and "typer" in top_level  # the probe really ran the CLI
    assert sorted(top_level & set(NOT_ON_THE_JSON_PLAN_PATH)) == []
