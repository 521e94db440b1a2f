"""The contract every cloud implements. One folder per cloud; one table in registry.py.

A cloud supplies four things, all behind this small Protocol:
  * ``catalog``     how rows of the public v8 catalog become Offers (build time),
  * ``program``     the Pulumi program for one placement (lives in ``stacks/<cloud>``),
  * ``classify``    provider error text -> (kind, scope),
  * ``preflight``   is the provider plugin installed and are credentials found?
Pulumi modules are imported lazily inside ``program`` so the plan path never
pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from skyplan.errors import Classification


@dataclass(frozen=True)
class PreflightResult:
    ok: bool
    reason: str = ""  # why not, in one line
    fix: str = ""  # how to enable it
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProvisionRequest:
    """Everything a cloud program needs to build one placement.

    Plain, JSON-able values only: dynamic providers pickle their inputs, and the
    request is recorded in the state journal.
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
    setup: str | None = None
    run: str | None = None
    # sim only: the scenario file path (absolute) standing in for the real cloud.
    scenario: str | None = None


@runtime_checkable
class Cloud(Protocol):
    name: str  # "aws"
    display: str  # "AWS"
    #: True when the cloud's zones are real failover units (Azure's seed has none).
    has_zones: bool

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
