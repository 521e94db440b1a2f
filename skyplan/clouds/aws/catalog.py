"""AWS seed rows -> Offers (build time).

One row is one instance type in one zone; the mapping is one-to-one. Zones stay
AZ IDs as published, Local Zones included (the loader hides them unless
pinned, see ``zones.py``). Empty prices stay None.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from skyplan.catalog.model import Offer
from skyplan.catalog.rows import gpu_memory_gib, opt_float

CLOUD = "aws"
SEED_FILE = "aws_vms.csv"


def offers_from_rows(rows: Iterable[dict[str, str]]) -> Iterator[Offer]:
    """Yield one Offer per seed row of ``aws_vms.csv``."""
    for r in rows:
        acc = r["AcceleratorName"].strip() or None
        yield Offer(
            cloud=CLOUD,
            instance_type=r["InstanceType"],
            region=r["Region"],
            zone=r["AvailabilityZone"] or None,
            vcpus=float(r["vCPUs"]),
            memory_gib=float(r["MemoryGiB"]),
            accelerator=acc,
            accelerator_count=(opt_float(r["AcceleratorCount"]) or 0.0) if acc else 0.0,
            price=opt_float(r["Price"]),
            spot_price=opt_float(r["SpotPrice"]),
            device_memory_gib=gpu_memory_gib(r["GpuInfo"]) if acc else None,
        )
