"""Which pool hosts are taken, by which stack: ``$SKYPLAN_HOME/ssh/allocations.json``.

A host is taken while a cluster runs on it and never double-booked: every
read-modify-write of the file happens under an exclusive ``flock`` of
``allocations.lock`` beside it (concurrent applies, from threads or processes,
serialise there), and the file is replaced atomically. An entry is keyed by
the machine (``Host.key``, ``host:port``), so a machine listed in two pools is
still one machine.

The ledger is this skyplan home's: two homes (two users) sharing machines do
not see each other's entries.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class HostBusy(Exception):
    """The host is taken by another stack (its text starts with the stable code ``SshHostBusy``)."""


def ledger_path(create: bool = True) -> Path:
    """The ledger file; with ``create``, its directory is made (0700) too."""
    from skyplan import home

    return (home.sub("ssh") if create else home.home() / "ssh") / "allocations.json"


@contextmanager
def _locked(path: Path | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    path = path or ledger_path()
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        yield path, data
    finally:
        os.close(fd)  # closing releases the flock


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=1))
    os.replace(tmp, path)


def take(key: str, *, stack: str, cluster: str, info: dict[str, Any], path: Path | None = None) -> None:
    """Record ``key`` as taken by ``stack``, with ``info`` (the host's address and
    the node's rank: what it takes to clean the host up without the config).
    Idempotent for the same stack. Raises HostBusy when another stack holds it."""
    with _locked(path) as (p, data):
        held = data.get(key)
        if held and held.get("stack") != stack:
            raise HostBusy(f"SshHostBusy: host {info.get('zone')} of pool '{info.get('pool')}' is taken by cluster "
                           f"'{held.get('cluster')}' (stack {held.get('stack')})")
        data[key] = {**info, "stack": stack, "cluster": cluster,
                     "taken_at": (held or {}).get("taken_at") or time.time()}
        _write(p, data)


def is_free(key: str, *, stack: str, path: Path | None = None) -> bool:
    with _locked(path) as (_, data):
        held = data.get(key)
        return not held or held.get("stack") == stack


def release(key: str, *, stack: str, path: Path | None = None) -> None:
    """Free ``key`` if ``stack`` holds it. Idempotent."""
    with _locked(path) as (p, data):
        if (data.get(key) or {}).get("stack") == stack:
            del data[key]
            _write(p, data)


def release_stack(stack: str, path: Path | None = None) -> list[str]:
    """Free every host ``stack`` holds; the keys freed."""
    with _locked(path) as (p, data):
        keys = [k for k, v in data.items() if (v or {}).get("stack") == stack]
        for k in keys:
            del data[k]
        if keys:
            _write(p, data)
    return keys


def held(stack_prefix: str = "", path: Path | None = None) -> list[dict[str, Any]]:
    """Every entry whose stack starts with ``stack_prefix``, with its ``key``. A home
    that never used the ssh cloud has no ledger, and gets none made by asking."""
    path = path or ledger_path(create=False)
    if not path.exists():
        return []
    with _locked(path) as (_, data):
        return [{"key": k, **v} for k, v in sorted(data.items())
                if isinstance(v, dict) and str(v.get("stack", "")).startswith(stack_prefix)]
