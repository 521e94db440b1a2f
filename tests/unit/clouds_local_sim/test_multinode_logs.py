"""Following a multi-node cluster interleaves every node's output, each line
prefixed with its node's rank, as SkyPilot does."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from skyplan.clouds.local import logs


def _node(stack: Path, rank: int) -> Path:
    d = stack / f"node-{rank}"
    (d / "logs").mkdir(parents=True)
    (d / "node.json").write_text(json.dumps({"node_rank": rank}))
    (d / "status.json").write_text(json.dumps({"phase": "run"}))
    return d


def _finish(d: Path, rc: int) -> None:
    (d / "status.json").write_text(json.dumps({"phase": "done" if rc == 0 else "failed", "returncode": rc}))


def test_follow_interleaves_every_node_with_its_rank(tmp_path: Path) -> None:
    stack = tmp_path / "stk"
    n0, n1 = _node(stack, 0), _node(stack, 1)

    def say(d: Path, text: str) -> None:
        with open(d / "logs" / "combined.log", "a") as f:
            f.write(text)

    say(n1, "one from 1\n")
    lines = logs.SandboxLogs(str(stack)).follow()
    # Node 1's line comes while node 0 has said nothing and still runs: no node waits for another.
    assert next(lines) == "(node-1) one from 1\n"
    say(n0, "one from 0\n")
    assert next(lines) == "(node-0) one from 0\n"
    say(n1, "two from 1\nno newline")
    assert next(lines) == "(node-1) two from 1\n"
    _finish(n0, 0)
    _finish(n1, 3)
    assert list(lines) == ["(node-1) no newline\n"]
    st = logs.job_status(stack)
    assert (st.phase, st.returncode) == ("failed", 3)
    assert [n["node_rank"] for n in st.nodes if n["phase"] == "failed"] == [1]


def test_a_single_node_has_no_prefix(tmp_path: Path) -> None:
    stack = tmp_path / "one"
    n0 = _node(stack, 0)
    (n0 / "logs" / "combined.log").write_text("hello\n")
    _finish(n0, 0)
    assert list(logs.SandboxLogs(str(stack)).follow()) == ["hello\n"]


def test_follow_many_waits_for_late_files_and_ends_at_stop(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("x\n")
    done = threading.Event()

    def late() -> None:
        time.sleep(0.05)
        b.write_text("y\n")
        done.set()

    t = threading.Thread(target=late)
    t.start()
    got = list(logs.follow_many([str(a), str(b)], done.is_set, poll_s=0.01))
    t.join()
    assert got == [(0, "x"), (1, "y")]
