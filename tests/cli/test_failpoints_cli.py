"""The failpoint contract at the console: `skyplan debug failpoints --json`, a bad
SKYPLAN_FAILPOINTS refused at start-up, and `gc` refusing without a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from skyplan import failpoints
from skyplan.cli.main import app

runner = CliRunner()


def test_debug_failpoints_json_lists_every_name_in_launch_order():
    r = runner.invoke(app, ["debug", "failpoints", "--json"])
    assert r.exit_code == 0, r.output
    names = json.loads(r.stdout)
    assert names == list(failpoints.NAMES) and all(isinstance(n, str) for n in names)
    # A launch recovers, then attempts (journal, up, record), then down runs.
    order = [names.index(n) for n in ("recover.before-destroy", "attempt.after-journal", "attempt.up.creating",
                                      "attempt.after-up", "attempt.after-record-up", "down.before-destroy",
                                      "down.before-forget")]
    assert order == sorted(order)


def test_debug_is_hidden_from_help():
    r = runner.invoke(app, ["--help"])
    assert "gc" in r.stdout and "debug" not in r.stdout


def test_a_misspelt_failpoint_is_refused_before_anything_runs(tmp_path):
    env = {**os.environ, "SKYPLAN_FAILPOINTS": "attempt.after-upp:kill", "SKYPLAN_HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "skyplan", "status"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "not a failpoint" in p.stderr


def test_gc_without_yes_and_without_a_terminal_refuses_like_apply():
    r = runner.invoke(app, ["gc"])
    assert r.exit_code == 2 and "--yes" in r.stderr and "--dry-run" in r.stderr
    r = runner.invoke(app, ["gc", "--json"])
    err = json.loads(r.stdout)["error"]  # {"code": ...} (one error object), or the class name before it
    assert r.exit_code == 2 and (err["code"] if isinstance(err, dict) else err) == "UsageError"
