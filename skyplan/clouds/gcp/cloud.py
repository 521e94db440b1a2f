"""The GCP cloud: Compute Engine instances through pulumi-gcp (program in ``stacks/gcp``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from skyplan.clouds.capabilities import InstanceState
from skyplan.clouds.provider import ProviderCloud

__all__ = ["GCP", "find_credentials"]


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


class GCP(ProviderCloud):
    """GCP behind the Cloud protocol. The project comes from the provider's usual config."""

    name = "gcp"
    display = "GCP"
    # Its buckets are Cloud Storage buckets, mounted with gcsfuse (stacks/gcp/program.py).
    capabilities = dataclasses.replace(ProviderCloud.capabilities, bucket_store="gcs")
    plugin = "gcp"
    package = "pulumi-gcp"
    credentials_where = "GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_CREDENTIALS or application default credentials"
    credentials_fix = ("run `gcloud auth application-default login`, or export "
                       "GOOGLE_APPLICATION_CREDENTIALS=<key.json>")
    # A refreshed instance's status; a preempted Spot VM is TERMINATED (it still exists,
    # stopped). PROVISIONING, STAGING and REPAIRING tell nothing yet.
    instance_state = InstanceState(
        type="gcp:compute/instance:Instance",
        props=("currentStatus",),
        states={"RUNNING": "running", "STOPPING": "stopped", "STOPPED": "stopped", "TERMINATED": "stopped",
                "SUSPENDING": "stopped", "SUSPENDED": "stopped"},
    )

    def find_credentials(self) -> str | None:
        return find_credentials()
