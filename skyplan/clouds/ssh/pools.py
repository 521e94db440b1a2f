"""The ``ssh:`` section of the config file: pools of machines reached over SSH.

```yaml
ssh:
  pools:
    lab:                                    # a pool: `resources: {cloud: ssh, region: lab}`
      known_hosts: ~/.ssh/known_hosts       # optional (this default): host keys are checked strictly
      cpus: 8                               # optional, for every host of the pool (a host's own value wins)
      hosts:
        - {host: 10.0.0.5, user: ubuntu, identity_file: ~/.ssh/id_ed25519}
        - {host: gpu2.lab, port: 2222, user: me, identity_file: ~/.ssh/lab,
           memory_gib: 64, accelerators: "A100:2", price: 1.5}
```

Hardware a host does not state (``cpus``, ``memory_gib``, ``accelerators``) is
probed over SSH on first use and cached (``hardware.py``); ``price`` defaults to 0.
A host's zone (its name in plans, `zone:` pins and stack names) is ``host``, or
``host:port`` for a port other than 22, and is unique within its pool.

Pure: parsing and checking only; ``check_config`` is what ``skyplan.config``
calls for the section, ``pools()`` what the cloud reads.
"""

from __future__ import annotations

import getpass
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyplan.config import ConfigFile
    from skyplan.errors import Diagnostic

POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
HOST_KEYS = ("host", "port", "user", "identity_file", "cpus", "memory_gib", "accelerators", "price", "known_hosts")
HARDWARE_KEYS = ("cpus", "memory_gib", "accelerators", "price", "known_hosts")
POOL_KEYS = ("hosts",) + HARDWARE_KEYS


@dataclass(frozen=True)
class Host:
    """One machine of a pool. Hardware left None is probed."""

    pool: str
    host: str
    port: int = 22
    user: str = ""
    identity_file: str | None = None
    known_hosts: str = DEFAULT_KNOWN_HOSTS
    cpus: float | None = None
    memory_gib: float | None = None
    accelerators: tuple[str, float] | None = None  # (name, count)
    price: float = 0.0

    @property
    def zone(self) -> str:
        return self.host if self.port == 22 else f"{self.host}:{self.port}"

    @property
    def key(self) -> str:
        """The machine's identity in the allocation ledger (a machine in two pools is one machine)."""
        return f"{self.host}:{self.port}"

    @property
    def described(self) -> bool:
        """Whether the config states all of its hardware (no probe needed)."""
        return self.cpus is not None and self.memory_gib is not None and self.accelerators is not None


@dataclass(frozen=True)
class Pool:
    name: str
    hosts: tuple[Host, ...]

    def host(self, zone: str) -> Host | None:
        return next((h for h in self.hosts if h.zone == zone), None)


def check(section: Any, config: ConfigFile, path: tuple[Any, ...]) -> list[Diagnostic]:
    """Every finding about the ``ssh:`` section."""
    return _parse(section, config, path)[1]


def pools(config: ConfigFile | None = None) -> dict[str, Pool]:
    """The pools of the config file (checked: a bad file raises ConfigError)."""
    if config is None:
        from skyplan.config import read_config

        config = read_config()
    section = config.data.get("ssh")
    return _parse(section, config, ("ssh",))[0] if section is not None else {}


def _parse(section: Any, config: ConfigFile, path: tuple[Any, ...]) -> tuple[dict[str, Pool], list[Diagnostic]]:
    found: list[Diagnostic] = []
    out: dict[str, Pool] = {}
    if not isinstance(section, dict):
        return out, [config.diagnostic(path, "'ssh' is a mapping with 'pools': {NAME: {hosts: [...]}}")]
    for key in section:
        if key != "pools":
            found.append(config.diagnostic(path + (key,), f"unknown key '{key}' (ssh takes 'pools')",
                                           _close(key, ("pools",))))
    raw_pools = section.get("pools")
    if not isinstance(raw_pools, dict) or not raw_pools:
        found.append(config.diagnostic(path + ("pools",), "'pools' is a mapping of pool names to {hosts: [...]}"))
        return out, found
    for name, raw in raw_pools.items():
        at = path + ("pools", name)
        if not POOL_NAME.match(str(name)):
            found.append(config.diagnostic(at, f"pool name '{name}' must be letters, digits, '-' or '_' "
                                               "(it is the region of your tasks)"))
            continue
        if not isinstance(raw, dict):
            found.append(config.diagnostic(at, "a pool is a mapping with 'hosts'"))
            continue
        for key in raw:
            if key not in POOL_KEYS:
                found.append(config.diagnostic(at + (key,), f"unknown key '{key}' (a pool takes "
                                               f"{', '.join(POOL_KEYS)})", _close(key, POOL_KEYS)))
        defaults = _hardware(raw, config, at, found)
        hosts_raw = raw.get("hosts")
        if not isinstance(hosts_raw, list) or not hosts_raw:
            found.append(config.diagnostic(at + ("hosts",), "'hosts' is a list of {host, user, identity_file, port}"))
            continue
        hosts: list[Host] = []
        for i, h in enumerate(hosts_raw):
            host = _host(str(name), h, config, at + ("hosts", i), defaults, found)
            if host is None:
                continue
            if any(o.zone == host.zone for o in hosts):
                found.append(config.diagnostic(at + ("hosts", i), f"host '{host.zone}' is listed twice in pool "
                                               f"'{name}'"))
                continue
            hosts.append(host)
        out[str(name)] = Pool(str(name), tuple(hosts))
    return out, found


def _host(pool: str, raw: Any, config: ConfigFile, at: tuple[Any, ...], defaults: dict[str, Any],
          found: list[Diagnostic]) -> Host | None:
    if isinstance(raw, str):  # "user@host" or "host" is a fine shorthand for a default port
        user, _, name = raw.rpartition("@")
        raw = {"host": name, **({"user": user} if user else {})}
    if not isinstance(raw, dict):
        found.append(config.diagnostic(at, "a host is a mapping: {host: NAME, user: USER, identity_file: PATH}"))
        return None
    n = len(found)
    for key in raw:
        if key not in HOST_KEYS:
            found.append(config.diagnostic(at + (key,), f"unknown key '{key}' (a host takes {', '.join(HOST_KEYS)})",
                                           _close(key, HOST_KEYS)))
    name = raw.get("host")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.:\[\]-]+$", name or "") or name.startswith("-"):
        found.append(config.diagnostic(at + ("host",), "'host' is a host name or an IP address"))
    port = raw.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        found.append(config.diagnostic(at + ("port",), "'port' is a whole number from 1 to 65535"))
    user = raw.get("user", None)
    if user is not None and (not isinstance(user, str) or not re.match(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$", user)):
        found.append(config.diagnostic(at + ("user",), "'user' is a login name"))
    ident = raw.get("identity_file")
    if ident is not None and (not isinstance(ident, str) or not ident.strip()):
        found.append(config.diagnostic(at + ("identity_file",), "'identity_file' is the path of a private key"))
    hw = {**defaults, **_hardware(raw, config, at, found)}
    if len(found) > n:
        return None
    return Host(
        pool=pool, host=name, port=port, user=user or getpass.getuser(),
        identity_file=config.resolve_path(ident) if ident else None,
        known_hosts=hw.get("known_hosts") or config.resolve_path(DEFAULT_KNOWN_HOSTS),
        cpus=hw.get("cpus"), memory_gib=hw.get("memory_gib"), accelerators=hw.get("accelerators"),
        price=float(hw.get("price") or 0.0),
    )


def _hardware(raw: dict[str, Any], config: ConfigFile, at: tuple[Any, ...], found: list[Diagnostic]) -> dict[str, Any]:
    """The hardware keys of a pool or host mapping that are present, checked."""
    out: dict[str, Any] = {}
    for key in ("cpus", "memory_gib", "price"):
        if key not in raw:
            continue
        v = raw[key]
        low = 0 if key == "price" else 1e-9
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low:
            what = "a number >= 0 (per hour)" if key == "price" else "a positive number"
            found.append(config.diagnostic(at + (key,), f"'{key}' is {what}"))
        else:
            out[key] = float(v)
    if "accelerators" in raw:
        acc = parse_accelerators(raw["accelerators"])
        if acc is None:
            found.append(config.diagnostic(at + ("accelerators",), "'accelerators' is NAME:COUNT ('A100:2'), "
                                           "{NAME: COUNT}, or 'none'"))
        else:
            out["accelerators"] = acc
    if "known_hosts" in raw:
        v = raw["known_hosts"]
        if not isinstance(v, str) or not v.strip():
            found.append(config.diagnostic(at + ("known_hosts",), "'known_hosts' is the path of a known_hosts file"))
        else:
            out["known_hosts"] = config.resolve_path(v)
    return out


#: ``accelerators`` of a host without any: ``none`` in the file, the empty pair here.
NO_ACCELERATORS: tuple[str, float] = ("", 0.0)


def parse_accelerators(value: Any) -> tuple[str, float] | None:
    """``"A100:2"``, ``"A100"`` (one), ``{A100: 2}`` -> ("A100", 2.0); ``none``/``{}``
    -> NO_ACCELERATORS; anything else None."""
    if value is None or value == {} or (isinstance(value, str) and value.strip().lower() == "none"):
        return NO_ACCELERATORS
    if isinstance(value, dict) and len(value) == 1:
        ((name, count),) = value.items()
    elif isinstance(value, str):
        name, _, raw = value.partition(":")
        try:
            count = float(raw) if raw else 1.0
        except ValueError:
            return None
    else:
        return None
    if (not isinstance(name, str) or not name.strip() or isinstance(count, bool)
            or not isinstance(count, (int, float)) or not math.isfinite(count) or count <= 0):
        return None
    return name.strip(), float(count)


def _close(word: Any, choices: tuple[str, ...]) -> str | None:
    import difflib

    found = difflib.get_close_matches(str(word), choices, n=1)
    return found[0] if found else None
