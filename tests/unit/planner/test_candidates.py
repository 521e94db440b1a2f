"""Planner semantics over a small fake catalog: each rule has a test that can fail."""

from __future__ import annotations

import pytest

from skyplan.errors import NoCandidatesError
from skyplan.planner.candidates import enumerate_candidates, explain
from skyplan.spec.models import Accelerator, Preference, Quantity, ResourceRequest, Resources, Task
from skyplan.testing.fakes import FakeCatalog, offer

CAT = FakeCatalog([
    offer("aws", "g5.xlarge", "us-east-1", "use1-az1", vcpus=4, mem=16, acc="A10G", count=1, price=1.006, spot=0.40),
    offer("aws", "g5.xlarge", "us-east-1", "use1-az2", vcpus=4, mem=16, acc="A10G", count=1, price=1.006, spot=0.35),
    offer("gcp", "g2-standard-4", "us-east4", "us-east4-a", vcpus=4, mem=16, acc="L4", count=1, price=0.70, spot=0.22),
    offer("gcp", "g2-standard-8", "us-east4", "us-east4-a", vcpus=8, mem=32, acc="L4", count=1, price=0.85, spot=0.30),
    offer("azure", "Standard_NV36ads_A10_v5", "eastus", None, vcpus=36, mem=440, acc="A10", count=1, price=3.2, spot=None),
    offer("azure", "Standard_NC24ads_A100_v4", "eastus", None, vcpus=24, mem=220, acc="A100", count=1, price=3.67, spot=1.1),
    offer("aws", "m6i.xlarge", "us-east-1", "use1-az1", vcpus=4, mem=16, price=0.192, spot=0.08),
    offer("aws", "m6i.2xlarge", "us-east-1", "use1-az1", vcpus=8, mem=32, price=0.384, spot=0.15),
    offer("gcp", "n2-standard-8", "us-central1", "us-central1-a", vcpus=8, mem=32, price=0.39, spot=0.09),
    offer("aws", "t3.medium", "us-east-1", "use1-az1", vcpus=2, mem=4, price=0.0416, spot=0.012),
    offer("aws", "p4d.24xlarge", "eu-north-1", "eun1-az1", vcpus=96, mem=1152, acc="A100", count=8, price=32.0, spot=None),
    offer("aws", "p5.4xlarge", "us-east-1", "use1-az1", vcpus=16, mem=256, acc="H100", count=1, price=6.9, spot=None),
])


def task(*reqs: ResourceRequest, pref=Preference.CHEAPEST, nodes=1) -> Task:
    return Task(num_nodes=nodes, resources=Resources(candidates=tuple(reqs) or (ResourceRequest(),), preference=pref))


def accs(*names, pref=Preference.CHEAPEST, **kw):
    return ResourceRequest(accelerators=tuple(Accelerator(n, 1) for n in names), accelerator_preference=pref, **kw)


def test_set_is_ranked_by_cost_and_expands_every_type():
    cands = enumerate_candidates(task(accs("A10", "L4", "A10g")), CAT)
    assert [c.instance_type for c in cands] == [
        "g2-standard-4", "g2-standard-8", "g5.xlarge", "g5.xlarge", "Standard_NV36ads_A10_v5"]
    assert [c.rank for c in cands] == [1, 2, 3, 4, 5]


def test_list_is_ranked_by_preference_then_cost():
    cands = enumerate_candidates(task(accs("A10", "A10g", "L4", pref=Preference.ORDERED)), CAT)
    assert [c.accelerators[0][0] for c in cands] == ["A10", "A10G", "A10G", "L4", "L4"]
    assert cands[0].preference == (0, 0) and cands[-1].preference == (0, 2)


def test_accelerator_names_match_case_insensitively():
    assert {c.instance_type for c in enumerate_candidates(task(accs("a10g")), CAT)} == {"g5.xlarge"}


def test_ties_break_on_cloud_region_zone():
    cands = enumerate_candidates(task(accs("A10G")), CAT)
    assert [c.zone for c in cands] == ["use1-az1", "use1-az2"]


def test_any_of_ranks_entries_by_cost_and_ordered_by_index():
    a = ResourceRequest(instance_type="g5.xlarge")
    b = ResourceRequest(cloud="gcp", accelerators=(Accelerator("L4", 1),))
    cheap = enumerate_candidates(task(a, b), CAT)
    assert cheap[0].cloud == "gcp"
    ordered = enumerate_candidates(task(a, b, pref=Preference.ORDERED), CAT)
    assert ordered[0].instance_type == "g5.xlarge" and ordered[-1].cloud == "gcp"


def test_spot_uses_spot_price_and_drops_offers_without_one():
    cands = enumerate_candidates(task(accs("A10", "A10G", use_spot=True)), CAT)
    assert all(c.use_spot for c in cands)
    assert [c.hourly_price for c in cands] == [0.35, 0.40]  # Azure A10 has no spot price


def test_pins_restrict_candidates():
    assert {c.cloud for c in enumerate_candidates(task(accs("L4", "A10G", cloud="aws")), CAT)} == {"aws"}
    assert {c.zone for c in enumerate_candidates(task(accs("A10G", zone="use1-az2")), CAT)} == {"use1-az2"}
    assert {c.region for c in enumerate_candidates(task(accs("A10G", "L4", region="us-east4")), CAT)} == {"us-east4"}


def test_cpus_exact_vs_at_least():
    exact = enumerate_candidates(task(ResourceRequest(cpus=Quantity(8))), CAT)
    assert {c.vcpus for c in exact} == {8}
    at_least = enumerate_candidates(task(ResourceRequest(cpus=Quantity(4, at_least=True))), CAT)
    assert {c.vcpus for c in at_least} == {4, 8}
    assert at_least[0].instance_type == "m6i.xlarge"


def test_memory_at_least():
    cands = enumerate_candidates(task(ResourceRequest(memory=Quantity(30, at_least=True))), CAT)
    assert {c.instance_type for c in cands} == {"m6i.2xlarge", "n2-standard-8"}


def test_default_request_excludes_gpu_types_and_tiny_types():
    cands = enumerate_candidates(task(), CAT)
    assert all(not c.accelerators for c in cands)
    assert "t3.medium" not in {c.instance_type for c in cands}


def test_max_hourly_cost_drops_candidates_over_it():
    cands = enumerate_candidates(task(accs("A10", "L4", "A10g", max_hourly_cost=0.9)), CAT)
    assert [c.instance_type for c in cands] == ["g2-standard-4", "g2-standard-8"]


def test_cost_is_price_times_nodes():
    cands = enumerate_candidates(task(accs("L4"), nodes=3), CAT)
    assert cands[0].hourly_price == 0.70 and cands[0].hourly_cost == pytest.approx(2.1)


def test_no_candidate_names_the_constraint():
    with pytest.raises(NoCandidatesError) as e:
        enumerate_candidates(task(accs("H100", cloud="aws", region="eu-north-1")), CAT)
    assert "no AWS offer has H100:1 in eu-north-1" in e.value.message
    with pytest.raises(NoCandidatesError) as e:
        enumerate_candidates(task(accs("A100", max_hourly_cost=1.0)), CAT)
    assert "max_hourly_cost" in e.value.message


def test_unknown_accelerator_suggests_a_name():
    with pytest.raises(NoCandidatesError) as e:
        enumerate_candidates(task(accs("A1O0")), CAT)
    assert "unknown accelerator 'A1O0'" in e.value.message


def test_explain_counts_what_each_constraint_removed():
    (label, steps), = explain(task(accs("A10G", cloud="aws", zone="use1-az1")), CAT)
    names = [s.constraint for s in steps]
    assert names[:3] == ["catalog (aws, gcp, azure)", "cloud = aws", "zone = use1-az1"]
    total = steps[0].remaining
    assert total == 12
    assert steps[1].removed == 12 - 7 and steps[2].remaining == 5
    acc = next(s for s in steps if s.constraint.startswith("accelerators"))
    assert acc.remaining == 1
