"""The controller process (``skyplan.jobs.daemon``) without the engine: started
detached, one per database, published in the store, stopped when idle (its lock
and lease given up, its info cleared), and a successor takes over after SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

from skyplan.jobs import daemon
from skyplan.jobs.store import Store


def _wait(cond: Callable[[], object], what: str, deadline_s: float = 60.0) -> object:
    end = time.monotonic() + deadline_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            log = Path(os.environ["SKYPLAN_HOME"]) / "jobs" / "controller.log"
            pytest.fail(f"timed out waiting for {what}\n{log.read_text() if log.exists() else ''}")
        time.sleep(0.05)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", url)
    return url


def test_one_controller_per_database_published_and_stopped_when_idle(url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_JOBS_IDLE_STOP_S", "15")
    with Store(url) as store:
        assert not daemon.is_running(url, store)
        assert daemon.ensure_running(store=store)
        info = _wait(lambda: store.controller_info(), "the controller's info")
        assert info["pid"] and info["port"] and info["host"]
        assert daemon.is_running(url, store)
        assert not daemon.ensure_running(store=store)  # one is running: none started
        extra = daemon.spawn()  # started anyway: it finds the lock taken and leaves
        _wait(lambda: os.waitpid(extra, os.WNOHANG)[0] == extra, "the second controller to exit", 30)
        assert store.controller_info()["pid"] == info["pid"]
        _wait(lambda: not daemon.is_running(url, store), "the idle controller to stop", 120)
        assert store.controller_info() is None and store.lease_holder() is None


def test_a_sigkilled_controller_is_replaced(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_JOBS_IDLE_STOP_S", "60")
    with Store(url) as store:
        daemon.ensure_running(store=store)
        first = _wait(lambda: store.controller_info(), "the controller")
        os.kill(first["pid"], signal.SIGKILL)
        _wait(lambda: not daemon.is_running(url, store), "the lock to be released by the kernel", 30)
        assert store.lease_holder() is not None  # its lease outlives it ...
        assert daemon.ensure_running(store=store)  # ... but a successor on this machine takes it over
        second = _wait(lambda: (i := store.controller_info()) and i["pid"] != first["pid"] and i, "the successor")
        assert daemon.is_running(url, store)
        os.kill(second["pid"], signal.SIGTERM)
        _wait(lambda: not daemon.is_running(url, store), "the successor to stop on SIGTERM", 60)
        assert store.controller_info() is None
