"""The one table of clouds. Adding a cloud means adding a folder and a row here.

Rows are factories so that a cloud's module (and anything heavy it imports) is
loaded only when that cloud is used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from skyplan.clouds.base import Cloud
from skyplan.errors import InputError


def _aws() -> Cloud:
    from skyplan.clouds.aws.cloud import AWS

    return AWS()


def _gcp() -> Cloud:
    from skyplan.clouds.gcp.cloud import GCP

    return GCP()


def _azure() -> Cloud:
    from skyplan.clouds.azure.cloud import Azure

    return Azure()


def _local() -> Cloud:
    from skyplan.clouds.local.cloud import Local

    return Local()


def _sim() -> Cloud:
    from skyplan.clouds.sim.cloud import Sim

    return Sim()


CLOUDS: dict[str, Callable[[], Cloud]] = {
    "aws": _aws,
    "gcp": _gcp,
    "azure": _azure,
    "local": _local,
    "sim": _sim,
}

#: Clouds that the sim can stand in for under --simulate.
SIMULATABLE = ("aws", "gcp", "azure")


@lru_cache(maxsize=None)
def get(name: str) -> Cloud:
    try:
        factory = CLOUDS[name]
    except KeyError:
        raise InputError(f"unknown cloud '{name}' (known: {', '.join(CLOUDS)})") from None
    return factory()
