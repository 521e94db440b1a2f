"""Helpers for reading the seed CSVs (build time only).

The seed files are the public SkyPilot catalog CSVs, kept as published. These
helpers turn their cells into typed values without inventing any: an empty
cell is ``None``, never 0.
"""

from __future__ import annotations

import ast
import csv
import os
from collections.abc import Iterator
from functools import lru_cache

from skyplan.catalog.model import Offer

MIB_PER_GIB = 1024.0


def read_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, str]]:
    """Yield the rows of one seed CSV as header -> cell text."""
    with open(path, newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def opt_float(cell: str | None) -> float | None:
    """A numeric cell, or None when the source left it empty."""
    if cell is None:
        return None
    cell = cell.strip()
    return float(cell) if cell else None


@lru_cache(maxsize=None)
def gpu_memory_gib(gpu_info: str) -> float | None:
    """Per-device memory in GiB from a ``GpuInfo`` cell, when it carries one.

    AWS and GCP publish a Python-literal dict (``{'Gpus': [{'MemoryInfo':
    {'SizeInMiB': ...}}]}``) whose ``Gpus`` entries describe one device each.
    Azure's v6 file only has the model name there, so the answer is None.
    The cell set is tiny (a few dozen distinct strings), hence the cache.
    """
    text = gpu_info.strip()
    if not text.startswith("{"):
        return None
    try:
        info = ast.literal_eval(text)
        gpus = info["Gpus"]
        mib = gpus[0]["MemoryInfo"]["SizeInMiB"]
    except (ValueError, SyntaxError, KeyError, IndexError, TypeError):
        return None
    return float(mib) / MIB_PER_GIB


def offer_from_row(cloud: str, r: dict[str, str], zone: str | None) -> Offer:
    """One Offer from a v8-style row whose columns are named as in AWS's and
    Azure's seeds (InstanceType, AcceleratorName, ..., Price, SpotPrice)."""
    acc = r["AcceleratorName"].strip() or None
    return Offer(
        cloud=cloud,
        instance_type=r["InstanceType"],
        region=r["Region"],
        zone=zone,
        vcpus=float(r["vCPUs"]),
        memory_gib=float(r["MemoryGiB"]),
        accelerator=acc,
        accelerator_count=(opt_float(r["AcceleratorCount"]) or 0.0) if acc else 0.0,
        price=opt_float(r["Price"]),
        spot_price=opt_float(r["SpotPrice"]),
        device_memory_gib=gpu_memory_gib(r["GpuInfo"]) if acc else None,
    )
