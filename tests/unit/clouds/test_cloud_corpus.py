"""Each cloud's classifier against the corpus of real provider messages.

The corpus lives next to this file (corpus/aws.yaml, gcp.yaml, azure.yaml); each
entry cites where its text was copied from (`source`: a GitHub issue, PR or file
URL, or a seed log under /work/shared/seeds) and says what was cut (`note`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skyplan.clouds.aws.classify import CLASSIFIER as AWS_CLASSIFIER
from skyplan.clouds.azure.classify import CLASSIFIER as AZURE_CLASSIFIER
from skyplan.clouds.gcp.classify import CLASSIFIER as GCP_CLASSIFIER

CORPUS_DIR = Path(__file__).parent / "corpus"
CLASSIFIERS = {"aws": AWS_CLASSIFIER, "gcp": GCP_CLASSIFIER, "azure": AZURE_CLASSIFIER}

#: Codes the issue requires the corpus to cover, per cloud (checked against `code` or the text).
REQUIRED = {
    "aws": ["InsufficientInstanceCapacity", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "Unsupported",
            "SpotMaxPriceTooLow", "InsufficientFreeAddressesInSubnet", "RequestLimitExceeded", "AuthFailure",
            "UnauthorizedOperation"],
    "gcp": ["ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "QUOTA_EXCEEDED",
            "GPUS_ALL_REGIONS", "UNSUPPORTED_OPERATION", "forbidden"],
    "azure": ["SkuNotAvailable", "ZonalAllocationFailed", "AllocationFailed", "OverconstrainedAllocationRequest",
              "OperationNotAllowed", "AuthorizationFailed", "InvalidAuthenticationToken"],
}


def load(cloud: str) -> list[dict]:
    return yaml.safe_load((CORPUS_DIR / f"{cloud}.yaml").read_text())


ENTRIES = [(cloud, e) for cloud in CLASSIFIERS for e in load(cloud)]


@pytest.mark.parametrize(("cloud", "entry"), ENTRIES, ids=[e["id"] for _, e in ENTRIES])
def test_entry_classifies_as_recorded(cloud: str, entry: dict) -> None:
    got = CLASSIFIERS[cloud].classify(entry["message"])
    assert (got.code, got.kind.value, got.scope.value) == (entry["code"], entry["kind"], entry["scope"])
    assert got.family == entry.get("family")  # the quota family the text names, normalised
    assert got.message == entry["message"].strip()


@pytest.mark.parametrize(("cloud", "entry"), ENTRIES, ids=[e["id"] for _, e in ENTRIES])
def test_entry_survives_engine_wrapping(cloud: str, entry: dict) -> None:
    """The dynamic-provider prefix and a Pulumi multi-error wrapper do not change the verdict."""
    bare = CLASSIFIERS[cloud].classify(entry["message"])
    prefixed = CLASSIFIERS[cloud].classify("Exception calling application: " + entry["message"])
    wrapped = CLASSIFIERS[cloud].classify("1 error occurred:\n\t* " + entry["message"] + "\n\n")
    assert prefixed == bare  # the prefix is dropped from the message too
    assert (wrapped.code, wrapped.kind, wrapped.scope) == (bare.code, bare.kind, bare.scope)


@pytest.mark.parametrize("cloud", list(CLASSIFIERS))
def test_corpus_is_cited_and_large_enough(cloud: str) -> None:
    entries = load(cloud)
    assert len(entries) >= 12
    assert len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        src = e["source"]
        assert src.startswith("https://github.com/") or src.startswith("seed 00"), e["id"]


@pytest.mark.parametrize("cloud", list(CLASSIFIERS))
def test_corpus_covers_the_required_codes(cloud: str) -> None:
    entries = load(cloud)
    seen = " ".join(e["code"] + " " + e["message"] for e in entries)
    missing = [code for code in REQUIRED[cloud] if code not in seen]
    assert not missing


def test_corpus_total_is_at_least_40() -> None:
    assert sum(len(load(c)) for c in CLASSIFIERS) >= 40


@pytest.mark.parametrize("cloud", list(CLASSIFIERS))
def test_every_outcome_kind_is_represented(cloud: str) -> None:
    kinds = {e["kind"] for e in load(cloud)}
    assert {"capacity", "quota", "auth", "invalid", "transient"} <= kinds


@pytest.mark.parametrize("cloud", list(CLASSIFIERS))
def test_quota_is_covered_per_family_and_per_region(cloud: str) -> None:
    scopes = {e["scope"] for e in load(cloud) if e["kind"] == "quota"}
    assert {"family", "region"} <= scopes
