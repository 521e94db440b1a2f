"""The apply views render typed launch events: JSON lines for --json (people's lines:
``test_apply_view.py``)."""

from __future__ import annotations

import io
import json

from skyplan.cli.json_streams import JsonApplyStream
from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.events import AttemptDone, Launching, Preflight
from skyplan.provision.failover import Attempt, Block

GCP = Candidate(1, "gcp", "us-west1", "us-west1-a", "n1-highmem-8", False, 8, 52, (("V100", 1.0),), 2.9, 2.9)
CAP = Classification(Kind.CAPACITY, Scope.ZONE, "ZONE_RESOURCE_POOL_EXHAUSTED", "no [room] in us-west1-a")


def test_json_lines_keep_their_documented_shape() -> None:
    out = io.StringIO()
    sink = JsonApplyStream(out)
    failed = Attempt(2, GCP, False, CAP, Block(cloud="gcp", region="us-west1"), detail={"stack": "s2"},
                     widened="region: same unknown error in a and b")
    for e in (Preflight("gcp", True), Launching(2, GCP, "s2"), AttemptDone(failed)):
        sink(e)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["preflight", "launching", "attempt"]
    assert sink.attempts == [lines[2]]  # kept for the summary of an apply that fails later
    attempt = lines[2]
    assert list(attempt)[0] == "event" and attempt["schema_version"] == 1
    assert {k: attempt[k] for k in ("number", "cloud", "zone", "outcome", "kind", "scope", "code", "stack", "block",
                                    "widened")} == {
        "number": 2, "cloud": "gcp", "zone": "us-west1-a", "outcome": "failed", "kind": "capacity", "scope": "zone",
        "code": "ZONE_RESOURCE_POOL_EXHAUSTED", "stack": "s2", "block": "us-west1", "widened": failed.widened}
