"""Build the embedded offer catalog from the seed CSVs.

    python -m skyplan.catalog.build [--seed DIR] [--out FILE] [--scale N]

With no options it rebuilds ``skyplan/catalog/data/offers.json`` from the seed
kept in ``skyplan/catalog/seed/`` (a copy of the curated public snapshot, see
its PROVENANCE.md). ``--scale N`` replicates every region N times under new
names (``us-east-1``, ``us-east-1-x2`` ... ``us-east-1-xN``) to synthesise a
catalog of full public size for benchmarks; ``--scale auto`` picks the smallest
N reaching 80,000 offers (6 for this seed). A scaled catalog must be written
elsewhere (``--out``), never over the embedded file.

File format (``skyplan-offers/1``), chosen for a fast cold load:
  * one JSON object; strings live once in small tables (``tables``) and
    columns refer to them by index (-1 = none);
  * offers are grouped by *shape* (cloud, instance type, hardware,
    accelerator, and ``undersized``: 1 for a host below the default size for
    its accelerators, see ``Offer.undersized``). ``shapes`` holds one row per
    shape plus ``start``, the index of its first offer, so a query picks the
    matching shapes first and only touches their slice of the ``offers``
    columns;
  * ``offers`` holds only region, zone and the two prices per row.
The build is deterministic: the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import replace

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from skyplan.catalog.model import Offer

FORMAT = "skyplan-offers/1"
SOURCE = "skypilot-catalog-v8-seed"
SOURCE_DETAIL = (
    "github.com/skypilot-org/skypilot-catalog: catalogs/v8/aws/vms.csv, catalogs/v8/gcp/vms.csv, "
    "catalogs/v6/azure/vms.csv (curated subset; see skyplan/catalog/seed/PROVENANCE.md)"
)
FETCHED_AT = "2026-11-23"
# "Full public size" for benchmarks: the public v8 catalogs hold about this many offers.
FULL_SIZE_OFFERS = 80_000

PACKAGE_DIR = Path(__file__).resolve().parent
SEED_DIR = PACKAGE_DIR / "seed"
EMBEDDED = PACKAGE_DIR / "data" / "offers.json"


def seed_offers(seed_dir: str | os.PathLike[str] = SEED_DIR) -> list[Offer]:
    """Every offer of the seed, every catalog cloud (registry order), in build order.

    Each cloud maps its own seed file (``skyplan/clouds/<cloud>/catalog.py``)."""
    from skyplan.clouds import registry

    out: list[Offer] = []
    for name in registry.catalog_clouds():
        out.extend(registry.get(name).seed_offers(Path(seed_dir)))
    return out


def _scaled_zone(cloud: str, zone: str | None, k: int) -> str | None:
    from skyplan.clouds import registry

    return registry.get(cloud).scaled_zone(zone, k)


def scale_offers(offers: Sequence[Offer], n: int) -> list[Offer]:
    """The offers plus n-1 copies of each under renamed regions and zones."""
    if n < 1:
        raise ValueError("scale must be >= 1")
    out = list(offers)
    for k in range(2, n + 1):
        for o in offers:
            out.append(replace(o, region=f"{o.region}-x{k}", zone=_scaled_zone(o.cloud, o.zone, k)))
    return out


def _num(x: float | None) -> float | int | None:
    # Whole numbers as ints keep the file small and parse faster.
    if x is None:
        return None
    return int(x) if float(x).is_integer() else x


def encode(offers: Iterable[Offer], *, source: str = SOURCE, fetched_at: str = FETCHED_AT) -> bytes:
    """Serialise offers into the columnar ``skyplan-offers/1`` format."""
    from skyplan.clouds import registry

    def shape_key(o: Offer) -> tuple:
        return (
            o.cloud,
            o.instance_type,
            o.accelerator or "",
            o.accelerator_count,
            o.vcpus,
            o.memory_gib,
            -1.0 if o.device_memory_gib is None else o.device_memory_gib,
            o.undersized,
        )

    rows = sorted(offers, key=lambda o: (shape_key(o), o.region, o.zone or ""))

    tables: dict[str, list[str]] = {k: [] for k in ("cloud", "region", "zone", "instance_type", "accelerator")}
    index: dict[str, dict[str, int]] = {k: {} for k in tables}

    def ref(table: str, value: str | None) -> int:
        if value is None:
            return -1
        idx = index[table]
        i = idx.get(value)
        if i is None:
            i = idx[value] = len(tables[table])
            tables[table].append(value)
        return i

    shapes: dict[str, list] = {
        k: [] for k in ("cloud", "instance_type", "vcpus", "memory_gib", "accelerator", "accelerator_count",
                        "device_memory_gib", "undersized", "start")
    }
    cols: dict[str, list] = {k: [] for k in ("region", "zone", "price", "spot_price")}
    counts: dict[str, int] = {}
    last = None
    for i, o in enumerate(rows):
        key = shape_key(o)
        if key != last:
            last = key
            shapes["cloud"].append(ref("cloud", o.cloud))
            shapes["instance_type"].append(ref("instance_type", o.instance_type))
            shapes["vcpus"].append(_num(o.vcpus))
            shapes["memory_gib"].append(_num(o.memory_gib))
            shapes["accelerator"].append(ref("accelerator", o.accelerator))
            shapes["accelerator_count"].append(_num(o.accelerator_count))
            shapes["device_memory_gib"].append(_num(o.device_memory_gib))
            shapes["undersized"].append(int(o.undersized))
            shapes["start"].append(i)
        cols["region"].append(ref("region", o.region))
        cols["zone"].append(ref("zone", o.zone))
        cols["price"].append(_num(o.price))
        cols["spot_price"].append(_num(o.spot_price))
        counts[o.cloud] = counts.get(o.cloud, 0) + 1
    shapes["start"].append(len(rows))

    # Zones that need an account opt-in (AWS Local Zones), as each cloud says;
    # flagged once here so the loader needs no parsing.
    local: set[int] = set()
    for s, c in enumerate(shapes["cloud"]):
        cloud = registry.find(tables["cloud"][c])
        if cloud is None:
            continue
        for j in range(shapes["start"][s], shapes["start"][s + 1]):
            z = cols["zone"][j]
            if z >= 0 and z not in local and cloud.opt_in_zone(tables["zone"][z]):
                local.add(z)

    doc = {
        "format": FORMAT,
        "source": source,
        "source_detail": SOURCE_DETAIL,
        "fetched_at": fetched_at,
        "counts": counts,
        "tables": tables,
        "local_zones": sorted(local),
        "shapes": shapes,
        "offers": cols,
    }
    # One top-level key per line keeps git diffs of the embedded file readable.
    parts = [f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}" for k, v in doc.items()]
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")


def auto_scale(n_offers: int, target: int = FULL_SIZE_OFFERS) -> int:
    """Smallest replication factor giving at least ``target`` offers."""
    return max(1, -(-target // max(1, n_offers)))


def build(seed_dir: str | os.PathLike[str] = SEED_DIR, scale: int | str = 1) -> bytes:
    """The catalog file bytes for a seed, optionally scaled (int, or "auto")."""
    offers = seed_offers(seed_dir)
    if scale == "auto":
        scale = auto_scale(len(offers))
    scale = int(scale)
    source = SOURCE
    if scale > 1:
        offers = scale_offers(offers, scale)
        source = f"{SOURCE}-scaled-x{scale}"
    return encode(offers, source=source)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skyplan.catalog.build", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", default=str(SEED_DIR), help="directory holding aws_vms.csv, gcp_vms.csv, azure_vms.csv")
    parser.add_argument("--out", default=None, help=f"output file (default: the embedded {EMBEDDED.name})")
    parser.add_argument("--scale", default="1",
                        help="replicate regions N times, or 'auto' for ~80,000 offers (benchmark catalogs)")
    args = parser.parse_args(argv)
    if args.scale != "auto":
        try:
            args.scale = int(args.scale)
        except ValueError:
            parser.error("--scale takes a whole number or 'auto'")
        if args.scale < 1:
            parser.error("--scale must be >= 1")
    out = Path(args.out) if args.out else EMBEDDED
    if args.scale != 1 and out.resolve() == EMBEDDED.resolve():
        parser.error("--scale writes a benchmark catalog: give --out FILE (not the embedded catalog)")
    data = build(args.seed, args.scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    doc_counts = json.loads(data)["counts"]
    total = sum(doc_counts.values())
    summary = ", ".join(f"{k} {v}" for k, v in doc_counts.items())
    sys.stdout.write(f"wrote {out} ({len(data)} bytes): {total} offers ({summary})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
