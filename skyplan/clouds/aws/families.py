"""EC2 vCPU-limit buckets: which quota an instance type draws on.

EC2 limits running vCPUs per *bucket* of instance families, per region, and
separately for on-demand ("Running On-Demand G and VT instances") and spot ("All
G and VT Spot Instance Requests"). ``VcpuLimitExceeded`` says only "the instance
bucket that the specified instance type belongs to", so the bucket comes from the
failing type; a text that names a quota is normalised to the same key. There is no
regional total across buckets on EC2.
"""

from __future__ import annotations

import re
from typing import Mapping

#: Multi-letter family prefixes, checked before the one-letter table (hpc before h, dl before d ...).
_PREFIXES: tuple[tuple[str, str | None], ...] = (
    ("hpc", "HPC"), ("inf", "INF"), ("trn", "TRN"), ("dl", "DL"), ("vt", "G_VT"), ("mac", None), ("u", "HIGH_MEMORY"),
)
#: First letter of the family -> bucket key (the quota's name, normalised by :func:`family_key`).
_LETTERS: dict[str, str] = {
    **{letter: "STANDARD" for letter in "acdhimrtz"},
    "g": "G_VT", "p": "P", "f": "F", "x": "X",
}


def bucket_of(instance_type: str) -> str | None:
    """The vCPU-limit bucket of ``instance_type`` (``g4dn.xlarge`` -> ``G_VT``), None if unknown."""
    family = instance_type.split(".", 1)[0].lower()
    for prefix, bucket in _PREFIXES:
        if family.startswith(prefix):
            return bucket
    return _LETTERS.get(family[:1])


def family_key(name: str) -> str | None:
    """A quota's name, as AWS writes it, to the bucket key of :func:`bucket_of`.

    ``Running On-Demand G and VT instances``, ``All G and VT Spot Instance Requests``
    and ``G and VT`` all give ``G_VT``; ``Standard (A, C, D, H, I, M, R, T, Z)`` gives
    ``STANDARD``.
    """
    text = re.sub(r"^(?:Running On-Demand|All)\s+|\s+(?:instances|Spot Instance Requests)$", "", name.strip(),
                  flags=re.I)
    text = re.sub(r"\s*\(.*\)", "", text).strip()
    if not text:
        return None
    if re.fullmatch(r"(?i)G and VT", text):
        return "G_VT"
    return re.sub(r"\W+", "_", text).upper()


def quota_families(instance_type: str, accelerators: Mapping[str, float] | None = None) -> frozenset[str]:
    """The buckets a placement of ``instance_type`` draws on (one, or none if unknown)."""
    bucket = bucket_of(instance_type)
    return frozenset({bucket}) if bucket else frozenset()
