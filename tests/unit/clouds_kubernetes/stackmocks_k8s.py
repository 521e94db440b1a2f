"""Test helper: a ProvisionRequest for the kubernetes cloud."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from skyplan.clouds.base import ProvisionRequest


def request(**overrides: Any) -> ProvisionRequest:
    base = ProvisionRequest(cluster="demo", stack="demo-a1b2", cloud="kubernetes", region="c1", zone=None,
                            instance_type="k8s-8cpu-32gb-1gpu", use_spot=False, run="echo hi")
    return replace(base, **overrides)
