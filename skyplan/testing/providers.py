"""Tiny Pulumi dynamic providers for engine tests and the failover bench.

The engine runs a dynamic provider in its own process (the
``pulumi-resource-pulumi-python`` shim) and unpickles the provider object
there; a class is pickled by reference to its module, so test providers must
live in an importable module like this one, not in a test file.

Behaviour is chosen by the resource's inputs, so one provider class serves every
test: ``fail`` (raise Exception with this text on create), ``hang`` (sleep
forever on create), ``fail_delete`` (raise this text on delete; with
``fail_delete_while``, only while that path exists, so a test can end the
failure), ``marker`` (a file path written on create and removed on delete, so a
test can see what really exists; a hanging create writes ``<marker>.started``
holding the provider's pid).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from pulumi import ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider


class ScriptedProvider(ResourceProvider):
    """Does what its inputs say; see the module docstring."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get("fail"):
            raise Exception(props["fail"])
        if props.get("hang"):
            marker = props.get("marker")
            if marker:
                # Written before hanging so that a test can tell the create started.
                with open(marker + ".started", "w") as fh:
                    fh.write(str(os.getpid()))
            while True:
                time.sleep(3600)
        marker = props.get("marker")
        if marker:
            with open(marker, "w") as fh:
                fh.write("live")
        return CreateResult(id_=uuid.uuid4().hex, outs=dict(props))

    def delete(self, id: str, props: dict[str, Any]) -> None:  # noqa: A002 (the SDK's name)
        gate = props.get("fail_delete_while")
        if props.get("fail_delete") and (not gate or os.path.exists(gate)):
            raise Exception(props["fail_delete"])
        marker = props.get("marker")
        if marker:
            try:
                os.remove(marker)
            except FileNotFoundError:
                pass

    def diff(self, id: str, old: dict[str, Any], new: dict[str, Any]) -> DiffResult:  # noqa: A002
        changed = sorted(k for k in set(old) | set(new) if k != "__provider" and old.get(k) != new.get(k))
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


class ScriptedResource(Resource):
    """A resource of ScriptedProvider; its inputs come back as outputs."""

    def __init__(self, name: str, props: dict[str, Any], opts: ResourceOptions | None = None) -> None:
        super().__init__(ScriptedProvider(), name, dict(props), opts)


def scripted_resource(name: str, **props: Any) -> ScriptedResource:
    """Register one ScriptedProvider resource (call inside a Pulumi program)."""
    return ScriptedResource(name, props)
