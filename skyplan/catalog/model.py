"""The offer model: one purchasable placement of one instance type.

An offer is one (cloud, instance type, region, zone) with its hardware and its
hourly on-demand and spot prices. ``zone`` is None where the catalog has no
zones (Azure's v6 snapshot). For AWS, ``zone`` is an AZ *ID* (``use1-az1``).
Prices are None where the source publishes none (then that market is not
offered). For GCP GPU offers, the price is host VM + GPUs, already summed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Offer:
    cloud: str
    instance_type: str
    region: str
    zone: str | None
    vcpus: float
    memory_gib: float
    accelerator: str | None  # canonical catalog name, e.g. "A100-80GB"
    accelerator_count: float  # 0 when no accelerator
    price: float | None  # on-demand $/hr
    spot_price: float | None  # spot $/hr
    device_memory_gib: float | None = None  # per accelerator, when known
    #: A host smaller than the default for the accelerators attached to it (a
    #: GCP N1 host, see skyplan/clouds/gcp/default_hosts.py). Set by the cloud's
    #: catalog mapping at build time; the planner offers it only to a task that
    #: sizes the host itself (cpus, memory or instance_type).
    undersized: bool = False

    def hourly(self, use_spot: bool) -> float | None:
        return self.spot_price if use_spot else self.price


@dataclass(frozen=True)
class CatalogInfo:
    """Provenance of a loaded catalog; recorded in every plan."""

    source: str  # e.g. "embedded:skypilot-catalog-v8-seed" or a file path
    fetched_at: str  # ISO date of the snapshot
    sha256: str  # hash of the catalog file's bytes
