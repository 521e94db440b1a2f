"""What each pool host offers: from the config, else probed over SSH and cached.

A probe runs one command on the host (``PROBE``: ``nproc``, ``/proc/meminfo``'s
``MemTotal`` and ``nvidia-smi`` when present) through the node runtime, every
host of every pool at once on the runtime's event loop, each bounded by
``PROBE_TIMEOUT_S``. Results are kept in ``$SKYPLAN_HOME/ssh/hardware.json``
for ``CACHE_TTL_S`` (a machine's hardware rarely changes; delete the file to
probe again). A host that cannot be probed (unreachable, refused, its key
unknown) is left out of the offers, with the reason in ``UNPROBED`` (and the
log): its hardware is unknown, so no request can be checked against it. State a host's ``cpus``, ``memory_gib`` and ``accelerators`` in the
config to skip the probe altogether.

The offer's ``instance_type`` is a label of the hardware (``8cpu-64gb``,
``8cpu-64gb-A100x2``): hosts with the same label are interchangeable, which is
how a cluster of several nodes picks its other hosts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from skyplan.clouds.ssh.pools import NO_ACCELERATORS, Host

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer

log = logging.getLogger(__name__)

CLOUD = "ssh"
CACHE_TTL_S = 24 * 3600.0
PROBE_TIMEOUT_S = 8.0
#: One round trip; each part is separated by a marker line so that a missing tool leaves its part empty.
PROBE = ("nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; echo '--skyplan--'; "
         "grep '^MemTotal:' /proc/meminfo; echo '--skyplan--'; "
         "command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader "
         "2>/dev/null || true")


@dataclass(frozen=True)
class Facts:
    cpus: float
    memory_gib: float
    gpus: tuple[tuple[str, float | None], ...] = ()


def parse_probe(text: str) -> Facts:
    """The facts in ``PROBE``'s output; ValueError when it is not that output."""
    from skyplan.clouds.local.catalog import memory_gib, parse_nvidia_smi

    parts = text.split("--skyplan--")
    if len(parts) != 3:
        raise ValueError(f"unexpected probe output: {text[:200]!r}")
    cpus = float(parts[0].strip().splitlines()[-1])
    mem = memory_gib(parts[1]) if "MemTotal" in parts[1] else 0.0
    return Facts(cpus, mem, tuple(parse_nvidia_smi(parts[2])))


def label(cpus: float, memory_gib: float, accelerator: str | None, count: float) -> str:
    """``8cpu-64gb`` or ``8cpu-64gb-A100x2``: the offer's instance type."""
    base = f"{cpus:g}cpu-{round(memory_gib):d}gb"
    return f"{base}-{accelerator}x{count:g}" if accelerator and count else base


def offer(host: Host, facts: Facts | None) -> Offer | None:
    """The offer of ``host``: its configured hardware over the probed ``facts``;
    None when something the config leaves out is unknown (no facts)."""
    from collections import Counter

    from skyplan.catalog.model import Offer

    cpus, mem, acc = host.cpus, host.memory_gib, host.accelerators
    device_mem = None
    if facts is not None:
        cpus = facts.cpus if cpus is None else cpus
        mem = facts.memory_gib if mem is None else mem
        if acc is None and facts.gpus:
            name, n = Counter(g for g, _ in facts.gpus).most_common(1)[0]
            acc = (name, float(n))
            mems = [m for g, m in facts.gpus if g == name and m is not None]
            device_mem = min(mems) if mems else None
        elif acc is None:
            acc = NO_ACCELERATORS
    if cpus is None or mem is None or acc is None:
        return None
    name, count = acc
    return Offer(cloud=CLOUD, instance_type=label(cpus, mem, name or None, count), region=host.pool, zone=host.zone,
                 vcpus=float(cpus), memory_gib=float(mem), accelerator=name or None, accelerator_count=float(count),
                 price=host.price, spot_price=None, device_memory_gib=device_mem)


# --- the cache --------------------------------------------------------------------------------


def cache_path() -> str:
    from skyplan import home

    return str(home.sub("ssh") / "hardware.json")


def _read_cache() -> dict[str, Any]:
    try:
        with open(cache_path(), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(data: dict[str, Any]) -> None:
    path = cache_path()
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
    os.replace(tmp, path)


def _cached(entry: Any, now: float) -> Facts | None:
    try:
        if now - float(entry["probed_at"]) > CACHE_TTL_S:
            return None
        return Facts(float(entry["cpus"]), float(entry["memory_gib"]),
                     tuple((str(n), None if m is None else float(m)) for n, m in entry.get("gpus") or ()))
    except (KeyError, TypeError, ValueError):
        return None


#: The probe itself: (host, timeout) -> the command's output. The node runtime's by default; tests swap it.
Prober = Callable[[Host, float], Awaitable[str]]


async def runtime_probe(host: Host, timeout_s: float) -> str:
    """Run ``PROBE`` on ``host`` through the node runtime (strict host-key checking)."""
    from skyplan.runtime.sync_api import open_node

    from skyplan.clouds.ssh.nodes import NO_SANDBOX, host_address

    node = open_node(host_address(host, rank=0, sandbox=NO_SANDBOX), fresh=True)  # closed below: not the shared one
    try:
        result = await node.exec(PROBE, timeout_s=timeout_s)
    finally:
        await node.close()
    if result.exit_code != 0:
        raise RuntimeError(f"the probe exited {result.exit_code}: {result.output[-300:]!r}")
    return result.output.decode("utf-8", "replace")


#: Why each host could not be probed in this process (host key -> reason), for messages;
#: such a host is not probed again by the same process (a failed probe is not cached on disk).
UNPROBED: dict[str, str] = {}


def facts_for(hosts: Iterable[Host], *, prober: Prober | None = None, now: float | None = None) -> dict[str, Facts]:
    """Facts of every host that needs them (hardware not all in the config), by
    ``Host.key``: from the cache while fresh, else probed (all at once) and cached."""
    import asyncio

    now = time.time() if now is None else now
    wanted = {h.key: h for h in hosts if not h.described}
    if not wanted:
        return {}
    cache = _read_cache()
    out: dict[str, Facts] = {}
    for key in wanted:
        f = _cached(cache.get(key), now)
        if f is not None:
            out[key] = f
    # A host that failed its probe in this process is not probed again by it: one
    # command asks for the offers several times (names, regions, the plan).
    missing = [h for k, h in wanted.items() if k not in out and k not in UNPROBED]
    if not missing:
        return out
    probe = prober or runtime_probe

    async def one(h: Host) -> tuple[Host, Any]:
        try:
            return h, await asyncio.wait_for(probe(h, PROBE_TIMEOUT_S), PROBE_TIMEOUT_S + 2)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the host unprobed, with its reason
            return h, exc

    async def all_() -> list[tuple[Host, Any]]:
        return list(await asyncio.gather(*(one(h) for h in missing)))

    from skyplan.runtime.sync_api import run

    changed = False
    for h, res in run(all_()):
        if isinstance(res, BaseException):
            # A RuntimeFailure's text starts with its code already; anything else gets its type.
            UNPROBED[h.key] = str(res) if hasattr(res, "code") else f"{type(res).__name__}: {res}"
            log.info("ssh host %s (pool %s) could not be probed: %s", h.zone, h.pool, UNPROBED[h.key])
            continue
        try:
            f = parse_probe(res)
        except ValueError as exc:
            UNPROBED[h.key] = str(exc)
            continue
        out[h.key] = f
        cache[h.key] = {"cpus": f.cpus, "memory_gib": f.memory_gib, "gpus": [list(g) for g in f.gpus],
                        "probed_at": now}
        changed = True
    if changed:
        _write_cache(cache)
    return out


def pool_offers(hosts: Iterable[Host], *, prober: Prober | None = None) -> tuple[Offer, ...]:
    """An offer per host whose hardware is known (configured or probed), in config order."""
    hosts = list(hosts)
    facts = facts_for(hosts, prober=prober)
    found = (offer(h, facts.get(h.key)) for h in hosts)
    return tuple(o for o in found if o is not None)
