"""An attempt's line shows the provider's first sentence, unwrapped from SDK and bridge text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skyplan.clouds.headline import MAX_CHARS, headline

CORPUS = Path(__file__).parent / "corpus"

AWS_SEED = ("An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation (reached max "
            "retries: 0): We currently do not have sufficient p3.16xlarge capacity in the Availability Zone you "
            "requested (us-east-1a). Our system will be working on provisioning additional capacity. You can "
            "currently get p3.16xlarge capacity by not specifying an Availability Zone in your request or choosing "
            "us-east-1b, us-east-1d, us-east-1f.")


@pytest.mark.parametrize(("message", "code", "first"), [
    (AWS_SEED, "InsufficientInstanceCapacity",
     "We currently do not have sufficient p3.16xlarge capacity in the Availability Zone you requested (us-east-1a)."),
    # The Go SDK's wrapper, as the Pulumi bridge prints it (and the sim's own AWS text).
    ("creating EC2 Instance: operation error EC2: RunInstances, https response error StatusCode: 500, RequestID: "
     "5e1d0c3a-0000-4000-8000-000000000000, api error InsufficientInstanceCapacity: We currently do not have "
     "sufficient p3.2xlarge capacity in the Availability Zone you requested (use1-az1). Our system will be working.",
     "InsufficientInstanceCapacity",
     "We currently do not have sufficient p3.2xlarge capacity in the Availability Zone you requested (use1-az1)."),
    # GCP's invalid request: the message people saw three times before.
    ("Error: Error creating instance: googleapi: Error 400: Invalid value for field "
     "'resource.scheduling.preemptible': 'true'. Scheduling must have preemptible be false when AutomaticRestart "
     "is true., invalid", "invalid", "Invalid value for field 'resource.scheduling.preemptible': 'true'."),
    ("Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-central1.", "QUOTA_EXCEEDED",
     "Quota 'NVIDIA_V100_GPUS' exceeded."),
    ("Exception calling application: ZONE_RESOURCE_POOL_EXHAUSTED: The zone 'projects/p/zones/us-west1-a' does not "
     "have enough resources available to fulfill the request.  Try a different zone, or try again later.",
     "ZONE_RESOURCE_POOL_EXHAUSTED",
     "The zone 'projects/p/zones/us-west1-a' does not have enough resources available to fulfill the request."),
    # Structured errors: the message inside, not the envelope.
    ("<Response><Errors><Error><Code>Unsupported</Code><Message>The requested configuration is currently not "
     "supported. Please check the documentation.</Message></Error></Errors></Response>", "Unsupported",
     "The requested configuration is currently not supported."),
    ('polling failed: Status: "OverconstrainedZonalAllocationRequest" Code: "" Message: "Allocation failed. VM(s) '
     'with the following constraints cannot be allocated."', "OverconstrainedZonalAllocationRequest",
     "Allocation failed."),
    # A long label is prose, not a wrapper: kept.
    ('Insufficient regional quota to satisfy request for resource: "CPUS". The request requires 24.', "",
     'Insufficient regional quota to satisfy request for resource: "CPUS".'),
    ("", "x", ""),
])
def test_first_sentence_of_provider_texts(message: str, code: str, first: str) -> None:
    assert headline(message, code) == first


def test_every_recorded_provider_text_gives_a_short_single_line() -> None:
    for cloud in ("aws", "gcp", "azure"):
        for entry in yaml.safe_load((CORPUS / f"{cloud}.yaml").read_text()):
            text = headline(entry["message"], entry["code"])
            assert text, entry["id"]
            assert "\n" not in text and len(text) <= MAX_CHARS, entry["id"]
            assert len(text) < len(entry["message"]) or len(entry["message"]) < 120, entry["id"]


def test_a_text_without_any_sentence_end_is_cut_with_an_ellipsis() -> None:
    text = headline("x" * 5000)
    assert len(text) == MAX_CHARS and text.endswith("…")
