"""The AWS cloud: EC2 instances through pulumi-aws (program in ``stacks/aws``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping
from pathlib import Path

from typing import TYPE_CHECKING, Any

from skyplan.clouds.capabilities import InstanceState
from skyplan.clouds.provider import ProviderCloud

if TYPE_CHECKING:
    from skyplan.clouds.base import ZoneAlias

__all__ = ["AWS", "find_credentials"]


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
    # Its buckets are S3 buckets, mounted with Mountpoint for S3 (stacks/aws/program.py).
    capabilities = dataclasses.replace(ProviderCloud.capabilities, bucket_store="s3")
    plugin = "aws"
    package = "pulumi-aws"
    credentials_where = "AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials or ~/.aws/config"
    credentials_fix = "run `aws configure`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    # A refreshed EC2 instance's state; a reclaimed spot instance is terminated (or
    # stopped, by its interruption behaviour). pending tells nothing yet.
    instance_state = InstanceState(
        type="aws:ec2/instance:Instance",
        props=("instanceState",),
        states={"running": "running", "stopping": "stopped", "stopped": "stopped",
                "shutting-down": "gone", "terminated": "gone"},
    )

    def find_credentials(self) -> str | None:
        return find_credentials()

    def opt_in_zone(self, zone: str) -> bool:
        # Local Zones need an account opt-in: plans see them only when pinned.
        from skyplan.clouds.aws.zones import is_local_zone

        return is_local_zone(zone)

    def scaled_zone(self, zone: str | None, k: int) -> str | None:
        # use1-az1 -> use1x2-az1; usw2-lax1-az1 -> usw2x2-lax1-az1 (stays a Local Zone)
        if zone is None:
            return None
        code, rest = zone.split("-", 1)
        return f"{code}x{k}-{rest}"

    def zone_alias(self, zone: str) -> ZoneAlias | None:
        """An AZ *name* (``us-east-1a``) stands for any regular zone of its region,
        a Local Zone name (``us-west-2-lax-1a``) for any zone of its Local Zone
        group: the name-to-ID mapping is per account (see ``zones.py``)."""
        from skyplan.clouds.aws.zones import local_group, parse_zone_pin
        from skyplan.clouds.base import ZoneAlias

        pin = parse_zone_pin(zone)
        if pin is None or pin.kind != "name" or pin.region is None:
            return None
        group = pin.group

        def covers(catalog_zone: str, opt_in: bool) -> bool:
            if group is None:
                return not opt_in
            return opt_in and local_group(catalog_zone) == group

        return ZoneAlias(pin.text, pin.region, covers)

    def zone_name(self, zone: str, region: str, *, text: str = "",
                  outputs: Mapping[str, Any] | None = None) -> str | None:
        """The account's AZ name for AZ ID ``zone``: the one the instance reports
        (``zone_name`` output of ``stacks/aws``) or EC2's error text names."""
        from skyplan.clouds.aws.zones import is_zone_name, region_of_zone_name, requested_zone_name

        reported = (outputs or {}).get("zone_name")
        if isinstance(reported, str) and is_zone_name(reported) and region_of_zone_name(reported) == region:
            return reported if reported != zone else None
        return requested_zone_name(zone, region, text)

    def zone_names(self, region: str, zones: Collection[str]) -> tuple[str, ...]:
        from skyplan.clouds.aws.zones import zone_names

        return zone_names(region, zones)
