"""Fixtures of the managed-jobs tests.

``jobs_db_url`` runs a test once on SQLite and once on PostgreSQL, each time on
an empty database of its own: tests/conftest.py's ``db_url`` (the serve tests
use it too), whose PostgreSQL is ``$SKYPLAN_TEST_PG_URL`` (``.ci/run`` starts
one), else a throwaway server this session starts (``skyplan.testing.postgres``),
else the PostgreSQL runs are skipped — or fail when ``SKYPLAN_REQUIRE_PG=1`` (CI).

Every test here gets its own SKYPLAN_HOME, and no SKYPLAN_JOBS_* variable leaks in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    for var in list(os.environ):
        if var.startswith("SKYPLAN_JOBS_") or var in ("SKYPLAN_CATALOG", "SKYPLAN_SIMULATE", "SKYPLAN_BACKEND"):
            monkeypatch.delenv(var)


@pytest.fixture
def jobs_db_url(db_url: str) -> str:
    """An empty jobs database, SQLite then PostgreSQL (see the module docstring)."""
    return db_url
