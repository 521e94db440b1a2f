"""The GCP cloud: Compute Engine instances through pulumi-gcp (program in ``stacks/gcp``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from skyplan.clouds.base import PreflightResult, ProvisionRequest
from skyplan.clouds.gcp.classify import classify as _classify
from skyplan.clouds.gcp.classify import sample_error
from skyplan.errors import Classification

__all__ = ["GCP", "sample_error", "find_credentials"]


def find_credentials(env: dict[str, str] | None = None, home: Path | None = None) -> str | None:
    """Where Google credentials would come from, or None. Looks, never calls Google."""
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else home
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and Path(path).expanduser().is_file():
        return f"env GOOGLE_APPLICATION_CREDENTIALS={path}"
    if env.get("GOOGLE_CREDENTIALS"):
        return "env GOOGLE_CREDENTIALS"
    if env.get("GOOGLE_OAUTH_ACCESS_TOKEN"):
        return "env GOOGLE_OAUTH_ACCESS_TOKEN"
    config = Path(env["CLOUDSDK_CONFIG"]).expanduser() if env.get("CLOUDSDK_CONFIG") else home / ".config" / "gcloud"
    adc = config / "application_default_credentials.json"
    if adc.is_file():
        return str(adc)
    return None


class GCP:
    """GCP behind the Cloud protocol. The project comes from the provider's usual config."""

    name = "gcp"
    display = "GCP"
    has_zones = True

    def classify(self, message: str) -> Classification:
        return _classify(message)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        return sample_error(outcome, request)

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        def run() -> None:
            from stacks.gcp.program import build

            build(request)

        return run

    def preflight(self) -> PreflightResult:
        from stacks import plugin_status

        plugin = plugin_status("gcp", "pulumi-gcp")
        if not plugin.installed:
            return PreflightResult(False, f"GCP: {plugin.reason}", f"run `{plugin.install_hint}`",
                                   {"plugin": None, "package_version": plugin.version})
        cred = find_credentials()
        if cred is None:
            return PreflightResult(
                False,
                "GCP: no credentials found (GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_CREDENTIALS or "
                "application default credentials)",
                "run `gcloud auth application-default login`, or export GOOGLE_APPLICATION_CREDENTIALS=<key.json>",
                {"plugin": plugin.path, "package_version": plugin.version},
            )
        return PreflightResult(True, "", "", {"plugin": plugin.path, "package_version": plugin.version,
                                              "credentials": cred})
