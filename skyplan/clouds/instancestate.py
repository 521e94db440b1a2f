"""A node's state read from a refreshed Pulumi deployment (``InstanceState``).

The jobs controller asks a provider cloud about a node only after a status check
has failed; for the clouds that declare ``CloudBase.instance_state`` the answer is
the cluster's stack refreshed (``StackDriver.refreshed_state``) and read here.
Pure functions over the exported deployment, so every cloud's mapping is tested
without the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from skyplan.clouds.capabilities import InstanceState

RUNNING, STOPPED, GONE, UNKNOWN = "running", "stopped", "gone", "unknown"


def _values(data: Any, path: list[str]) -> Iterator[Any]:
    """Every value at ``path`` under ``data``; a list on the way fans out."""
    if isinstance(data, list):
        for item in data:
            yield from _values(item, path)
        return
    if not path:
        yield data
        return
    if isinstance(data, Mapping) and path[0] in data:
        yield from _values(data[path[0]], path[1:])


def resource_state(outputs: Mapping[str, Any], spec: InstanceState) -> str:
    """One node's state: the first value found along ``spec.props`` that
    ``spec.states`` names; ``unknown`` if none does."""
    for prop in spec.props:
        for value in _values(outputs, prop.split(".")):
            state = spec.states.get(str(value)) if isinstance(value, (str, int)) else None
            if state is not None:
                return state
    return UNKNOWN


def cluster_state(deployment: Mapping[str, Any] | None, spec: InstanceState) -> str:
    """What a refreshed deployment says of a cluster's nodes: ``gone`` when no
    node of ``spec.type`` is left (a refresh drops what the cloud deleted) or
    one is gone, else ``stopped`` when one is stopped (a node lost breaks the
    cluster), ``running`` when all are, ``unknown`` otherwise. ``None`` (no
    state could be read) is ``unknown``."""
    if deployment is None:
        return UNKNOWN
    nodes = [r for r in deployment.get("resources") or ()
             if isinstance(r, Mapping) and r.get("type") == spec.type and not r.get("delete")]
    if not nodes:
        return GONE
    states = [resource_state(r.get("outputs") or {}, spec) for r in nodes]
    for state in (GONE, STOPPED, UNKNOWN):
        if state in states:
            return state
    return RUNNING
