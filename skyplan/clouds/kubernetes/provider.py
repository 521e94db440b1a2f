"""The Kubernetes cloud's dynamic providers (see ``applypath.py`` for when each runs).

``KubeWorkload`` applies a placement's manifests with the Kubernetes Python
client and waits until the scheduler has placed its pods; ``KubeScheduled``
only waits (pulumi-kubernetes applied the manifests). A pod the scheduler
cannot place fails the create with its ``FailedScheduling`` message, which the
classifier reads as a capacity error of the cluster; ``KubeWorkload`` then
removes what it applied, so a failed create leaves nothing behind (the engine
records no resource for it).

Like the local provider, the classes live in an importable module (Pulumi
pickles providers by reference), hold no state and take everything from their
inputs: the kubeconfig path and context, the namespace, the manifests, and the
task's secret values (a Pulumi secret: encrypted in the checkpoint), which are
put into the Secret manifest here and nowhere else.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from skyplan import failpoints

#: Inputs of both resources.
INPUT_KEYS = ("kubeconfig", "context", "cluster", "namespace", "stack", "selector", "expected_pods",
              "schedule_timeout", "unschedulable_grace", "manifests", "secret_values")


def _api(props: dict[str, Any]) -> Any:
    from skyplan.clouds.kubernetes import client

    return client.api_client(props["kubeconfig"], props["context"])


def filled(manifests: list[dict[str, Any]], values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The manifests with the task's secret values in its Secret."""
    out = copy.deepcopy(list(manifests))
    for m in out:
        if m.get("kind") == "Secret" and m.get("apiVersion") == "v1":
            m["stringData"] = {k: str(v) for k, v in (values or {}).items()}
    return out


def _wait(api: Any, props: dict[str, Any]) -> list[dict[str, str]]:
    from skyplan.clouds.kubernetes import client

    return client.wait_scheduled(api, props["namespace"], props["selector"], int(props["expected_pods"]),
                                 timeout=float(props["schedule_timeout"]),
                                 unschedulable_grace=float(props["unschedulable_grace"]))


def remove(props: dict[str, Any]) -> None:
    """Delete the workload's objects and pods (absent ones are fine)."""
    from skyplan.clouds.kubernetes import client

    api = _api(props)
    try:
        client.delete(api, props.get("manifests") or [])
        client.delete_pods(api, props["namespace"], props["selector"])
    finally:
        api.close()


class _Base(ResourceProvider):
    serialize_as_secret_always = False
    applies = True

    def create(self, props: dict[str, Any]) -> CreateResult:
        from skyplan.clouds.kubernetes import client

        api = _api(props)
        try:
            try:
                if self.applies:
                    client.apply(api, filled(props.get("manifests") or [], props.get("secret_values")))
                    failpoints.hit("provider.created")  # applied; the engine does not know yet
                pods = _wait(api, props)
            except Exception as exc:
                text = client.describe(exc)
                if self.applies:
                    try:
                        remove(props)
                    except Exception as cleanup:  # the failure's text matters more; say both
                        text += f" (and removing what was applied failed: {client.describe(cleanup)})"
                raise Exception(text) from None
        finally:
            api.close()
        workload = (props.get("manifests") or [{}])[-1].get("metadata", {})
        return CreateResult(id_=f"{props['namespace']}/{workload.get('name', props['stack'])}",
                            outs={**{k: props.get(k) for k in INPUT_KEYS}, "pods": pods})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in INPUT_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from skyplan.clouds.kubernetes import client

        manifests = props.get("manifests") or []
        if not manifests:
            return ReadResult(id_=id_, outs=props)
        api = _api(props)
        try:
            if not client.exists(api, manifests[-1]):
                return ReadResult(id_="", outs={})  # gone: refresh drops it
        finally:
            api.close()
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if self.applies:
            remove(props)


class KubeWorkloadProvider(_Base):
    applies = True


class KubeScheduledProvider(_Base):
    applies = False


_OUTPUTS = {"pods": None}


class KubeWorkload(Resource, module="skyplan", name="KubeWorkload"):
    """A placement's manifests, applied with the Kubernetes client; its pods placed."""

    pods: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(KubeWorkloadProvider(), name, {**props, **_OUTPUTS}, opts)


class KubeScheduled(Resource, module="skyplan", name="KubeScheduled"):
    """The pods of manifests that pulumi-kubernetes applied, placed by the scheduler."""

    pods: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(KubeScheduledProvider(), name, {**props, **_OUTPUTS}, opts)


def resolve_interrupted(typ: str, inputs: dict[str, Any]) -> bool:
    """Remove a ``KubeWorkload`` whose create the engine never saw finish; True when done."""
    if not typ.endswith(":KubeWorkload") or not inputs.get("kubeconfig") or not inputs.get("manifests"):
        return False
    try:
        remove(inputs)
    except Exception:
        return False  # the cluster cannot tell now: not proven
    return True
