"""Azure seed rows -> Offers (build time).

The seed is SkyPilot's **v6** Azure file: one row per instance type and region,
no zones, so every offer has ``zone=None``. Accelerator counts are kept as
floats because Azure sells partial GPUs (NV-series v4/v5 fractions). Its
``GpuInfo`` holds only the model name, so device memory is unknown (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from skyplan.catalog.model import Offer
from skyplan.catalog.rows import offer_from_row

CLOUD = "azure"
SEED_FILE = "azure_vms.csv"


def offers_from_rows(rows: Iterable[dict[str, str]]) -> Iterator[Offer]:
    """Yield one Offer per seed row of ``azure_vms.csv``."""
    for r in rows:
        yield offer_from_row(CLOUD, r, None)
