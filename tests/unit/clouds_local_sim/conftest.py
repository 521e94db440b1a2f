from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SKYPLAN_HOME per test."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("SKYPLAN_HOME", str(h))
    return h


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """Poll a condition; fail (not hang) if it never holds. The deadline is a
    safety net, not a timing assertion."""

    def wait(cond: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
        end = time.monotonic() + deadline_s
        while not cond():
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.02)

    return wait


@pytest.fixture
def sandboxes(tmp_path: Path):
    """Sandbox roots made by a test; every one is stopped and removed afterwards."""
    from skyplan.clouds.local import runner

    made: list[Path] = []

    def new(name: str = "node-0", stack: str = "stk") -> Path:
        root = tmp_path / "sandboxes" / stack / name
        made.append(root)
        return root

    yield new
    for root in made:
        runner.remove(root, grace_s=0.5)
