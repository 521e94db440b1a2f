"""What a task may name: clouds, regions, zones, instance types and accelerators,
as the catalog in use and the cloud registry know them.

The spec's catalog rules (``skyplan.spec.known``) ask these questions; this
module answers them from one catalog (the embedded one, ``--catalog FILE`` or
``$SKYPLAN_CATALOG``: whichever the command plans with) and from the clouds
whose offers are not in a catalog (``from_catalog`` False, such as ``local``),
which give their offers themselves. Zone spellings the catalog does not hold
(AWS AZ names) are each cloud's knowledge, through its ``zone_alias`` and
``zone_names`` hooks.

Every answer is a set lookup over an index the catalog builds once
(``Catalog.locations``), and nothing is computed for a question the task does
not raise: a task that names no region or zone never builds the index.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from skyplan.clouds import registry

if TYPE_CHECKING:
    from skyplan.catalog.loader import Catalog
    from skyplan.catalog.model import Offer


class KnownNames:
    """The names one catalog (plus the registry's own-offer clouds) holds."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._zone_names: dict[tuple[str, str], frozenset[str]] = {}
        self._counts: dict[tuple[str, ...], dict[str, list[float]]] = {}
        self._types: dict[str, frozenset[str]] = {}

    @property
    def source(self) -> str:
        """Where the catalog came from, for messages ("embedded:...", "file:/path")."""
        return self._catalog.info.source

    # -- clouds ------------------------------------------------------------------

    @cached_property
    def _in_catalog(self) -> frozenset[str]:
        return frozenset(self._catalog.cloud_names())

    def task_clouds(self) -> tuple[str, ...]:
        """Clouds a task may name: the registry's, except the simulator (it only
        stands in for others)."""
        return registry.with_capability(simulator=False)

    def is_catalog_cloud(self, cloud: str) -> bool:
        return registry.find(cloud) is None or registry.capabilities(cloud).from_catalog

    def has_offers(self, cloud: str) -> bool:
        """Whether ``cloud`` can have candidates at all with this catalog."""
        if self.is_catalog_cloud(cloud):
            return cloud in self._in_catalog
        return bool(self._own(cloud))

    def default_clouds(self) -> tuple[str, ...]:
        """The clouds of a task that names none (those with offers here)."""
        return tuple(c for c in registry.default_clouds() if self.has_offers(c))

    def no_offers_reason(self, cloud: str) -> str | None:
        """Why a cloud outside the catalog gives no offers, in its own words (an ssh
        cloud with no pool says where pools go), or None."""
        from skyplan.errors import InputError

        c = registry.find(cloud)
        if c is None or self.is_catalog_cloud(cloud):
            return None
        try:
            c.own_offers()
        except InputError as exc:
            return exc.message + (f" ({exc.hint})" if exc.hint else "")
        return None

    def _own(self, cloud: str) -> tuple[Offer, ...]:
        """``cloud``'s own offers, or none when it cannot give any (an ssh cloud with no
        pool): checking a name against every cloud must not fail on one that the task
        may not even use; the planner says what is missing when a task names it."""
        from skyplan.errors import InputError

        c = registry.find(cloud)
        if c is None:
            return ()
        try:
            return c.own_offers() or ()
        except InputError:
            return ()

    # -- regions and zones ---------------------------------------------------------

    def regions(self, cloud: str) -> frozenset[str]:
        if self.is_catalog_cloud(cloud):
            return frozenset(self._catalog.locations().get(cloud, {}))
        return frozenset(o.region for o in self._own(cloud))

    def zones(self, cloud: str, region: str | None = None) -> frozenset[str]:
        """``cloud``'s zones as the catalog spells them, in ``region`` or in all."""
        if not self.is_catalog_cloud(cloud):
            return frozenset(o.zone for o in self._own(cloud)
                             if o.zone is not None and region in (None, o.region))
        regions = self._catalog.locations().get(cloud, {})
        if region is not None:
            return regions.get(region, frozenset())
        return frozenset().union(*regions.values())

    def region_of(self, cloud: str, zone: str) -> str | None:
        """The region of a zone the catalog spells this way, or None."""
        for region, zones in self._catalog.locations().get(cloud, {}).items():
            if zone in zones:
                return region
        return None

    def zone_names(self, cloud: str, region: str) -> frozenset[str]:
        """Other spellings a user may pin for ``region``'s zones (the cloud's hook)."""
        key = (cloud, region)
        if key not in self._zone_names:
            c = registry.find(cloud)
            names = c.zone_names(region, self.zones(cloud, region)) if c is not None else ()
            self._zone_names[key] = frozenset(names)
        return self._zone_names[key]

    def alias_region(self, cloud: str, zone: str) -> str | None:
        """The region of this catalog that ``cloud`` reads a zone spelling the
        catalog does not hold to lie in (``us-east-1z`` -> us-east-1), or None."""
        c = registry.find(cloud)
        alias = c.zone_alias(zone) if c is not None else None
        return alias.region if alias is not None and alias.region in self.regions(cloud) else None

    def read_zone(self, cloud: str, zone: str) -> str | None:
        """The region of a pinned zone the catalog does not spell, when ``cloud``
        reads it (an AWS AZ name) and it names a zone that can exist; else None."""
        region = self.alias_region(cloud, zone)
        return region if region is not None and zone in self.zone_names(cloud, region) else None

    # -- hardware -------------------------------------------------------------------

    def instance_types(self, cloud: str) -> frozenset[str]:
        if cloud not in self._types:
            if self.is_catalog_cloud(cloud):
                self._types[cloud] = frozenset(self._catalog.instance_types(cloud))
            else:
                self._types[cloud] = frozenset(o.instance_type for o in self._own(cloud))
        return self._types[cloud]

    def accelerator(self, name: str, clouds: tuple[str, ...] = ()) -> str | None:
        """The canonical spelling of ``name`` (any case): the catalog's, or that of
        an own-offer cloud among ``clouds`` (``local`` offers this machine's GPUs)."""
        found = self._catalog.canonical_accelerator(name)
        if found is not None:
            return found
        low = name.strip().lower()
        for cloud in clouds:
            if not self.is_catalog_cloud(cloud):
                for o in self._own(cloud):
                    if o.accelerator is not None and o.accelerator.lower() == low:
                        return o.accelerator
        return None

    def accelerator_names(self) -> list[str]:
        return self._catalog.accelerator_names()

    def accelerator_counts(self, clouds: tuple[str, ...]) -> dict[str, list[float]]:
        """Accelerator -> the counts the catalog offers it in, on the catalog
        clouds among ``clouds`` (empty when there are none)."""
        key = tuple(sorted(c for c in clouds if self.is_catalog_cloud(c)))
        if key not in self._counts:
            self._counts[key] = self._catalog.accelerator_counts(clouds=key) if key else {}
        return self._counts[key]


def known_names(catalog: Catalog) -> KnownNames:
    """The names of ``catalog``, kept with it: built once per loaded catalog."""
    names = getattr(catalog, "_known_names", None)
    if names is None:
        names = KnownNames(catalog)
        catalog._known_names = names  # type: ignore[attr-defined]
    return names
