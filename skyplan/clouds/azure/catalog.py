"""Azure seed rows -> Offers (build time).

The seed is SkyPilot's **v6** Azure file: one row per instance type and region,
no zones, so every offer has ``zone=None``. Accelerator counts are kept as
floats because Azure sells partial GPUs (NV-series v4/v5 fractions). Its
``GpuInfo`` holds only the model name, so device memory is unknown (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from skyplan.catalog.model import Offer
from skyplan.catalog.rows import gpu_memory_gib, opt_float

CLOUD = "azure"
SEED_FILE = "azure_vms.csv"


def offers_from_rows(rows: Iterable[dict[str, str]]) -> Iterator[Offer]:
    """Yield one Offer per seed row of ``azure_vms.csv``."""
    for r in rows:
        acc = r["AcceleratorName"].strip() or None
        yield Offer(
            cloud=CLOUD,
            instance_type=r["InstanceType"],
            region=r["Region"],
            zone=None,
            vcpus=float(r["vCPUs"]),
            memory_gib=float(r["MemoryGiB"]),
            accelerator=acc,
            accelerator_count=(opt_float(r["AcceleratorCount"]) or 0.0) if acc else 0.0,
            price=opt_float(r["Price"]),
            spot_price=opt_float(r["SpotPrice"]),
            device_memory_gib=gpu_memory_gib(r["GpuInfo"]) if acc else None,
        )
