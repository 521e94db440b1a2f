"""Azure / Microsoft.Compute error text -> kind and scope. Rows are ordered specific to generic.

Every row is exercised by tests/unit/clouds/corpus/azure.yaml (real messages, cited).
Scope is read from the text: "in this zone" or an Availability Zone constraint is
zone scope; "in this region" / "in location" is region scope. Our catalog gives
Azure candidates no zone, so on Azure the two block the same candidates.
Auth rows come before invalid ones: AuthorizationFailed says "or the scope is invalid".
A cores quota that names a VM family (standardFSv2Family) blocks that family in the
region; the regional total (Total Regional Cores) blocks the region.
"""

from __future__ import annotations

from skyplan.clouds.azure.families import family_key
from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.classify import GENERIC_TRANSIENT, Rule, TableClassifier, sample_from
from skyplan.errors import Classification, Kind, Scope

C, Q, A, I, T = Kind.CAPACITY, Kind.QUOTA, Kind.AUTH, Kind.INVALID, Kind.TRANSIENT

_SKU = r"is currently not available in location"
#: "exceeding approved standardFSv2Family Cores quota" / "... Standard NCASv3_T4 Family Cores quota".
_FAMILY_QUOTA = r"exceeding approved (\w[\w ]*?Family) Cores quota"

RULES: tuple[Rule, ...] = (
    # --- capacity ----------------------------------------------------------------------
    Rule("ZonalAllocationFailed", C, Scope.ZONE, codes=("ZonalAllocationFailed",),
         pattern=r"sufficient capacity for the requested VM size in this zone"),
    Rule("OverconstrainedZonalAllocationRequest", C, Scope.ZONE, codes=("OverconstrainedZonalAllocationRequest",),
         pattern=r"condition is too restrictive.*?Constraints applied are:.*?Availability Zone"),
    Rule("OverconstrainedAllocationRequest", C, Scope.REGION, codes=("OverconstrainedAllocationRequest",),
         pattern=r"condition is too restrictive|cannot be provisioned due to deployment request constraints"),
    Rule("AllocationFailed", C, Scope.REGION, codes=("AllocationFailed", "AllocationFailure"),
         pattern=r"sufficient capacity for the requested VM size in this region"),
    Rule("SkuNotAvailable", C, Scope.ZONE, codes=("SkuNotAvailable",), pattern=_SKU, when=r"zones '\d'",
         why="unavailable in the one zone asked for"),
    Rule("SkuNotAvailable", C, Scope.REGION, codes=("SkuNotAvailable",), pattern=_SKU),
    Rule("InvalidParameter", C, Scope.REGION, codes=("InvalidParameter",),
         pattern=r"is not available in the current region", when=r"is not available in the current region",
         why="the size is not offered in this region"),
    # --- quota -------------------------------------------------------------------------------
    Rule("OperationNotAllowed", Q, Scope.FAMILY, codes=("OperationNotAllowed",), when=_FAMILY_QUOTA,
         family=_FAMILY_QUOTA, why="one VM family's cores (standardFSv2Family) in this region"),
    Rule("QuotaExceeded", Q, Scope.FAMILY, codes=("QuotaExceeded",), pattern=_FAMILY_QUOTA, when=_FAMILY_QUOTA,
         family=_FAMILY_QUOTA),
    Rule("OperationNotAllowed", Q, Scope.REGION, codes=("OperationNotAllowed",), when=r"(?i)quota"),
    Rule("QuotaExceeded", Q, Scope.REGION, codes=("QuotaExceeded",),
         pattern=r"(?i)results in exceeding (?:approved [\w\s]*quota|quota limits?)"),
    # --- auth ----------------------------------------------------------------------------------
    Rule("AuthorizationFailed", A, Scope.CLOUD,
         codes=("AuthorizationFailed", "LinkedAuthorizationFailed", "InvalidAuthenticationToken",
                "InvalidAuthenticationTokenTenant", "ExpiredAuthenticationToken", "AuthenticationFailed",
                "ClientAuthenticationError", "ReadOnlyDisabledSubscription", "SubscriptionNotFound"),
         pattern=r"does not have authorization to perform action|The access token (?:is invalid|expiry)"
         r"|received access token is not valid|\bAADSTS\d+"),
    # --- transient -----------------------------------------------------------------------------
    Rule("OperationNotAllowed", T, Scope.NONE, codes=("OperationNotAllowed",), when=r"(?i)too many requests"),
    Rule("RetryableError", T, Scope.NONE,
         codes=("RetryableError", "TooManyRequests", "ResourceRequestsThrottled", "SubscriptionRequestsThrottled",
                "InternalServerError", "InternalExecutionError", "ServerTimeout", "ServiceUnavailable")),
    Rule("SubscriptionRequestsThrottled", T, Scope.NONE,
         pattern=r"Number of requests for subscription '[^']*' and operation '[^']*' exceeded"),
    Rule("TooManyRequests", T, Scope.NONE, pattern=r"(?i)request is being throttled|too many requests"),
    # --- invalid request ---------------------------------------------------------------------
    Rule("InvalidParameter", I, Scope.ALL,
         codes=("InvalidParameter", "InvalidTemplateDeployment", "InvalidTemplate", "InvalidRequestFormat",
                "MissingRequiredParameter", "BadRequest", "PropertyChangeNotAllowed", "InvalidResourceName"),
         pattern=r"The value of parameter \S+ is invalid|Required parameter '[^']+' is missing"),
) + GENERIC_TRANSIENT

CLASSIFIER = TableClassifier("azure", RULES, family_key)


def classify(message: object) -> Classification:
    """Classify one Azure provider message (see :class:`TableClassifier`). Never raises."""
    return CLASSIFIER.classify(message)


# --- samples for the sim cloud -----------------------------------------------------------

#: outcome -> (corpus id the template is cut from, template). tests check the pairing.
SAMPLES: dict[str, tuple[str, str]] = {
    "capacity": (
        "az-sku-capacity-restrictions",
        "SkuNotAvailable: The requested VM size for resource 'Following SKUs have failed for Capacity "
        "Restrictions: {instance_type}' is currently not available in location '{region}'. Please try another "
        "size or deploy to a different location or different zone. See https://aka.ms/azureskunotavailable for "
        "details.",
    ),
    "quota": (
        "az-quota-regional-cores",
        "Operation could not be completed as it results in exceeding approved Total Regional Cores quota. "
        "Additional details - Deployment Model: Resource Manager, Location: {region}, Current Limit: 10, Current "
        "Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12.\nStatus: 409 (Conflict)\n"
        "ErrorCode: OperationNotAllowed",
    ),
    "auth": (
        "az-authorization-failed-cli",
        "(AuthorizationFailed) The client 'live.com#alonsodm@yahoo.es' with object id "
        "'ebb57515-b4a1-458d-b8cb-28a709d3b551' does not have authorization to perform action "
        "'Microsoft.Resources/subscriptions/resourcegroups/write' over scope "
        "'/subscriptions/fcfd8558-600b-4e8c-8fc6-61a12221db20/resourcegroups/domingo_dev' or the scope is "
        "invalid. If access was recently granted, please refresh your credentials.",
    ),
    "invalid": (
        "az-invalid-admin-username",
        "compute.VirtualMachinesClient#CreateOrUpdate: Failure sending request: StatusCode=400 -- Original Error: "
        "Code=\"InvalidParameter\" Message=\"The Admin Username specified is not allowed.\" Target=\"adminUsername\"",
    ),
    "transient": (
        "az-retryable-pulumi",
        "RESPONSE 429: 429 Too Many Requests\n"
        "ERROR CODE: RetryableError\n"
        "--------------------------------------------------------------------------------\n"
        "{\n"
        "  \"error\": {\n"
        "    \"code\": \"RetryableError\",\n"
        "    \"message\": \"A retryable error occurred.\",\n"
        "    \"details\": [\n"
        "      {\n"
        "        \"code\": \"RetryableErrorDueToAnotherOperation\",\n"
        "        \"message\": \"Operation PutSubnetOperation (xxxxx) is updating resource /subscriptions/xxxxxx/"
        "resourceGroups/resourceGroup123456789/providers/Microsoft.Network/virtualNetworks/virtualNetworke12345679. "
        "The call can be retried in 14 seconds.\"\n"
        "      }\n"
        "    ]\n"
        "  }\n"
        "}\n"
        "--------------------------------------------------------------------------------",
    ),
}


def sample_error(outcome: str, request: ProvisionRequest) -> str:
    """Azure's usual text for a sim ``outcome``, with the request's size and region filled in."""
    try:
        _, template = SAMPLES[outcome]
    except KeyError:
        raise ValueError(f"no Azure sample for outcome {outcome!r} (have: {', '.join(SAMPLES)})") from None
    return sample_from(template, instance_type=request.instance_type, region=request.region)
