from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from skyplan.clouds.local import logs


def _node(stack_dir: Path, rank: int, phase: str, rc: int | None = None) -> Path:
    d = stack_dir / f"node-{rank}"
    (d / "logs").mkdir(parents=True)
    (d / "node.json").write_text(json.dumps({"node_rank": rank}))
    (d / "status.json").write_text(json.dumps({"phase": phase, "returncode": rc}))
    return d


def test_log_paths_of_a_stack_and_of_a_node(tmp_path: Path) -> None:
    stack = tmp_path / "stk"
    _node(stack, 1, "done", 0)
    _node(stack, 0, "done", 0)
    (stack / "not-a-node").mkdir()
    paths = logs.log_paths(stack)
    assert [p.rank for p in paths] == [0, 1]
    assert paths[1].combined == str(stack / "node-1" / "logs" / "combined.log")
    one = logs.log_paths(stack / "node-1")
    assert len(one) == 1 and one[0].rank == 1 and one[0].run.endswith("node-1/logs/run.log")
    assert logs.log_paths(tmp_path / "gone") == []


def test_follow_yields_lines_as_written_and_the_tail_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "late" / "combined.log"
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.05)
        path.parent.mkdir()
        with open(path, "w") as f:
            for i in range(3):
                f.write(f"line {i}\n")
                f.flush()
                time.sleep(0.02)
            f.write("no newline at the end")
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got = list(logs.follow(path, done.is_set, poll_s=0.01))
    t.join()
    assert got == ["line 0", "line 1", "line 2", "no newline at the end"]


def test_follow_a_file_that_never_appears_ends_at_stop(tmp_path: Path) -> None:
    assert list(logs.follow(tmp_path / "never.log", lambda: True, poll_s=0.01)) == []


def test_job_status_combines_nodes(tmp_path: Path) -> None:
    a = tmp_path / "a"
    _node(a, 0, "done", 0)
    _node(a, 1, "done", 0)
    st = logs.job_status(a)
    assert (st.phase, st.returncode, st.finished) == ("done", 0, True)

    b = tmp_path / "b"
    _node(b, 0, "done", 0)
    _node(b, 1, "failed", 4)
    st = logs.job_status(b)
    assert (st.phase, st.returncode) == ("failed", 4)
    assert [n["node_rank"] for n in st.to_json()["nodes"]] == [0, 1]

    c = tmp_path / "c"
    _node(c, 0, "done", 0)
    _node(c, 1, "stopped")
    assert logs.job_status(c).phase == "stopped"

    assert logs.job_status(tmp_path / "none").phase == "absent"


def test_job_status_of_a_running_node(tmp_path: Path, sandboxes, wait_for) -> None:
    from skyplan.clouds.local import runner

    root = sandboxes("node-0", "running")
    runner.start({"stack": "running", "run": "touch started; sleep 300"}, root)
    wait_for(lambda: (root / "workdir" / "started").exists(), "the run to start")
    st = logs.job_status(root.parent)
    assert st.phase == "run" and not st.finished
