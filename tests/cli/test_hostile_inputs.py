"""The hostile-input corpus through the real console script, one process per run.

Every case (``skyplan.testing.hostile``: the files under
tests/fixtures/hostile/ plus 10 MB files, a FIFO, a directory, /dev/zero,
/dev/urandom, files just within the limits and edited plan files) must exit 2,
never 1, with a message and no traceback, under 200 MB of peak RSS. A
scenario must be refused before any stack exists. Time is not asserted (the
timeout only stops a hang); bench/hostile.py prints the worst case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.testing import hostile

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hostile"
MAX_RSS = 200 * 1_000_000
HANG_GUARD_S = 30.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, hostile.Case]:
    scratch = tmp_path_factory.mktemp("hostile")
    return {c.name: c for c in hostile.build_corpus(FIXTURES, scratch, ROOT)}


def _case_names() -> list[str]:
    # The names only (the generated files are made by the fixture); a test
    # below checks this list against the corpus actually built.
    static = [c.name for c in hostile.static_cases(FIXTURES)]
    generated = []
    for kind in hostile.KINDS:
        ext = ".json" if kind == "plan" else ".yaml"
        generated += [f"{kind}/fifo{ext} (generated)", f"{kind}/directory{ext} (generated)",
                      f"{kind}//dev/zero (via dev-zero{ext})", f"{kind}//dev/urandom (via dev-urandom{ext})",
                      f"{kind}/10mb{ext} (generated)"]
    generated += ["task/49000-errors.yaml (generated)", "scenario/1mib-rules.yaml (generated)",
                  "plan/8mib-edited.json (generated)"]
    generated += [f"plan/{n}.json (edited)" for n in (
        "no-candidates-hash", "null-candidates-hash", "no-request", "stale-candidates-hash", "no-task-hash",
        "null-task-hash", "null-catalog-hash", "num-candidates-mismatch", "nul-in-task-envs")]
    return static + generated


CASES = _case_names()


def test_the_case_list_is_the_corpus(corpus: dict[str, hostile.Case]) -> None:
    assert sorted(CASES) == sorted(corpus)
    assert len(hostile.static_cases(FIXTURES)) >= 30


@pytest.mark.parametrize("name", CASES)
def test_hostile_input_exits_2_with_a_message(name: str, corpus: dict[str, hostile.Case], tmp_path: Path) -> None:
    case = corpus[name]
    for argv in hostile.commands(case, ROOT):
        home = tmp_path / f"home-{argv[0]}"
        r = hostile.run(case, argv, home, timeout_s=HANG_GUARD_S, cwd=tmp_path)
        where = f"{name}: skyplan {' '.join(argv)}"
        assert not r.timed_out, f"{where} did not finish in {HANG_GUARD_S:.0f} s"
        assert r.returncode == 2, f"{where} exited {r.returncode}:\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, f"{where}:\n{r.stderr[-3000:]}"
        assert r.stderr.startswith("error: "), f"{where}: no message:\n{r.stderr[-3000:]}"
        assert len(r.stderr.splitlines()) <= 60, f"{where}: {len(r.stderr.splitlines())} lines of errors"
        assert r.max_rss_bytes < MAX_RSS, f"{where}: peak RSS {r.max_rss_bytes / 1e6:.0f} MB"
        if case.kind == "scenario":
            # refused while loading the scenario: no backend, no stack, no cluster
            assert not (home / "pulumi").exists() and not (home / "sandboxes").exists(), where
        print(f"{where}: exit {r.returncode} in {r.seconds * 1000:.0f} ms, peak RSS {r.max_rss_bytes / 1e6:.1f} MB")


def test_the_measure_reports_the_commands_own_rss(tmp_path: Path) -> None:
    """The runner forks from a small launcher, so a light command reports tens of MB,
    not the size of the (much larger) test process that started it."""
    ballast = b"x" * (300 * 1_000_000)  # every page written: the test process is now over 300 MB
    case = hostile.Case("task/valid", "task", ROOT / "examples" / "hello.yaml")
    r = hostile.run(case, ["validate", str(case.path)], tmp_path / "home", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 5_000_000 < r.max_rss_bytes < 150_000_000
    del ballast
