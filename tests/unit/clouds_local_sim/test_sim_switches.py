"""Scenario switches: a rule with ``switch: NAME`` matches only while NAME is on;
``switches:`` starts them; ``skyplan sim switch NAME on|off`` flips one for every
provider process (kept in the sim ledger)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds.sim import ledger, scenario
from skyplan.clouds.sim.scenario import ScenarioError

SPOT_OUT = """\
switches: {spot-out: on, zone-a-down: off}
rules:
  - {use_spot: true, outcome: capacity, switch: spot-out}
  - {zone: us-central1-a, outcome: quota, switch: zone-a-down}
"""


def place(use_spot: bool, zone: str = "us-central1-b") -> dict:
    return {"cloud": "gcp", "region": "us-central1", "zone": zone, "instance_type": "n2-standard-2",
            "use_spot": use_spot}


def test_a_rule_matches_only_while_its_switch_is_on(home) -> None:
    s = scenario.parse(SPOT_OUT, "s.yaml")
    assert s.switches == (("spot-out", True), ("zone-a-down", False))
    assert scenario.decide(s, place(True)).outcome == "capacity"  # on from the start
    assert scenario.decide(s, place(False, "us-central1-a")).outcome == "ok"  # zone-a-down starts off
    assert ledger.set_switch(None, "spot-out", False) is None  # never set before: the file's value held
    assert scenario.decide(s, place(True)).outcome == "ok"  # spot is back
    assert ledger.set_switch(None, "zone-a-down", True) is None
    assert scenario.decide(s, place(True, "us-central1-a")).outcome == "quota"
    assert ledger.set_switch(None, "spot-out", True) is False
    assert scenario.decide(s, place(True)).outcome == "capacity"


_CHILD = """
import sys
from skyplan.clouds.sim import scenario
s = scenario.load(sys.argv[1])
print(scenario.decide(s, {"cloud": "gcp", "zone": "z", "use_spot": True}, db=sys.argv[2]).outcome)
"""


def test_every_provider_process_sees_a_switch(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPOT_OUT)
    db = tmp_path / "ledger.db"

    def child() -> str:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(db)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert child() == "capacity"
    ledger.set_switch(db, "spot-out", False)
    assert child() == "ok"


@pytest.mark.parametrize("text, path, words", [
    ("switches: {a: maybe}\n", "$.switches.a", "on or off"),
    ("switches: [a]\n", "$.switches", "mapping"),
    ("switches: {'bad name': on}\n", "$.switches.bad name", "switch name"),
    ("switches: {spot-out: off}\nrules: [{outcome: capacity, switch: spot-ot}]\n", "$.rules[0].switch",
     "not declared"),
    ("rules: [{outcome: capacity, switch: ''}]\n", "$.rules[0].switch", "non-empty"),
])
def test_bad_switches_are_reported(text: str, path: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario.parse(text, "s.yaml")
    d = info.value.diagnostics[0]
    assert d.path == path and words in d.message
    if "not declared" in words:
        assert d.suggestion == "spot-out"


def test_quoted_on_and_off_are_switch_values_too() -> None:
    assert scenario.parse("switches: {a: 'on', b: 'off'}\n").switches == (("a", True), ("b", False))


def test_sim_switch_cli(home) -> None:
    from typer.testing import CliRunner

    from skyplan.cli.main import app

    r = CliRunner().invoke(app, ["sim", "switch", "spot-out", "off", "--json"])
    assert r.exit_code == 0, r.output
    assert {k: v for k, v in json.loads(r.stdout).items() if k != "schema_version"} == {
        "switch": "spot-out", "on": False, "was": None}
    assert ledger.switch(None, "spot-out") is False
    r = CliRunner().invoke(app, ["sim", "switch", "spot-out", "on"])
    assert r.exit_code == 0 and "Switch 'spot-out' is on (was off)." in r.stdout
    r = CliRunner().invoke(app, ["sim", "switch", "spot-out", "maybe"])
    assert r.exit_code == 2 and "'on' or 'off'" in r.output
    r = CliRunner().invoke(app, ["sim", "switch", "a b", "on", "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["code"] == "UsageError"
