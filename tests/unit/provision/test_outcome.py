"""The task outcome apply and status report, from a log source's status (one source for every mode)."""

from __future__ import annotations

import pytest

from skyplan.contract import count, utc_time
from skyplan.provision.outcome import TaskOutcome, task_outcome


def node(rank: int, phase: str, rc: int | None = None) -> dict:
    return {"phase": phase, "returncode": rc, "node_rank": rank}


@pytest.mark.parametrize("status, expected", [
    (None, TaskOutcome()),
    ({"phase": "absent", "returncode": None, "nodes": []}, TaskOutcome()),
    ({"phase": "run", "returncode": None, "nodes": [node(0, "run")]}, TaskOutcome("running")),
    ({"phase": "starting", "returncode": None, "nodes": [node(0, "starting")]}, TaskOutcome("running")),
    ({"phase": "done", "returncode": 0, "nodes": [node(0, "done", 0), node(1, "done", 0)]},
     TaskOutcome("succeeded", 0)),
    ({"phase": "failed", "returncode": 3, "nodes": [node(0, "done", 0), node(1, "failed", 3)]},
     TaskOutcome("failed", 3, 1)),  # the failing node, by its rank
    ({"phase": "lost", "returncode": None, "nodes": [node(0, "lost")]}, TaskOutcome("failed", None, 0)),
    ({"phase": "stopped", "returncode": None, "nodes": [node(0, "stopped")]}, TaskOutcome("failed", None, 0)),
    ({"phase": "some-future-phase"}, TaskOutcome()),
])
def test_outcome_from_a_log_source_status(status, expected):
    got = TaskOutcome.from_status(status)
    assert got == expected
    assert got.failed is (expected.status == "failed")
    assert set(got.to_json()) == {"status", "exit_code", "node"}


def test_a_cloud_without_a_log_source_has_no_outcome():
    assert task_outcome(None) == TaskOutcome()


def test_counts_and_times_follow_the_contract():
    assert count(1.0) == 1 and type(count(1.0)) is int
    assert count(0.5) == 0.5 and count(8) == 8 and count(None) is None
    assert utc_time(0) == "1970-01-01T00:00:00Z"
    assert utc_time("2025-05-01T12:00:00+00:00") == "2025-05-01T12:00:00Z"
    assert utc_time("2025-05-01T14:00:00.123+02:00") == "2025-05-01T12:00:00Z"
    assert utc_time(None) is None
