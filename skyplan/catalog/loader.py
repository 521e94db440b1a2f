"""Load the offer catalog and answer queries over it.

The planner calls exactly ``load_catalog()`` and ``Catalog.offers(...)``. The file
is the columnar format written by ``skyplan.catalog.build``; loading parses it
once and builds no Offer objects. A query first selects matching *shapes*
(cloud, instance type, hardware, accelerator) and only then walks the offers of
those shapes, so the cost of a query follows the size of its answer, not the
size of the catalog.

Zone semantics:
  * A pinned zone the catalog holds matches exactly (GCP zones, AWS AZ IDs,
    Local Zone IDs too). A cloud without zones in the catalog (Azure's seed)
    never matches a pinned zone.
  * A pinned zone the catalog does not hold is offered to each cloud's
    ``zone_alias`` hook (AWS reads AZ *names* such as ``us-east-1a``, whose
    mapping to IDs is per account). An alias selects the zones it covers in its
    region and yields one offer per instance type with ``zone`` set to the
    given text: the on-demand price (uniform per region) and, conservatively,
    the highest spot price among those zones.
  * Zones flagged as needing an account opt-in at build time (AWS Local Zones)
    appear only when pinned.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from pathlib import Path

from skyplan.catalog.model import CatalogInfo, Offer
from skyplan.errors import InputError

ENV_VAR = "SKYPLAN_CATALOG"
FORMAT = "skyplan-offers/1"
EMBEDDED = Path(__file__).resolve().parent / "data" / "offers.json"

_cache: dict[str, Catalog] = {}


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Load a catalog file, cached per process and path.

    ``path=None`` uses ``$SKYPLAN_CATALOG`` when set, else the config file's
    ``catalog``, else the embedded catalog.
    Raises InputError when the file is missing or not a skyplan catalog.
    """
    embedded = False
    if path is None:
        from skyplan.config import setting

        env = setting("catalog")
        if env:
            path = env
        else:
            path, embedded = EMBEDDED, True
    key = os.path.abspath(os.fspath(path))
    cat = _cache.get(key)
    if cat is None:
        cat = _cache[key] = _read(Path(key), embedded)
    return cat


def clear_cache() -> None:
    """Forget loaded catalogs (tests, or after rewriting a catalog file)."""
    _cache.clear()


def _read(path: Path, embedded: bool) -> Catalog:
    from skyplan.errors import SpecError
    from skyplan.spec import bounded

    try:  # a regular file of bounded size: a FIFO or /dev/zero must not block or fill memory
        data = bounded.read_bytes(path, bounded.CATALOG)
    except SpecError as exc:
        raise InputError(
            f"cannot read catalog {path}: {exc.diagnostics[0].message}",
            hint=f"unset {ENV_VAR} to use the embedded catalog, or build one with python -m skyplan.catalog.build",
        ) from None
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
        source = f"embedded:{doc['source']}" if embedded else f"file:{path}"
        info = CatalogInfo(source=source, fetched_at=str(doc["fetched_at"]), sha256=hashlib.sha256(data).hexdigest())
        return Catalog(doc, info)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(
            f"{path} is not a skyplan offer catalog ({exc})",
            hint="build one with python -m skyplan.catalog.build --out FILE",
        ) from None


class Catalog:
    """Every offer of one catalog file, queryable without pandas."""

    #: offers() takes min/max vCPU and memory bounds (the planner passes them).
    supports_bounds = True

    info: CatalogInfo

    def __init__(self, doc: dict, info: CatalogInfo) -> None:
        """``doc`` is a parsed ``skyplan-offers/1`` file; use ``load_catalog``."""
        self.info = info
        t = doc["tables"]
        self._clouds: list[str] = t["cloud"]
        self._regions: list[str] = t["region"]
        self._zones: list[str] = t["zone"]
        self._itypes: list[str] = t["instance_type"]
        self._accs: list[str] = t["accelerator"]
        s = doc["shapes"]
        self._s_cloud: list[int] = s["cloud"]
        self._s_itype: list[int] = s["instance_type"]
        self._s_vcpus: list[float] = s["vcpus"]
        self._s_mem: list[float] = s["memory_gib"]
        self._s_acc: list[int] = s["accelerator"]
        self._s_count: list[float] = s["accelerator_count"]
        self._s_devmem: list[float | None] = s["device_memory_gib"]
        # Absent from files built before the column existed: no host is undersized.
        self._s_small: list[int] = s.get("undersized") or [0] * len(s["cloud"])
        self._s_start: list[int] = s["start"]
        o = doc["offers"]
        self._o_region: list[int] = o["region"]
        self._o_zone: list[int] = o["zone"]
        self._o_price: list[float | None] = o["price"]
        self._o_spot: list[float | None] = o["spot_price"]
        n_shapes = len(self._s_cloud)
        n_offers = len(self._o_region)
        if len(self._s_start) != n_shapes + 1 or self._s_start[-1] != n_offers:
            raise ValueError("shape offsets do not match the offer columns")
        # -1 means "no zone": index -1 of this list is the trailing False.
        self._local: list[bool] = [False] * (len(self._zones) + 1)
        for z in doc["local_zones"]:
            self._local[z] = True
        self._acc_by_lower = {a.lower(): a for a in self._accs}
        self._acc_idx = {a: i for i, a in enumerate(self._accs)}
        self._itype_idx = {t: i for i, t in enumerate(self._itypes)}
        self._region_idx = {r: i for i, r in enumerate(self._regions)}
        self._zone_idx = {z: i for i, z in enumerate(self._zones)}
        self.counts: dict[str, int] = dict(doc.get("counts", {}))
        self._locations: dict[str, dict[str, frozenset[str]]] | None = None

    # -- queries ---------------------------------------------------------------

    def offers(
        self,
        *,
        clouds: Collection[str] | None = None,
        region: str | None = None,
        zone: str | None = None,
        instance_type: str | None = None,
        accelerator: str | None = None,
        accelerator_count: float | None = None,
        cpu_only: bool = False,
        min_vcpus: float | None = None,
        max_vcpus: float | None = None,
        min_memory_gib: float | None = None,
        max_memory_gib: float | None = None,
    ) -> list[Offer]:
        """Offers matching every given filter.

        ``clouds=None`` means every cloud in the file. ``accelerator`` matches the
        canonical name case-insensitively; ``cpu_only`` keeps offers without an
        accelerator. ``instance_type`` is matched exactly. ``zone``: see the
        module docstring (AWS IDs vs names, Local Zones). Offers whose prices
        are both None are included; ``Offer.hourly`` tells which markets exist.

        The optional vCPU/memory bounds (inclusive) are applied per instance
        shape before any Offer is built: a cheap way to narrow a large catalog
        ("4+" is ``min_vcpus=4``, exactly 4 is ``min_vcpus=max_vcpus=4``).
        """
        shapes = self._select_shapes(clouds, instance_type, accelerator, accelerator_count, cpu_only)
        if min_vcpus is not None or max_vcpus is not None or min_memory_gib is not None or max_memory_gib is not None:
            lo_c = float("-inf") if min_vcpus is None else min_vcpus
            hi_c = float("inf") if max_vcpus is None else max_vcpus
            lo_m = float("-inf") if min_memory_gib is None else min_memory_gib
            hi_m = float("inf") if max_memory_gib is None else max_memory_gib
            shapes = [s for s in shapes
                      if lo_c <= self._s_vcpus[s] <= hi_c and lo_m <= self._s_mem[s] <= hi_m]
        if not shapes:
            return []
        region_idx = -2
        if region is not None:
            region_idx = self._region_idx.get(region, -3)
            if region_idx == -3:
                return []
        if zone is not None:
            return self._zone_offers(shapes, region, region_idx, zone)

        out: list[Offer] = []
        append = out.append
        o_region, o_zone, o_price, o_spot = self._o_region, self._o_zone, self._o_price, self._o_spot
        regions, zones, local = self._regions, self._zones, self._local
        starts = self._s_start
        for s in shapes:
            head = self._shape_head(s)
            for i in range(starts[s], starts[s + 1]):
                r = o_region[i]
                if region_idx != -2 and r != region_idx:
                    continue
                z = o_zone[i]
                if local[z]:
                    continue
                append(Offer(*head[:2], regions[r], zones[z] if z >= 0 else None, *head[2:6],
                             o_price[i], o_spot[i], *head[6:]))
        return out

    def accelerator_names(self) -> list[str]:
        """Canonical accelerator names present in the catalog, sorted."""
        return sorted(set(self._accs), key=str.lower)

    def canonical_accelerator(self, name: str) -> str | None:
        """The catalog's spelling of ``name`` (case-insensitive), or None."""
        return self._acc_by_lower.get(name.strip().lower())

    def regions(self, cloud: str) -> list[str]:
        """Regions where ``cloud`` has at least one offer, sorted."""
        seen: set[int] = set()
        for s in self._select_shapes([cloud], None, None, None, False):
            seen.update(self._o_region[self._s_start[s]:self._s_start[s + 1]])
        return sorted(self._regions[r] for r in seen)

    def zones(self, cloud: str, region: str, *, include_local: bool = False) -> list[str]:
        """Zones of ``cloud`` in ``region``, sorted (empty where the catalog has none).

        AWS zones are AZ IDs; Local Zones only with ``include_local``.
        """
        r = self._region_idx.get(region)
        if r is None:
            return []
        seen: set[int] = set()
        for s in self._select_shapes([cloud], None, None, None, False):
            for i in range(self._s_start[s], self._s_start[s + 1]):
                z = self._o_zone[i]
                if self._o_region[i] == r and z >= 0 and (include_local or not self._local[z]):
                    seen.add(z)
        return sorted(self._zones[z] for z in seen)

    def cloud_names(self) -> list[str]:
        """The clouds that have offers in this catalog, in file order."""
        return list(self._clouds)

    def locations(self) -> dict[str, dict[str, frozenset[str]]]:
        """cloud -> region -> the region's zones as the catalog spells them (AWS
        Local Zones included; empty where the catalog has none). Built on first
        use with one pass over the offer columns, then kept: validation asks
        many set-membership questions and must stay cheap on the plan path."""
        if self._locations is None:
            pairs: dict[int, set[tuple[int, int]]] = {}
            starts, o_region, o_zone = self._s_start, self._o_region, self._o_zone
            for s, c in enumerate(self._s_cloud):
                pairs.setdefault(c, set()).update(zip(o_region[starts[s]:starts[s + 1]],
                                                      o_zone[starts[s]:starts[s + 1]]))
            out: dict[str, dict[str, set[str]]] = {}
            for c, seen in pairs.items():
                regions = out.setdefault(self._clouds[c], {})
                for r, z in seen:
                    zones = regions.setdefault(self._regions[r], set())
                    if z >= 0:
                        zones.add(self._zones[z])
            self._locations = {c: {r: frozenset(z) for r, z in rs.items()} for c, rs in out.items()}
        return self._locations

    def instance_types(self, cloud: str | None = None) -> list[str]:
        """Instance types (of one cloud, or all), sorted."""
        clouds = None if cloud is None else [cloud]
        return sorted({self._itypes[self._s_itype[s]] for s in self._select_shapes(clouds, None, None, None, False)})

    def accelerator_counts(
        self, *, clouds: Collection[str] | None = None, region: str | None = None
    ) -> dict[str, list[float]]:
        """Accelerator name -> sorted counts on offer (Local Zones excluded).

        Cheap: checks offers only to test region membership.
        """
        r_idx = None
        if region is not None:
            r_idx = self._region_idx.get(region)
            if r_idx is None:
                return {}
        found: dict[str, set[float]] = {}
        for s in self._select_shapes(clouds, None, None, None, False):
            a = self._s_acc[s]
            if a < 0:
                continue
            name, count = self._accs[a], self._s_count[s]
            if count in found.get(name, ()):
                continue
            for i in range(self._s_start[s], self._s_start[s + 1]):
                if (r_idx is None or self._o_region[i] == r_idx) and not self._local[self._o_zone[i]]:
                    found.setdefault(name, set()).add(float(count))
                    break
        return {k: sorted(v) for k, v in sorted(found.items(), key=lambda kv: kv[0].lower())}

    def __len__(self) -> int:
        return len(self._o_region)

    # -- internals ---------------------------------------------------------------

    def _shape_head(self, s: int) -> tuple:
        a = self._s_acc[s]
        return (
            self._clouds[self._s_cloud[s]],
            self._itypes[self._s_itype[s]],
            float(self._s_vcpus[s]),
            float(self._s_mem[s]),
            self._accs[a] if a >= 0 else None,
            float(self._s_count[s]),
            None if self._s_devmem[s] is None else float(self._s_devmem[s]),
            bool(self._s_small[s]),
        )

    def _select_shapes(
        self,
        clouds: Collection[str] | None,
        instance_type: str | None,
        accelerator: str | None,
        accelerator_count: float | None,
        cpu_only: bool,
    ) -> list[int]:
        if clouds is None:
            cloud_ids = set(range(len(self._clouds)))
        else:
            wanted = {w.lower() for w in clouds}
            cloud_ids = {i for i, c in enumerate(self._clouds) if c in wanted}
        if not cloud_ids:
            return []
        acc_id: int | None = None
        if accelerator is not None:
            if cpu_only:
                return []
            canon = self.canonical_accelerator(accelerator)
            if canon is None:
                return []
            acc_id = self._acc_idx[canon]
        itype_id: int | None = None
        if instance_type is not None:
            itype_id = self._itype_idx.get(instance_type)
            if itype_id is None:
                return []
        out: list[int] = []
        s_cloud, s_acc, s_itype, s_count = self._s_cloud, self._s_acc, self._s_itype, self._s_count
        for s in range(len(s_cloud)):
            if s_cloud[s] not in cloud_ids:
                continue
            a = s_acc[s]
            if cpu_only and a >= 0:
                continue
            if acc_id is not None and a != acc_id:
                continue
            if accelerator_count is not None and (a < 0 or s_count[s] != accelerator_count):
                continue
            if itype_id is not None and s_itype[s] != itype_id:
                continue
            out.append(s)
        return out

    def _zone_offers(self, shapes: list[int], region: str | None, region_idx: int, zone: str) -> list[Offer]:
        zone_idx = self._zone_idx.get(zone, -1)
        out: list[Offer] = []
        starts = self._s_start
        if zone_idx >= 0:
            # A zone as the catalog spells it.
            for s in shapes:
                head = None
                for i in range(starts[s], starts[s + 1]):
                    if self._o_zone[i] == zone_idx and (region_idx == -2 or self._o_region[i] == region_idx):
                        head = head or self._shape_head(s)
                        out.append(Offer(*head[:2], self._regions[self._o_region[i]], zone, *head[2:6],
                                         self._o_price[i], self._o_spot[i], *head[6:]))
            return out
        # A spelling the catalog does not hold: ask the clouds of the selected
        # shapes how they read it (imported only now, so the common path never pays).
        from skyplan.clouds import registry

        for c in sorted({self._s_cloud[s] for s in shapes}):
            cloud = registry.find(self._clouds[c])
            alias = cloud.zone_alias(zone) if cloud is not None else None
            if alias is None or (region is not None and region != alias.region):
                continue
            r = self._region_idx.get(alias.region)
            if r is None:
                continue
            # Which catalog zones of that region the alias may stand for.
            eligible = {z for z, name in enumerate(self._zones) if alias.covers(name, self._local[z])}
            for s in shapes:
                if self._s_cloud[s] == c:
                    merged = self._merge(s, r, eligible, alias.region, alias.text)
                    if merged is not None:
                        out.append(merged)
        return out

    def _merge(self, s: int, r: int, eligible: set[int], region: str, zone: str) -> Offer | None:
        """One offer for shape ``s`` standing for any of the ``eligible`` zones of region ``r``.

        On-demand prices are uniform across a region's zones; the maximum is
        taken anyway so a non-uniform source never under-prices. Spot takes the
        highest zone price, since the named zone may be the dearest one.
        """
        price: float | None = None
        spot: float | None = None
        hit = False
        for i in range(self._s_start[s], self._s_start[s + 1]):
            if self._o_region[i] != r or self._o_zone[i] not in eligible:
                continue
            hit = True
            p, sp = self._o_price[i], self._o_spot[i]
            if p is not None and (price is None or p > price):
                price = p
            if sp is not None and (spot is None or sp > spot):
                spot = sp
        if not hit:
            return None
        head = self._shape_head(s)
        return Offer(*head[:2], region, zone, *head[2:6], price, spot, *head[6:])
