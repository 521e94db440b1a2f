"""Catalog loading and the offers() query."""

from __future__ import annotations

import hashlib
import json

import pytest

from skyplan.catalog import load_catalog
from skyplan.catalog.loader import EMBEDDED
from skyplan.errors import InputError


def test_info_records_snapshot_and_hash(embedded):
    assert embedded.info.fetched_at == "2026-11-23"
    assert embedded.info.source.startswith("embedded:")
    assert embedded.info.sha256 == hashlib.sha256(EMBEDDED.read_bytes()).hexdigest()


def test_cached_per_process():
    assert load_catalog() is load_catalog()


def test_env_var_selects_file(make_catalog, tmp_path, monkeypatch):
    make_catalog([dict(instance_type="only-one")])
    path = next(tmp_path.glob("cat*.json"))
    monkeypatch.setenv("SKYPLAN_CATALOG", str(path))
    cat = load_catalog()
    assert cat.instance_types() == ["only-one"]
    assert cat.info.source == f"file:{path}"


@pytest.mark.parametrize("content", [b"", b"not json", b'{"format": "other"}', b'{"format": "skyplan-offers/1"}'])
def test_bad_file_is_input_error(tmp_path, content):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(InputError):
        load_catalog(p)


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError):
        load_catalog(tmp_path / "nope.json")


def test_accelerator_match_is_case_insensitive(embedded):
    upper = embedded.offers(accelerator="A10G")
    assert upper
    assert embedded.offers(accelerator="a10g") == upper
    assert embedded.offers(accelerator="A10g") == upper
    assert {o.accelerator for o in upper} == {"A10G"}
    assert embedded.canonical_accelerator("h100-mega") == "H100-MEGA"
    assert embedded.canonical_accelerator("A100-80gb") == "A100-80GB"
    assert embedded.canonical_accelerator("no-such-gpu") is None
    assert embedded.offers(accelerator="no-such-gpu") == []


def test_accelerator_names_are_canonical(embedded):
    names = embedded.accelerator_names()
    assert {"A10G", "A100", "A100-80GB", "H100", "L4", "T4", "V100"} <= set(names)
    assert len({n.lower() for n in names}) == len(names)


def test_accelerator_count_filter(embedded):
    got = embedded.offers(accelerator="A100", accelerator_count=8)
    assert got and all(o.accelerator == "A100" and o.accelerator_count == 8 for o in got)
    assert {o.cloud for o in got} == {"aws", "gcp", "azure"}


def test_cpu_only(embedded):
    got = embedded.offers(cpu_only=True, clouds=["aws"])
    assert got and all(o.accelerator is None and o.accelerator_count == 0 for o in got)
    assert embedded.offers(cpu_only=True, accelerator="T4") == []


def test_instance_type_is_case_sensitive_exact(embedded):
    assert embedded.offers(instance_type="p4d.24xlarge")
    assert embedded.offers(instance_type="P4D.24xlarge") == []
    assert embedded.offers(instance_type="p4d") == []


def test_cloud_and_region_filters(embedded):
    got = embedded.offers(clouds=["gcp"], region="us-central1")
    assert got and {(o.cloud, o.region) for o in got} == {("gcp", "us-central1")}
    assert embedded.offers(clouds=["aws"], region="us-central1") == []
    assert embedded.offers(clouds=["local"]) == []
    assert "us-central1" in embedded.regions("gcp")
    assert "us-central1" not in embedded.regions("aws")


def test_default_clouds_are_the_three(embedded):
    assert {o.cloud for o in embedded.offers()} == {"aws", "gcp", "azure"}


def test_gcp_zone_pin_is_exact(embedded):
    got = embedded.offers(zone="us-central1-a")
    assert got and {(o.cloud, o.zone) for o in got} == {("gcp", "us-central1-a")}


def test_azure_has_no_zones(embedded):
    az = embedded.offers(clouds=["azure"])
    assert az and all(o.zone is None for o in az)
    assert embedded.zones("azure", "eastus") == []
    assert embedded.offers(clouds=["azure"], zone="1") == []
    assert embedded.offers(clouds=["azure"], zone="eastus-1") == []


def test_instance_types(embedded):
    aws = embedded.instance_types("aws")
    assert "p4d.24xlarge" in aws and "n1-standard-8" not in aws
    assert set(aws) < set(embedded.instance_types())


def test_offer_counts_match_file_header(embedded):
    header = json.loads(EMBEDDED.read_bytes())["counts"]
    assert len(embedded) == sum(header.values())
    for cloud, n in header.items():
        # offers() hides Local Zones, so only AWS may come up short.
        got = len(embedded.offers(clouds=[cloud]))
        assert got == n if cloud != "aws" else 0 < n - got < 50


def test_vcpu_and_memory_bounds(embedded):
    got = embedded.offers(clouds=["aws"], cpu_only=True, min_vcpus=8, max_vcpus=8)
    assert got and {o.vcpus for o in got} == {8.0}
    every = embedded.offers(clouds=["aws"], cpu_only=True)
    assert len(got) == sum(1 for o in every if o.vcpus == 8)
    big = embedded.offers(clouds=["gcp"], min_memory_gib=1000)
    assert big and all(o.memory_gib >= 1000 for o in big)
    assert len(big) == sum(1 for o in embedded.offers(clouds=["gcp"]) if o.memory_gib >= 1000)
    assert embedded.offers(min_vcpus=10_000) == []


def test_undersized_flag_round_trips_and_older_files_default_to_false(make_catalog, tmp_path):
    import json

    cat = make_catalog([dict(cloud="gcp", instance_type="n1-standard-1", accelerator="T4", accelerator_count=1.0,
                             undersized=True),
                        dict(cloud="gcp", instance_type="n1-highmem-4", accelerator="T4", accelerator_count=1.0)])
    assert {o.instance_type: o.undersized for o in cat.offers()} == {"n1-standard-1": True, "n1-highmem-4": False}
    # A catalog file written before the column existed still loads: nothing is undersized.
    from skyplan.catalog.build import encode
    from skyplan.catalog import load_catalog, Offer

    doc = json.loads(encode([Offer("gcp", "n1-standard-1", "r", "r-a", 1.0, 3.75, "T4", 1.0, 0.4, 0.1,
                                   undersized=True)]))
    del doc["shapes"]["undersized"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    [o] = load_catalog(old).offers()
    assert o.undersized is False
