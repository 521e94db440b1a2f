"""The Azure cloud: virtual machines through pulumi-azure-native (program in ``stacks/azure``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from skyplan.clouds.capabilities import Capabilities, InstanceState
from skyplan.clouds.provider import ProviderCloud

__all__ = ["Azure", "find_credentials"]


def find_credentials(env: dict[str, str] | None = None, home: Path | None = None) -> str | None:
    """Where Azure credentials would come from, or None. Looks, never calls Azure.

    A service principal needs a client id, a tenant, and a secret (or MSI / OIDC /
    a certificate); otherwise ``az login`` leaves subscriptions in azureProfile.json.
    """
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else home
    truthy = {"1", "true", "yes"}
    if env.get("ARM_USE_MSI", "").lower() in truthy:
        return "env ARM_USE_MSI"
    if env.get("ARM_CLIENT_ID") and env.get("ARM_TENANT_ID"):
        if env.get("ARM_CLIENT_SECRET"):
            return "env ARM_CLIENT_ID/ARM_CLIENT_SECRET"
        if env.get("ARM_USE_OIDC", "").lower() in truthy:
            return "env ARM_CLIENT_ID/ARM_USE_OIDC"
        if env.get("ARM_CLIENT_CERTIFICATE_PATH"):
            return "env ARM_CLIENT_ID/ARM_CLIENT_CERTIFICATE_PATH"
    config = Path(env["AZURE_CONFIG_DIR"]).expanduser() if env.get("AZURE_CONFIG_DIR") else home / ".azure"
    profile = config / "azureProfile.json"
    try:
        # az writes this file with a UTF-8 BOM.
        data = json.loads(profile.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("subscriptions"):
        return f"az login ({profile})"
    return None


class Azure(ProviderCloud):
    """Azure behind the Cloud protocol. Our catalog has no Azure zones: candidates carry zone None."""

    name = "azure"
    display = "Azure"
    # The v6 seed has no zones: regions are the smallest failover unit.
    # Its buckets are Blob containers, mounted with blobfuse2 (stacks/azure/program.py).
    capabilities = Capabilities(has_zones=False, simulatable=True, nodes_over_ssh=True, has_log_source=True,
                                reruns_in_place=True, bucket_store="azure")
    plugin = "azure-native"
    package = "pulumi-azure-native"
    credentials_where = "ARM_CLIENT_ID+ARM_CLIENT_SECRET+ARM_TENANT_ID, ARM_USE_MSI, or `az login`"
    credentials_fix = ("run `az login`, or export ARM_CLIENT_ID, ARM_CLIENT_SECRET, ARM_TENANT_ID and "
                       "ARM_SUBSCRIPTION_ID")
    # A VirtualMachine's power state is in its instanceView (PowerState/<state>), which
    # Azure returns only when asked for it ($expand=instanceView): when a refresh has none,
    # only provisioningState Deleting, or the VM gone from the state, tells anything
    # (Spot VMs are made with evictionPolicy Delete: an evicted one is gone). Succeeded
    # says nothing of power, so it is never taken for running.
    instance_state = InstanceState(
        type="azure-native:compute:VirtualMachine",
        props=("instanceView.statuses.code", "provisioningState"),
        states={"PowerState/running": "running", "PowerState/stopping": "stopped",
                "PowerState/stopped": "stopped", "PowerState/deallocating": "stopped",
                "PowerState/deallocated": "stopped", "Deleting": "gone"},
    )

    def find_credentials(self) -> str | None:
        return find_credentials()
