"""One replica's facts in words and bounds: its cluster, its RESOURCES line, where it
runs, the part of its plan one launch tries, and whether a failed launch found no
capacity. Pure functions for the controller (``skyplan.serve.controller``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from skyplan.errors import ProvisionFailed
from skyplan.jobs.executor import RunLog
from skyplan.jobs.states import Placement
from skyplan.serve.states import ReplicaRecord


def cluster_name(service: str, replica_id: int) -> str:
    """A replica's cluster (one per replica; ids are never reused)."""
    return f"serve-{service}-{int(replica_id)}"


def resources_line(num_nodes: int, cloud: str | None, use_spot: bool, vcpus: float | None = None) -> str:
    """``1x GCP([Spot]vCPU=2)``: what ``serve status`` shows under RESOURCES."""
    from skyplan.clouds import registry

    name = registry.display(cloud) if cloud else "-"
    inner = "[Spot]" if use_spot else ""
    if vcpus is not None:
        v = float(vcpus)
        inner += f"vCPU={int(v)}" if v.is_integer() else f"vCPU={v:g}"
    return f"{int(num_nodes)}x {name}({inner})"


def no_resource(exc: BaseException) -> bool:
    """Whether a failed launch found no capacity (or quota, or usable cloud) rather than
    failing on its own account: a ProvisionFailed counts only when no attempt met capacity."""
    if not isinstance(exc, ProvisionFailed):
        return True
    from skyplan.errors import Kind

    kinds = [a.classification.kind for a in getattr(exc, "attempts", ())
             if not getattr(a, "ok", False) and getattr(a, "classification", None) is not None]
    return not kinds or any(k in (Kind.CAPACITY, Kind.QUOTA) for k in kinds)


def first_candidates(plan: Any, most: int, runlog: RunLog | None) -> Any:
    """The plan's first ``most`` candidates (``SKYPLAN_SERVE_MAX_ATTEMPTS``): one launch
    stays short; the next one, replanned with the capacity memory, goes elsewhere."""
    cands = tuple(getattr(plan, "candidates", ()))
    if len(cands) <= most:
        return plan
    if runlog is not None:
        from skyplan.jobs.logs import note

        note(runlog, f"trying the first {most} of {len(cands)} candidates (SKYPLAN_SERVE_MAX_ATTEMPTS)")
    return dataclasses.replace(plan, candidates=cands[:most])


def torn_down_why(r: ReplicaRecord) -> str:
    """``preempted: the cloud says ...``: the status, then the reason, without saying it twice."""
    status = r.status.value.lower()
    reason = r.reason or ""
    return reason if reason.lower().startswith(status) else f"{status}: {reason}" if reason else status


def task_cloud(task: Any) -> str | None:
    clouds = {c.cloud for c in task.resources.candidates}
    return next(iter(clouds)) if len(clouds) == 1 else None


def resources_of(task: Any, plan: Any, p: Placement) -> str:
    """The RESOURCES line of a placed replica (its candidate's vCPUs)."""
    vcpus = None
    for c in getattr(plan, "candidates", ()):
        if (c.cloud, c.zone or c.region, c.instance_type, bool(c.use_spot)) == \
                (p.cloud, p.zone or p.region, p.instance_type, bool(p.use_spot)):
            vcpus = c.vcpus
            break
    return resources_line(getattr(task, "num_nodes", 1), p.cloud, p.use_spot, vcpus)


def where(p: Placement | None) -> str:
    if p is None:
        return "an unknown placement"
    place = "/".join(x for x in (p.cloud, p.region, p.zone) if x)
    return f"{place} ({p.instance_type or '?'}{', spot' if p.use_spot else ''})"


__all__ = ["cluster_name", "first_candidates", "no_resource", "resources_line", "resources_of", "task_cloud",
           "torn_down_why", "where"]
