"""Build frozen models from a document that passed the schema and semantic checks.

Nothing here reports errors: input reaching this module is valid, and the
parsers it shares with ``semantic`` cannot fail on it.
"""

from __future__ import annotations

import json
from typing import Any

from skyplan.spec import parse
from skyplan.spec.models import (
    Accelerator,
    FileMount,
    Preference,
    ReadinessProbe,
    ReplicaPolicy,
    ResourceRequest,
    Resources,
    Secret,
    Service,
    Task,
)
from skyplan.spec.source import PathT

#: Resource fields an any_of / ordered entry may override.
OVERRIDABLE = (
    "cloud", "region", "zone", "instance_type", "cpus", "memory", "accelerators", "use_spot",
    "max_hourly_cost", "disk_size", "ports", "labels", "job_recovery",
)


def build_task(data: dict[str, Any] | None, raw: dict[PathT, str], source: str | None) -> Task:
    """A Task from validated data. ``raw`` holds source text of non-string scalars by path."""
    data = data or {}
    num_nodes = data.get("num_nodes")
    service = data.get("service")
    return Task(
        name=data.get("name"),
        workdir=data.get("workdir"),
        num_nodes=1 if num_nodes is None else int(num_nodes),
        resources=build_resources(data.get("resources") or {}, raw),
        envs=_string_pairs(data.get("envs"), raw, ("envs",)),
        secrets=_secrets(data.get("secrets"), raw),
        file_mounts=_file_mounts(data.get("file_mounts")),
        setup=data.get("setup"),
        run=data.get("run"),
        service=_service(service) if service is not None else None,
        source=source,
    )


def build_resources(res: dict[str, Any], raw: dict[PathT, str] | None = None) -> Resources:
    """Merge each any_of / ordered entry over the base fields: one request per entry."""
    raw = raw or {}
    base = {k: v for k, v in res.items() if k in OVERRIDABLE and v is not None}
    for key, preference in (("ordered", Preference.ORDERED), ("any_of", Preference.CHEAPEST)):
        entries = res.get(key)
        if entries:
            requests = []
            for i, entry in enumerate(entries):
                merged = dict(base)
                merged.update({k: v for k, v in entry.items() if v is not None})
                # labels from an entry win, but their raw text lives under the entry's path
                where = ("resources", key, i) if "labels" in entry and entry["labels"] is not None else ("resources",)
                requests.append(_request(merged, raw, where))
            return Resources(candidates=tuple(requests), preference=preference)
    return Resources(candidates=(_request(base, raw, ("resources",)),), preference=Preference.CHEAPEST)


def _request(f: dict[str, Any], raw: dict[PathT, str], at: PathT) -> ResourceRequest:
    accelerators, acc_pref = _accelerators(f.get("accelerators"))
    jr = f.get("job_recovery")
    strategy, restarts, codes, backoff = None, None, (), None
    if isinstance(jr, str):
        strategy = parse.parse_job_recovery(jr)
    elif isinstance(jr, dict):
        strategy = parse.parse_job_recovery(jr["strategy"]) if jr.get("strategy") is not None else None
        restarts = jr.get("max_restarts_on_errors")
        restarts = int(restarts) if restarts is not None else None
        codes = tuple(sorted({int(c) for c in jr.get("recover_on_exit_codes") or ()}))
        # seed 004 (AIchor) spells it backoffLimit; semantic refuses both at once
        backoff = jr.get("backoff_limit", jr.get("backoffLimit"))
        backoff = int(backoff) if backoff is not None else None
    cost = f.get("max_hourly_cost")
    disk = f.get("disk_size")
    return ResourceRequest(
        cloud=f.get("cloud"),
        region=f.get("region"),
        zone=f.get("zone"),
        instance_type=f.get("instance_type"),
        cpus=parse.parse_quantity(f["cpus"]) if f.get("cpus") is not None else None,
        memory=parse.parse_quantity(f["memory"]) if f.get("memory") is not None else None,
        accelerators=accelerators,
        accelerator_preference=acc_pref,
        use_spot=bool(f.get("use_spot") or False),
        max_hourly_cost=float(cost) if cost is not None else None,
        disk_size=int(disk) if disk is not None else None,
        ports=parse.parse_ports(f["ports"]) if f.get("ports") is not None else (),
        labels=_string_pairs(f.get("labels"), raw, at + ("labels",)),
        job_recovery=strategy,
        max_restarts_on_errors=restarts,
        recover_on_exit_codes=codes,
        backoff_limit=backoff,
    )


def _accelerators(acc: Any) -> tuple[tuple[Accelerator, ...], Preference]:
    """A string is one accelerator; a mapping/set is 'any, cheapest first'; a list is ordered."""
    if acc is None:
        return (), Preference.CHEAPEST
    if isinstance(acc, str):
        return (parse.parse_accelerator(acc),), Preference.CHEAPEST
    if isinstance(acc, dict):
        return tuple(parse.parse_accelerator(k, v) for k, v in acc.items()), Preference.CHEAPEST
    return tuple(parse.parse_accelerator(item) for item in acc), Preference.ORDERED


def _string_pairs(mapping: dict[str, Any] | None, raw: dict[PathT, str], at: PathT) -> tuple[tuple[str, str], ...]:
    if not mapping:
        return ()
    pairs = []
    for key, value in mapping.items():
        text = value if isinstance(value, str) else raw.get(at + (key,), parse.scalar_text(value))
        pairs.append((key, text))
    return tuple(sorted(pairs))


def _secrets(mapping: dict[str, Any] | None, raw: dict[PathT, str]) -> tuple[tuple[str, Secret | None], ...]:
    """A null value stays None: the secret is declared here and given at launch."""
    if not mapping:
        return ()
    texts = dict(_string_pairs({k: v for k, v in mapping.items() if v is not None}, raw, ("secrets",)))
    return tuple(sorted((k, Secret(texts[k]) if k in texts else None) for k in mapping))


def _file_mounts(mounts: dict[str, Any] | None) -> tuple[FileMount, ...]:
    if not mounts:
        return ()
    out = []
    for dst, spec in sorted(mounts.items()):
        if isinstance(spec, str):
            out.append(FileMount(dst=dst, source=spec))
        else:
            out.append(
                FileMount(
                    dst=dst,
                    source=spec.get("source"),
                    name=spec.get("name"),
                    store=spec.get("store"),
                    mode=spec.get("mode"),
                )
            )
    return tuple(out)


def _service(s: dict[str, Any]) -> Service:
    probe = s["readiness_probe"]
    if isinstance(probe, str):
        readiness = ReadinessProbe(path=probe)
    else:
        post = probe.get("post_data")
        if post is not None and not isinstance(post, str):
            # kept as canonical JSON text so the frozen model holds no mutable dict
            post = json.dumps(post, sort_keys=True, separators=(",", ":"))
        readiness = ReadinessProbe(
            path=probe["path"],
            initial_delay_seconds=_opt_int(probe.get("initial_delay_seconds")),
            timeout_seconds=_opt_int(probe.get("timeout_seconds")),
            post_data=post,
            headers=tuple(sorted((str(k), str(v)) for k, v in (probe.get("headers") or {}).items())),
        )
    policy = s.get("replica_policy")
    replica_policy = None
    if policy is not None:
        qps = policy.get("target_qps_per_replica")
        dyn = policy.get("dynamic_ondemand_fallback")
        replica_policy = ReplicaPolicy(
            min_replicas=int(policy["min_replicas"]),
            max_replicas=_opt_int(policy.get("max_replicas")),
            target_qps_per_replica=float(qps) if qps is not None else None,
            base_ondemand_fallback_replicas=_opt_int(policy.get("base_ondemand_fallback_replicas")),
            dynamic_ondemand_fallback=bool(dyn) if dyn is not None else None,
            upscale_delay_seconds=_opt_int(policy.get("upscale_delay_seconds")),
            downscale_delay_seconds=_opt_int(policy.get("downscale_delay_seconds")),
        )
    return Service(readiness_probe=readiness, replica_policy=replica_policy, replicas=_opt_int(s.get("replicas")),
                   load_balancing_policy=s.get("load_balancing_policy"), max_surge=_opt_int(s.get("max_surge")),
                   drain_timeout_seconds=_opt_int(s.get("drain_timeout_seconds")))


def _opt_int(v: Any) -> int | None:
    return int(v) if v is not None else None
