"""skyplan.runtime.keys: each VM cluster's own key pair under the skyplan home."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncssh
import pytest

from skyplan.runtime import keys


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    return tmp_path


def test_a_pair_is_generated_private_and_reused(home: Path) -> None:
    os.umask(0o022)  # whatever the umask, the private key is never readable by others
    try:
        pub = keys.ensure_key("demo")
    finally:
        os.umask(0o077)
    private = home / "ssh" / "keys" / "demo"
    assert keys.key_path("demo") == private
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "ssh").stat().st_mode) == 0o700
    assert pub.startswith("ssh-ed25519 ") and pub.endswith(" skyplan-demo") and "\n" not in pub
    # The private key is a real ed25519 key whose public half is what was returned.
    key = asyncssh.read_private_key(str(private))
    assert key.export_public_key("openssh").decode().split()[:2] == pub.split()[:2]
    assert b"PRIVATE KEY" in private.read_bytes() and "PRIVATE" not in pub
    assert keys.ensure_key("demo") == pub  # reused by every later attempt of the cluster
    assert keys.ensure_key("other") != pub  # one pair per cluster


def test_the_public_half_is_derived_again_when_its_copy_is_lost(home: Path) -> None:
    pub = keys.ensure_key("demo")
    keys.public_key_path("demo").unlink()
    assert keys.public_key("demo") == pub
    assert keys.public_key("nothing") is None


def test_remove_deletes_the_pair_and_the_known_hosts_file(home: Path) -> None:
    keys.ensure_key("demo")
    keys.known_hosts_path("demo").write_text("[1.2.3.4]:22 ssh-ed25519 AAAA\n")
    keys.ensure_key("keep")
    removed = keys.remove("demo")
    assert len(removed) == 3
    assert not keys.key_path("demo").exists() and not keys.known_hosts_path("demo").exists()
    assert keys.key_path("keep").exists()
    assert keys.remove("demo") == []  # idempotent


def test_remove_of_a_cluster_without_keys_creates_nothing(home: Path) -> None:
    assert keys.remove("local-only") == []
    assert not (home / "ssh").exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "UPPER"])
def test_names_that_are_not_cluster_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        keys.key_path(name)
