"""People's view of apply: one line per attempt (code and first sentence), a status
line while an attempt runs (live on a terminal, a plain line every 30 s elsewhere),
and what an interrupt stops and cleans up."""

from __future__ import annotations

import io
import logging
import signal
import time

import pytest
from rich.console import Console

from skyplan.cli.apply_view import ApplyView, attempt_line, elapsed_text
from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.events import AttemptDone, Launching, Preflight, Recover
from skyplan.provision.failover import Attempt, Block
from skyplan.provision.progress import Cleanup, Phase

GCP = Candidate(1, "gcp", "us-central1", "us-central1-f", "n1-highmem-8", False, 8, 52, (("V100", 1.0),), 2.9, 2.9)
AWS = Candidate(2, "aws", "us-east-1", "use1-az1", "p3.2xlarge", False, 8, 61, (("V100", 1.0),), 3.06, 3.06)
AWS_W = Candidate(3, "aws", "us-west-2", "usw2-az1", "p3.2xlarge", True, 8, 61, (("V100", 1.0),), 0.9, 0.9)
LOCAL = Candidate(1, "local", "local", None, "local", False, 2, 4, (), 0.0, 0.0)
ICC = ("An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation (reached max "
       "retries: 0): We currently do not have sufficient p3.16xlarge capacity in the Availability Zone you "
       "requested (us-east-1a). Our system will be working on provisioning additional capacity. You can currently "
       "get p3.16xlarge capacity by not specifying an Availability Zone in your request or choosing us-east-1b, "
       "us-east-1d, us-east-1f.")
INVALID = ("Error: Error creating instance: googleapi: Error 400: Invalid value for field "
           "'resource.scheduling.preemptible': 'true'. Scheduling must have preemptible be false when "
           "AutomaticRestart is true., invalid")


def failed(n, cand, kind, scope, code, message, block=None, **kw):
    return Attempt(n, cand, False, Classification(kind, scope, code, message), block, detail={"stack": f"s{n}"}, **kw)


def test_one_line_per_attempt_with_the_code_and_the_first_sentence_only():
    a = failed(9, AWS, Kind.CAPACITY, Scope.ZONE, "InsufficientInstanceCapacity", ICC, Block(zone="use1-az1"))
    assert attempt_line(a) == (
        "#9 AWS us-east-1a [use1-az1] p3.2xlarge on-demand: InsufficientInstanceCapacity: We currently do not "
        "have sufficient p3.16xlarge capacity in the Availability Zone you requested (us-east-1a).")
    q = failed(4, GCP, Kind.QUOTA, Scope.FAMILY, "QUOTA_EXCEEDED",
               "Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-central1.", Block(region="us-central1"))
    assert attempt_line(q) == "#4 GCP us-central1-f n1-highmem-8 on-demand: QUOTA_EXCEEDED: Quota 'NVIDIA_V100_GPUS' exceeded."
    up = Attempt(17, AWS_W, True, None, None, detail={"stack": "s", "outputs": {"zone_name": "us-west-2b"}})
    assert attempt_line(up) == "#17 AWS us-west-2b [usw2-az1] p3.2xlarge spot: up"
    assert attempt_line(Attempt(1, LOCAL, True, None, None)) == "#1 this machine (local): up"


def test_retries_and_widened_blocks_say_so():
    t = failed(2, GCP, Kind.TRANSIENT, Scope.NONE, "RequestLimitExceeded", "Request limit exceeded. Slow down.")
    assert attempt_line(t).endswith("RequestLimitExceeded: Request limit exceeded. (retrying)")
    w = failed(3, GCP, Kind.UNKNOWN, Scope.ZONE, "unknown", "Something odd. More.", Block(region="us-central1"),
               widened="region: same unknown error in us-central1-a and us-central1-f")
    assert attempt_line(w).endswith("unknown: Something odd. (widened to region: same unknown error in "
                                    "us-central1-a and us-central1-f)")


def view(**kw) -> tuple[ApplyView, io.StringIO, list[float]]:
    out, now = io.StringIO(), [100.0]
    v = ApplyView(out, live=False, clock=lambda: now[0], **kw)
    v.con = Console(file=out, width=300, highlight=False, soft_wrap=True)
    return v, out, now


def test_an_invalid_request_prints_the_providers_text_once(caplog):
    v, out, _ = view()
    a = failed(1, GCP, Kind.INVALID, Scope.ALL, "invalid", INVALID)
    with caplog.at_level(logging.INFO, logger="skyplan.apply"):
        for e in (Launching(1, GCP, "s1"), AttemptDone(a)):
            v(e)
    text = out.getvalue()
    assert text.count("Invalid value for field") == 1
    assert "Scheduling must have preemptible" not in text  # the second sentence: the log and the JSON have it
    assert "Scheduling must have preemptible be false" in caplog.text and "attempt 1" in caplog.text


def test_other_events_are_one_line_each():
    v, out, _ = view(simulated=True)
    for e in (Preflight("aws", False, "AWS: no credentials found", "run `aws configure`"),
              Recover("old.stack", "running"), Launching(1, GCP, "s1")):
        v(e)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Skipping AWS: no credentials found; to enable it: run `aws configure`"
    assert lines[1] == "Cleaning up stack old.stack left by an earlier run (running)"
    assert lines[2].startswith("Simulated: the sim cloud stands in for") and "GCP" in lines[2]


def test_the_plain_status_line_comes_every_interval_while_nothing_else_is_said():
    v, out, now = view(interval_s=30)
    v(Launching(3, GCP, "s3"))
    v(Phase(3, 45, "creating", GCP, "s3", "node-0"))
    now[0] += 29
    assert v.tick() is None
    now[0] += 1
    line = v.tick()
    assert line == "... attempt 3 of 45 · GCP us-central1-f n1-highmem-8 on-demand · creating node-0 · 30s"
    assert out.getvalue().splitlines()[-1] == line
    now[0] += 10
    assert v.tick() is None  # 30 s since the last line, not since the attempt began
    now[0] += 20
    v(Phase(3, 45, "cleaning up", GCP, "s3"))
    assert v.tick().endswith("cleaning up · 1m 00s")
    v(AttemptDone(failed(3, GCP, Kind.CAPACITY, Scope.ZONE, "X", "No room.")))
    now[0] += 100
    assert v.tick() is None  # no attempt runs


def test_the_plain_line_is_printed_by_the_views_own_thread():
    out = io.StringIO()
    v = ApplyView(out, live=False, interval_s=0.05)
    with v:
        v(Launching(1, GCP, "s1"))
        v(Phase(1, 4, "booting", GCP, "s1"))
        end = time.monotonic() + 10
        while "... attempt 1 of 4" not in out.getvalue() and time.monotonic() < end:
            time.sleep(0.01)
    assert "... attempt 1 of 4 · GCP us-central1-f n1-highmem-8 on-demand · booting" in out.getvalue()


def test_the_live_line_shows_attempt_phase_and_elapsed_time():
    v, _, now = view()
    v(Launching(2, AWS, "s2"))
    v(Phase(2, 7, "booting", AWS, "s2", "node-1"))
    now[0] += 65
    shown = io.StringIO()
    Console(file=shown, width=120).print(v)
    assert "attempt 2 of 7 · AWS us-east-1 use1-az1 p3.2xlarge on-demand · booting node-1 · 1m 05s" in shown.getvalue()


def test_ctrl_c_says_what_it_stops_and_what_it_cleaned_up():
    v, out, _ = view(cluster="v100")
    v._spinner = ""
    with pytest.raises(KeyboardInterrupt):
        with v:
            v(Launching(3, GCP, "s3"))
            signal.raise_signal(signal.SIGINT)  # the view's handler: notice, then the usual KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    v(Cleanup("s3", GCP, "interrupted"))
    v(Cleanup("s3", GCP, "interrupted", done=True))
    v._interrupt_summary()
    lines = out.getvalue().splitlines()
    assert lines[0] == "Interrupted: stopping attempt 3 on GCP us-central1-f n1-highmem-8 on-demand, then cleaning up what it created"
    assert "Cleaning up stack s3 (GCP us-central1-f n1-highmem-8 on-demand): destroying what it holds" in lines
    assert "Cleaned up stack s3: destroyed, checked empty and removed" in lines
    assert lines[-1] == "Interrupted: cleaned up 1 stack of this run (s3); nothing of it is left running"


def test_a_failed_cleanup_after_an_interrupt_names_the_next_step():
    v, out, _ = view(cluster="v100")
    v(Cleanup("s1", None, "interrupted", done=True, ok=False, error="stack s1 still has 1 resource"))
    v._interrupt_summary()
    assert "Could not clean up stack s1: stack s1 still has 1 resource" in out.getvalue()
    assert "run `skyplan down v100 --yes` to finish" in out.getvalue()


def test_elapsed_text():
    assert [elapsed_text(s) for s in (0, 59, 61, 3600 + 120)] == ["0s", "59s", "1m 01s", "1h 02m"]


def test_a_providers_own_brackets_survive():
    v, out, _ = view()
    v(AttemptDone(failed(1, GCP, Kind.CAPACITY, Scope.ZONE, "X", "No [room] here. Later.")))
    assert out.getvalue().strip().endswith("X: No [room] here.")


@pytest.mark.parametrize("width", [80, 120, 200])
def test_on_a_terminal_attempt_lines_wrap_between_words_never_inside_one(width):
    out = io.StringIO()
    v = ApplyView(out, live=True)
    v.con = Console(file=out, width=width, highlight=False, soft_wrap=True)
    a = failed(9, AWS, Kind.CAPACITY, Scope.ZONE, "InsufficientInstanceCapacity", ICC, Block(zone="use1-az1"))
    v(AttemptDone(a))
    v.say("Interrupted: stopping attempt 3 on GCP us-central1-f n1-highmem-8 on-demand, then cleaning up what it created")
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines)
    # every word (zone names, instance types, prices) arrives whole, on one line
    said = [w for line in lines for w in line.split()]
    assert said == attempt_line(a).split() + "Interrupted: stopping attempt 3 on GCP us-central1-f n1-highmem-8 on-demand, then cleaning up what it created".split()
    if width == 80:
        assert len(lines) > 2 and lines[1].startswith("    ")  # continuations indented under their attempt


def test_off_a_terminal_an_attempt_stays_one_line_for_grep():
    v, out, _ = view()
    v.con = Console(file=out, width=80, highlight=False, soft_wrap=True)
    a = failed(9, AWS, Kind.CAPACITY, Scope.ZONE, "InsufficientInstanceCapacity", ICC, Block(zone="use1-az1"))
    v(AttemptDone(a))
    assert out.getvalue().splitlines() == [attempt_line(a)]


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_live_line_drops_detail_to_fit_and_never_wraps(width):
    v, _, now = view()
    v(Launching(2, AWS, "s2"))
    v(Phase(2, 17, "booting", AWS, "s2", "node-1"))
    now[0] += 65
    shown = io.StringIO()
    Console(file=shown, width=width).print(v)
    lines = [ln for ln in shown.getvalue().splitlines() if ln.strip()]
    assert len(lines) == 1 and "attempt 2 of 17" in lines[0] and "1m 05s" in lines[0]


def test_the_closing_up_line_wraps_between_words_on_a_narrow_terminal(monkeypatch):
    from types import SimpleNamespace

    from skyplan.cli.views import render_launched

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "50")
    result = SimpleNamespace(status="UP", cluster="v100x8", placement=AWS, simulated=True, outputs={}, stack="s")
    out, pipe = Tty(), io.StringIO()
    render_launched(result, out)
    render_launched(result, pipe)
    assert all(len(line) <= 50 for line in out.getvalue().splitlines()) and len(out.getvalue().splitlines()) > 1
    assert out.getvalue().split() == pipe.getvalue().split() and len(pipe.getvalue().splitlines()) == 1
