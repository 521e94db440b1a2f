"""A GPU task that does not size its host never lands on a host nobody would
choose (GCP N1 with one vCPU); a task that sizes the host still may."""

from __future__ import annotations

from dataclasses import replace

import pytest

from skyplan.catalog import load_catalog
from skyplan.errors import NoCandidatesError
from skyplan.planner import enumerate_candidates, explain, make_plan
from skyplan.planner.candidates import HOST_SIZE_STEP
from skyplan.spec import load_text
from skyplan.testing.fakes import FakeCatalog, offer


def _gcp(text: str):
    return [c for c in make_plan(load_text(text), load_catalog()).candidates if c.cloud == "gcp"]


def test_t4_without_cpus_or_memory_gets_at_least_4_vcpus_and_16_gib():
    gcp = _gcp("resources:\n  accelerators: T4:1\n")
    assert gcp
    assert all(c.vcpus >= 4 and c.memory_gib >= 16 for c in gcp)
    types = {c.instance_type for c in gcp}
    assert "n1-standard-1" not in types and "n1-standard-4" not in types  # 15 GB < 16 GiB
    assert {"n1-highmem-4", "n1-standard-8"} <= types


def test_v100_gets_at_least_8_vcpus_and_eight_v100s_an_n1_highmem_64():
    v1 = _gcp("resources:\n  accelerators: V100:1\n")
    assert v1 and all(c.vcpus >= 8 and c.memory_gib >= 32 for c in v1)
    assert v1[0].instance_type == "n1-highmem-8"  # what SkyPilot picks in seed 000
    v8 = make_plan(load_text("resources:\n  accelerators: V100:8\n"), load_catalog()).candidates
    assert (v8[0].cloud, v8[0].instance_type) == ("gcp", "n1-highmem-64")
    assert all(c.vcpus >= 64 for c in v8 if c.cloud == "gcp")


def test_explicit_cpus_memory_or_instance_type_still_allow_a_small_host():
    assert "n1-standard-1" in {c.instance_type for c in _gcp("resources:\n  accelerators: T4:1\n  cpus: 1\n")}
    assert "n1-standard-2" in {c.instance_type for c in _gcp("resources:\n  accelerators: T4:1\n  memory: 4+\n")}
    pinned = _gcp("resources:\n  accelerators: T4:1\n  instance_type: n1-standard-1\n")
    assert pinned and {c.instance_type for c in pinned} == {"n1-standard-1"}


def test_the_rule_is_the_offers_flag_not_a_table_in_the_planner():
    # Made-up instance types: only the flag the catalog mapping set decides.
    cat = FakeCatalog([
        replace(offer("gcp", "tiny", "r1", "r1-a", vcpus=1, mem=4, acc="T4", count=1, price=0.3), undersized=True),
        offer("gcp", "roomy", "r1", "r1-a", vcpus=8, mem=52, acc="T4", count=1, price=0.8),
    ])
    task = load_text("resources:\n  cloud: gcp\n  accelerators: T4:1\n")
    assert [c.instance_type for c in enumerate_candidates(task, cat)] == ["roomy"]
    steps = explain(task, cat)[0][1]
    step = next(s for s in steps if s.constraint == HOST_SIZE_STEP)
    assert (step.removed, step.remaining) == (1, 1)


def test_an_empty_plan_names_the_host_size_and_how_to_allow_a_smaller_one():
    cat = FakeCatalog([replace(offer("gcp", "tiny", "r1", "r1-a", vcpus=1, mem=4, acc="T4", count=1),
                               undersized=True)])
    with pytest.raises(NoCandidatesError) as e:
        enumerate_candidates(load_text("resources:\n  cloud: gcp\n  accelerators: T4:1\n"), cat)
    assert "default size" in e.value.message and "set cpus or memory" in e.value.message
