"""AWS availability zones: IDs, names, Local Zones, and what a user's pin means.

The catalog stores AZ *IDs* (``use1-az1``), which name the same physical zone in
every account. AZ *names* (``us-east-1a``) are mapped to IDs per account, so a
name cannot be resolved offline. A pinned name therefore narrows only to its
region (and, for a Local Zone name, to that Local Zone group); see
``skyplan.catalog.loader`` for how offers are then merged.

Local Zones (``usw2-lax1-az1`` / ``us-west-2-lax-1a``) need an account opt-in,
so they are kept in the catalog but offered only when pinned.

Pure string functions: no I/O, no catalog access.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# ID: <region code>-az<N>, Local Zone ID: <region code>-<group><N>-az<N>.
# The region code is kept loose ([a-z0-9]+) so synthetic bench regions
# ("use1x2-az1") still parse the same way.
_ID = re.compile(r"^(?P<code>[a-z0-9]+)-(?:(?P<group>[a-z]+\d+)-)?az\d+$")

# Region: us-east-1, us-gov-west-1, eu-central-2 ...
_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+"
# Name: <region><letter>; Local Zone name: <region>-<city>-<N><letter>.
_NAME = re.compile(rf"^(?P<region>{_REGION})(?P<letter>[a-z])$")
_LOCAL_NAME = re.compile(rf"^(?P<region>{_REGION})-(?P<city>[a-z]+)-(?P<num>\d+)(?P<letter>[a-z])$")


def is_zone_id(s: str) -> bool:
    """True for an AZ ID such as ``use1-az1`` or ``usw2-lax1-az1``."""
    return _ID.match(s) is not None


def is_zone_name(s: str) -> bool:
    """True for an AZ name such as ``us-east-1a`` or ``us-west-2-lax-1a``."""
    return _NAME.match(s) is not None or _LOCAL_NAME.match(s) is not None


def is_local_zone(zone: str) -> bool:
    """True for a Local Zone, given either its ID or its name."""
    m = _ID.match(zone)
    if m is not None:
        return m.group("group") is not None
    return _LOCAL_NAME.match(zone) is not None


def local_group(zone: str) -> str | None:
    """The Local Zone group in ID spelling (``lax1``), from an ID or a name."""
    m = _ID.match(zone)
    if m is not None:
        return m.group("group")
    m = _LOCAL_NAME.match(zone)
    if m is not None:
        return f"{m.group('city')}{m.group('num')}"
    return None


def region_of_zone_name(name: str) -> str:
    """``us-east-1a`` -> ``us-east-1``; ``us-west-2-lax-1a`` -> ``us-west-2``.

    Raises ValueError when ``name`` is not an AZ name.
    """
    m = _NAME.match(name) or _LOCAL_NAME.match(name)
    if m is None:
        raise ValueError(f"not an AWS availability zone name: {name!r}")
    return m.group("region")


@dataclass(frozen=True)
class ZonePin:
    """What a user's ``zone:`` value selects in the AWS catalog.

    ``kind == "id"``: exactly that zone ID. ``kind == "name"``: every (non-local)
    zone of ``region``, or, when ``group`` is set, every zone of that Local Zone
    group in ``region``; offers are then merged into one per instance type.
    """

    text: str
    kind: str  # "id" | "name"
    region: str | None  # known for names only; IDs carry their region in the catalog
    group: str | None  # Local Zone group ("lax1") or None


def parse_zone_pin(zone: str) -> ZonePin | None:
    """Classify a pinned AWS zone; None when it is neither an ID nor a name."""
    m = _ID.match(zone)
    if m is not None:
        return ZonePin(zone, "id", None, m.group("group"))
    if _NAME.match(zone) or _LOCAL_NAME.match(zone):
        return ZonePin(zone, "name", region_of_zone_name(zone), local_group(zone))
    return None


# EC2 names the AZ a request asked for in its errors, in the account's own names:
# "... capacity in the Availability Zone you requested (us-east-1a)",
# "... is not supported in your requested Availability Zone (us-east-1c)".
_REQUESTED = re.compile(r"(?:Availability Zone you requested|requested Availability Zone) \(([a-z0-9-]+)\)")


def requested_zone_name(zone_id: str, region: str, text: str) -> str | None:
    """The account's name for AZ ``zone_id`` of ``region``, as EC2's own ``text``
    about a request in that AZ gives it; None when the text names no such zone.

    The name-to-ID mapping is per account, so only the provider can say it: a
    name is taken only from the phrase naming the requested AZ (not from the
    alternatives EC2 suggests), only if it is in ``region``, and only for an AZ
    of the same kind (a Local Zone ID gets a Local Zone name of its group)."""
    if not is_zone_id(zone_id) or not text:
        return None
    m = _REQUESTED.search(text)
    if m is None:
        return None
    name = m.group(1)
    if not is_zone_name(name) or region_of_zone_name(name) != region or local_group(name) != local_group(zone_id):
        return None
    return name


def zone_names(region: str, zone_ids: Iterable[str]) -> tuple[str, ...]:
    """The AZ names an account may have for a region whose zones are ``zone_ids``.

    Which name maps to which ID is per account, but the names of a region run
    from ``a`` up, one letter per zone, so ``us-east-1z`` names no zone of a
    region with six. One letter more than the count is allowed: older accounts
    keep a retired letter (``us-west-1b``/``c``, ``ap-northeast-1a``/``c``/``d``).
    Local Zones are named per group: ``usw2-lax1-az1`` is ``us-west-2-lax-1a``.
    """
    regular = 0
    groups: dict[str, int] = {}
    for zid in zone_ids:
        m = _ID.match(zid)
        if m is None:
            continue
        if m.group("group") is None:
            regular += 1
        else:
            groups[m.group("group")] = groups.get(m.group("group"), 0) + 1
    names = [f"{region}{chr(ord('a') + i)}" for i in range(min(regular + 1, 26) if regular else 0)]
    for group, n in sorted(groups.items()):
        g = re.fullmatch(r"([a-z]+)(\d+)", group)
        if g is not None:
            names += [f"{region}-{g.group(1)}-{g.group(2)}{chr(ord('a') + i)}" for i in range(min(n, 26))]
    return tuple(names)
