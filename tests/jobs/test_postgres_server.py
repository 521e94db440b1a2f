"""``python -m skyplan.testing.postgres``, as ``.ci/run`` uses it: start prints a URL
that takes connections (and databases of their own), stop ends the server and
removes its data. Skipped without Debian's PostgreSQL, unless SKYPLAN_REQUIRE_PG=1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skyplan.testing import postgres


def test_start_prints_a_url_and_stop_removes_everything(tmp_path: Path):
    if not postgres.available():
        if os.environ.get("SKYPLAN_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL is missing and SKYPLAN_REQUIRE_PG=1: install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    d = tmp_path / "pg"
    cli = [sys.executable, "-m", "skyplan.testing.postgres"]
    out = subprocess.run([*cli, "start", "--dir", str(d)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    server = postgres.Postgres.load(d)
    try:
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:") and server.alive()
        db = postgres.create_database(url, "skyplan_fixture_check")
        from skyplan.jobs.store import SCHEMA_REVISION, Store

        with Store(db) as store:
            assert store.schema_revision() == SCHEMA_REVISION
        postgres.drop_database(db)
    finally:
        out = subprocess.run([*cli, "stop", "--dir", str(d)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 10
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.alive()
    assert not server.data_dir.exists() and not (d / "postgres.json").exists()
    again = subprocess.run([*cli, "stop", "--dir", str(d)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "no PostgreSQL started" in again.stderr
