"""AWS / EC2 error text -> kind and scope. Rows are ordered specific to generic.

Every row is exercised by tests/unit/clouds/corpus/aws.yaml (real messages, cited).
Scope notes: a subnet lives in one AZ, so running out of its addresses is zone
scope; vCPU limits (on-demand and spot) are per bucket of instance families in a
region (family scope, see families.py); instance-count limits are per region; spot
prices vary per AZ, so SpotMaxPriceTooLow is zone scope.
"""

from __future__ import annotations

import re

from skyplan.clouds.aws.families import family_key
from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.classify import GENERIC_TRANSIENT, Rule, TableClassifier, sample_from
from skyplan.errors import Classification, Kind, Scope

C, Q, A, I, T = Kind.CAPACITY, Kind.QUOTA, Kind.AUTH, Kind.INVALID, Kind.TRANSIENT

#: A quota's name where a text gives one ("Running On-Demand G and VT instances").
_BUCKET = r"(Running On-Demand [\w ,()]+? instances|All [\w ,()]+? Spot Instance Requests)"

RULES: tuple[Rule, ...] = (
    # --- capacity: this placement cannot be had right now ---------------------------
    Rule("InsufficientInstanceCapacity", C, Scope.ZONE, codes=("InsufficientInstanceCapacity",),
         pattern=r"We currently do not have sufficient \S+ capacity"),
    Rule("InsufficientHostCapacity", C, Scope.ZONE, codes=("InsufficientHostCapacity", "InsufficientCapacityOnHost")),
    Rule("Unsupported", C, Scope.ZONE, codes=("Unsupported",),
         pattern=r"is not supported in your requested Availability Zone",
         why="the type is not offered in this AZ: another AZ may have it"),
    Rule("SpotMaxPriceTooLow", C, Scope.ZONE, codes=("SpotMaxPriceTooLow",),
         pattern=r"Spot request price of \S+ is lower than the minimum required",
         why="spot prices differ per AZ"),
    Rule("InsufficientFreeAddressesInSubnet", C, Scope.ZONE, codes=("InsufficientFreeAddressesInSubnet",),
         pattern=r"not enough free addresses in subnet|subnet does not have enough free addresses",
         why="a subnet belongs to one AZ"),
    Rule("InvalidParameterValue", C, Scope.REGION, codes=("InvalidParameterValue",),
         pattern=r"instance types? that (?:are|is) not valid",
         when=r"instance types? that (?:are|is) not valid|for InstanceType",
         why="a catalog instance type rejected by a region is not offered there"),
    # --- quota: an account limit of this region --------------------------------------
    # vCPU limits are per bucket of instance families (families.py), on-demand and spot apart.
    Rule("VcpuLimitExceeded", Q, Scope.FAMILY, codes=("VcpuLimitExceeded",),
         pattern=r"more vCPU capacity than your current vCPU limit", family=_BUCKET,
         why="the limit of the failing type's bucket (G and VT, P, Standard ...) in this region"),
    Rule("InstanceLimitExceeded", Q, Scope.REGION, codes=("InstanceLimitExceeded",),
         pattern=r"more instances \(\d+\) than your current instance limit"),
    Rule("MaxSpotInstanceCountExceeded", Q, Scope.FAMILY, codes=("MaxSpotInstanceCountExceeded",),
         pattern=r"(?i)max spot instance count exceeded", family=_BUCKET,
         why="spot limits are vCPUs per bucket too (\"All G and VT Spot Instance Requests\")"),
    Rule("MaxFleetCountExceeded", Q, Scope.REGION, codes=("MaxFleetCountExceeded",)),
    # --- auth: nothing on this cloud will work ---------------------------------------
    Rule("AuthFailure", A, Scope.CLOUD, codes=("AuthFailure",),
         pattern=r"AWS was not able to validate the provided access credentials"),
    Rule("UnauthorizedOperation", A, Scope.CLOUD, codes=("UnauthorizedOperation",),
         pattern=r"You are not authorized to perform this operation"),
    Rule("InvalidClientTokenId", A, Scope.CLOUD,
         codes=("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException",
                "NoCredentialProviders")),
    # --- transient: retry the same placement -----------------------------------------
    Rule("RequestLimitExceeded", T, Scope.NONE, codes=("RequestLimitExceeded", "Throttling", "ThrottlingException"),
         pattern=r"(?i)\brequest limit exceeded\b"),
    Rule("InternalError", T, Scope.NONE, codes=("InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable")),
    # --- invalid request: no other placement will fix it -----------------------------
    Rule("InvalidParameterCombination", I, Scope.ALL,
         codes=("InvalidParameterCombination", "InvalidParameterValue", "InvalidParameter", "MissingParameter",
                "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable",
                "InvalidBlockDeviceMapping", "InvalidUserData.Malformed", "InvalidKeyPair.NotFound",
                "InvalidGroup.NotFound", "InvalidInstanceType"),
         pattern=r"\bInvalid[A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z]+)?\b"),
) + GENERIC_TRANSIENT

CLASSIFIER = TableClassifier("aws", RULES, family_key)


def classify(message: object) -> Classification:
    """Classify one AWS provider message (see :class:`TableClassifier`). Never raises."""
    return CLASSIFIER.classify(message)


# --- samples for the sim cloud -----------------------------------------------------------

#: outcome -> (corpus id the template is cut from, template). tests check the pairing.
SAMPLES: dict[str, tuple[str, str]] = {
    "capacity": (
        "aws-icc-terraform",
        "creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient {instance_type} "
        "capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning "
        "additional capacity. You can currently get {instance_type} capacity by not specifying an Availability "
        "Zone in your request or choosing {other_zones}.",
    ),
    "quota": (
        "aws-vcpu-terraform",
        "creating EC2 Instance: VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU "
        "limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit "
        "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.",
    ),
    "auth": (
        "aws-auth-failure-boto",
        "An error occurred (AuthFailure) when calling the RunInstances operation: AWS was not able to validate "
        "the provided access credentials",
    ),
    "invalid": (
        "aws-invalid-hvm",
        "A client error (InvalidParameterCombination) occurred when calling the RunInstances operation: "
        "Non-Windows instances with a virtualization type of 'hvm' are currently not supported for this "
        "instance type.",
    ),
    "transient": (
        "aws-request-limit-boto",
        "An error occurred (RequestLimitExceeded) when calling the RunInstances operation (reached max retries: "
        "4): Request limit exceeded. Account 797456418907 has been throttled on ec2:RunInstances because it "
        "exceeded its request rate limit.",
    ),
}


def _other_zones(zone: str) -> str:
    """Two sibling AZs to name in a capacity sample.

    Synthesized: EC2 names the AZs that have capacity, which the sim cannot know.
    """
    m = re.fullmatch(r"(.*\d)([a-z])", zone)  # a zone name: us-east-1a
    if m:
        others = [m.group(1) + c for c in "abcdef" if c != m.group(2)]
    else:
        m = re.fullmatch(r"(.*-az)(\d+)", zone)  # a zone id: use1-az1
        others = [f"{m.group(1)}{n}" for n in range(1, 7) if str(n) != m.group(2)] if m else []
    return ", ".join(others[:2]) or zone


def sample_error(outcome: str, request: ProvisionRequest) -> str:
    """EC2's usual text for a sim ``outcome``, with the request's type and zone filled in."""
    try:
        _, template = SAMPLES[outcome]
    except KeyError:
        raise ValueError(f"no AWS sample for outcome {outcome!r} (have: {', '.join(SAMPLES)})") from None
    zone = request.zone or f"{request.region}a"
    return sample_from(template, instance_type=request.instance_type, zone=zone, region=request.region,
                       other_zones=_other_zones(zone))
