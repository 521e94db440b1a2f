"""show-gpus data functions."""

from __future__ import annotations

from skyplan.catalog.gpus import COMMON_ACCELERATORS, accelerator_offers, list_accelerators


def test_list_default_is_common_only(embedded):
    common = list_accelerators(embedded)
    everything = list_accelerators(embedded, show_all=True)
    assert set(common) <= COMMON_ACCELERATORS
    assert "K80" not in common and "K80" in everything
    assert set(common) < set(everything)
    assert everything["A100"] == [1.0, 2.0, 4.0, 8.0, 16.0]
    for counts in everything.values():
        assert counts == sorted(counts)


def test_list_filters_cloud_and_region(embedded):
    gcp = list_accelerators(embedded, clouds=["gcp"], show_all=True)
    assert "A10G" not in gcp and "T4" in gcp
    assert gcp["T4"] == [1.0, 2.0, 4.0]
    east = list_accelerators(embedded, clouds=["azure"], region="eastus", show_all=True)
    assert east and all(
        embedded.offers(clouds=["azure"], region="eastus", accelerator=n) for n in east
    )
    assert list_accelerators(embedded, region="no-such-region") == {}


def test_offers_one_row_per_type_sorted_by_price(embedded):
    rows = accelerator_offers(embedded, "a100", 8)
    keys = [(r.cloud, r.instance_type, r.count) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r.cloud for r in rows} == {"aws", "gcp", "azure"}
    prices = [r.price for r in rows if r.price is not None]
    assert prices == sorted(prices)
    for r in rows:
        assert r.accelerator == "A100" and r.count == 8
        offers = embedded.offers(clouds=[r.cloud], instance_type=r.instance_type, accelerator="A100",
                                 accelerator_count=8)
        cheapest = min(o.price for o in offers if o.price is not None)
        assert r.price == cheapest
        assert any(o.region == r.cheapest_region and o.zone == r.cheapest_zone and o.price == cheapest
                   for o in offers)
        assert r.spot_price == min((o.spot_price for o in offers if o.spot_price is not None), default=None)


def test_offers_carry_hardware(embedded):
    [row] = [r for r in accelerator_offers(embedded, "A10G", 1, clouds=["aws"]) if r.instance_type == "g5.xlarge"]
    assert (row.vcpus, row.memory_gib) == (4.0, 16.0)
    assert row.device_memory_gib is not None and 20 < row.device_memory_gib < 25


def test_offers_unknown_name_is_empty(embedded):
    assert accelerator_offers(embedded, "no-such-gpu") == []


def test_rows_without_on_demand_sort_last_and_use_spot_region(make_catalog):
    cat = make_catalog([
        dict(instance_type="a", accelerator="T4", accelerator_count=1.0, price=None, spot_price=0.1,
              region="us-west-2", zone="usw2-az1"),
        dict(instance_type="b", accelerator="T4", accelerator_count=1.0, price=3.0, spot_price=1.0),
        dict(instance_type="c", accelerator="T4", accelerator_count=1.0, price=2.0, spot_price=None),
    ])
    rows = accelerator_offers(cat, "t4")
    assert [r.instance_type for r in rows] == ["c", "b", "a"]
    assert rows[-1].cheapest_region == "us-west-2" and rows[-1].cheapest_zone == "usw2-az1"
