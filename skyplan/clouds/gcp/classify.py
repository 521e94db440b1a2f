"""GCP / Compute Engine error text -> kind and scope. Rows are ordered specific to generic.

Every row is exercised by tests/unit/clouds/corpus/gcp.yaml (real messages, cited).
The Terraform bridge (and so pulumi-gcp) often prints only an operation's message,
without its code; the patterns below recognise those messages by their wording.
Quotas named ``*_ALL_REGIONS`` or reported "globally" block every region of GCP;
per-family quotas (``N2_CPUS``, ``NVIDIA_V100_GPUS``) block that family in the
region; the regional total ``CPUS`` and other regional quotas block the region.
"""

from __future__ import annotations

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.gcp.families import family_key, gpu_quota
from skyplan.clouds.classify import GENERIC_TRANSIENT, Rule, TableClassifier, sample_from
from skyplan.errors import Classification, Kind, Scope

C, Q, A, I, T = Kind.CAPACITY, Kind.QUOTA, Kind.AUTH, Kind.INVALID, Kind.TRANSIENT

_STOCKOUT = r"does not have enough resources available to fulfill the request"
#: A per-family quota: <SERIES>_CPUS or NVIDIA_<MODEL>_GPUS (optionally PREEMPTIBLE_), never the total CPUS.
_FAMILY_METRIC = r"(?!(?:PREEMPTIBLE_)?CPUS\b)((?:PREEMPTIBLE_)?(?:[A-Z][A-Z0-9]*_CPUS|NVIDIA_[A-Z0-9_]+_GPUS))"
_FAMILY_QUOTA = (r"Quota '" + _FAMILY_METRIC + r"' exceeded"
                 r"|Insufficient regional quota to satisfy request for resource: \"" + _FAMILY_METRIC + r"\"")

RULES: tuple[Rule, ...] = (
    # --- capacity ----------------------------------------------------------------------
    Rule("ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", C, Scope.ZONE,
         codes=("ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",),
         pattern=_STOCKOUT + r"\.\s+'\(resource type:|VM instance[^.]* is\s+currently unavailable in the \S+ zone"),
    Rule("ZONE_RESOURCE_POOL_EXHAUSTED", C, Scope.ZONE,
         codes=("ZONE_RESOURCE_POOL_EXHAUSTED", "insufficientCapacity", "STOCKOUT"), pattern=_STOCKOUT),
    Rule("UNSUPPORTED_OPERATION", C, Scope.ZONE, codes=("UNSUPPORTED_OPERATION",),
         why="seen when a VM is preempted while it is created; like EC2 'Unsupported', try another zone"),
    Rule("invalid", C, Scope.ZONE, pattern=r"Machine type with name '[^']+' does not exist in zone",
         why="the type is not offered in this zone"),
    Rule("notFound", C, Scope.ZONE, pattern=r"/acceleratorTypes/[^'\s]+'? was not found",
         why="the GPU is not offered in this zone"),
    Rule("IP_SPACE_EXHAUSTED_WITH_DETAILS", C, Scope.REGION,
         codes=("IP_SPACE_EXHAUSTED_WITH_DETAILS", "IP_SPACE_EXHAUSTED"),
         why="a subnetwork is regional"),
    # --- transient (before quota: API rate limits also say "Quota exceeded") ---------------
    Rule("RESOURCE_OPERATION_RATE_EXCEEDED", T, Scope.NONE,
         codes=("RESOURCE_OPERATION_RATE_EXCEEDED", "CONCURRENT_OPERATIONS_QUOTA_EXCEEDED"),
         pattern=r"Operation rate exceeded for resource|Too frequent operations from the source resource"),
    Rule("rateLimitExceeded", T, Scope.NONE, codes=("rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"),
         pattern=r"(?i)\brate limit exceeded\b"),
    # --- quota -------------------------------------------------------------------------------
    Rule("QUOTA_EXCEEDED", Q, Scope.CLOUD, codes=("QUOTA_EXCEEDED", "quotaExceeded"),
         pattern=r"Quota '[A-Z0-9_]+' exceeded",
         when=r"Quota '[A-Z0-9_]*_ALL_REGIONS' exceeded|exceeded\.\s+Limit: [\d.]+ globally",
         why="a cross-region quota: every region of GCP is blocked"),
    Rule("QUOTA_EXCEEDED", Q, Scope.FAMILY, codes=("QUOTA_EXCEEDED", "quotaExceeded"),
         pattern=_FAMILY_QUOTA, when=_FAMILY_QUOTA, family=_FAMILY_QUOTA,
         why="a machine series' CPUs (N2_CPUS) or a GPU model (NVIDIA_T4_GPUS) in this region"),
    Rule("QUOTA_EXCEEDED", Q, Scope.REGION, codes=("QUOTA_EXCEEDED", "quotaExceeded"),
         pattern=r"Quota '[A-Z0-9_]+' exceeded|Insufficient regional quota"),
    # --- auth ----------------------------------------------------------------------------------
    Rule("forbidden", A, Scope.CLOUD, codes=("forbidden",), when=r"(?i)permission|not authorized"),
    Rule("PERMISSION_DENIED", A, Scope.CLOUD, codes=("PERMISSION_DENIED", "IAM_PERMISSION_DENIED"),
         pattern=r"(?i)\bpermission denied\b|Required '[\w.]+' permission"),
    Rule("invalid_grant", A, Scope.CLOUD, codes=("invalid_grant", "UNAUTHENTICATED"),
         pattern=r"RefreshError|DefaultCredentialsError|[Cc]ould not find default credentials"
         r"|Request had invalid authentication credentials"),
    # --- invalid request ---------------------------------------------------------------------
    Rule("invalid", I, Scope.ALL, codes=("invalid",), pattern=r"Invalid value for field",
         when=r"Error 400|HttpError 400|Invalid value for field|, invalid\s*$"),
    Rule("badRequest", I, Scope.ALL, codes=("badRequest",), pattern=r"HttpError 400 when requesting"),
    # --- generic transient -----------------------------------------------------------------------
    Rule("backendError", T, Scope.NONE, codes=("backendError", "internalError", "SERVICE_UNAVAILABLE"),
         pattern=r"\b(?:503 SERVICE UNAVAILABLE|500 INTERNAL SERVER ERROR)\b"),
) + GENERIC_TRANSIENT

CLASSIFIER = TableClassifier("gcp", RULES, family_key)


def classify(message: object) -> Classification:
    """Classify one GCP provider message (see :class:`TableClassifier`). Never raises."""
    return CLASSIFIER.classify(message)


# --- samples for the sim cloud -----------------------------------------------------------

#: The project named in sample texts: the one in the seed logs this sim replays.
SAMPLE_PROJECT = "intercloud-320520"

#: outcome -> (corpus id the template is cut from, template). tests check the pairing.
SAMPLES: dict[str, tuple[str, str]] = {
    "capacity": (
        "gcp-zrpe-seed-a",
        "The zone 'projects/{project}/zones/{zone}' does not have enough resources available to fulfill the "
        "request.  Try a different zone, or try again later.",
    ),
    "quota": ("gcp-quota-seed-v100", "Quota '{quota}' exceeded.  Limit: {limit} in region {region}."),
    "auth": (
        "gcp-permission-zones-get",
        "Error creating instance: googleapi: Error 403: Required 'compute.zones.get' permission for "
        "'projects/{project}/zones/{zone}', forbidden",
    ),
    "invalid": (
        "gcp-invalid-preemptible",
        "Error: Error creating instance: googleapi: Error 400: Invalid value for field "
        "'resource.scheduling.preemptible': 'true'. Scheduling must have preemptible be false when "
        "AutomaticRestart is true., invalid",
    ),
    "transient": (
        "gcp-rate-limit-quota-group",
        "Error: Error when reading or editing ComputeReservation \"something1\": googleapi: Error 403: Quota "
        "exceeded for quota group 'ReadGroup' and limit 'Read requests per user per 100 seconds' of service "
        "'compute.googleapis.com' for consumer 'project_number:123456'., rateLimitExceeded",
    ),
}


def quota_metric(accelerators: dict[str, float], use_spot: bool = False) -> str:
    """The regional GCP quota a request draws on: the GPU's when it has one, else CPUS.

    Spot capacity draws on the PREEMPTIBLE_ variant of the quota.
    """
    metric = "CPUS"
    for name in accelerators:
        metric = gpu_quota(name)
        break
    return ("PREEMPTIBLE_" if use_spot else "") + metric


def sample_error(outcome: str, request: ProvisionRequest) -> str:
    """Compute Engine's usual text for a sim ``outcome``, with the request's zone and region filled in."""
    try:
        _, template = SAMPLES[outcome]
    except KeyError:
        raise ValueError(f"no GCP sample for outcome {outcome!r} (have: {', '.join(SAMPLES)})") from None
    zone = request.zone or f"{request.region}-a"
    # The limit is the seed's figure: the sim does not know the account's real quota.
    return sample_from(template, project=SAMPLE_PROJECT, zone=zone, region=request.region,
                       quota=quota_metric(request.accelerators, request.use_spot), limit="1.0")
