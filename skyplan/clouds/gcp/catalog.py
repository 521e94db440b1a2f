"""GCP seed rows -> Offers (build time).

The GCP file has two kinds of rows: host VMs (InstanceType set, no accelerator)
and accelerators (InstanceType empty) priced per zone on their own. An
accelerator offer is a host row plus an accelerator row in the same zone, paired
by the rules in ``hosts.py``, with both markets summed: if either side lacks a
price for a market, the pair lacks it too. An N1 pair smaller than the default
host for its GPUs (``default_hosts.py``) is marked ``undersized``. Host rows
outside the accelerator-optimized families are also CPU-only offers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from skyplan.catalog.model import Offer
from skyplan.catalog.rows import gpu_memory_gib, opt_float
from skyplan.clouds.gcp import default_hosts, hosts

CLOUD = "gcp"
SEED_FILE = "gcp_vms.csv"

# Seed prices carry at most 6 decimals; rounding the float sum to 6 places gives
# exactly the decimal sum of the two published prices.
_PRICE_DECIMALS = 6


@dataclass(frozen=True)
class _Host:
    name: str
    region: str
    zone: str
    vcpus: float
    memory_gib: float
    price: float | None
    spot_price: float | None


@dataclass(frozen=True)
class _Gpu:
    name: str
    count: float
    region: str
    zone: str
    price: float | None
    spot_price: float | None
    device_memory_gib: float | None


def _add(host: float | None, gpu: float | None) -> float | None:
    if host is None or gpu is None:
        return None
    return round(host + gpu, _PRICE_DECIMALS)


def _gpu_host_price(p: float | None) -> float | None:
    # a4-highgpu-8g is published with 0.0 for both markets: that is a missing
    # price, not a free VM. Summing it would under-price B200 by the whole host,
    # so a 0.0 host price under a GPU counts as unknown and that market is dropped.
    return None if p is not None and p <= 0.0 else p


def offers_from_rows(rows: Iterable[dict[str, str]]) -> Iterator[Offer]:
    """Yield CPU offers for plain hosts and one offer per valid (host, GPU) pair."""
    host_rows: list[_Host] = []
    gpu_rows: list[_Gpu] = []
    for r in rows:
        if r["InstanceType"]:
            host_rows.append(
                _Host(
                    name=r["InstanceType"],
                    region=r["Region"],
                    zone=r["AvailabilityZone"],
                    vcpus=float(r["vCPUs"]),
                    memory_gib=float(r["MemoryGiB"]),
                    price=opt_float(r["Price"]),
                    spot_price=opt_float(r["SpotPrice"]),
                )
            )
        elif r["AcceleratorName"]:
            gpu_rows.append(
                _Gpu(
                    name=r["AcceleratorName"].strip(),
                    count=float(r["AcceleratorCount"]),
                    region=r["Region"],
                    zone=r["AvailabilityZone"],
                    price=opt_float(r["Price"]),
                    spot_price=opt_float(r["SpotPrice"]),
                    device_memory_gib=gpu_memory_gib(r["GpuInfo"]),
                )
            )

    by_zone: dict[str, list[_Host]] = {}
    for h in host_rows:
        by_zone.setdefault(h.zone, []).append(h)
        if not hosts.is_gpu_only_host(h.name):
            yield Offer(
                cloud=CLOUD,
                instance_type=h.name,
                region=h.region,
                zone=h.zone,
                vcpus=h.vcpus,
                memory_gib=h.memory_gib,
                accelerator=None,
                accelerator_count=0.0,
                price=h.price,
                spot_price=h.spot_price,
            )

    for g in gpu_rows:
        key = (g.name, int(g.count))
        fixed = hosts.ACCELERATOR_OPTIMIZED.get(key)
        for h in by_zone.get(g.zone, ()):
            undersized = False
            if fixed is not None:
                if h.name not in fixed:
                    continue
            elif not hosts.n1_host_fits(h.name, h.vcpus, h.memory_gib, g.name, int(g.count)):
                continue
            else:
                # Attachable, but smaller than a host anyone would pick for these
                # GPUs: offered only to tasks that size the host themselves.
                undersized = not default_hosts.default_host_ok(g.name, g.count, h.vcpus, h.memory_gib)
            price = _add(_gpu_host_price(h.price), g.price)
            spot = _add(_gpu_host_price(h.spot_price), g.spot_price)
            if price is None and spot is None:
                continue
            yield Offer(
                cloud=CLOUD,
                instance_type=h.name,
                region=g.region,
                zone=g.zone,
                vcpus=h.vcpus,
                memory_gib=h.memory_gib,
                accelerator=g.name,
                accelerator_count=g.count,
                price=price,
                spot_price=spot,
                device_memory_gib=g.device_memory_gib,
                undersized=undersized,
            )
