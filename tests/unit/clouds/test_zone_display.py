"""Zones as people know them: an AWS AZ ID shows with the account's AZ name where
the provider has said it; every location shows its region."""

from __future__ import annotations

from skyplan.cli.views import place_text
from skyplan.clouds import registry

ICC = ("An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation (reached max "
       "retries: 0): We currently do not have sufficient p3.16xlarge capacity in the Availability Zone you "
       "requested (us-east-1c). Our system will be working on provisioning additional capacity. You can currently "
       "get p3.16xlarge capacity by not specifying an Availability Zone in your request or choosing us-east-1a, "
       "us-east-1b.")
UNSUPPORTED = ("Your requested instance type (p3.16xlarge) is not supported in your requested Availability Zone "
               "(us-east-1e). Please retry your request by not specifying an Availability Zone or choosing "
               "us-east-1a.")


def test_aws_learns_the_az_name_from_ec2s_own_words_about_the_request() -> None:
    aws = registry.get("aws")
    assert aws.zone_name("use1-az1", "us-east-1", text=ICC) == "us-east-1c"
    assert aws.zone_name("use1-az5", "us-east-1", text=UNSUPPORTED) == "us-east-1e"
    # Never from the zones EC2 suggests instead, another region, or no text.
    assert aws.zone_name("use1-az1", "us-east-1", text="You can currently get capacity choosing us-east-1a.") is None
    assert aws.zone_name("use2-az1", "us-east-2", text=ICC) is None
    assert aws.zone_name("use1-az1", "us-east-1") is None
    # A Local Zone ID gets only a Local Zone name of its own group.
    assert aws.zone_name("usw2-lax1-az1", "us-west-2", text=ICC.replace("us-east-1c", "us-west-2a")) is None
    local = ICC.replace("us-east-1c", "us-west-2-lax-1a")
    assert aws.zone_name("usw2-lax1-az1", "us-west-2", text=local) == "us-west-2-lax-1a"


def test_aws_takes_the_name_the_instance_reports() -> None:
    aws = registry.get("aws")
    assert aws.zone_name("usw2-az1", "us-west-2", outputs={"zone_name": "us-west-2b"}) == "us-west-2b"
    assert aws.zone_name("usw2-az1", "us-west-2", outputs={"zone_name": "eu-west-1a"}) is None


def test_clouds_whose_catalog_spells_zones_by_name_need_no_translation() -> None:
    assert registry.get("gcp").zone_name("us-central1-a", "us-central1", text="zone us-central1-a") is None


def test_place_text_always_shows_the_region() -> None:
    assert place_text("gcp", "us-central1", "us-central1-a") == "us-central1-a"
    assert place_text("aws", "us-west-2", "usw2-az1") == "us-west-2 usw2-az1"
    assert place_text("aws", "us-east-1", "use1-az1", text=ICC) == "us-east-1c [use1-az1]"
    assert place_text("azure", "eastus", None) == "eastus"
