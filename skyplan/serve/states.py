"""Service and replica states, and the typed records the serve store hands out.

Data only: no I/O. The store (``store.py``) persists these; the autoscaler and
the reconciler (``autoscaler.py``, ``reconcile.py``) are pure functions over
them; the controller (``controller.py``) acts on their decisions.

The JSON shapes here are the issue's Contract (``serve status NAME --json``):
a service is ``{"name", "version", "status", "endpoint", "replicas": [...]}``
and each replica ``{"id", "version", "status", "use_spot", "cloud", "region",
"zone", "cluster", "endpoint", "launched_at"}``. Other keys may be added after
those; none of them may be renamed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ReplicaStatus(str, enum.Enum):
    """A replica's state, spelled as ``serve status --json`` prints it."""

    PENDING = "PENDING"  # decided; waits for a launch slot
    PROVISIONING = "PROVISIONING"  # its cluster is being launched (planner + failover)
    STARTING = "STARTING"  # up; its readiness probe has not passed yet
    READY = "READY"  # passes its probe: in the load balancer's READY set
    NOT_READY = "NOT_READY"  # was READY, now fails its probe: out of the READY set; replaced if it stays so
    SHUTTING_DOWN = "SHUTTING_DOWN"  # out of the READY set: draining, then torn down
    FAILED = "FAILED"  # could not launch, its task ended, or never became ready: torn down, replaced
    PREEMPTED = "PREEMPTED"  # the cloud took its node: torn down, replaced

    @property
    def live(self) -> bool:
        """Serving or on its way to serving (what the replica cap counts)."""
        return self in LIVE


#: Replicas that serve or will serve: what ``max_replicas`` + surge bounds.
LIVE = frozenset({ReplicaStatus.PENDING, ReplicaStatus.PROVISIONING, ReplicaStatus.STARTING,
                  ReplicaStatus.READY, ReplicaStatus.NOT_READY})
#: Replicas whose cluster is being (or is to be) torn down.
LEAVING = frozenset({ReplicaStatus.SHUTTING_DOWN, ReplicaStatus.FAILED, ReplicaStatus.PREEMPTED})


class ServiceStatus(str, enum.Enum):
    CONTROLLER_INIT = "CONTROLLER_INIT"  # recorded; the controller and load balancer are starting
    REPLICA_INIT = "REPLICA_INIT"  # no longer set (NO_REPLICA says it); kept so that old rows still read
    READY = "READY"  # at least one replica READY
    NO_REPLICA = "NO_REPLICA"  # the controller is up, no replica READY (launching, or all gone: seed 002's 0/4)
    SHUTTING_DOWN = "SHUTTING_DOWN"  # ``serve down``: draining and tearing down every replica
    FAILED = "FAILED"  # the controller gave its version up (replicas kept failing; ``budget.py``); see its log
    CONTROLLER_FAILED = "CONTROLLER_FAILED"  # the controller process died and could not be restarted


@dataclass(frozen=True)
class ServeEvent:
    """One recorded transition of a replica (or of the service when ``replica_id`` is None)."""

    at: float  # unix time
    replica_id: int | None
    status: str  # a ReplicaStatus or ServiceStatus value
    reason: str


@dataclass(frozen=True)
class ReplicaRecord:
    service: str
    id: int  # 1.. per service, never reused
    version: int  # the service version it runs
    status: ReplicaStatus
    use_spot: bool  # the market it was launched for (a dynamic fallback replica is on-demand)
    cluster: str  # ``serve-<service>-<id>``
    cloud: str | None = None  # known once up
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    endpoint: str | None = None  # ``http://HOST:PORT`` once up
    launched_at: float | None = None  # unix time the launch began
    ready_at: float | None = None  # last time it became READY
    resources: str = ""  # one line, ``1x GCP([Spot]vCPU=2)`` style
    fallback: bool = False  # launched by dynamic_ondemand_fallback to stand in for a spot replica
    reason: str = ""  # why it is in its status (one line)

    def to_json(self) -> dict[str, object]:
        """The Contract's replica object. ``launched_at`` is ISO-8601 UTC, as every time
        skyplan's JSON carries (``skyplan.contract.utc_time``), or null before the launch."""
        from skyplan.contract import utc_time

        return {"id": self.id, "version": self.version, "status": self.status.value, "use_spot": self.use_spot,
                "cloud": self.cloud, "region": self.region, "zone": self.zone, "cluster": self.cluster,
                "endpoint": self.endpoint, "launched_at": utc_time(self.launched_at)}


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    version: int  # the newest version (``serve update`` adds one)
    status: ServiceStatus
    endpoint: str | None  # ``http://127.0.0.1:PORT``: the load balancer
    created_at: float
    controller_pid: int | None = None
    down_requested: bool = False
    replicas: tuple[ReplicaRecord, ...] = field(default_factory=tuple)  # gone ones left out

    def to_json(self) -> dict[str, object]:
        """The Contract's service object (``serve status NAME --json``)."""
        return {"name": self.name, "version": self.version, "status": self.status.value,
                "endpoint": self.endpoint, "replicas": [r.to_json() for r in self.replicas]}
