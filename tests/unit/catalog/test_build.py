"""The embedded file, the build, the scaled benchmark catalog, and the row mappings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.catalog.build import EMBEDDED, FETCHED_AT, build, encode, main, scale_offers, seed_offers
from skyplan.clouds.aws.catalog import offers_from_rows as aws_offers
from skyplan.clouds.azure.catalog import offers_from_rows as azure_offers


def test_embedded_file_is_up_to_date_with_seed():
    fresh = build()
    assert hashlib.sha256(fresh).hexdigest() == hashlib.sha256(EMBEDDED.read_bytes()).hexdigest(), (
        "embedded catalog is stale: run python -m skyplan.catalog.build"
    )


def test_build_is_deterministic():
    assert build() == build()


def test_round_trip_keeps_every_offer(tmp_path):
    offers = seed_offers()
    p = tmp_path / "c.json"
    p.write_bytes(encode(offers))
    cat = load_catalog(p)
    assert len(cat) == len(offers)
    got = set(cat.offers())
    # Everything but Local Zones comes back unchanged (and they do when pinned).
    assert got <= set(offers)
    hidden = set(offers) - got
    assert hidden and all(o.zone in {"use1-atl2-az1", "usw2-lax1-az1", "usw2-lax1-az2"} for o in hidden)
    for z in ("use1-atl2-az1", "usw2-lax1-az1"):
        assert {o for o in offers if o.zone == z} == set(cat.offers(zone=z))


def test_fetched_at_recorded():
    assert load_catalog().info.fetched_at == FETCHED_AT == "2026-11-23"


def test_scale_option_reaches_public_size(tmp_path):
    out = tmp_path / "scaled.json"
    assert main(["--scale", "6", "--out", str(out)]) == 0
    cat = load_catalog(out)
    base = len(seed_offers())
    assert len(cat) == 6 * base
    assert 75_000 <= len(cat) <= 90_000
    assert "us-east-1-x6" in cat.regions("aws")
    assert "us-central1-x3-a" in cat.zones("gcp", "us-central1-x3")
    # Replicated Local Zones stay Local Zones: hidden unless pinned.
    assert not any(o.zone and "lax1" in o.zone for o in cat.offers(clouds=["aws"], region="us-west-2-x2"))
    assert cat.offers(zone="usw2x2-lax1-az1")
    assert len(cat.offers(accelerator="A100", accelerator_count=8)) == 6 * len(
        load_catalog().offers(accelerator="A100", accelerator_count=8)
    )


def test_scale_auto_reaches_full_size(tmp_path):
    out = tmp_path / "auto.json"
    assert main(["--scale", "auto", "--out", str(out)]) == 0
    n = len(load_catalog(out))
    assert n >= 80_000
    assert n - len(seed_offers()) < 80_000  # the smallest factor that gets there


@pytest.mark.parametrize("args", [["--scale", "2"], ["--scale", "auto"], ["--scale", "0", "--out", "x"],
                                  ["--scale", "lots", "--out", "x"]])
def test_scale_refuses_bad_use(args):
    with pytest.raises(SystemExit):
        main(args)


def test_scale_offers_renames_regions():
    offers = seed_offers()[:3]
    scaled = scale_offers(offers, 3)
    assert len(scaled) == 9
    assert {o.region for o in scaled[3:6]} == {f"{offers[0].region}-x2"}


def _aws_row(**kw):
    row = {"InstanceType": "g5.xlarge", "AcceleratorName": "A10G", "AcceleratorCount": "1.0", "vCPUs": "4.0",
           "MemoryGiB": "16.0",
           "GpuInfo": "{'Gpus': [{'Name': 'A10G', 'Count': 1, 'MemoryInfo': {'SizeInMiB': 24576}}], "
                      "'TotalGpuMemoryInMiB': 24576}",
           "Price": "1.006", "SpotPrice": "", "Region": "us-east-1", "AvailabilityZone": "use1-az1",
           "Arch": "x86_64"}
    row.update(kw)
    return row


def test_aws_row_mapping():
    [o] = aws_offers([_aws_row()])
    assert (o.cloud, o.zone, o.accelerator, o.accelerator_count) == ("aws", "use1-az1", "A10G", 1.0)
    assert o.device_memory_gib == 24.0
    assert o.price == 1.006 and o.spot_price is None
    [cpu] = aws_offers([_aws_row(AcceleratorName="", AcceleratorCount="", GpuInfo="", Price="")])
    assert cpu.accelerator is None and cpu.accelerator_count == 0 and cpu.price is None


def test_aws_device_memory_from_seed(embedded):
    [o] = embedded.offers(zone="use1-az1", instance_type="p4d.24xlarge")
    assert o.device_memory_gib == 40.0


def _azure_row(**kw):
    row = {"InstanceType": "Standard_NV4as_v4", "AcceleratorName": "Radeon MI25", "AcceleratorCount": "0.125",
           "vCPUs": "4.0", "MemoryGiB": "14", "GpuInfo": "Radeon MI25", "Price": "", "SpotPrice": "",
           "Region": "eastus", "Generation": "V1,V2"}
    row.update(kw)
    return row


def test_azure_row_mapping_fractional_and_empty_price():
    [o] = azure_offers([_azure_row()])
    assert o.zone is None
    assert o.accelerator_count == 0.125
    assert o.price is None and o.spot_price is None
    assert o.device_memory_gib is None


def test_azure_empty_prices_from_seed(embedded, seed_rows):
    rows = seed_rows("azure_vms.csv")
    no_price = next(r for r in rows if not r["Price"])
    no_spot = next(r for r in rows if r["Price"] and not r["SpotPrice"])
    [a] = embedded.offers(clouds=["azure"], region=no_price["Region"], instance_type=no_price["InstanceType"])
    assert a.price is None and a.spot_price is None
    [b] = embedded.offers(clouds=["azure"], region=no_spot["Region"], instance_type=no_spot["InstanceType"])
    assert b.price == float(no_spot["Price"]) and b.spot_price is None


def test_aws_empty_on_demand_price_from_seed(embedded):
    p5e = embedded.offers(clouds=["aws"], instance_type="p5e.48xlarge")
    assert p5e and all(o.price is None for o in p5e)
    assert all(o.hourly(use_spot=False) is None for o in p5e)


def test_seed_dir_is_vendored():
    # The build must not depend on anything outside the repository.
    assert Path(EMBEDDED).parent.parent.joinpath("seed", "gcp_vms.csv").is_file()
