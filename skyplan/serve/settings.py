"""The service controller's own settings, and the load balancer as the controller sees it.

Each setting has an environment variable (``SKYPLAN_SERVE_*``), for tests and
operators; the service's YAML holds everything about the service itself. The
daemon reads them once (``ServeSettings.from_env``) and hands them to the
controller (``skyplan.serve.controller``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from skyplan.errors import InputError


@dataclass(frozen=True)
class ServeSettings:
    """The controller's own timing (each has an environment variable, for tests
    and operators; the service's YAML holds everything about the service itself)."""

    poll_s: float = 5.0  # seconds between two probes of a replica
    not_ready_s: float = 60.0  # a replica NOT_READY this long is FAILED and replaced
    avoid_s: float = 600.0  # a zone that preempted a spot replica is avoided this long
    spot_retry_s: float = 30.0  # first wait after a spot launch found nothing (doubles, up to 8x)
    teardown_retry_s: float = 30.0  # wait before a failed teardown is tried again
    workers: int = 8  # launches and teardowns at once
    replace_backoff_s: float = 10.0  # first wait before replacing a replica that failed (doubles, up to 8x)
    max_failures: int = 3  # failed replicas in a row, none ever READY, before the version is given up
    max_attempts: int = 8  # candidates one replica launch tries (the first of its ordered plan)

    ENV = {"poll_s": "SKYPLAN_SERVE_POLL_S", "not_ready_s": "SKYPLAN_SERVE_NOT_READY_S",
           "avoid_s": "SKYPLAN_SERVE_AVOID_S", "spot_retry_s": "SKYPLAN_SERVE_SPOT_RETRY_S",
           "teardown_retry_s": "SKYPLAN_SERVE_TEARDOWN_RETRY_S", "workers": "SKYPLAN_SERVE_WORKERS",
           "replace_backoff_s": "SKYPLAN_SERVE_REPLACE_BACKOFF_S", "max_failures": "SKYPLAN_SERVE_MAX_FAILURES",
           "max_attempts": "SKYPLAN_SERVE_MAX_ATTEMPTS"}
    COUNTS = frozenset({"workers", "max_failures", "max_attempts"})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServeSettings":
        """Defaults, each overridden by its ``SKYPLAN_SERVE_*`` variable; a bad
        value is an InputError naming the variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for key, var in cls.ENV.items():
            raw = env.get(var)
            if not raw:
                continue
            try:
                value: Any = int(raw) if key in cls.COUNTS else float(raw)
            except ValueError:
                raise InputError(f"{var}: a number, not {raw!r}", hint=f"fix or unset {var}") from None
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"{var}: more than 0, not {raw!r}", hint=f"fix or unset {var}")
            values[key] = value
        return cls(**values)


class Balancer(Protocol):
    """The load balancer as the controller's thread sees it (the daemon binds
    ``lb.LoadBalancer`` to its event loop; tests use ``serve_fakes.FakeBalancer``)."""

    def push(self, replicas: Mapping[int, str]) -> None:
        """Make ``replicas`` (id -> base URL) the READY set; returns once applied."""
        ...

    def wait_drained(self, replica_id: int, timeout_s: float) -> bool:
        """Block until the replica has no request in flight (True) or ``timeout_s`` passed."""
        ...

    def metrics(self) -> Any:
        """A snapshot with ``qps`` (and ``p50_ms``, ``p99_ms``, ``requests``, ``failures``)."""
        ...


__all__ = ["Balancer", "ServeSettings"]
