"""The Kubernetes Python client, for one cluster of the config file: discovery
reads nodes through it, and where the pulumi-kubernetes plugin is missing the
dynamic provider applies manifests and waits for their pods through it.

Imported lazily (the client takes ~0.3 s to import): nothing on the plan path
imports this module unless a task names the kubernetes cloud.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from skyplan.errors import SkyplanError

#: Seconds any one API call may take.
REQUEST_TIMEOUT = 15


class KubeError(SkyplanError):
    """A cluster refused or could not serve a request. The message starts with a
    stable code that the classifier reads (``classify.py``)."""


def api_client(kubeconfig: str, context: str) -> Any:
    """An ApiClient for ``context`` of ``kubeconfig``; KubeError (KubeConfigInvalid) otherwise."""
    from kubernetes import config

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the loader raises ConfigException, FileNotFoundError, yaml errors...
        raise KubeError(f"KubeConfigInvalid: context '{context}' of {kubeconfig}: {exc}",
                        hint="check the cluster's kubeconfig and context in the config file") from None


def describe(exc: BaseException) -> str:
    """One line for an API or transport error, starting with a classifier code."""
    from kubernetes.client.rest import ApiException

    if isinstance(exc, KubeError):
        return exc.message
    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        try:
            import json

            body = json.loads(exc.body or "{}")
            reason = body.get("message") or reason
        except Exception:
            pass
        code = {401: "KubeUnauthorized", 403: "KubeForbidden", 404: "KubeNotFound", 409: "KubeConflict",
                422: "KubeInvalid", 429: "KubeThrottled"}.get(exc.status or 0, "KubeApiError")
        return f"{code}: HTTP {exc.status}: {reason}"
    return f"KubeUnreachable: {type(exc).__name__}: {exc}"


def request(api: Any, method: str, path: str, query: dict[str, str] | None = None) -> Any:
    """One raw API request; the response (read), None for 404, ApiException for other errors.
    Raw, not through the typed API classes: importing ``CoreV1Api`` alone costs seconds
    (hundreds of validated methods), too much for the plan path, ``status`` and ``logs``,
    which read a few fields."""
    from kubernetes.client.rest import ApiException

    req = api.param_serialize(method, path, query_params=list((query or {}).items()),
                              header_params={"Accept": "application/json, */*"}, auth_settings=["BearerToken"])
    try:
        resp = api.call_api(*req, _request_timeout=REQUEST_TIMEOUT)
        resp.read()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    if resp.status == 404:
        return None
    if resp.status >= 400:
        raise ApiException(status=resp.status, reason=resp.reason, http_resp=resp.response)
    return resp


def get_json(api: Any, path: str, query: dict[str, str] | None = None) -> dict[str, Any] | None:
    """GET ``path`` as plain JSON; None for 404."""
    import json

    resp = request(api, "GET", path, query)
    return None if resp is None else json.loads(resp.data)


def list_pods(api: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The pods of ``selector`` in ``namespace``, as the API's JSON."""
    got = get_json(api, f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})
    return list((got or {}).get("items") or [])


def pod_log(api: Any, namespace: str, pod: str) -> str:
    resp = request(api, "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log")
    return "" if resp is None else resp.data.decode("utf-8", "replace")


def list_nodes(api: Any) -> list[dict[str, Any]]:
    """The cluster's nodes as the API's JSON."""
    return list((get_json(api, "/api/v1/nodes") or {}).get("items") or [])


def list_nodepools(api: Any) -> list[dict[str, Any]]:
    """Karpenter NodePools (``karpenter.sh/v1``; AKS node auto-provisioning too), [] without the CRD."""
    return list((get_json(api, "/apis/karpenter.sh/v1/nodepools") or {}).get("items") or [])


# --- applying and removing manifests -----------------------------------------------------------------


def _resource(dyn: Any, manifest: dict[str, Any]) -> Any:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        return dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    except ResourceNotFoundError:
        raise KubeError(f"KubeOperatorMissing: the cluster serves no {manifest['kind']} "
                        f"({manifest['apiVersion']}): its operator (CRD) is not installed",
                        hint="install the operator on the cluster, or set the cluster's `operator` in the "
                             "config file") from None


def apply(api: Any, manifests: Iterable[dict[str, Any]], field_manager: str = "skyplan",
          dry_run: bool = False) -> list[dict[str, Any]]:
    """Server-side apply each manifest in order, unknown fields refused (``Strict``:
    a field the server's version does not know is an error, not silently dropped);
    returns the applied objects. ``dry_run``: validated and admitted, not stored."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    out = []
    for m in manifests:
        res = _resource(dyn, m)
        meta = m["metadata"]
        kw: dict[str, Any] = {"body": m, "name": meta["name"], "field_manager": field_manager,
                              "force_conflicts": True, "_request_timeout": REQUEST_TIMEOUT,
                              "query_params": [("fieldValidation", "Strict")]}
        if dry_run:
            kw["dry_run"] = "All"
        if res.namespaced:
            kw["namespace"] = meta.get("namespace") or "default"
        out.append(res.server_side_apply(**kw).to_dict())
    return out


def delete(api: Any, manifests: Iterable[dict[str, Any]]) -> None:
    """Delete each manifest's object (absent ones are fine), workloads with their pods."""
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    for m in reversed(list(manifests)):
        try:
            res = _resource(dyn, m)
        except KubeError:
            continue  # the kind is not served: nothing of it can exist
        meta = m["metadata"]
        kw: dict[str, Any] = {"name": meta["name"], "_request_timeout": REQUEST_TIMEOUT,
                              "propagation_policy": "Background"}
        if res.namespaced:
            kw["namespace"] = meta.get("namespace") or "default"
        try:
            res.delete(**kw)
        except ApiException as exc:
            if exc.status != 404:
                raise


def delete_pods(api: Any, namespace: str, selector: str) -> None:
    """Remove pods that the workload's deletion leaves behind (a Job's pods go in the background)."""
    request(api, "DELETE", f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})


def exists(api: Any, manifest: dict[str, Any]) -> bool:
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic import DynamicClient

    try:
        res = _resource(DynamicClient(api), manifest)
    except KubeError:
        return False
    meta = manifest["metadata"]
    try:
        if res.namespaced:
            res.get(name=meta["name"], namespace=meta.get("namespace") or "default", _request_timeout=REQUEST_TIMEOUT)
        else:
            res.get(name=meta["name"], _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# --- waiting for the pods --------------------------------------------------------------------------


def unschedulable(pod: Any) -> str | None:
    """The scheduler's reason a pod is not placed (``0/3 nodes are available: ...``), or
    None. ``pod``: the API's JSON, or the client's model."""
    if isinstance(pod, dict):
        conditions = [(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                      for c in (pod.get("status") or {}).get("conditions") or []]
    else:
        conditions = [(c.type, c.status, c.reason, c.message)
                      for c in ((pod.status.conditions or []) if pod.status else [])]
    for typ, status, reason, message in conditions:
        if typ == "PodScheduled" and status == "False" and reason == "Unschedulable":
            return message or "unschedulable"
    return None


def wait_scheduled(api: Any, namespace: str, selector: str, expected: int, *, timeout: float,
                   unschedulable_grace: float, sleep: Callable[[float], None] = time.sleep) -> list[dict[str, str]]:
    """Wait until ``expected`` pods matching ``selector`` are bound to nodes; returns
    ``[{pod, node}]`` sorted by pod name.

    KubeError ``KubeFailedScheduling`` when some pod has stayed unschedulable for
    ``unschedulable_grace`` seconds (its scheduler message kept: the classifier
    reads it as a capacity error), ``KubeScheduleTimeout`` after ``timeout``."""
    start = time.monotonic()
    first_unschedulable: dict[str, float] = {}
    while True:
        pods = [p for p in list_pods(api, namespace, selector) if not p["metadata"].get("deletionTimestamp")]
        bound = sorted(({"pod": p["metadata"]["name"], "node": p["spec"]["nodeName"]} for p in pods
                        if (p.get("spec") or {}).get("nodeName")), key=lambda d: d["pod"])
        if len(bound) >= expected:
            return bound
        now = time.monotonic()
        for p in pods:
            name = p["metadata"]["name"]
            why = unschedulable(p)
            if why is None:
                first_unschedulable.pop(name, None)
                continue
            since = first_unschedulable.setdefault(name, now)
            if now - since >= unschedulable_grace:
                raise KubeError(f"KubeFailedScheduling: pod {name} in {namespace}: FailedScheduling: {why}")
        if now - start > timeout:
            raise KubeError(f"KubeScheduleTimeout: {len(bound)} of {expected} pods of {selector} were placed "
                            f"in {timeout:.0f}s")
        sleep(0.5)
