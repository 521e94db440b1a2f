"""Compute Engine quota families: the regional quotas a placement draws on.

Besides the regional total ``CPUS`` (which N1 and E2 draw on), most machine
series have their own CPU quota named ``<SERIES>_CPUS`` (``N2_CPUS``, ``C2_CPUS``,
``A2_CPUS``, ``G2_CPUS``), and each GPU model has ``NVIDIA_<MODEL>_GPUS``. Spot
VMs draw on the ``PREEMPTIBLE_`` variant where the project has one; the key drops
that prefix (the block keeps the market apart).
"""

from __future__ import annotations

from typing import Mapping

#: Quotas that are regional totals, not a family: they block the whole region.
REGIONAL_TOTALS = frozenset({"CPUS"})


def gpu_quota(accelerator: str) -> str:
    """``A100-80GB`` -> ``NVIDIA_A100_80GB_GPUS``."""
    return "NVIDIA_" + accelerator.upper().replace("-", "_") + "_GPUS"


def family_key(name: str) -> str | None:
    """A quota metric as the message names it -> its key (``PREEMPTIBLE_N2_CPUS`` -> ``N2_CPUS``).

    None for a regional total such as ``CPUS``.
    """
    key = name.strip().strip("'\"").upper().removeprefix("PREEMPTIBLE_")
    return None if not key or key in REGIONAL_TOTALS else key


def quota_families(instance_type: str, accelerators: Mapping[str, float] | None = None) -> frozenset[str]:
    """``n2-standard-8`` -> {N2_CPUS}; ``a2-highgpu-1g`` + A100 -> {A2_CPUS, NVIDIA_A100_GPUS}.

    N1 and E2 types also get ``N1_CPUS`` / ``E2_CPUS``, which no message names (they draw
    on ``CPUS``): harmless, and it keeps the rule one line.
    """
    series = instance_type.split("-", 1)[0].upper()
    keys = {f"{series}_CPUS"} if series else set()
    keys.update(gpu_quota(name) for name in (accelerators or {}))
    return frozenset(keys)
