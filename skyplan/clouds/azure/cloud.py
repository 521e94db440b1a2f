"""The Azure cloud: virtual machines through pulumi-azure-native (program in ``stacks/azure``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from skyplan.clouds.azure.classify import classify as _classify
from skyplan.clouds.azure.classify import sample_error
from skyplan.clouds.base import PreflightResult, ProvisionRequest
from skyplan.errors import Classification

__all__ = ["Azure", "sample_error", "find_credentials"]


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


class Azure:
    """Azure behind the Cloud protocol. Our catalog has no Azure zones: candidates carry zone None."""

    name = "azure"
    display = "Azure"
    has_zones = False

    def classify(self, message: str) -> Classification:
        return _classify(message)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        return sample_error(outcome, request)

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        def run() -> None:
            from stacks.azure.program import build

            build(request)

        return run

    def preflight(self) -> PreflightResult:
        from stacks import plugin_status

        plugin = plugin_status("azure-native", "pulumi-azure-native")
        if not plugin.installed:
            return PreflightResult(False, f"Azure: {plugin.reason}", f"run `{plugin.install_hint}`",
                                   {"plugin": None, "package_version": plugin.version})
        cred = find_credentials()
        if cred is None:
            return PreflightResult(
                False,
                "Azure: no credentials found (ARM_CLIENT_ID+ARM_CLIENT_SECRET+ARM_TENANT_ID, ARM_USE_MSI, "
                "or `az login`)",
                "run `az login`, or export ARM_CLIENT_ID, ARM_CLIENT_SECRET, ARM_TENANT_ID and ARM_SUBSCRIPTION_ID",
                {"plugin": plugin.path, "package_version": plugin.version},
            )
        return PreflightResult(True, "", "", {"plugin": plugin.path, "package_version": plugin.version,
                                              "credentials": cred})
