"""The apply views render typed launch events: lines for people, JSON lines for --json."""

from __future__ import annotations

import io
import json

from skyplan.cli import views
from skyplan.cli.json_streams import JsonApplyStream
from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.events import AttemptDone, Launching, Preflight, Recover
from skyplan.provision.failover import Attempt, Block

GCP = Candidate(1, "gcp", "us-west1", "us-west1-a", "n1-highmem-8", False, 8, 52, (("V100", 1.0),), 2.9, 2.9)
LOCAL = Candidate(1, "local", "local", None, "local", False, 2, 4, (), 0.0, 0.0)
CAP = Classification(Kind.CAPACITY, Scope.ZONE, "ZONE_RESOURCE_POOL_EXHAUSTED", "no [room] in us-west1-a")


def printed(events, *, simulated: bool = False) -> str:
    out = io.StringIO()
    printer = views.ApplyPrinter(out, simulated=simulated)
    for e in events:
        printer(e)
    return out.getvalue()


def test_people_see_where_each_attempt_went_and_why_it_failed() -> None:
    failed = Attempt(1, GCP, False, CAP, Block(cloud="gcp", region="us-west1", zone="us-west1-a", hardware="V100:1"),
                     detail={"stack": "s1"})
    text = printed([Preflight("aws", False, "AWS: no credentials found", "run `aws configure`"),
                    Recover("old.stack", "running"), Launching(1, GCP, "s1"), AttemptDone(failed)], simulated=True)
    assert "Skipping AWS: no credentials found; to enable it: run `aws configure`" in text
    assert "Cleaning up stack old.stack left by an earlier run (running)" in text
    # [sim] and a provider's own [brackets] survive the console's markup.
    assert "Launching on GCP us-west1 (us-west1-a) [sim] n1-highmem-8" in text
    assert "Got ZONE_RESOURCE_POOL_EXHAUSTED in us-west1-a (message: no [room] in us-west1-a) - blocking us-west1-a" in text


def test_a_cloud_that_runs_here_is_this_machine() -> None:
    text = printed([Launching(1, LOCAL, "s"), AttemptDone(Attempt(1, LOCAL, True, None, None, detail={"stack": "s"}))])
    assert "Launching on this machine (local)" in text and "Provisioned on this machine (stack s)" in text


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
