"""The jobs settings: config.yaml's ``jobs:`` section, each key's environment
variable winning, bad values located (file:line:col) or named (the variable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.config import ConfigError
from skyplan.errors import InputError
from skyplan.jobs import settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    for env, *_ in settings.ENV.values():
        monkeypatch.delenv(env, raising=False)
    return tmp_path


def test_defaults_put_the_database_under_the_home(home: Path):
    s = settings.load()
    assert s == settings.JobsSettings(db_url=f"sqlite:///{home / 'jobs' / 'jobs.db'}")
    assert (s.max_concurrent, s.idle_stop_s, s.poll_s, s.grace_checks, s.grace_s) == (16, 600, 5, 3, 60)
    assert (home / "jobs").is_dir()


def test_the_file_sets_each_key_and_the_environment_wins(home: Path, monkeypatch: pytest.MonkeyPatch):
    (home / "config.yaml").write_text(
        "jobs:\n  db_url: postgresql+psycopg://u@db/skyplan\n  max_concurrent: 4\n  idle_stop_s: 30\n"
        "  poll_s: 0.5\n  grace_checks: 2\n  grace_s: 10\n")
    s = settings.load()
    assert s == settings.JobsSettings("postgresql+psycopg://u@db/skyplan", 4, 30.0, 0.5, 2, 10.0)
    monkeypatch.setenv("SKYPLAN_JOBS_DB_URL", "sqlite:////tmp/x.db")
    monkeypatch.setenv("SKYPLAN_JOBS_POLL_S", "0.1")
    monkeypatch.setenv("SKYPLAN_JOBS_IDLE_STOP_S", "2")
    monkeypatch.setenv("SKYPLAN_JOBS_GRACE_S", "1")
    monkeypatch.setenv("SKYPLAN_JOBS_MAX_CONCURRENT", "100")
    s = settings.load()
    assert (s.db_url, s.poll_s, s.idle_stop_s, s.grace_s, s.max_concurrent, s.grace_checks) == (
        "sqlite:////tmp/x.db", 0.1, 2.0, 1.0, 100, 2)


def test_a_relative_sqlite_path_in_the_file_is_relative_to_the_file(home: Path):
    (home / "config.yaml").write_text("jobs:\n  db_url: sqlite:///team/jobs.db\n")
    assert settings.load().db_url == f"sqlite:///{home / 'team' / 'jobs.db'}"


def test_bad_keys_and_values_in_the_file_are_each_located(home: Path):
    (home / "config.yaml").write_text(
        "jobs:\n  pol_s: 3\n  max_concurrent: 0\n  poll_s: 0\n  db_url: mysql://x/y\n  grace_checks: 1.5\n")
    with pytest.raises(ConfigError) as err:
        settings.load()
    text = [d.format() for d in err.value.diagnostics]
    assert len(text) == 5, text
    assert "config.yaml:2:3: $.jobs.pol_s: unknown setting 'pol_s' of 'jobs'" in text[0]
    assert "did you mean 'poll_s'?" in text[0]
    assert ":3:" in text[1] and "at least 1, not 0" in text[1]
    assert ":4:" in text[2] and "more than 0" in text[2]
    assert ":5:" in text[3] and "'mysql' is not a supported database" in text[3]
    assert ":6:" in text[4] and "an integer, not 1.5" in text[4]


def test_the_section_must_be_a_mapping(home: Path):
    (home / "config.yaml").write_text("jobs: 3\n")
    with pytest.raises(ConfigError) as err:
        settings.load()
    assert "'jobs' is a mapping of settings" in err.value.diagnostics[0].format()


def test_a_bad_environment_value_names_its_variable(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SKYPLAN_JOBS_POLL_S", "fast")
    with pytest.raises(InputError, match="SKYPLAN_JOBS_POLL_S: 'poll_s' .* a number, not 'fast'"):
        settings.load()
