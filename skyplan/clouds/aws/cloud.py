"""The AWS cloud: EC2 instances through pulumi-aws (program in ``stacks/aws``)."""

from __future__ import annotations

import os
from pathlib import Path

from skyplan.clouds.aws.classify import classify as _classify
from skyplan.clouds.aws.classify import sample_error
from skyplan.clouds.provider import ProviderCloud

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


class AWS(ProviderCloud):
    """AWS behind the Cloud protocol. Zones in plans are AZ ids (use1-az1) or names."""

    name = "aws"
    display = "AWS"
    has_zones = True
    plugin = "aws"
    package = "pulumi-aws"
    program_module = "stacks.aws.program"
    credentials_where = "AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials or ~/.aws/config"
    credentials_fix = "run `aws configure`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    _classify = staticmethod(_classify)
    _sample_error = staticmethod(sample_error)
    _find_credentials = staticmethod(lambda: find_credentials())
