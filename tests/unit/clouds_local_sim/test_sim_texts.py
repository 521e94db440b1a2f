from __future__ import annotations

import sys
import types

import pytest

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.sim import texts


def req(cloud="gcp", region="us-central1", zone="us-central1-a", instance_type="n1-highmem-8", use_spot=False, **kw):
    return ProvisionRequest(
        cluster="c1",
        stack="c1-stack",
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type=instance_type,
        use_spot=use_spot,
        **kw,
    )


@pytest.mark.parametrize(
    "request_, outcome, must_contain",
    [
        (req(), "capacity", ["ZONE_RESOURCE_POOL_EXHAUSTED", "zones/us-central1-a'", "does not have enough resources"]),
        (req(accelerators={"V100": 8.0}), "quota", ["QUOTA_EXCEEDED", "'NVIDIA_V100_GPUS'", "in region us-central1."]),
        (req(accelerators={"A100-80GB": 1.0}, use_spot=True), "quota", ["'PREEMPTIBLE_NVIDIA_A100_80GB_GPUS'"]),
        (req(), "quota", ["Quota 'CPUS' exceeded"]),
        (req(), "auth", ["Error 403", "compute.instances.create"]),
        (req(), "invalid", ["Error 400", "Invalid value for field", ", invalid"]),
        (req(), "transient", ["RESOURCE_OPERATION_RATE_EXCEEDED"]),
        (
            req("aws", "us-east-1", "use1-az1", "p3.16xlarge"),
            "capacity",
            ["api error InsufficientInstanceCapacity", "sufficient p3.16xlarge capacity", "(use1-az1)"],
        ),
        (req("aws", "us-east-1", "use1-az1", "p3.16xlarge"), "quota", ["api error VcpuLimitExceeded"]),
        (req("aws", "us-east-1", "use1-az1", "p3.2xlarge", use_spot=True), "quota", ["MaxSpotInstanceCountExceeded"]),
        (req("aws", "us-east-1", "use1-az1"), "auth", ["api error AuthFailure"]),
        (req("aws", "us-east-1", "use1-az1"), "invalid", ["api error InvalidBlockDeviceMapping"]),
        (req("aws", "us-east-1", "use1-az1"), "transient", ["api error RequestLimitExceeded"]),
        (req("azure", "eastus", "1", "Standard_NC6s_v3"), "capacity", ['Code="ZonalAllocationFailed"']),
        (req("azure", "eastus", None, "Standard_NC6s_v3"), "capacity", ['Code="AllocationFailed"', "in this region"]),
        (req("azure", "eastus", None), "quota", ['Code="OperationNotAllowed"', "Location: eastus"]),
        (req("azure", "eastus", None), "auth", ['Code="AuthorizationFailed"']),
        (req("azure", "eastus", None), "transient", ['Code="TooManyRequests"']),
    ],
)
def test_fallback_texts_carry_the_provider_code(request_, outcome, must_contain) -> None:
    text = texts.fallback_text(outcome, request_)
    for part in must_contain:
        assert part in text


def _fake_cloud_module(monkeypatch, cloud: str, sample_error) -> None:
    mod = types.ModuleType(f"skyplan.clouds.{cloud}.cloud")
    cls = type("GCP", (), {"sample_error": lambda self, outcome, request: sample_error(outcome, request)})
    mod.GCP = cls
    monkeypatch.setitem(sys.modules, f"skyplan.clouds.{cloud}.cloud", mod)


def test_the_target_clouds_own_text_comes_first(monkeypatch) -> None:
    _fake_cloud_module(monkeypatch, "gcp", lambda outcome, r: f"OWN {outcome} {r.zone}")
    assert texts.error_text("capacity", req()) == "OWN capacity us-central1-a"


def test_a_broken_or_empty_sample_error_falls_back(monkeypatch) -> None:
    def broken(outcome, r):
        raise NotImplementedError(outcome)

    _fake_cloud_module(monkeypatch, "gcp", broken)
    assert texts.error_text("capacity", req()) == texts.fallback_text("capacity", req())
    _fake_cloud_module(monkeypatch, "gcp", lambda outcome, r: "  ")
    assert texts.error_text("quota", req()) == texts.fallback_text("quota", req())


@pytest.mark.parametrize("cloud, region, zone", [("gcp", "us-central1", "us-central1-a"), ("aws", "us-east-1", "use1-az1"), ("azure", "eastus", None)])
@pytest.mark.parametrize("outcome", ["capacity", "quota", "auth", "invalid", "transient"])
def test_every_sim_text_classifies_as_its_outcome_with_the_real_classifier(cloud, region, zone, outcome) -> None:
    """Both the built-in table and the cloud's own sample_error must be read back
    by that cloud's real classifier as the outcome they stand for."""
    mod = pytest.importorskip(f"skyplan.clouds.{cloud}.cloud")
    target = getattr(mod, {"aws": "AWS", "gcp": "GCP", "azure": "Azure"}[cloud])()
    r = req(cloud, region, zone, "p3.2xlarge" if cloud == "aws" else "n1-highmem-8", accelerators={"V100": 1.0})
    for text in (texts.fallback_text(outcome, r), texts.error_text(outcome, r)):
        c = target.classify(text)
        assert c.kind.value == outcome, (text, c)
