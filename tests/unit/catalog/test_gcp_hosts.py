"""GCP: GPUs priced on top of their host VM, hosts chosen by the rules in hosts.py."""

from __future__ import annotations

from decimal import Decimal

from skyplan.clouds.gcp import hosts
from skyplan.clouds.gcp.catalog import offers_from_rows


def _gcp(embedded, **kw):
    return embedded.offers(clouds=["gcp"], **kw)


def test_v100x1_hosts_follow_n1_vcpu_limit(embedded):
    types = {o.instance_type for o in _gcp(embedded, accelerator="V100", accelerator_count=1)}
    assert "n1-highmem-8" in types  # 8 vCPUs <= 12
    assert "n1-standard-16" not in types  # 16 vCPUs > 12
    assert "n1-highmem-16" not in types
    assert all(t.startswith("n1-") for t in types)


def test_v100x2_allows_16_vcpus(embedded):
    types = {o.instance_type for o in _gcp(embedded, accelerator="V100", accelerator_count=2)}
    assert {"n1-standard-16", "n1-highmem-16"} <= types


def test_n1_offers_respect_every_limit(embedded):
    for o in _gcp(embedded):
        if o.accelerator is None or not o.instance_type.startswith("n1-"):
            continue
        max_vcpus, max_mem = hosts.N1_LIMITS[(o.accelerator, int(o.accelerator_count))]
        assert o.vcpus <= max_vcpus and o.memory_gib <= max_mem, o


def test_price_is_host_plus_gpu_exactly(embedded, seed_rows):
    rows = seed_rows("gcp_vms.csv")
    zone = "us-central1-a"
    host = next(r for r in rows if r["InstanceType"] == "n1-highmem-8" and r["AvailabilityZone"] == zone)
    gpu = next(
        r for r in rows
        if not r["InstanceType"] and r["AcceleratorName"] == "V100" and r["AcceleratorCount"] == "1"
        and r["AvailabilityZone"] == zone
    )
    [o] = _gcp(embedded, zone=zone, instance_type="n1-highmem-8", accelerator="V100", accelerator_count=1)
    assert Decimal(str(o.price)) == Decimal(host["Price"]) + Decimal(gpu["Price"])
    assert Decimal(str(o.spot_price)) == Decimal(host["SpotPrice"]) + Decimal(gpu["SpotPrice"])
    assert o.vcpus == float(host["vCPUs"]) and o.memory_gib == float(host["MemoryGiB"])
    assert o.device_memory_gib == 16.0


def test_a2_and_g2_mapping(embedded):
    def types(acc, n):
        return {o.instance_type for o in _gcp(embedded, accelerator=acc, accelerator_count=n)}

    assert types("A100", 8) == {"a2-highgpu-8g"}
    assert types("A100", 16) == {"a2-megagpu-16g"}
    assert types("A100-80GB", 4) == {"a2-ultragpu-4g"}
    assert types("L4", 1) == {"g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16", "g2-standard-32"}
    assert types("L4", 2) == {"g2-standard-24"}
    assert types("L4", 8) == {"g2-standard-96"}
    assert {"a3-highgpu-8g", "a3-edgegpu-8g"} <= types("H100", 8)
    assert types("H100-MEGA", 8) == {"a3-megagpu-8g"}


def test_accelerator_optimized_hosts_are_not_cpu_offers(embedded):
    cpu = {o.instance_type for o in _gcp(embedded, cpu_only=True)}
    assert cpu, "plain hosts must be CPU offers"
    assert not any(hosts.is_gpu_only_host(t) for t in cpu)
    assert {"n1-standard-8", "n2-standard-8", "e2-standard-8"} <= cpu


def test_gpu_offer_needs_host_and_gpu_in_same_zone(embedded, seed_rows):
    rows = seed_rows("gcp_vms.csv")
    host_zones = {r["AvailabilityZone"] for r in rows if r["InstanceType"] == "a2-highgpu-1g"}
    gpu_zones = {
        r["AvailabilityZone"] for r in rows
        if not r["InstanceType"] and r["AcceleratorName"] == "A100" and r["AcceleratorCount"] == "1"
    }
    got = {o.zone for o in _gcp(embedded, instance_type="a2-highgpu-1g")}
    assert got == host_zones & gpu_zones


def _host(name, zone="z-a", vcpus=8.0, mem=30.0, price="1.0", spot="0.5"):
    return {"InstanceType": name, "vCPUs": str(vcpus), "MemoryGiB": str(mem), "AcceleratorName": "",
            "AcceleratorCount": "", "GpuInfo": "", "Region": "r", "AvailabilityZone": zone,
            "Price": price, "SpotPrice": spot}


def _gpu(name, count, zone="z-a", price="2.0", spot="1.0"):
    return {"InstanceType": "", "vCPUs": "", "MemoryGiB": "", "AcceleratorName": name,
            "AcceleratorCount": str(count), "GpuInfo": "{'Gpus': [{'MemoryInfo': {'SizeInMiB': 81920}}]}",
            "Region": "r", "AvailabilityZone": zone, "Price": price, "SpotPrice": spot}


def test_zero_host_price_means_unknown():
    out = list(offers_from_rows([_host("a4-highgpu-8g", price="0.0", spot="0.0"), _gpu("B200", 8)]))
    assert out == []


def test_missing_market_on_either_side_drops_that_market():
    out = list(offers_from_rows([_host("a3-megagpu-8g", spot=""), _gpu("H100-MEGA", 8)]))
    [o] = out
    assert o.price == 3.0 and o.spot_price is None
    assert o.device_memory_gib == 80.0


def test_gpu_in_other_zone_gives_no_offer():
    out = list(offers_from_rows([_host("a2-highgpu-1g", zone="z-a"), _gpu("A100", 1, zone="z-b")]))
    assert out == []


def test_n1_host_over_limit_is_not_paired():
    rows = [_host("n1-standard-16", vcpus=16, mem=60), _host("n1-standard-8"), _gpu("V100", 1)]
    out = list(offers_from_rows(rows))
    gpu_types = {o.instance_type for o in out if o.accelerator}
    cpu_types = {o.instance_type for o in out if o.accelerator is None}
    assert gpu_types == {"n1-standard-8"}
    assert cpu_types == {"n1-standard-16", "n1-standard-8"}


# --- default host size for attached GPUs (default_hosts.py) -----------------------


def test_n1_pair_below_the_default_host_is_marked_undersized():
    rows = [_host("n1-standard-1", vcpus=1, mem=3.75), _host("n1-standard-4", vcpus=4, mem=15),
            _host("n1-highmem-4", vcpus=4, mem=26), _host("n1-standard-8", vcpus=8, mem=30), _gpu("T4", 1)]
    small = {o.instance_type: o.undersized for o in offers_from_rows(rows) if o.accelerator}
    # T4:1 needs 4 vCPUs and 16 GiB: n1-standard-4 has the vCPUs but 15 GB.
    assert small == {"n1-standard-1": True, "n1-standard-4": True, "n1-highmem-4": False, "n1-standard-8": False}


def test_fixed_gpu_hosts_and_cpu_offers_are_never_undersized():
    rows = [_host("g2-standard-4", vcpus=4, mem=16), _host("n1-standard-1", vcpus=1, mem=3.75), _gpu("L4", 1)]
    out = list(offers_from_rows(rows))
    assert {(o.instance_type, o.undersized) for o in out} == {("g2-standard-4", False), ("n1-standard-1", False)}


def test_every_n1_gpu_count_has_a_default_host_n1_can_carry():
    from skyplan.clouds.gcp import default_hosts

    assert set(default_hosts.N1_DEFAULT_MIN_VCPUS) == set(hosts.N1_LIMITS)
    for key, (max_vcpus, max_mem) in hosts.N1_LIMITS.items():
        need_vcpus, need_mem = default_hosts.min_host(*key)
        assert need_vcpus <= max_vcpus and need_mem <= max_mem, key


def test_embedded_catalog_offers_a_default_size_n1_host_for_every_gpu_count(embedded):
    # The seed carries n1-*-32/64/96 so that 4 and 8 GPUs still have a host of
    # the default size (e.g. V100:8 on n1-highmem-64).
    from skyplan.clouds.gcp import default_hosts

    for name, count in default_hosts.N1_DEFAULT_MIN_VCPUS:
        ok = [o for o in _gcp(embedded, accelerator=name, accelerator_count=count) if not o.undersized]
        assert ok, (name, count)
        need_vcpus, need_mem = default_hosts.min_host(name, count)
        assert all(o.vcpus >= need_vcpus and o.memory_gib >= need_mem for o in ok)
    assert {o.instance_type for o in _gcp(embedded, accelerator="T4", accelerator_count=1) if o.undersized} >= {
        "n1-standard-1", "n1-standard-2", "n1-standard-4", "n1-highmem-2"}
