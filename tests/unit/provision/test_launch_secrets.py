"""Secrets on the launch path: a launch refuses a task without every secret's
value (and a workdir whose links leave it) before anything exists; the
provision request carries values only in its redacted ``secrets``; the state
database holds names only."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.errors import InputError
from skyplan.planner import make_plan
from skyplan.provision.apply import request_for
from skyplan.provision.launch import LaunchOptions, LaunchRequest, launch
from skyplan.provision.protocol import UpResult
from skyplan.spec import load_text
from skyplan.state import StateDB
from skyplan.testing.fakes import FakeDriver

VALUE = "canary-7f3a9c"
TASK = f"name: sec\nresources: {{cloud: local}}\nsecrets: {{TOKEN: {VALUE}, LATER: null}}\nrun: echo hi\n"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))


def _driver() -> FakeDriver:
    return FakeDriver(lambda s: UpResult(True, outputs={"sandbox": "/nowhere"}))


def test_a_secret_without_a_value_stops_the_launch_before_anything_exists() -> None:
    drv = _driver()
    with pytest.raises(InputError, match="LATER"):
        launch(LaunchRequest(load_text(TASK), options=LaunchOptions(driver=drv)))
    assert drv.calls == [] and StateDB().clusters() == []


def test_a_workdir_link_leaving_it_stops_the_launch_before_anything_exists(tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "creds").symlink_to("/etc/hostname")
    drv = _driver()
    task = load_text(f"name: wd\nresources: {{cloud: local}}\nworkdir: {wd}\nrun: echo hi\n")
    with pytest.raises(InputError, match="'creds' -> '/etc/hostname'"):
        launch(LaunchRequest(task, options=LaunchOptions(driver=drv)))
    assert drv.calls == []


def test_the_request_carries_values_only_in_its_redacted_secrets() -> None:
    task = load_text(TASK.replace("LATER: null", "LATER: later-value"))
    plan = make_plan(task, load_catalog(None))
    req = request_for(plan, plan.chosen, "sec", "sec.a001", None)
    assert dict(req.secrets) == {"LATER": "later-value", "TOKEN": VALUE}
    assert VALUE not in repr(req) and VALUE not in json.dumps(req.to_json())
    assert req.to_json()["secrets"] == {"LATER": "<redacted>", "TOKEN": "<redacted>"}
    with pytest.raises(TypeError):
        json.dumps(dataclasses.asdict(req))
    with pytest.raises(TypeError):
        pickle.dumps(req)


def test_the_state_database_holds_names_only(tmp_path: Path) -> None:
    task = load_text(TASK.replace("LATER: null", "LATER: later-value"))
    res = launch(LaunchRequest(task, options=LaunchOptions(driver=_driver())))
    assert res.status == "UP"
    row = StateDB().get_cluster("sec")
    assert row.task["secrets"] == {"LATER": "<redacted>", "TOKEN": "<redacted>"}
    for f in tmp_path.glob("state.db*"):
        assert VALUE.encode() not in f.read_bytes()

