"""The config file's settings: one name in the file for each SKYPLAN_* setting,
the environment variable winning over the file; every key checked, with
file:line:col and a did-you-mean (exit 2 through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan import config
from skyplan.config import ConfigError, read_config, setting


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    for name, (env, _) in config.SETTINGS.items():
        monkeypatch.delenv(env, raising=False)
    return tmp_path


def test_each_setting_is_read_from_the_file_and_its_variable_wins(home: Path, monkeypatch: pytest.MonkeyPatch):
    (home / "config.yaml").write_text("backend: file:///srv/state\ncatalog: cat/offers.json\nengine_dir: ~/eng\n")
    assert setting("backend") == "file:///srv/state"
    assert setting("catalog") == str(home / "cat" / "offers.json")  # relative to the config file
    assert setting("engine_dir") == str(Path("~/eng").expanduser())
    monkeypatch.setenv("SKYPLAN_BACKEND", "file:///from/env")
    assert setting("backend") == "file:///from/env"


def test_the_backend_setting_reaches_the_stack_driver(home: Path):
    from skyplan.provision.settings import resolve_backend_url

    assert resolve_backend_url(create=False) == f"file://{home / 'pulumi'}"
    (home / "config.yaml").write_text("backend: file:///srv/state\n")
    assert resolve_backend_url(create=False) == "file:///srv/state"


def test_the_catalog_setting_is_the_catalog_plan_loads(home: Path):
    from skyplan.catalog.loader import load_catalog

    (home / "config.yaml").write_text("catalog: missing-catalog.json\n")
    with pytest.raises(Exception, match="missing-catalog.json"):
        load_catalog()


def test_unknown_keys_and_bad_values_are_each_located(home: Path):
    (home / "config.yaml").write_text("backnd: file:///x\ncatalog: 3\n")
    with pytest.raises(ConfigError) as e:
        read_config()
    found = [d.format() for d in e.value.diagnostics]
    assert any(":1:1: $.backnd: unknown setting 'backnd'" in f and "did you mean 'backend'" in f for f in found), found
    assert any(":2:" in f and "$.catalog" in f for f in found), found


def test_a_bad_config_file_stops_plan_with_exit_2_and_the_place(home: Path, tmp_path: Path):
    from skyplan.cli.main import app

    (home / "config.yaml").write_text("ssh:\n  pools:\n    lab:\n      hosts:\n        - {host: a, prot: 22}\n")
    task = tmp_path / "t.yaml"
    task.write_text("name: t\nresources: {cloud: local}\nrun: 'true'\n")
    r = CliRunner().invoke(app, ["plan", str(task)])
    assert r.exit_code == 2, r.output
    assert "config.yaml:5:" in r.output and "$.ssh.pools.lab.hosts[0].prot" in r.output
    assert "did you mean 'port'" in r.output


def test_a_mistake_in_the_config_file_stops_every_command_with_exit_2(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from skyplan.cli.main import app

    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.yaml").write_text("backnd: file:///tmp/x\n")
    runner = CliRunner()
    plain = runner.invoke(app, ["status"])
    assert plain.exit_code == 2 and "did you mean 'backend'" in plain.stderr
    as_json = runner.invoke(app, ["status", "--json"])
    assert as_json.exit_code == 2 and json.loads(as_json.stdout)["error"]["code"] == "ConfigError"
    (tmp_path / "home" / "config.yaml").unlink()
    assert runner.invoke(app, ["status"]).exit_code == 0
