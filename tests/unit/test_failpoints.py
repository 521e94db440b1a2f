"""The failpoint module: parsing, actions, and that every name is used exactly where it says."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan import failpoints

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _off(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    yield
    failpoints.configure(None)


def test_parse_accepts_names_and_actions_and_reports_the_rest():
    active, problems = failpoints.parse("attempt.after-up:kill, down.before-forget:term,recover.before-destroy:raise")
    assert active == {"attempt.after-up": "kill", "down.before-forget": "term", "recover.before-destroy": "raise"}
    assert problems == []
    _, problems = failpoints.parse("attempt.after-up:explode,nope:kill,attempt.after-up")
    assert len(problems) == 3 and "not a failpoint" in problems[1]


def test_off_by_default_and_hit_does_nothing():
    assert not failpoints.ACTIVE
    for name in failpoints.NAMES:
        failpoints.hit(name)


def test_raise_records_the_hit_then_raises():
    failpoints.configure("attempt.after-up:raise")
    failpoints.hit("attempt.after-journal")  # another point: nothing
    with pytest.raises(failpoints.FailpointError, match="attempt.after-up"):
        failpoints.hit("attempt.after-up")
    log = Path(os.environ["SKYPLAN_HOME"]) / "logs" / "failpoints.log"
    assert log.read_text() == f"{os.getpid()} attempt.after-up raise\n"


def test_configure_refuses_unknown_names():
    with pytest.raises(ValueError):
        failpoints.configure("no.such.point:kill")


@pytest.mark.parametrize("action,sig", [("kill", signal.SIGKILL), ("term", signal.SIGTERM)])
def test_kill_and_term_signal_the_process_itself(action, sig, tmp_path):
    code = "from skyplan import failpoints; failpoints.hit('attempt.after-up'); print('survived')"
    env = {**os.environ, "SKYPLAN_FAILPOINTS": f"attempt.after-up:{action}", "SKYPLAN_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -sig and "survived" not in proc.stdout


def test_every_name_is_hit_somewhere_and_every_hit_is_a_name():
    hits = set()
    for path in list((ROOT / "skyplan").rglob("*.py")):
        hits |= set(re.findall(r'failpoints\.hit\("([^"]+)"\)', path.read_text()))
        hits |= set(re.findall(r'point="([^"]+)"', path.read_text()))
    assert hits == set(failpoints.NAMES)
    assert len(set(failpoints.NAMES)) == len(failpoints.NAMES)
