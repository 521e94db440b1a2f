"""Fixtures for tests that run the real pulumi CLI on a file:// backend.

* ``engine``: the installed engine; skips when it is missing, unless
  ``SKYPLAN_REQUIRE_ENGINE=1`` (CI sets it after ./setup.sh), which fails instead.
* ``skyplan_home``: a fresh SKYPLAN_HOME in tmp_path, with SKYPLAN_ENGINE_DIR
  pinned to the real engine dir (computed before any test moves the home), a
  fixed passphrase, and no SKYPLAN_BACKEND / PULUMI_HOME from the caller.
* ``driver``: a StackDriver on a tmp file:// backend; every stack left on that
  backend is destroyed and removed when the test ends, and the test fails if
  one cannot be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyplan import errors, home

# Read once, before any fixture points SKYPLAN_HOME at a tmp dir.
REAL_ENGINE_DIR = home.engine_dir()
TEST_PASSPHRASE = "skyplan-engine-tests"


@pytest.fixture
def skyplan_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "skyplan-home"
    path.mkdir()
    monkeypatch.setenv("SKYPLAN_HOME", str(path))
    monkeypatch.setenv("SKYPLAN_ENGINE_DIR", str(REAL_ENGINE_DIR))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", TEST_PASSPHRASE)
    for var in ("SKYPLAN_BACKEND", "PULUMI_HOME", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def engine(skyplan_home: Path):  # noqa: ANN201 - returns skyplan.provision.engine.Engine
    from skyplan.provision import engine as engine_mod

    try:
        return engine_mod.find_engine()
    except errors.EngineError as exc:
        reason = f"pulumi engine not installed ({exc.message}); {exc.hint}"
        if os.environ.get("SKYPLAN_REQUIRE_ENGINE") == "1":
            pytest.fail(f"SKYPLAN_REQUIRE_ENGINE=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def backend_url(tmp_path: Path) -> str:
    path = tmp_path / "backend"
    path.mkdir()
    return f"file://{path}"


@pytest.fixture
def driver(engine, backend_url: str) -> Iterator[object]:  # noqa: ANN001
    from skyplan.provision.driver import StackDriver

    drv = StackDriver(backend_url)
    drv.grace_s = 1.0  # tests' hanging providers never finish; don't wait for them
    try:
        yield drv
    finally:
        leaked = []
        for stack in drv.list_stacks():
            try:
                drv.destroy_and_remove(stack, forget_interrupted=True, timeout_s=120)
            except errors.CleanupError as exc:
                leaked.append(f"{stack}: {exc.message}")
        assert not leaked, f"stacks left behind: {leaked}"
