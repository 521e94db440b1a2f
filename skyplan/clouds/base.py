"""The contract every cloud implements. One folder per cloud; one table in registry.py.

A cloud is recognised by what it declares, never by its name. It supplies:
  * ``capabilities``  what it can do (zones, spot, several nodes, runs here, can
                      be simulated, is the simulator, logs, proves interrupted
                      creates left nothing); the planner, the CLI, apply and the
                      sim ask these questions;
  * ``classify``      provider error text -> (kind, scope);
  * ``program``       the Pulumi program for one placement (``stacks/<cloud>/program.py``,
                      loaded by ``skyplan.clouds.programs``);
  * ``preflight``     is the provider plugin installed and are credentials found?
  * ``sample_error``  its usual error text for a sim outcome;
and optional hooks with safe defaults in :class:`CloudBase` (``capabilities.py``,
which the plan path imports alone): its own offers
(clouds outside the catalog), its catalog mapping (build time), zone spellings
the catalog does not hold, resolving an interrupted create, and a log source.

Pulumi modules are imported lazily inside ``program`` so the plan path never
pays for them; a cloud module itself must stay cheap to import (the registry
imports it to read ``capabilities``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from skyplan.clouds.capabilities import Capabilities, CloudBase
from skyplan.errors import Classification

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer

__all__ = ["Capabilities", "Cloud", "CloudBase", "LogSource", "PreflightResult", "ProvisionRequest", "SecretValues",
           "ZoneAlias"]


@dataclass(frozen=True)
class PreflightResult:
    ok: bool
    reason: str = ""  # why not, in one line
    fix: str = ""  # how to enable it
    details: dict[str, Any] = field(default_factory=dict)


class SecretValues(Mapping[str, str]):
    """The task's secrets, by name: read like a dict, but shown redacted, and
    refused by ``json`` and ``pickle``, so a request that is logged, journalled or
    pickled never carries a value along. Programs hand the values to Pulumi as
    secrets (``pulumi.Output.secret``), which the backend stores encrypted."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {str(k): str(v) for k, v in (values or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValues) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return "SecretValues(" + ", ".join(f"{k}=<redacted>" for k in sorted(self._values)) + ")"

    def __copy__(self) -> SecretValues:
        return self

    def __deepcopy__(self, memo: Any) -> SecretValues:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("SecretValues are not picklable")


@dataclass(frozen=True)
class ProvisionRequest:
    """Everything a cloud program needs to build one placement.

    Plain, JSON-able values (the request may be recorded in the state journal:
    use ``to_json``), except ``secrets``: values a program must pass to Pulumi
    only as secrets, never as plain inputs, outputs or names.
    """

    cluster: str
    stack: str
    cloud: str
    region: str
    zone: str | None
    instance_type: str
    use_spot: bool
    num_nodes: int = 1
    accelerators: dict[str, float] = field(default_factory=dict)
    disk_size: int | None = None
    ports: tuple[int, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    envs: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    #: ``file_mounts`` with a local source: destination -> the source's absolute
    #: path. Bucket and URL mounts are not here.
    file_mounts: dict[str, str] = field(default_factory=dict)
    #: The task's buckets (``skyplan.clouds.buckets``): ``{"dst", "name", "store",
    #: "owner"}`` each, by destination; the program mounts each at ``dst`` (see
    #: ``Capabilities.bucket_store``) and, creating one, records its ``owner`` (the
    #: managed job it is made for; "" for a bucket the user named).
    buckets: tuple[dict[str, Any], ...] = ()
    setup: str | None = None
    run: str | None = None
    # sim only: the scenario file path (absolute) standing in for the real cloud.
    scenario: str | None = None
    secrets: SecretValues = field(default_factory=SecretValues, repr=False)
    #: Changes whenever the task or its workdir's contents do (``converging.revision``).
    #: Clouds that re-run a task in place make it a node input, so that a new
    #: revision re-runs the task even when no other input changed.
    revision: str | None = None
    #: The cluster's own SSH public key (an OpenSSH ``ssh-ed25519 ...`` line), for
    #: clouds whose nodes skyplan reaches over SSH (``Capabilities.nodes_over_ssh``):
    #: the program authorises it for the login user. Only the public half ever
    #: reaches a program; the private key stays under the skyplan home
    #: (``skyplan.runtime.keys``).
    ssh_public_key: str | None = None
    #: What the task asks of each node ("4+" is 4), for clouds that place pods on
    #: shared nodes rather than whole VMs (Kubernetes requests); None: not asked.
    cpus: float | None = None
    memory_gib: float | None = None
    #: The task's restart budgets (``job_recovery``), for clouds whose workloads
    #: restart themselves (Kubernetes): ``backoff_limit`` counts every failure,
    #: evictions included (seed 004); ``max_restarts_on_errors`` the user's only.
    backoff_limit: int | None = None
    max_restarts_on_errors: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON data, with every secret value redacted."""
        import dataclasses

        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "secrets"}
        out["ports"] = list(self.ports)
        out["secrets"] = {name: "<redacted>" for name in self.secrets}
        return out


@dataclass(frozen=True)
class ZoneAlias:
    """A zone spelling the catalog does not hold, as a cloud reads it (e.g. an AWS
    AZ *name*, whose mapping to AZ IDs is per account).

    ``region`` is the region it lies in; ``covers(zone, opt_in)`` says whether a
    catalog zone of that region (``opt_in``: the catalog flags it as needing an
    account opt-in) may be the one meant. Offers found through an alias carry
    the alias as their zone."""

    text: str
    region: str
    covers: Callable[[str, bool], bool]


class LogSource(Protocol):
    """A cluster's task output, readable from this machine."""

    def lines(self) -> Iterator[str]:
        """Every node's log as it is now (lines end in newline)."""
        ...

    def follow(self) -> Iterator[str]:
        """Every node's log, interleaved as written, until the task ends on every
        node; with several nodes each line starts with ``(node-<rank>) ``."""
        ...

    def status(self) -> dict[str, Any] | None:
        """The task's state: ``{"phase", "returncode", ...}``, or None if unknown."""
        ...

    def node(self, rank: int) -> "LogSource | None":
        """The same source for the node of ``rank`` alone (no prefixes), or None when
        the cluster has no such node."""
        ...


@runtime_checkable
class Cloud(Protocol):
    name: str  # "aws"
    display: str  # "AWS"
    capabilities: Capabilities

    def classify(self, message: str) -> Classification:
        """Map one provider error text to a kind and scope. Never raises.

        Unknown text gives ``Kind.UNKNOWN`` with ``Scope.ZONE`` and the message
        kept verbatim.
        """
        ...

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        """Return the Pulumi inline program that builds ``request``."""
        ...

    def preflight(self) -> PreflightResult:
        """Check the provider plugin and credentials, without network calls."""
        ...

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        """The provider's usual error text for a sim outcome (capacity, quota, auth,
        invalid, transient), filled in for ``request``. Used by the sim cloud so the
        real classifier runs."""
        ...

    def own_offers(self) -> tuple[Offer, ...] | None:
        """The offers this cloud gives itself (``capabilities.from_catalog`` False);
        None for a catalog cloud."""
        ...

    def seed_offers(self, seed_dir: Path) -> Iterable[Offer]:
        """Build time: this cloud's offers from its seed file in ``seed_dir``
        (nothing for a cloud outside the catalog)."""
        ...

    def opt_in_zone(self, zone: str) -> bool:
        """Build time: a zone that needs an account opt-in, hidden from plans unless pinned."""
        ...

    def scaled_zone(self, zone: str | None, k: int) -> str | None:
        """Build time (benchmark catalogs): the name of ``zone``'s k-th replica."""
        ...

    def zone_alias(self, zone: str) -> ZoneAlias | None:
        """Plan time: how to read a pinned zone the catalog does not hold, or None."""
        ...

    def zone_names(self, region: str, zones: Collection[str]) -> tuple[str, ...]:
        """Validation: the other names a user may pin for the zones of ``region``,
        whose zones the catalog spells ``zones`` (AWS: the AZ names of its AZ IDs).
        A pinned zone the catalog does not hold is valid only if ``zone_alias``
        reads it and it is among these; did-you-mean hints choose among both."""
        ...

    def zone_name(self, zone: str, region: str, *, text: str = "",
                  outputs: Mapping[str, Any] | None = None) -> str | None:
        """Display: the name people know ``zone`` of ``region`` by, when the catalog
        spells it otherwise (AWS: an AZ ID such as ``use1-az1``) and the name is
        known from the provider itself: its error ``text`` about a request there,
        or a stack's ``outputs``. None when the catalog's spelling is the name,
        or the name is unknown (AWS names differ per account)."""
        ...

    def quota_families(self, instance_type: str, accelerators: Mapping[str, float] | None = None) -> frozenset[str]:
        """The quota families a placement of ``instance_type`` draws on (VM family,
        EC2 vCPU bucket, GPU model), in the form its classifier's family-scoped
        verdicts name them; empty when the cloud has none or does not know."""
        ...

    def resolve_interrupted(self, op: Any) -> bool:
        """Make sure a resource whose create was interrupted does not exist.

        ``op`` is a ``skyplan.provision.protocol.InterruptedOp`` (``type``,
        ``inputs``). True means it is gone (or never was); False: not this
        cloud's resource, or it cannot tell (real clouds cannot)."""
        ...

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        """The task output of a cluster whose stack exported ``outputs``, or None."""
        ...
