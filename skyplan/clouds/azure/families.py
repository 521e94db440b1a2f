"""Azure VM families: the per-family cores quota a VM size draws on.

Azure limits vCPUs per region twice: the regional total ("Total Regional Cores",
``cores``) and per VM family (``standardFSv2Family``, ``standardNCASv3_T4Family``).
A quota message names the family in one of several spellings ("Standard NCASv3_T4
Family", "StandardNCADSA100v4Family"); :func:`family_key` folds them to one key.

The family of a size is not in our catalog (Azure's resource SKU API has it), so
:func:`quota_families` derives it from the size name: series + feature letters +
extra tokens + version, in both orders Azure uses (``NCASv3_T4`` but ``NCADSA100v4``).
Some families drop letters (``ND40rs_v2`` is in ``standardNDSv2Family``); failover
covers those by also blocking the failing size's own key (see ``failover.block_for``).
"""

from __future__ import annotations

import re
from typing import Mapping

_SIZE = re.compile(r"^(Standard|Basic)_([A-Z]+)\d+(?:-\d+)?([a-z]*)((?:_[A-Za-z0-9]+)*)$")


def family_key(name: str) -> str | None:
    """``standardFSv2Family`` / ``Standard NCASv3_T4 Family`` -> ``fsv2`` / ``ncasv3t4``.

    None for the regional totals (``Total Regional Cores``, low-priority cores).
    """
    key = re.sub(r"[\s_]+", "", name).lower()
    if not key or key.startswith("totalregional") or "lowpriority" in key or key == "cores":
        return None
    key = key.removeprefix("standard").removesuffix("family")
    return key or None


def quota_families(instance_type: str, accelerators: Mapping[str, float] | None = None) -> frozenset[str]:
    """``Standard_NC4as_T4_v3`` -> {``ncasv3t4``, ``ncast4v3``}: the spellings of its family's key."""
    m = _SIZE.match(instance_type)
    if not m:
        return frozenset()
    # Basic sizes are in basicAFamily; Standard sizes' keys drop "standard".
    tier = "" if m.group(1) == "Standard" else m.group(1).lower()
    series, features, rest = tier + m.group(2).lower(), m.group(3), m.group(4)
    tokens = [t.lower() for t in rest.split("_") if t]
    versions = [t for t in tokens if re.fullmatch(r"v\d+", t)]
    extra = [t for t in tokens if t not in versions]
    base = series + features
    return frozenset({base + "".join(versions) + "".join(extra), base + "".join(extra) + "".join(versions)})
