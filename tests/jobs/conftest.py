"""Fixtures of the managed-jobs tests.

``jobs_db_url`` runs a test once on SQLite and once on PostgreSQL, each time on
an empty database of its own. PostgreSQL is ``$SKYPLAN_TEST_PG_URL`` (``.ci/run``
starts one), else a throwaway server this session starts
(``skyplan.testing.postgres``), else the PostgreSQL runs are skipped — or fail
when ``SKYPLAN_REQUIRE_PG=1`` (CI).

Every test here gets its own SKYPLAN_HOME, and no SKYPLAN_JOBS_* variable leaks in.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DB_KINDS = ("sqlite", "postgresql")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    for var in list(os.environ):
        if var.startswith("SKYPLAN_JOBS_") or var in ("SKYPLAN_CATALOG", "SKYPLAN_SIMULATE", "SKYPLAN_BACKEND"):
            monkeypatch.delenv(var)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("SKYPLAN_TEST_PG_URL")
    if url:
        yield url
        return
    from skyplan.testing import postgres

    if not postgres.available():
        if os.environ.get("SKYPLAN_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL is missing and SKYPLAN_REQUIRE_PG=1: install postgresql, "
                        "or set SKYPLAN_TEST_PG_URL")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql) and SKYPLAN_TEST_PG_URL is unset")
    server = postgres.Postgres.start(tmp_path_factory.mktemp("postgres"))
    try:
        yield server.url
    finally:
        server.stop()


def new_db_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of ``kind`` for one test (dropped after it, on PostgreSQL)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs-test.db'}"
        return
    from skyplan.testing import postgres

    url = postgres.create_database(request.getfixturevalue("pg_server_url"), f"skyplan_t_{uuid.uuid4().hex[:16]}")
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture(params=DB_KINDS)
def jobs_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty jobs database, SQLite then PostgreSQL (see the module docstring)."""
    yield from new_db_url(request.param, tmp_path, request)
