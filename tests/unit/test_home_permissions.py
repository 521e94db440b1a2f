"""The skyplan home is private: directories 0700, files 0600, old homes tightened.

Every test runs under the common umask 022, so a file created with default
permissions would be group- and world-readable and the test would see it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from skyplan import home


@pytest.fixture(autouse=True)
def umask_022(monkeypatch: pytest.MonkeyPatch):
    old = os.umask(0o022)
    monkeypatch.setattr(home, "_tightened", set())  # each test's home is looked at afresh
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "a" / "skyplan-home"  # a parent that does not exist yet
    monkeypatch.setenv("SKYPLAN_HOME", str(path))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def readable_by_others(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                found.append(f"{oct(stat.S_IMODE(st.st_mode))} {p}")
    return found


def test_home_and_sub_directories_are_0700(fresh_home: Path) -> None:
    assert home.home() == fresh_home
    assert mode(fresh_home) == 0o700
    locks = home.sub("locks", "nested")
    assert mode(fresh_home / "locks") == 0o700 and mode(locks) == 0o700
    assert mode(home.log_file().parent) == 0o700


def test_an_old_world_readable_home_is_tightened_at_first_use(fresh_home: Path) -> None:
    fresh_home.mkdir(parents=True, mode=0o755)
    os.chmod(fresh_home, 0o755)
    (fresh_home / "pulumi").mkdir(mode=0o755)
    (fresh_home / "state.db").write_text("x")
    os.chmod(fresh_home / "state.db", 0o644)
    exe = fresh_home / "tool"
    exe.write_text("#!/bin/sh\n")
    os.chmod(exe, 0o755)
    outside = fresh_home.parent / "elsewhere.txt"
    outside.write_text("not ours to change")
    os.chmod(outside, 0o644)
    (fresh_home / "link").symlink_to(outside)

    home.home()

    assert mode(fresh_home) == 0o700
    assert mode(fresh_home / "pulumi") == 0o700
    assert mode(fresh_home / "state.db") == 0o600
    assert mode(exe) == 0o700  # the owner keeps execute
    assert mode(outside) == 0o644  # a symlink's target outside the home is left alone


def test_private_file_creates_0600_and_tightens(tmp_path: Path) -> None:
    os.umask(0)
    new = home.private_file(tmp_path / "new.db")
    assert new.read_bytes() == b"" and mode(new) == 0o600
    old = tmp_path / "old.db"
    old.write_text("keep me")
    os.chmod(old, 0o664)
    home.private_file(old)
    assert mode(old) == 0o600 and old.read_text() == "keep me"


def test_state_db_and_its_wal_files_are_0600(fresh_home: Path) -> None:
    from skyplan.state import StateDB

    db = StateDB()
    db.upsert_cluster("c1", status="UP")
    try:
        files = sorted(p.name for p in fresh_home.iterdir() if p.name.startswith("state.db"))
        assert "state.db" in files and "state.db-wal" in files
        assert readable_by_others(fresh_home) == []
    finally:
        db.close()


def test_sim_ledger_is_0600(fresh_home: Path) -> None:
    from skyplan.clouds.sim import ledger

    with ledger.connect() as conn:
        conn.execute("SELECT 1")
    assert (fresh_home / "sim" / "ledger.db").exists()
    assert readable_by_others(fresh_home) == []


def test_private_umask_makes_new_files_0600_and_dirs_0700(tmp_path: Path) -> None:
    previous = home.private_umask()
    try:
        assert previous == 0o022
        (tmp_path / "f").write_text("x")
        (tmp_path / "d").mkdir()
        assert mode(tmp_path / "f") == 0o600 and mode(tmp_path / "d") == 0o700
    finally:
        os.umask(previous)


def test_a_sandbox_workdir_copy_is_private(tmp_path: Path) -> None:
    from skyplan.clouds.local import runner

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "data.txt").write_text("payload\n")
    os.chmod(src / "sub" / "data.txt", 0o644)
    script = src / "run.sh"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    (src / "link").symlink_to("sub/data.txt")
    root = tmp_path / "sandbox"
    runner.start({"cluster": "c", "stack": "c-local", "workdir": str(src), "run": None, "envs": {}}, root)
    try:
        assert readable_by_others(root / "workdir") == []
        assert mode(root / "workdir" / "run.sh") == 0o700  # still executable by its owner
        assert (root / "workdir" / "link").is_symlink()
    finally:
        runner.remove(root)
