"""AWS zones: IDs vs names, Local Zones hidden unless pinned."""

from __future__ import annotations

import pytest

from skyplan.clouds.aws import zones


@pytest.mark.parametrize(
    "s, is_id, is_name, local",
    [
        ("use1-az1", True, False, False),
        ("usw2-lax1-az1", True, False, True),
        ("use1-atl2-az1", True, False, True),
        ("us-east-1a", False, True, False),
        ("us-west-2-lax-1a", False, True, True),
        ("us-central1-a", False, False, False),  # a GCP zone
        ("eastus", False, False, False),
    ],
)
def test_zone_classification(s, is_id, is_name, local):
    assert zones.is_zone_id(s) is is_id
    assert zones.is_zone_name(s) is is_name
    assert zones.is_local_zone(s) is local


def test_region_of_zone_name():
    assert zones.region_of_zone_name("us-east-1a") == "us-east-1"
    assert zones.region_of_zone_name("ap-southeast-4c") == "ap-southeast-4"
    assert zones.region_of_zone_name("us-west-2-lax-1b") == "us-west-2"
    with pytest.raises(ValueError):
        zones.region_of_zone_name("use1-az1")


def test_local_group_matches_between_id_and_name():
    assert zones.local_group("usw2-lax1-az2") == zones.local_group("us-west-2-lax-1a") == "lax1"
    assert zones.local_group("use1-az1") is None


def test_local_zones_excluded_unless_pinned(embedded):
    everything = embedded.offers(clouds=["aws"])
    assert everything
    assert not any(zones.is_local_zone(o.zone) for o in everything)
    pinned = embedded.offers(clouds=["aws"], zone="usw2-lax1-az1")
    assert pinned and {o.zone for o in pinned} == {"usw2-lax1-az1"}
    assert "usw2-lax1-az1" not in embedded.zones("aws", "us-west-2")
    assert "usw2-lax1-az1" in embedded.zones("aws", "us-west-2", include_local=True)


def test_pinned_id_matches_exactly(embedded, seed_rows):
    got = embedded.offers(clouds=["aws"], zone="use1-az1", instance_type="p4d.24xlarge")
    [row] = [r for r in seed_rows("aws_vms.csv")
             if r["InstanceType"] == "p4d.24xlarge" and r["AvailabilityZone"] == "use1-az1"]
    [o] = got
    assert o.zone == "use1-az1" and o.region == "us-east-1"
    assert o.spot_price == float(row["SpotPrice"]) and o.price == float(row["Price"])


def test_pinned_name_merges_region_conservatively(embedded, seed_rows):
    rows = [r for r in seed_rows("aws_vms.csv")
            if r["InstanceType"] == "p4d.24xlarge" and r["Region"] == "us-east-1"
            and not zones.is_local_zone(r["AvailabilityZone"])]
    assert len(rows) > 1
    [o] = embedded.offers(clouds=["aws"], zone="us-east-1a", instance_type="p4d.24xlarge")
    assert o.zone == "us-east-1a" and o.region == "us-east-1"
    assert o.price == max(float(r["Price"]) for r in rows)
    assert o.spot_price == max(float(r["SpotPrice"]) for r in rows if r["SpotPrice"])


def test_pinned_name_gives_one_offer_per_instance_type(embedded):
    got = embedded.offers(clouds=["aws"], zone="us-east-1b")
    types = [o.instance_type for o in got]
    assert len(types) == len(set(types)) > 10
    assert {o.zone for o in got} == {"us-east-1b"}


def test_pinned_name_conflicting_region_is_empty(embedded):
    assert embedded.offers(clouds=["aws"], zone="us-east-1a", region="us-west-2") == []
    assert embedded.offers(clouds=["aws"], zone="use1-az1", region="us-west-2") == []


def test_name_pin_ignores_local_zones_and_local_name_selects_group(make_catalog):
    cat = make_catalog([
        dict(zone="usw2-az1", region="us-west-2", spot_price=0.2),
        dict(zone="usw2-az2", region="us-west-2", spot_price=0.3),
        dict(zone="usw2-lax1-az1", region="us-west-2", spot_price=0.9),
        dict(zone="usw2-lax1-az2", region="us-west-2", spot_price=0.7),
        dict(zone="usw2-den1-az1", region="us-west-2", spot_price=5.0),
    ])
    [regular] = cat.offers(zone="us-west-2a")
    assert regular.spot_price == 0.3  # the local zones' 0.9/5.0 are not in play
    [lax] = cat.offers(zone="us-west-2-lax-1a")
    assert lax.spot_price == 0.9 and lax.zone == "us-west-2-lax-1a"
    assert [o.zone for o in cat.offers()] == ["usw2-az1", "usw2-az2"]


def test_name_pin_spot_missing_everywhere_stays_none(make_catalog):
    cat = make_catalog([
        dict(zone="use1-az1", spot_price=None, price=2.0),
        dict(zone="use1-az2", spot_price=None, price=2.0),
    ])
    [o] = cat.offers(zone="us-east-1c")
    assert o.price == 2.0 and o.spot_price is None


def test_unknown_zone_id_matches_nothing(embedded):
    assert embedded.offers(zone="use1-az99") == []
