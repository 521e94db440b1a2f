"""Frozen, typed task objects. Nothing past the loader sees a raw dict.

The loader (``skyplan.spec.load``) validates a YAML document against
``schemas/`` and then builds these. Every field has already been normalised:
accelerators are parsed into ``(NAME, COUNT)`` pairs, ``cpus``/``memory`` into
``Quantity``, ports into ints, file mounts into ``FileMount``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Quantity:
    """``cpus``/``memory``: a bare number means exactly N; "N+" means at least N."""

    value: float
    at_least: bool = False

    def admits(self, actual: float) -> bool:
        if self.at_least:
            return actual >= self.value - 1e-9
        return abs(actual - self.value) < 1e-9

    def __str__(self) -> str:
        v = int(self.value) if float(self.value).is_integer() else self.value
        return f"{v}+" if self.at_least else f"{v}"


@dataclass(frozen=True)
class Accelerator:
    """One accelerator request: a name (as the user wrote it) and a count."""

    name: str
    count: float = 1

    def __str__(self) -> str:
        c = int(self.count) if float(self.count).is_integer() else self.count
        return f"{self.name}:{c}"


class Preference(str, enum.Enum):
    """How a set of alternatives is ranked."""

    CHEAPEST = "cheapest"  # a set / mapping / any_of: rank by cost
    ORDERED = "ordered"  # a list / ordered: rank by preference index, then cost


@dataclass(frozen=True)
class ResourceRequest:
    """One fully resolved candidate request (base fields merged with an any_of/ordered entry).

    ``accelerators`` holds the alternatives of a set or list; empty means no
    accelerator. ``accelerator_preference`` says how to rank them.
    """

    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    cpus: Quantity | None = None
    memory: Quantity | None = None
    accelerators: tuple[Accelerator, ...] = ()
    accelerator_preference: Preference = Preference.CHEAPEST
    use_spot: bool = False
    max_hourly_cost: float | None = None
    disk_size: int | None = None
    ports: tuple[int, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    job_recovery: str | None = None  # strategy, upper-case: FAILOVER | EAGER_NEXT_REGION | NO_RECOVERY
    max_restarts_on_errors: int | None = None  # from the object form of job_recovery
    #: Exit codes after which a managed task restarts without spending a budget (sorted, unique).
    recover_on_exit_codes: tuple[int, ...] = ()
    #: Failures of any kind, evictions included, the job survives (seed 004's ``backoffLimit``).
    backoff_limit: int | None = None


@dataclass(frozen=True)
class Resources:
    """The task's ``resources`` section after merging.

    ``candidates`` is never empty: without any_of/ordered it has one entry.
    ``preference`` says how the entries are ranked against each other.
    """

    candidates: tuple[ResourceRequest, ...]
    preference: Preference = Preference.CHEAPEST


@dataclass(frozen=True)
class FileMount:
    dst: str
    source: str | None = None
    name: str | None = None
    store: str | None = None
    mode: str | None = None  # MOUNT | COPY


@dataclass(frozen=True)
class ReadinessProbe:
    path: str
    initial_delay_seconds: int | None = None
    timeout_seconds: int | None = None
    post_data: Any = None  # str | None: the body to POST (a mapping is kept as canonical JSON text)
    headers: tuple[tuple[str, str], ...] = ()  # sent with every probe, sorted by name


@dataclass(frozen=True)
class ReplicaPolicy:
    min_replicas: int = 1
    max_replicas: int | None = None
    target_qps_per_replica: float | None = None
    base_ondemand_fallback_replicas: int | None = None
    dynamic_ondemand_fallback: bool | None = None
    upscale_delay_seconds: int | None = None
    downscale_delay_seconds: int | None = None


@dataclass(frozen=True)
class Service:
    """A task's ``service`` section as written (None: not given). Defaults are
    applied in one place, ``skyplan.serve.config.service_config``."""

    readiness_probe: ReadinessProbe
    replica_policy: ReplicaPolicy | None = None
    replicas: int | None = None  # a fixed count: min_replicas = max_replicas = replicas
    load_balancing_policy: str | None = None  # least_load | round_robin
    max_surge: int | None = None  # replicas a rolling update may add over max_replicas
    drain_timeout_seconds: int | None = None  # how long a leaving replica may finish its requests


#: How a secret's value is shown everywhere skyplan writes or prints a task.
REDACTED = "<redacted>"


class Secret:
    """A secret's value. Its ``repr`` and ``str`` are redacted, so a task that
    reaches a log line, a traceback or an assertion message never shows it;
    ``reveal()`` gives the text, and only the launch path calls it. Not a
    dataclass, so ``dataclasses.asdict`` copies it as an opaque object (which
    JSON then refuses) rather than spilling its value into a dict."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret's value is text")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: Any) -> Secret:
        return self  # immutable

    def __reduce__(self) -> Any:  # a pickle would carry the value wherever it goes
        raise TypeError("a Secret is not picklable")


@dataclass(frozen=True)
class Task:
    """A validated task. ``source`` is the file it came from (for messages).

    ``secrets``: (name, value) pairs sorted by name; a value of None is a secret
    the task declares without a value (``HF_TOKEN: null``), to be given at launch
    (``--secret HF_TOKEN``). ``launch`` refuses a task with such a secret.
    """

    name: str | None = None
    workdir: str | None = None
    num_nodes: int = 1
    resources: Resources = field(default_factory=lambda: Resources(candidates=(ResourceRequest(),)))
    envs: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, Secret | None], ...] = ()
    file_mounts: tuple[FileMount, ...] = ()
    setup: str | None = None
    run: str | None = None
    service: Service | None = None
    source: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Pipeline:
    name: str | None
    tasks: tuple[Task, ...]
    source: str | None = None
