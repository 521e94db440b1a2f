"""Housekeeping: engine logs kept for the last runs and capped, a file:// backend's
leftovers of removed stacks, and lock files that go with their cluster."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from skyplan.provision import housekeeping
from skyplan.state import cluster_lock
from skyplan.state import lock as lock_mod


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PULUMI_HOME", raising=False)


def _log(d: Path, name: str, mtime: float, size: int = 10) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_bytes(b"x" * size)
    os.utime(p, (mtime, mtime))
    return p


def test_engine_logs_of_runs_before_the_last_20_are_deleted():
    logs = housekeeping.engine_log_dir()
    # One log written during each of 25 runs, run k starting at 1000 + 10k.
    for k in range(25):
        housekeeping.note_run_and_rotate(now=1000 + 10 * k)
        _log(logs, f"run-{k:02d}.log", 1000 + 10 * k + 1)
    housekeeping.note_run_and_rotate(now=2000)  # the 26th run: the last 20 are runs 6..24 and itself
    assert sorted(p.name for p in logs.iterdir()) == [f"run-{k:02d}.log" for k in range(6, 25)]


def test_engine_logs_are_capped_in_size_oldest_first(monkeypatch):
    logs = housekeeping.engine_log_dir()
    for k in range(5):
        _log(logs, f"{k}.log", 1000 + k, size=400)
    monkeypatch.setattr(housekeeping, "MAX_LOG_BYTES", 1000)
    housekeeping.note_run_and_rotate(now=2000)
    assert sorted(p.name for p in logs.iterdir()) == ["3.log", "4.log"]


def test_a_users_own_pulumi_home_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "mine"))
    assert housekeeping.engine_log_dir() is None


def test_skyplan_log_is_rotated_past_its_cap(monkeypatch):
    from skyplan import home

    monkeypatch.setattr(housekeeping, "MAX_SKYPLAN_LOG_BYTES", 100)
    home.log_file().write_bytes(b"y" * 101)
    housekeeping.note_run_and_rotate()
    assert not home.log_file().exists() and home.log_file().with_name("skyplan.log.1").stat().st_size == 101


def _backend(tmp_path: Path) -> tuple[str, Path]:
    base = tmp_path / "backend" / ".pulumi"
    stacks, history, locks = base / "stacks/skyplan", base / "history/skyplan", base / "locks/organization/skyplan"
    for d in (stacks, history, locks):
        d.mkdir(parents=True)
    live, gone, held = "c.a001.gcp.z.t.od", "c.a002.gcp.z.t.od", "c.a003.gcp.z.t.od"
    (stacks / f"{live}.json").write_text("{}")
    (stacks / f"{live}.json.bak").write_text("{}")
    for name in (f"{gone}.json.bak", f"{gone}.json.bak.attrs", f"{held}.json.bak", "skyplan-capacity-memory.json.bak",
                 "d.a001.gcp.z.t.od.json.bak"):
        (stacks / name).write_text("{}")
    (history / gone).mkdir()
    (history / gone / f"{gone}-1.checkpoint.json").write_text("{}")
    (history / live).mkdir()
    (locks / gone).mkdir()
    (locks / held).mkdir()
    (locks / held / "lock.json").write_text("{}")  # a lock in place: its directory stays
    return f"file://{tmp_path / 'backend'}", base


def test_tidy_backend_removes_what_removed_stacks_left_and_nothing_else(tmp_path):
    url, base = _backend(tmp_path)
    assert housekeeping.untidy_stacks(url) == ["c.a002.gcp.z.t.od", "c.a003.gcp.z.t.od", "d.a001.gcp.z.t.od"]
    removed = housekeeping.tidy_backend(url, prefix="c.")
    left = sorted(str(p.relative_to(base)) for p in base.rglob("*"))
    assert left == [
        "history", "history/skyplan", "history/skyplan/c.a001.gcp.z.t.od",
        "locks", "locks/organization", "locks/organization/skyplan",
        "locks/organization/skyplan/c.a003.gcp.z.t.od", "locks/organization/skyplan/c.a003.gcp.z.t.od/lock.json",
        "stacks", "stacks/skyplan",
        "stacks/skyplan/c.a001.gcp.z.t.od.json", "stacks/skyplan/c.a001.gcp.z.t.od.json.bak",  # a live stack's
        "stacks/skyplan/d.a001.gcp.z.t.od.json.bak",  # another cluster's (not in the prefix)
        "stacks/skyplan/skyplan-capacity-memory.json.bak",  # not an attempt stack
    ]
    assert len(removed) == 6


def test_a_lock_metadata_file_left_without_its_lock_does_not_keep_the_directory(tmp_path):
    # A pulumi CLI killed between deleting its lock and the lock's .attrs (seen in CI).
    url, base = _backend(tmp_path)
    gone = base / "locks/organization/skyplan/c.a002.gcp.z.t.od"
    (gone / "0b1c.json.attrs").write_text('{"md5": "x"}')
    held = base / "locks/organization/skyplan/c.a003.gcp.z.t.od"
    (held / "lock.json.attrs").write_text("{}")  # a lock's own metadata stays with it
    removed = housekeeping.tidy_backend(url, prefix="c.")
    assert str(gone / "0b1c.json.attrs") in removed and not gone.exists()
    assert sorted(p.name for p in held.iterdir()) == ["lock.json", "lock.json.attrs"]


def test_a_file_left_mid_write_by_a_killed_cli_belongs_to_its_stack(tmp_path):
    # gocloud's fileblob writes <file>.<hex>.tmp, then renames it; seen in CI after a kill
    # at down.resource-deleted: "<stack>.json.bak.18ed57caddecbccf.tmp" was left for good.
    url, base = _backend(tmp_path)
    stacks = base / "stacks/skyplan"
    left = stacks / "c.a002.gcp.z.t.od.json.bak.18ed57caddecbccf.tmp"
    left.write_text("{}")
    live_tmp = stacks / "c.a001.gcp.z.t.od.json.0123456789abcdef.tmp"  # a live stack's: kept
    live_tmp.write_text("{}")
    assert "c.a002.gcp.z.t.od.json.bak.18ed57caddecbccf.tmp" not in housekeeping.untidy_stacks(url)
    removed = housekeeping.tidy_backend(url, prefix="c.")
    assert str(left) in removed and not left.exists() and live_tmp.exists()


def test_other_backends_are_not_touched():
    assert housekeeping.tidy_backend("s3://bucket/x") == [] and housekeeping.untidy_stacks("gs://b") == []


def test_a_forgotten_lock_file_goes_with_its_release():
    with cluster_lock("c1") as held:
        assert Path(held.path).exists()
        held.forget()
    assert not Path(held.path).exists()
    with cluster_lock("c1"):  # and the cluster can be locked again
        pass


def test_a_lock_taken_on_a_file_unlinked_meanwhile_is_retaken_on_the_new_file(monkeypatch):
    # A process opened the lock file, then the holder unlinked it (down) and released it:
    # locking the old file would leave two holders, so cluster_lock must retry.
    path = lock_mod.lock_path("c2")
    stale = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.unlink(path)
    real_open, calls = os.open, []

    def first_open_is_stale(p, flags, mode=0o777):
        calls.append(p)
        return os.dup(stale) if len(calls) == 1 else real_open(p, flags, mode)

    monkeypatch.setattr(lock_mod.os, "open", first_open_is_stale)
    with cluster_lock("c2"):
        assert len(calls) == 2  # retried on the file now at the path
        other = real_open(path, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the file at the path is the one held
        os.close(other)
    os.close(stale)


def test_a_removed_stacks_lock_left_by_a_dead_engine_on_this_host_is_removed(tmp_path):
    import json
    import socket
    import subprocess

    url, base = _backend(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock_dir = base / "locks/organization/skyplan/c.a003.gcp.z.t.od"
    (lock_dir / "lock.json").write_text(json.dumps({"pid": dead.pid, "hostname": socket.gethostname()}))
    housekeeping.tidy_backend(url, prefix="c.", lock_wait_s=0)
    assert not lock_dir.exists()
