"""What a launch reports while it runs: typed events, and their JSON lines.

``launch()`` never prints; it hands each event to ``LaunchOptions.on_event``.
The CLI renders them for people (``cli/views.py``) or writes ``to_json()`` as
one JSON line each (``apply --json``). The lines follow
``schemas/apply.schema.json``; each has ``event`` first and ``schema_version``
(``skyplan.contract``) last:

  preflight  {cloud, ok, reason, fix}             a cloud among the candidates was checked
  recover    {stack, status}                      cleaning an earlier run's leftovers
  launching  {number, cloud, region, zone, instance_type, use_spot, stack}
  attempt    {number, cloud, region, zone, instance_type, use_spot, outcome: up|failed,
              kind, scope, code, message, stack, retry, block, widened}
             scope: zone | region | family | cloud | all | none; block: what the
             failure blocked, e.g. "us-central1-a for V100:1 [on-demand]"
  log        {node, line}                         a line of the task's output (the CLI's,
                                                  while apply follows the task)
  summary    {status: UP|FAILED|INTERRUPTED, cluster, placement, stack, attempts,
              task: {status, exit_code, node}, error, exit_code,
              action: create|none|rerun|replace|null}
             (``summary_json``): always the last line, exactly once
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from skyplan.contract import event
from skyplan.planner.candidates import Candidate
from skyplan.provision.failover import Attempt


def _placement(c: Candidate) -> dict[str, Any]:
    return {"cloud": c.cloud, "region": c.region, "zone": c.zone, "instance_type": c.instance_type,
            "use_spot": c.use_spot}


@dataclass(frozen=True)
class Preflight:
    """A cloud among the candidates was checked: can it be used from here?"""

    cloud: str
    ok: bool
    reason: str = ""
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return event("preflight", cloud=self.cloud, ok=self.ok, reason=self.reason, fix=self.fix)


@dataclass(frozen=True)
class Recover:
    """A stack an earlier run of this cluster left behind is being cleaned."""

    stack: str
    status: str  # the attempt's journal status: running | failed | leaked

    def to_json(self) -> dict[str, Any]:
        return event("recover", stack=self.stack, status=self.status)


@dataclass(frozen=True)
class Launching:
    """Attempt ``number`` starts on ``candidate``, in its own stack."""

    number: int
    candidate: Candidate
    stack: str

    def to_json(self) -> dict[str, Any]:
        return event("launching", number=self.number, **_placement(self.candidate), stack=self.stack)


@dataclass(frozen=True)
class AttemptDone:
    """An attempt finished: up, or failed (then cleaned up) with its verdict and block."""

    attempt: Attempt

    def to_json(self) -> dict[str, Any]:
        a = self.attempt
        cls = a.classification
        return event(
            "attempt",
            number=a.number,
            **_placement(a.candidate),
            outcome="up" if a.ok else "failed",
            kind=cls.kind.value if cls else None,
            scope=cls.scope.value if cls else None,
            code=cls.code if cls else None,
            message=cls.message if cls else None,
            stack=a.detail.get("stack"),
            retry=a.retry,
            block=a.block.describe() if a.block else None,
            widened=a.widened,
        )


LaunchEvent = Union[Preflight, Recover, Launching, AttemptDone]
EventSink = Callable[[LaunchEvent], None]


def attempt_json(a: Attempt) -> dict[str, Any]:
    """The ``attempt`` JSON line of one attempt."""
    return AttemptDone(a).to_json()


def summary_json(*, status: str, cluster: str | None, placement: Candidate | None = None, stack: str | None = None,
                 attempts: list[dict[str, Any]] | None = None, task: dict[str, Any] | None = None,
                 error: dict[str, Any] | None = None, exit_code: int = 0,
                 action: str | None = None) -> dict[str, Any]:
    """The ``summary`` line that ends every ``apply --json`` stream.

    ``status``: UP (the cluster is up, also when it already was), FAILED or
    INTERRUPTED. ``action``: what the apply did to the cluster (converging apply:
    create, none, rerun or replace; None when it failed). ``task``: the task outcome (``outcome.TaskOutcome.to_json``;
    every field null when unknown). ``error``: the error object (``SkyplanError.to_json``)
    or null. ``exit_code``: the process's exit status, which agrees with both."""
    return event(
        "summary",
        status=status,
        cluster=cluster,
        placement=placement.to_json() if placement else None,
        stack=stack,
        attempts=list(attempts or []),
        task=task or {"status": None, "exit_code": None, "node": None},
        error=error,
        exit_code=exit_code,
        action=action,
    )
