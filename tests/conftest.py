"""The JSON output contract, checked on every ``--json`` run the test suite makes.

Every ``CliRunner.invoke`` of the skyplan app and every ``skyplan`` /
``python -m skyplan`` subprocess whose output a test collects (``communicate``,
hence ``subprocess.run``) is checked with ``skyplan.testing.json_contract.check``
when its arguments hold ``--json``: stdout must be JSON only, each document must
follow ``schemas/<command>.schema.json`` (or the error document), event streams
must end with exactly one summary, and any ``exit_code`` it states must be the
process's. A broken contract fails the test at the run that broke it.

A process killed by a signal (``kill -9``) is not checked: nothing can hold
for it. The run's figures (documents checked, per command) close the report.
"""

from __future__ import annotations

import collections
import shlex
import subprocess
from typing import Any

import pytest

from skyplan.testing import json_contract

#: (command, documents) per checked run, for the closing report.
CHECKED: collections.Counter[str] = collections.Counter()
RUNS: collections.Counter[str] = collections.Counter()
_saved: dict[str, Any] = {}


def check_json_output(args: list[str], stdout: str, exit_code: int | None) -> None:
    """Fail when the output of ``skyplan <args>`` breaks the JSON contract."""
    if "--json" not in args:
        return
    problems = json_contract.check(args, stdout, exit_code)
    command = " ".join(json_contract.command_path(args)) or "?"
    RUNS[command] += 1
    CHECKED[command] += len(json_contract.documents(stdout)[0])
    if problems:
        raise AssertionError(f"`skyplan {' '.join(args)}` (exit {exit_code}) breaks the JSON output contract:\n  "
                             + "\n  ".join(problems) + f"\nstdout:\n{stdout[:2000]}")


def _patch() -> None:
    from typer.testing import CliRunner

    from skyplan.cli.main import app as skyplan_app

    invoke, popen_init, communicate = CliRunner.invoke, subprocess.Popen.__init__, subprocess.Popen.communicate
    _saved.update(invoke=invoke, popen_init=popen_init, communicate=communicate)

    def checked_invoke(self, app, args=None, *a, **kw):  # noqa: ANN001, ANN202
        result = invoke(self, app, args, *a, **kw)
        if app is skyplan_app:
            argv = shlex.split(args) if isinstance(args, str) else [str(x) for x in (args or [])]
            check_json_output(argv, result.stdout, result.exit_code)
        return result

    def recording_init(self, args, *a, **kw):  # noqa: ANN001, ANN202
        popen_init(self, args, *a, **kw)
        sk = json_contract.skyplan_args(args) if isinstance(args, (list, tuple)) else None
        self._skyplan_json_args = sk if sk and "--json" in sk else None

    def checked_communicate(self, *a, **kw):  # noqa: ANN001, ANN202
        out, err = communicate(self, *a, **kw)
        args = getattr(self, "_skyplan_json_args", None)
        if args is not None and out is not None and self.returncode is not None and self.returncode >= 0:
            self._skyplan_json_args = None  # once
            check_json_output(args, out.decode("utf-8", "replace") if isinstance(out, bytes) else out,
                              self.returncode)
        return out, err

    CliRunner.invoke = checked_invoke
    subprocess.Popen.__init__ = recording_init
    subprocess.Popen.communicate = checked_communicate


def pytest_configure(config: pytest.Config) -> None:
    _patch()
    # A shell without job control starts background jobs with SIGINT ignored (POSIX),
    # and Python then leaves it ignored. The tests play a user at a terminal pressing
    # Ctrl-C: give the suite the handler an interactive Python has.
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _saved:
        from typer.testing import CliRunner

        CliRunner.invoke = _saved["invoke"]
        subprocess.Popen.__init__ = _saved["popen_init"]
        subprocess.Popen.communicate = _saved["communicate"]


@pytest.fixture
def json_contract_check():
    """For runs a test reads itself (``Popen`` without ``communicate``):
    ``json_contract_check(args_after_skyplan, stdout, exit_code)``."""
    return check_json_output


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RUNS:
        per = ", ".join(f"{c} {RUNS[c]}/{CHECKED[c]}" for c in sorted(RUNS))
        terminalreporter.write_line(f"JSON output contract: {sum(CHECKED.values())} documents from "
                                    f"{sum(RUNS.values())} --json runs checked (runs/documents: {per})")


# --- a real sshd (issue 9): skipped without /usr/sbin/sshd unless SKYPLAN_REQUIRE_SSHD=1 (CI) ---


def _sshd_in(directory: Any) -> Any:
    import os

    from skyplan.testing import sshd as sshd_mod

    if not sshd_mod.available():
        if os.environ.get("SKYPLAN_REQUIRE_SSHD") == "1":
            pytest.fail(f"{sshd_mod.binary()} is missing and SKYPLAN_REQUIRE_SSHD=1: install openssh-server")
        pytest.skip(f"{sshd_mod.binary()} is not installed (apt-get install openssh-server)")
    return sshd_mod.Sshd.start(directory)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One sshd for the session on a free loopback port (``skyplan.testing.sshd.Sshd``:
    host, port, user, identity_file, known_hosts). Tests must not kill it: use ``private_sshd``."""
    server = _sshd_in(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def private_sshd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An sshd of this test's own, which it may kill."""
    server = _sshd_in(tmp_path_factory.mktemp("sshd-own"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _a_current_event_loop():
    """Pulumi's mocks (tests/unit/stacks) ask for the main thread's current event loop.
    Some libraries used by earlier tests (Playwright's sync API, aiohttp's runners) leave
    the main thread with none set, which makes asyncio.get_event_loop() raise; give each
    test one, as a fresh interpreter has."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())
    yield


# --- the jobs database (issue 11; serve's tables share it): SQLite and PostgreSQL ---

DB_KINDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The URL of a PostgreSQL server the tests may create databases on:
    ``$SKYPLAN_TEST_PG_URL``, else a throwaway server for the session; skipped
    when PostgreSQL is not installed, a failure with ``SKYPLAN_REQUIRE_PG=1``."""
    import os

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


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """An empty jobs database for one test, SQLite then PostgreSQL (dropped after it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs-test.db'}"
        return
    import uuid

    from skyplan.testing import postgres

    url = postgres.create_database(request.getfixturevalue("pg_server_url"), f"skyplan_t_{uuid.uuid4().hex[:16]}")
    try:
        yield url
    finally:
        postgres.drop_database(url)
