"""What a cloud can do, and the defaults of the optional Cloud hooks.

Kept apart from ``base.py`` (the Protocol and the request types) because the
plan path asks every cloud for its capabilities at start-up: importing a
cloud's ``cloud.py`` must cost no more than this module.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer
    from skyplan.clouds.base import LogSource, ZoneAlias


@dataclass(frozen=True)
class Capabilities:
    """What a cloud can do. Defaults describe a public cloud sold through the catalog."""

    #: Its zones are real failover units (Azure's seed has none, so it says False).
    has_zones: bool = True
    #: It sells a spot (preemptible) market.
    offers_spot: bool = True
    #: One placement may hold several nodes.
    multi_node: bool = True
    #: It runs on this machine: no default VM size applies, no credentials are needed.
    runs_here: bool = False
    #: The simulator may stand in for it under ``--simulate``.
    simulatable: bool = False
    #: It IS the simulator: it stands in for the simulatable clouds.
    simulator: bool = False
    #: Its offers come from the VM catalog (False: the cloud gives them itself, see ``own_offers``).
    from_catalog: bool = True
    #: A candidate when the task names no cloud.
    default_candidate: bool = True
    #: Its clusters' task output can be read here (see ``log_source``).
    has_log_source: bool = False
    #: It can prove that an interrupted create left nothing (see ``resolve_interrupted``).
    proves_interrupted: bool = False
    #: Its program updates a node in place when only the task changed (setup, run, envs,
    #: secrets, workdir): the task is stopped, its workdir re-synced, and started again.
    #: Without it, a converging apply replaces the cluster instead.
    reruns_in_place: bool = False
    #: Its nodes are VMs that skyplan reaches over SSH once they are up: the program
    #: authorises the cluster's own key (``ProvisionRequest.ssh_public_key``) and
    #: exports each node's address (``public_ips``, ``ssh_user``, ``ssh_port``);
    #: after ``up``, the launch syncs and starts the task through the node runtime,
    #: and the cluster's logs and task state are read through it
    #: (``skyplan.provision.nodes``, ``skyplan.clouds.vmnodes``).
    nodes_over_ssh: bool = False
    #: Where its ``{name, mode: MOUNT}`` buckets live (``skyplan.clouds.buckets``): "dir"
    #: (a directory beside the node's sandbox, bound at the mount's exact path in a
    #: private mount namespace), an object store its program creates or attaches and
    #: its VMs mount ("s3", "gcs", "azure"), "program" (its program picks the store per
    #: placement and refuses one it cannot mount), or None: it cannot mount buckets.
    bucket_store: str | None = None
    #: Its nodes share this machine's network (they run in sandboxes here): a task
    #: that declares ports gets a free loopback port as ``$SKYPLAN_PORT``, picked as
    #: its node starts and exported as the node's ``port`` (``nodes[].port``), so
    #: several replicas of a service can listen at once. Without it the task's
    #: first declared port is ``$SKYPLAN_PORT``. ``CloudBase.endpoint`` reads either.
    loopback_ports: bool = False


@dataclass(frozen=True)
class InstanceState:
    """Where a refreshed Pulumi state tells a node's state, for a cloud whose own
    ``node_state`` cannot (``CloudBase.instance_state``; read by
    ``skyplan.clouds.instancestate``).

    ``type``: the resource type of one node (``aws:ec2/instance:Instance``);
    ``props``: dotted paths into that resource's outputs, tried in order (a list on
    the way fans out: ``instanceView.statuses.code``); ``states``: the values that
    mean ``running``, ``stopped`` or ``gone``. A value not listed is ``unknown``;
    a resource gone from the refreshed state is ``gone``.
    """

    type: str
    props: tuple[str, ...]
    states: Mapping[str, str]


class CloudBase:
    """Defaults for the optional hooks, so a cloud states only what differs."""

    name: str
    display: str
    capabilities: Capabilities = Capabilities()

    def own_offers(self) -> tuple[Offer, ...] | None:
        return None

    def seed_offers(self, seed_dir: Path) -> Iterable[Offer]:
        return ()

    def opt_in_zone(self, zone: str) -> bool:
        return False

    def scaled_zone(self, zone: str | None, k: int) -> str | None:
        # us-central1-a -> us-central1-x2-a (the region is replicated as us-central1-x2)
        if zone is None:
            return None
        head, letter = zone.rsplit("-", 1)
        return f"{head}-x{k}-{letter}"

    def zone_alias(self, zone: str) -> ZoneAlias | None:
        return None

    def zone_names(self, region: str, zones: Collection[str]) -> tuple[str, ...]:
        return ()

    def zone_name(self, zone: str, region: str, *, text: str = "",
                  outputs: Mapping[str, Any] | None = None) -> str | None:
        return None

    def quota_families(self, instance_type: str, accelerators: Mapping[str, float] | None = None) -> frozenset[str]:
        return frozenset()

    def resolve_interrupted(self, op: Any) -> bool:
        return False

    def leftovers(self, stack_prefix: str) -> tuple[tuple[str, str], ...]:
        """What this cloud still holds for the stacks whose names start with
        ``stack_prefix``, as (stack, description) pairs, whatever the Pulumi state
        says. Only clouds that see every resource they made from here
        (``proves_interrupted``) can answer; the others return ()."""
        return ()

    def remove_leftovers(self, stacks: Iterable[str]) -> None:
        """Delete what ``leftovers`` reports for exactly these stacks. Idempotent."""
        return None

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        return None

    def release_buckets(self, owner: str, since: float, zones: Collection[str | None]) -> tuple[str, ...]:
        """Delete the buckets made for managed job ``owner`` (its id) at or after
        ``since``, wherever this cloud keeps them (``zones``: where the job's runs
        were placed); keep every other (a bucket the user named has no owner). The
        names deleted. Never raises for a bucket it cannot reach (it is kept, and
        not named). See ``skyplan.clouds.buckets`` and ``skyplan.jobs.buckets``."""
        return ()

    def node_state(self, outputs: Mapping[str, Any]) -> str:
        """What this cloud itself says of the nodes of a stack that exported
        ``outputs``, asked apart from the nodes (the jobs controller asks when a
        node stops answering): ``running``, ``gone`` (deleted, preempted away, its
        processes vanished), ``stopped`` (a stopped or reclaimed VM) or ``unknown``
        (this cloud cannot tell cheaply: the controller waits out its grace period).
        Must not raise for outputs it does not recognise."""
        return "unknown"

    #: Set by a cloud whose stacks tell its nodes' state once refreshed: the jobs
    #: controller, after a check has failed (never on a healthy poll), refreshes the
    #: cluster's stack and reads it there instead of asking ``node_state``.
    instance_state: InstanceState | None = None

    def tick(self) -> list[dict[str, Any]]:
        """Do what this cloud does on its own, now (the simulator: preempt the
        nodes whose scenario preemption is due); returns what happened. The jobs
        controller calls it once per pass."""
        return []

    def node_addresses(self, outputs: Mapping[str, Any]) -> list[Any]:
        """How the node runtime reaches each node of a stack that exported
        ``outputs`` (``skyplan.runtime.protocol.NodeAddress``, by rank): what
        ``skyplan exec`` and ``skyplan ssh`` use. [] when unknown."""
        if self.capabilities.nodes_over_ssh:
            from skyplan.clouds.vmnodes import addresses

            return addresses(outputs)
        return []

    def endpoint(self, outputs: Mapping[str, Any], port: int) -> str | None:
        """The URL of a service replica listening on ``port`` on the head node of a
        stack that exported ``outputs``, as reached from this machine, or None when
        the outputs do not say (a stack from before, a cloud whose nodes are not
        reachable here). ``loopback_ports``: ``http://127.0.0.1:<the node's own
        port>``; otherwise the head node's address (``node_addresses``: a VM's public
        IP, an ssh host) with the declared ``port``. Must not raise."""
        try:
            if self.capabilities.loopback_ports:
                nodes = outputs.get("nodes") or []
                head = next((n for n in nodes if isinstance(n, Mapping) and int(n.get("rank") or 0) == 0), None)
                own = head.get("port") if head is not None else None
                return f"http://127.0.0.1:{int(own)}" if own else None
            addrs = self.node_addresses(outputs)
            host = str(getattr(addrs[0], "host", "") or "") if addrs else ""
            if not host or getattr(addrs[0], "transport", "ssh") != "ssh":
                return None
            return f"http://[{host}]:{int(port)}" if ":" in host else f"http://{host}:{int(port)}"
        except (TypeError, ValueError, AttributeError):
            return None

    #: It has a section of its own, under its name, in the config file (``check_config``).
    takes_config: bool = False

    def check_config(self, section: Any, config: Any, path: tuple[Any, ...]) -> list[Any]:
        """The findings (``Diagnostic``) about this cloud's section of the config
        file (``config``: a ``skyplan.config.ConfigFile``; ``path``: where the
        section is). Only called when ``takes_config``."""
        return []
