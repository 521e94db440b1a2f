"""The offer catalog: what can be bought where, and at what hourly price.

Public API (the planner and CLI use only this):
    load_catalog(path=None) -> Catalog
    Catalog.offers(...), .accelerator_names(), .canonical_accelerator(name),
    .regions(cloud), .zones(cloud, region), .instance_types(cloud=None),
    .accelerator_counts(clouds=None, region=None), .info
    skyplan.catalog.gpus: list_accelerators, accelerator_offers, GpuRow (show-gpus)
    Offer, CatalogInfo
"""

from __future__ import annotations

from skyplan.catalog.loader import Catalog, clear_cache, load_catalog
from skyplan.catalog.model import CatalogInfo, Offer

__all__ = ["Catalog", "CatalogInfo", "Offer", "clear_cache", "load_catalog"]
