"""A task's ``service`` section with every default applied: ``service_config(task)``.

The one place serve's defaults live. The spec (``skyplan.spec``) keeps what the
user wrote (None for what they did not); the controller, the autoscaler, the
reconciler and the load balancer read this instead. Pure: no I/O.

Forms (seed 002): ``replicas: N`` is a fixed count (min = max = N); without
``replicas`` or ``replica_policy`` a service has one replica; a policy without
``max_replicas`` does not autoscale (max = min).
"""

from __future__ import annotations

from dataclasses import dataclass

from skyplan.errors import InputError
from skyplan.spec.models import Task

LB_POLICIES = ("least_load", "round_robin")
DEFAULT_UPSCALE_DELAY_S = 300.0
DEFAULT_DOWNSCALE_DELAY_S = 1200.0
DEFAULT_PROBE_INITIAL_DELAY_S = 1200.0
DEFAULT_PROBE_TIMEOUT_S = 15.0
DEFAULT_MAX_SURGE = 1
DEFAULT_DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServiceConfig:
    """What a service asks for, defaults applied.

    ``port``: the replicas' port (the task's first declared port; on clouds that
    run here each replica gets a free loopback port instead, as ``$SKYPLAN_PORT``).
    ``target_qps``: requests/s one replica should take; None: no autoscaling
    (the target stays ``min_replicas``). ``use_spot``: the service's replicas are
    spot, except ``base_ondemand`` of them and, with ``dynamic_fallback``, one
    on-demand stand-in per spot replica of the current version that is not READY.
    ``max_surge``: how many replicas a rolling update may run above
    ``max_replicas``. ``drain_timeout_s``: how long a leaving replica may finish
    its in-flight requests before its teardown.
    """

    port: int
    min_replicas: int
    max_replicas: int
    target_qps: float | None = None
    use_spot: bool = False
    probe_path: str = "/"
    upscale_delay_s: float = DEFAULT_UPSCALE_DELAY_S
    downscale_delay_s: float = DEFAULT_DOWNSCALE_DELAY_S
    base_ondemand: int = 0
    dynamic_fallback: bool = False
    probe_initial_delay_s: float = DEFAULT_PROBE_INITIAL_DELAY_S
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    probe_post_data: str | None = None
    probe_headers: tuple[tuple[str, str], ...] = ()
    lb_policy: str = "least_load"
    max_surge: int = DEFAULT_MAX_SURGE
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S


def service_config(task: Task) -> ServiceConfig:
    """The service of ``task`` with defaults applied. InputError (with a hint) when
    the task has no ``service`` section or declares no port; the spec's semantic
    checks refuse those at validate time, this guards tasks built in code."""
    svc = task.service
    where = task.source or "the task"
    if svc is None:
        raise InputError(f"{where} has no 'service' section",
                         hint="add `service: {readiness_probe: /health, replicas: 1}` and `resources: {ports: 8080}` "
                              "(README: Serve)")
    ports = next((c.ports for c in task.resources.candidates if c.ports), ())
    if not ports:
        raise InputError(f"the service in {where} declares no port",
                         hint="give `resources: {ports: 8080}`: the port the replicas listen on ($SKYPLAN_PORT)")
    policy = svc.replica_policy
    if svc.replicas is not None:
        lo = hi = svc.replicas
    elif policy is not None:
        lo = policy.min_replicas
        hi = policy.max_replicas if policy.max_replicas is not None else lo
    else:
        lo = hi = 1
    if hi < lo:
        raise InputError(f"max_replicas ({hi}) is below min_replicas ({lo}) in {where}",
                         hint="raise max_replicas or lower min_replicas")
    lb = svc.load_balancing_policy or "least_load"
    if lb not in LB_POLICIES:
        raise InputError(f"unknown load_balancing_policy '{lb}' in {where}", hint="use " + " or ".join(LB_POLICIES))
    probe = svc.readiness_probe

    def opt(value: float | int | None, default: float) -> float:
        return float(value) if value is not None else default

    base = policy.base_ondemand_fallback_replicas if policy is not None else None
    return ServiceConfig(
        port=int(ports[0]),
        min_replicas=int(lo),
        max_replicas=int(hi),
        target_qps=policy.target_qps_per_replica if policy is not None else None,
        use_spot=any(c.use_spot for c in task.resources.candidates),
        probe_path=probe.path,
        upscale_delay_s=opt(policy.upscale_delay_seconds if policy else None, DEFAULT_UPSCALE_DELAY_S),
        downscale_delay_s=opt(policy.downscale_delay_seconds if policy else None, DEFAULT_DOWNSCALE_DELAY_S),
        base_ondemand=int(base or 0),
        dynamic_fallback=bool(policy.dynamic_ondemand_fallback) if policy is not None else False,
        probe_initial_delay_s=opt(probe.initial_delay_seconds, DEFAULT_PROBE_INITIAL_DELAY_S),
        probe_timeout_s=opt(probe.timeout_seconds, DEFAULT_PROBE_TIMEOUT_S),
        probe_post_data=probe.post_data,
        probe_headers=tuple(probe.headers),
        lb_policy=lb,
        max_surge=int(svc.max_surge) if svc.max_surge is not None else DEFAULT_MAX_SURGE,
        drain_timeout_s=opt(svc.drain_timeout_seconds, DEFAULT_DRAIN_TIMEOUT_S),
    )
