"""The normalised task as JSON data: what a plan file stores and hashes.

``task_to_dict`` emits every field, JSON types only, numbers in canonical form
(whole numbers as ints), so that equal tasks give byte-equal canonical JSON
and so equal ``task_sha256``. ``task_from_dict`` is its exact inverse and
rejects malformed input with InputError rather than a traceback.

Secrets are names only: every value is written as ``"<redacted>"``, whether the
task holds one or not, so neither a plan file nor the state database ever holds
a secret, and ``task_sha256`` changes when a secret is added, removed or renamed
but not when its value changes (a rotated token does not make a plan stale).
``task_from_dict`` therefore gives secrets without values, to be bound at
launch (``skyplan.spec.secrets``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from skyplan.errors import InputError
from skyplan.spec.models import (
    Accelerator,
    FileMount,
    Preference,
    Quantity,
    ReadinessProbe,
    ReplicaPolicy,
    REDACTED,
    ResourceRequest,
    Resources,
    Service,
    Task,
)
from skyplan.spec.parse import num


def task_to_dict(task: Task) -> dict[str, Any]:
    """The normalised task: JSON types only, deterministic, without ``source``."""
    return {
        "name": task.name,
        "workdir": task.workdir,
        "num_nodes": task.num_nodes,
        "resources": resources_to_dict(task.resources),
        "envs": dict(task.envs),
        "secrets": {name: REDACTED for name, _ in task.secrets},
        "file_mounts": [
            {"dst": m.dst, "source": m.source, "name": m.name, "store": m.store, "mode": m.mode}
            for m in task.file_mounts
        ],
        "setup": task.setup,
        "run": task.run,
        "service": _service_to_dict(task.service) if task.service is not None else None,
    }


def resources_to_dict(res: Resources) -> dict[str, Any]:
    return {"preference": res.preference.value, "candidates": [request_to_dict(r) for r in res.candidates]}


def request_to_dict(r: ResourceRequest) -> dict[str, Any]:
    return {
        "cloud": r.cloud,
        "region": r.region,
        "zone": r.zone,
        "instance_type": r.instance_type,
        "cpus": _quantity(r.cpus),
        "memory": _quantity(r.memory),
        "accelerators": [{"name": a.name, "count": num(a.count)} for a in r.accelerators],
        "accelerator_preference": r.accelerator_preference.value,
        "use_spot": r.use_spot,
        "max_hourly_cost": r.max_hourly_cost,
        "disk_size": r.disk_size,
        "ports": list(r.ports),
        "labels": dict(r.labels),
        "job_recovery": r.job_recovery,
        "max_restarts_on_errors": r.max_restarts_on_errors,
        # Only when set: a task without them hashes as before (plan files made by an
        # earlier version keep their task_sha256).
        **({"recover_on_exit_codes": list(r.recover_on_exit_codes)} if r.recover_on_exit_codes else {}),
        **({"backoff_limit": r.backoff_limit} if r.backoff_limit is not None else {}),
    }


def _quantity(q: Quantity | None) -> int | float | str | None:
    # the user's own notation: a bare number is exact, "N+" is at least N
    if q is None:
        return None
    return f"{num(q.value)}+" if q.at_least else num(q.value)


def _service_to_dict(s: Service) -> dict[str, Any]:
    p = s.readiness_probe
    rp = s.replica_policy
    return {
        "readiness_probe": {
            "path": p.path,
            "initial_delay_seconds": p.initial_delay_seconds,
            "timeout_seconds": p.timeout_seconds,
            "post_data": p.post_data,
            # Only when given: a task without them keeps the task_sha256 it had before they existed.
            **({"headers": dict(p.headers)} if p.headers else {}),
        },
        "replica_policy": None
        if rp is None
        else {
            "min_replicas": rp.min_replicas,
            "max_replicas": rp.max_replicas,
            "target_qps_per_replica": rp.target_qps_per_replica,
            "base_ondemand_fallback_replicas": rp.base_ondemand_fallback_replicas,
            "dynamic_ondemand_fallback": rp.dynamic_ondemand_fallback,
            "upscale_delay_seconds": rp.upscale_delay_seconds,
            "downscale_delay_seconds": rp.downscale_delay_seconds,
        },
        "replicas": s.replicas,
        **{k: v for k, v in (("load_balancing_policy", s.load_balancing_policy), ("max_surge", s.max_surge),
                             ("drain_timeout_seconds", s.drain_timeout_seconds)) if v is not None},
    }


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def task_sha256(task: Task) -> str:
    """sha256 (hex) of the canonical JSON of ``task_to_dict(task)``."""
    return hashlib.sha256(canonical_json(task_to_dict(task)).encode("utf-8")).hexdigest()


# --- the inverse ----------------------------------------------------------------


class _Bad(Exception):
    pass


def task_from_dict(d: Any) -> Task:
    """Rebuild a Task from ``task_to_dict`` output. Malformed input raises InputError."""
    try:
        return _task(d)
    except (_Bad, KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(
            f"the stored task is malformed: {detail}",
            hint="re-create the plan with `skyplan plan TASK.yaml --out PLAN.json`",
        ) from None


def _need(d: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(d, kind) or (isinstance(d, bool) and bool not in _as_tuple(kind)):
        raise _Bad(f"{what} has the wrong type")
    return d


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _opt(d: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    v = d.get(key)
    return None if v is None else _need(v, kind, key)


def _task(d: Any) -> Task:
    d = _need(d, dict, "task")
    service = d.get("service")
    return Task(
        name=_opt(d, "name", str),
        workdir=_opt(d, "workdir", str),
        num_nodes=_need(d["num_nodes"], int, "num_nodes"),
        resources=_resources(_need(d["resources"], dict, "resources")),
        envs=_pairs(d.get("envs"), "envs"),
        secrets=_secret_names(d.get("secrets")),
        file_mounts=tuple(
            FileMount(
                dst=_need(m["dst"], str, "file_mounts.dst"),
                source=_opt(m, "source", str),
                name=_opt(m, "name", str),
                store=_opt(m, "store", str),
                mode=_opt(m, "mode", str),
            )
            for m in _need(d.get("file_mounts") or [], list, "file_mounts")
        ),
        setup=_opt(d, "setup", str),
        run=_opt(d, "run", str),
        service=_service(_need(service, dict, "service")) if service is not None else None,
    )


def _resources(d: dict[str, Any]) -> Resources:
    candidates = tuple(_request(_need(c, dict, "candidate")) for c in _need(d["candidates"], list, "candidates"))
    if not candidates:
        raise _Bad("resources.candidates is empty")
    return Resources(candidates=candidates, preference=Preference(d["preference"]))


def _request(c: dict[str, Any]) -> ResourceRequest:
    accs = tuple(
        Accelerator(_need(a["name"], str, "accelerator name"), num(_need(a["count"], (int, float), "count")))
        for a in _need(c.get("accelerators") or [], list, "accelerators")
    )
    cost = _opt(c, "max_hourly_cost", (int, float))
    return ResourceRequest(
        cloud=_opt(c, "cloud", str),
        region=_opt(c, "region", str),
        zone=_opt(c, "zone", str),
        instance_type=_opt(c, "instance_type", str),
        cpus=_quantity_from(c.get("cpus")),
        memory=_quantity_from(c.get("memory")),
        accelerators=accs,
        accelerator_preference=Preference(c.get("accelerator_preference", Preference.CHEAPEST.value)),
        use_spot=_need(c.get("use_spot", False), bool, "use_spot"),
        max_hourly_cost=float(cost) if cost is not None else None,
        disk_size=_opt(c, "disk_size", int),
        ports=tuple(_need(p, int, "port") for p in _need(c.get("ports") or [], list, "ports")),
        labels=_pairs(c.get("labels"), "labels"),
        job_recovery=_opt(c, "job_recovery", str),
        max_restarts_on_errors=_opt(c, "max_restarts_on_errors", int),
        recover_on_exit_codes=tuple(_need(x, int, "exit code")
                                    for x in _need(c.get("recover_on_exit_codes") or [], list, "recover_on_exit_codes")),
        backoff_limit=_opt(c, "backoff_limit", int),
    )


def _quantity_from(v: Any) -> Quantity | None:
    if v is None:
        return None
    if isinstance(v, str):
        if not v.endswith("+"):
            raise _Bad(f"quantity {v!r} is not a number or 'N+'")
        return Quantity(float(v[:-1]), at_least=True)
    return Quantity(float(_need(v, (int, float), "quantity")), at_least=False)


def _pairs(d: Any, what: str) -> tuple[tuple[str, str], ...]:
    if d is None:
        return ()
    d = _need(d, dict, what)
    return tuple(sorted((_need(k, str, what), _need(v, str, what)) for k, v in d.items()))


def _secret_names(d: Any) -> tuple[tuple[str, None], ...]:
    if d is None:
        return ()
    d = _need(d, dict, "secrets")
    for name, value in d.items():
        if value != REDACTED:
            # Written by hand: the value would be used without the task_sha256 covering it.
            raise _Bad(f"secrets.{name} holds a value; a stored task holds {REDACTED!r} for every secret")
    return tuple(sorted((_need(k, str, "secrets"), None) for k in d))


def _service(d: dict[str, Any]) -> Service:
    p = _need(d["readiness_probe"], dict, "readiness_probe")
    rp = d.get("replica_policy")
    policy = None
    if rp is not None:
        rp = _need(rp, dict, "replica_policy")
        qps = _opt(rp, "target_qps_per_replica", (int, float))
        policy = ReplicaPolicy(
            min_replicas=_need(rp["min_replicas"], int, "min_replicas"),
            max_replicas=_opt(rp, "max_replicas", int),
            target_qps_per_replica=float(qps) if qps is not None else None,
            base_ondemand_fallback_replicas=_opt(rp, "base_ondemand_fallback_replicas", int),
            dynamic_ondemand_fallback=_opt(rp, "dynamic_ondemand_fallback", bool),
            upscale_delay_seconds=_opt(rp, "upscale_delay_seconds", int),
            downscale_delay_seconds=_opt(rp, "downscale_delay_seconds", int),
        )
    return Service(
        readiness_probe=ReadinessProbe(
            path=_need(p["path"], str, "readiness_probe.path"),
            initial_delay_seconds=_opt(p, "initial_delay_seconds", int),
            timeout_seconds=_opt(p, "timeout_seconds", int),
            post_data=_opt(p, "post_data", str),
            headers=tuple(sorted((_need(k, str, "readiness_probe.headers"), _need(v, str, "readiness_probe.headers"))
                                 for k, v in (_opt(p, "headers", dict) or {}).items())),
        ),
        replica_policy=policy,
        replicas=_opt(d, "replicas", int),
        load_balancing_policy=_opt(d, "load_balancing_policy", str),
        max_surge=_opt(d, "max_surge", int),
        drain_timeout_seconds=_opt(d, "drain_timeout_seconds", int),
    )
