"""The AWS cloud: EC2 instances through pulumi-aws (program in ``stacks/aws``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from skyplan.clouds.aws.classify import classify as _classify
from skyplan.clouds.aws.classify import sample_error
from skyplan.clouds.base import PreflightResult, ProvisionRequest
from skyplan.errors import Classification

__all__ = ["AWS", "sample_error", "find_credentials"]


def find_credentials(env: dict[str, str] | None = None, home: Path | None = None) -> str | None:
    """Where AWS credentials would come from, or None. Looks, never calls AWS."""
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else home
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return "env AWS_ACCESS_KEY_ID"
    if env.get("AWS_PROFILE"):
        return f"env AWS_PROFILE={env['AWS_PROFILE']}"
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return "env AWS_WEB_IDENTITY_TOKEN_FILE"
    for var, default in (("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"), ("AWS_CONFIG_FILE", ".aws/config")):
        path = Path(env[var]).expanduser() if env.get(var) else home / default
        try:
            if path.is_file() and path.stat().st_size > 0:
                return str(path)
        except OSError:
            continue
    return None


class AWS:
    """AWS behind the Cloud protocol. Zones in plans are AZ ids (use1-az1) or names."""

    name = "aws"
    display = "AWS"
    has_zones = True

    def classify(self, message: str) -> Classification:
        return _classify(message)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        return sample_error(outcome, request)

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        def run() -> None:
            from stacks.aws.program import build

            build(request)

        return run

    def preflight(self) -> PreflightResult:
        from stacks import plugin_status

        plugin = plugin_status("aws", "pulumi-aws")
        if not plugin.installed:
            return PreflightResult(False, f"AWS: {plugin.reason}", f"run `{plugin.install_hint}`",
                                   {"plugin": None, "package_version": plugin.version})
        cred = find_credentials()
        if cred is None:
            return PreflightResult(
                False,
                "AWS: no credentials found (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials or ~/.aws/config)",
                "run `aws configure`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                {"plugin": plugin.path, "package_version": plugin.version},
            )
        return PreflightResult(True, "", "", {"plugin": plugin.path, "package_version": plugin.version,
                                              "credentials": cred})
