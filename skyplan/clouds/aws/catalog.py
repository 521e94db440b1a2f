"""AWS seed rows -> Offers (build time).

One row is one instance type in one zone; the mapping is one-to-one. Zones stay
AZ IDs as published, Local Zones included (the loader hides them unless
pinned, see ``zones.py``). Empty prices stay None.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from skyplan.catalog.model import Offer
from skyplan.catalog.rows import offer_from_row

CLOUD = "aws"
SEED_FILE = "aws_vms.csv"


def offers_from_rows(rows: Iterable[dict[str, str]]) -> Iterator[Offer]:
    """Yield one Offer per seed row of ``aws_vms.csv``."""
    for r in rows:
        yield offer_from_row(CLOUD, r, r["AvailabilityZone"] or None)
