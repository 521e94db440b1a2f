"""The one table of clouds. Adding a cloud means a folder, a program and a row here.

Rows name the cloud's class as ``"module:Class"``, so a cloud's module is
imported only when that cloud is asked about. Everything else asks this module
questions (which clouds come from the catalog, which one simulates the others,
how to print a name) instead of spelling cloud names out.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING

from skyplan.clouds.capabilities import Capabilities
from skyplan.errors import InputError

if TYPE_CHECKING:
    from skyplan.clouds.base import Cloud

CLOUDS: dict[str, str] = {
    "aws": "skyplan.clouds.aws.cloud:AWS",
    "gcp": "skyplan.clouds.gcp.cloud:GCP",
    "azure": "skyplan.clouds.azure.cloud:Azure",
    "local": "skyplan.clouds.local.cloud:Local",
    "sim": "skyplan.clouds.sim.cloud:Sim",
    "ssh": "skyplan.clouds.ssh.cloud:Ssh",
    "kubernetes": "skyplan.clouds.kubernetes.cloud:Kubernetes",
}


@lru_cache(maxsize=None)
def get(name: str) -> Cloud:
    """The cloud called ``name``; InputError naming the known clouds otherwise."""
    try:
        module, _, cls = CLOUDS[name].partition(":")
    except (KeyError, TypeError):
        raise InputError(f"unknown cloud '{name}' (known: {', '.join(CLOUDS)})") from None
    return getattr(importlib.import_module(module), cls)()


def find(name: str | None) -> Cloud | None:
    """The cloud called ``name``, or None for an unknown name (a custom catalog may hold one)."""
    return get(name) if name in CLOUDS else None


def names() -> tuple[str, ...]:
    """Every cloud, in table order."""
    return tuple(CLOUDS)


def with_capability(**wanted: bool) -> tuple[str, ...]:
    """The clouds whose capabilities have every given value, in table order:
    ``with_capability(from_catalog=True)``."""
    unknown = set(wanted) - set(Capabilities.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown capabilities: {', '.join(sorted(unknown))}")
    return tuple(n for n in CLOUDS if all(getattr(get(n).capabilities, k) == v for k, v in wanted.items()))


def capabilities(name: str) -> Capabilities:
    return get(name).capabilities


def catalog_clouds() -> tuple[str, ...]:
    """Clouds whose offers come from the VM catalog."""
    return with_capability(from_catalog=True)


def default_clouds() -> tuple[str, ...]:
    """The candidates of a task that names no cloud."""
    return with_capability(default_candidate=True)


def simulatable() -> tuple[str, ...]:
    """Clouds the simulator may stand in for."""
    return with_capability(simulatable=True)


def is_simulatable(name: str | None) -> bool:
    cloud = find(name)
    return cloud is not None and cloud.capabilities.simulatable


def simulator() -> Cloud:
    """The cloud that stands in for the simulatable ones."""
    (name,) = with_capability(simulator=True)
    return get(name)


def runner(name: str, simulate: bool) -> Cloud:
    """The cloud that really runs a placement on ``name``: the simulator when
    simulating a cloud it can stand in for, else ``name`` itself."""
    cloud = get(name)
    return simulator() if simulate and cloud.capabilities.simulatable else cloud


def display(name: str | None) -> str:
    """How to print a cloud's name ("AWS"); an unknown name prints as itself."""
    cloud = find(name)
    return cloud.display if cloud is not None else str(name)
