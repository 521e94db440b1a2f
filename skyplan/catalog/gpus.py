"""Data for ``skyplan show-gpus``: the CLI renders these rows, nothing here prints.

Both functions see the catalog as the planner does: AWS Local Zones are left
out, accelerator names match case-insensitively.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from skyplan.catalog.loader import Catalog

# The accelerators listed without --all: current data-centre GPUs most users ask
# for. Older or niche models (K80, M60, P4, P100, Radeon MI25 ...) need --all.
COMMON_ACCELERATORS: frozenset[str] = frozenset(
    {"A10", "A10G", "A100", "A100-80GB", "B200", "H100", "H100-MEGA", "H200", "L4", "L40S", "T4", "V100", "V100-32GB"}
)


@dataclass(frozen=True)
class GpuRow:
    """One instance type offering ``count`` x ``accelerator`` on one cloud.

    ``price``/``spot_price`` are the cheapest hourly prices over the regions in
    scope (None when no region publishes one). ``cheapest_region`` and
    ``cheapest_zone`` locate the cheapest on-demand price, or the cheapest spot
    price when no on-demand price exists.
    """

    cloud: str
    instance_type: str
    accelerator: str
    count: float
    device_memory_gib: float | None
    vcpus: float
    memory_gib: float
    price: float | None
    spot_price: float | None
    cheapest_region: str | None
    cheapest_zone: str | None = None


def list_accelerators(
    catalog: Catalog,
    clouds: Collection[str] | None = None,
    region: str | None = None,
    show_all: bool = False,
) -> dict[str, list[float]]:
    """Accelerator name -> the counts it comes in (sorted), names sorted.

    Without ``show_all`` only ``COMMON_ACCELERATORS`` are listed.
    """
    counts = catalog.accelerator_counts(clouds=clouds, region=region)
    if show_all:
        return counts
    return {k: v for k, v in counts.items() if k in COMMON_ACCELERATORS}


def _lt(a: float | None, b: float | None) -> bool:
    return a is not None and (b is None or a < b)


def accelerator_offers(
    catalog: Catalog,
    name: str,
    count: float | None = None,
    clouds: Collection[str] | None = None,
    region: str | None = None,
) -> list[GpuRow]:
    """One row per (cloud, instance type, count) offering ``name``, cheapest first.

    Sorted by on-demand price (rows without one last), then spot price, cloud
    and instance type. An unknown name gives an empty list.
    """
    offers = catalog.offers(clouds=clouds, region=region, accelerator=name, accelerator_count=count)
    best: dict[tuple[str, str, float], dict] = {}
    for o in offers:
        key = (o.cloud, o.instance_type, o.accelerator_count)
        b = best.get(key)
        if b is None:
            b = best[key] = {"offer": o, "price": None, "spot": None, "at": None, "at_spot": None}
        if _lt(o.price, b["price"]):
            b["price"], b["at"] = o.price, (o.region, o.zone)
        if _lt(o.spot_price, b["spot"]):
            b["spot"], b["at_spot"] = o.spot_price, (o.region, o.zone)
    rows: list[GpuRow] = []
    for b in best.values():
        o = b["offer"]
        where = b["at"] or b["at_spot"] or (None, None)
        rows.append(
            GpuRow(
                cloud=o.cloud,
                instance_type=o.instance_type,
                accelerator=o.accelerator or name,
                count=o.accelerator_count,
                device_memory_gib=o.device_memory_gib,
                vcpus=o.vcpus,
                memory_gib=o.memory_gib,
                price=b["price"],
                spot_price=b["spot"],
                cheapest_region=where[0],
                cheapest_zone=where[1],
            )
        )
    inf = float("inf")
    rows.sort(
        key=lambda r: (
            inf if r.price is None else r.price,
            inf if r.spot_price is None else r.spot_price,
            r.cloud,
            r.instance_type,
            r.count,
        )
    )
    return rows
