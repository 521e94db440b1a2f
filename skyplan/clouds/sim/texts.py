"""The error text a simulated create raises when a scenario rule gives none.

The text must be what the real cloud's provider says, code included, so that
the real classifier (and through it the failover) runs unchanged. The target
cloud's own ``sample_error(outcome, request)`` is asked first (its module is
imported lazily, by path, not through the registry); the table below is the
fallback, built from real message shapes (seed logs 000/001 for GCP zone
exhaustion, GCP quota and AWS InsufficientInstanceCapacity).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from skyplan.clouds.base import ProvisionRequest

_CLASS_NAMES = {"aws": "AWS", "gcp": "GCP", "azure": "Azure"}

SIM_PROJECT = "skyplan-sim"
SIM_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SIM_REQUEST_ID = "5e1d0c3a-0000-4000-8000-000000000000"


def error_text(outcome: str, request: ProvisionRequest) -> str:
    """The target cloud's usual text for a failure ``outcome``."""
    text = _from_cloud(outcome, request)
    if text:
        return text
    return fallback_text(outcome, request)


def _from_cloud(outcome: str, request: ProvisionRequest) -> str | None:
    try:
        mod = importlib.import_module(f"skyplan.clouds.{request.cloud}.cloud")
    except ImportError:
        return None
    fn: Callable[..., Any] | None = getattr(mod, "sample_error", None)
    if fn is None:
        cls = getattr(mod, _CLASS_NAMES.get(request.cloud, ""), None)
        if cls is None:
            return None
        try:
            fn = cls().sample_error
        except Exception:
            return None
    try:
        text = fn(outcome, request)
    except Exception:  # a partial implementation must not break the sim
        return None
    return text if isinstance(text, str) and text.strip() else None


def _vm_name(r: ProvisionRequest) -> str:
    return f"{r.stack}-node-0"


def _gpu_quota_metric(r: ProvisionRequest) -> str:
    if not r.accelerators:
        return "PREEMPTIBLE_CPUS" if r.use_spot else "CPUS"
    name = next(iter(r.accelerators)).upper().replace("-", "_")
    return ("PREEMPTIBLE_" if r.use_spot else "") + f"NVIDIA_{name}_GPUS"


def _gcp(outcome: str, r: ProvisionRequest) -> str:
    zone = r.zone or f"{r.region}-a"
    instance = f"projects/{SIM_PROJECT}/zones/{zone}/instances/{_vm_name(r)}"
    if outcome == "capacity":
        return (
            f"ZONE_RESOURCE_POOL_EXHAUSTED: The zone 'projects/{SIM_PROJECT}/zones/{zone}' does not have enough "
            "resources available to fulfill the request.  Try a different zone, or try again later."
        )
    if outcome == "quota":
        return f"QUOTA_EXCEEDED: Quota '{_gpu_quota_metric(r)}' exceeded.  Limit: 0.0 in region {r.region}."
    if outcome == "auth":
        return f"googleapi: Error 403: Required 'compute.instances.create' permission for '{instance}', forbidden"
    if outcome == "invalid":
        # A request no zone can serve (a machine type missing from one zone is
        # zone-scoped, not invalid).
        return (
            "googleapi: Error 400: Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb': "
            "'5'. Requested disk size cannot be smaller than the image size (10 GB)., invalid"
        )
    return (
        f"RESOURCE_OPERATION_RATE_EXCEEDED: Operation rate exceeded for resource '{instance}'. "
        "Too frequent operations from the source resource."
    )


def _aws(outcome: str, r: ProvisionRequest) -> str:
    def api(status: int, code: str, message: str) -> str:
        return (
            "creating EC2 Instance: operation error EC2: RunInstances, https response error "
            f"StatusCode: {status}, RequestID: {SIM_REQUEST_ID}, api error {code}: {message}"
        )

    zone = r.zone or r.region
    if outcome == "capacity":
        return api(
            500,
            "InsufficientInstanceCapacity",
            f"We currently do not have sufficient {r.instance_type} capacity in the Availability Zone you "
            f"requested ({zone}). Our system will be working on provisioning additional capacity.",
        )
    if outcome == "quota":
        if r.use_spot:
            return api(400, "MaxSpotInstanceCountExceeded", "Max spot instance count exceeded")
        return api(
            400,
            "VcpuLimitExceeded",
            "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance "
            "bucket that the specified instance type belongs to. Please visit "
            "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.",
        )
    if outcome == "auth":
        return api(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    if outcome == "invalid":
        return api(
            400,
            "InvalidBlockDeviceMapping",
            "Volume of size 5GB is smaller than snapshot 'snap-0123456789abcdef0', expect size >= 8GB",
        )
    return api(503, "RequestLimitExceeded", "Request limit exceeded.")


def _azure(outcome: str, r: ProvisionRequest) -> str:
    def err(status: int, code: str, message: str) -> str:
        return f'Status={status} Code="{code}" Message="{message}"'

    vm = (
        f"/subscriptions/{SIM_SUBSCRIPTION}/resourceGroups/{r.stack}/providers/"
        f"Microsoft.Compute/virtualMachines/{_vm_name(r)}"
    )
    if outcome == "capacity":
        where = "zone" if r.zone else "region"
        return err(
            409 if r.zone else 200,
            "ZonalAllocationFailed" if r.zone else "AllocationFailed",
            f"Allocation failed. We do not have sufficient capacity for the requested VM size in this {where}. "
            "Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance",
        )
    if outcome == "quota":
        return err(
            409,
            "OperationNotAllowed",
            "Operation could not be completed as it results in exceeding approved Total Regional Cores quota. "
            f"Additional details - Deployment Model: Resource Manager, Location: {r.region}, Current Limit: 0, "
            "Current Usage: 0, Additional Required: 8, (Minimum) New Limit Required: 8. "
            "Submit a request for Quota increase at https://aka.ms/ProdportalCRP",
        )
    if outcome == "auth":
        return err(
            403,
            "AuthorizationFailed",
            f"The client '{SIM_SUBSCRIPTION}' with object id '{SIM_SUBSCRIPTION}' does not have authorization to "
            f"perform action 'Microsoft.Compute/virtualMachines/write' over scope '{vm}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        )
    if outcome == "invalid":
        return err(
            400,
            "InvalidParameter",
            f"The value '{r.instance_type}' of parameter 'hardwareProfile.vmSize' is not valid.",
        )
    return err(
        429,
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type - "
        "Write_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits",
    )


_TABLE: dict[str, Callable[[str, ProvisionRequest], str]] = {"gcp": _gcp, "aws": _aws, "azure": _azure}


def fallback_text(outcome: str, request: ProvisionRequest) -> str:
    """The built-in text for ``outcome`` on ``request.cloud`` (capacity, quota,
    auth, invalid, transient)."""
    build = _TABLE.get(request.cloud)
    if build is None:
        return f"sim: {outcome} failure for {request.cloud} {request.region}/{request.zone}"
    return build(outcome, request)
