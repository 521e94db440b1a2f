"""The stack driver's contract: what launch needs from Pulumi, as a Protocol with typed
results and typed events.

``skyplan.provision.driver.StackDriver`` implements it over the Automation API;
``skyplan.testing.fakes.FakeDriver`` implements it with a script, for unit tests.
Both return the same :class:`UpResult` and emit the same :data:`EngineEvent`
values, so the launch path reads every field directly, never with ``getattr``.

Engine events (every one names its ``stack``):

==================  =========================================================
``Diagnostic``      a diagnostic the engine printed (severity, message, urn)
``ResourceStep``    a resource step began (``pre``), ended (``outputs``, with the
                    id, and the stack's outputs for the root resource) or failed
``UpdateSummary``   the operation's resource changes and duration
``ProgramOutput``   a line the program printed
``DriverNote``      something the driver did on its own (cleared a stale lock,
                    stopped a timed-out operation)
==================  =========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Union, runtime_checkable

DEFAULT_DESTROY_TIMEOUT_S = 1800.0


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    """What one ``up`` did.

    ``error`` is the provider's own message for the failed resource (a dynamic
    provider's exception text exactly, without the gRPC prefix), taken from the
    engine's diagnostics; ``urn`` is that resource. ``resource_count`` counts the
    resources the engine reported in place afterwards (stack and provider
    resources included). On timeout, ``timed_out`` is set and ``interrupted``
    lists the URNs whose operation was cut off (they may exist in the cloud).
    ``program_error``: the Pulumi program itself raised, so no other placement
    will fare better.
    """

    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    urn: str | None = None
    resource_count: int = 0
    stack: str = ""
    timed_out: bool = False
    interrupted: tuple[str, ...] = ()
    program_error: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True)
class InterruptedOp:
    """A resource operation the engine never saw finish (pending in the state).

    ``inputs`` are the resource's recorded inputs (secrets decrypted, the
    dynamic provider's pickled ``__provider`` removed), enough for a cloud to
    look the resource up."""

    urn: str
    type: str
    op: str  # "creating", "updating", "deleting", "reading", "importing"
    inputs: dict[str, Any] = field(default_factory=dict)


# --- engine events --------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnostic:
    stack: str
    severity: str  # "info" | "warning" | "error" | ...
    message: str
    urn: str | None = None


@dataclass(frozen=True)
class ResourceStep:
    stack: str
    step: str  # "pre" (began) | "outputs" (done) | "failed"
    op: str  # "create", "delete", "same", ...
    urn: str
    resource_type: str
    id: str | None = None  # step "outputs"
    outputs: dict[str, Any] | None = None  # step "outputs" of the root stack resource
    status: Any = None  # step "failed"


@dataclass(frozen=True)
class UpdateSummary:
    stack: str
    resource_changes: dict[str, int]
    duration_s: float


@dataclass(frozen=True)
class ProgramOutput:
    stack: str
    message: str


@dataclass(frozen=True)
class DriverNote:
    stack: str
    message: str


EngineEvent = Union[Diagnostic, ResourceStep, UpdateSummary, ProgramOutput, DriverNote]
EngineEventSink = Callable[[EngineEvent], None]

_STEPS = {"resource_pre": "pre", "res_outputs": "outputs", "res_op_failed": "failed"}


def engine_event(d: dict[str, Any], stack: str) -> EngineEvent | None:
    """The typed event for one plain event as it crosses the child's pipe (see
    ``driver._event_dict``); None for a shape this version does not know."""
    kind = d.get("type")
    if kind == "diagnostic":
        return Diagnostic(stack, str(d.get("severity") or ""), d.get("message") or "", d.get("urn") or None)
    if kind in _STEPS:
        return ResourceStep(stack, _STEPS[kind], str(d.get("op") or ""), d.get("urn") or "",
                            d.get("resource_type") or "", d.get("id"), d.get("outputs"), d.get("status"))
    if kind == "summary":
        return UpdateSummary(stack, dict(d.get("resource_changes") or {}), float(d.get("duration_s") or 0.0))
    if kind == "stdout":
        return ProgramOutput(stack, d.get("message") or "")
    if kind == "driver":
        return DriverNote(stack, d.get("message") or "")
    return None


# --- the driver -----------------------------------------------------------------------


@runtime_checkable
class Driver(Protocol):
    """Runs skyplan's Pulumi stacks on one backend. One stack per attempt.

    Safe to call from several threads for distinct stacks at once."""

    #: The Pulumi backend URL every stack lives on.
    backend_url: str

    def up(self, stack: str, program: Callable[[], None], *, timeout_s: float | None,
           on_event: EngineEventSink | None = None) -> UpResult:
        """Create the stack if needed and run ``pulumi up`` with the inline ``program``.

        Never raises for a provider failure or a timeout: those come back as
        ``ok=False``. Raises ``EngineError`` only when the engine itself could
        not run (crash, unusable backend)."""
        ...

    def destroy_and_remove(self, stack: str, *, timeout_s: float | None = DEFAULT_DESTROY_TIMEOUT_S,
                           on_event: EngineEventSink | None = None,
                           resolve_interrupted: Callable[[InterruptedOp], bool] | None = None,
                           forget_interrupted: bool = False) -> None:
        """Destroy every resource of ``stack``, check none is left, remove the stack.

        Idempotent: a stack that does not exist is already clean. Interrupted
        creates are passed to ``resolve_interrupted``, which returns True when it
        has made sure the resource does not exist. Raises ``CleanupError``
        naming what may have leaked; the stack is then kept for a retry."""
        ...

    def list_stacks(self, prefix: str = "") -> list[str]:
        """Names of the project's stacks on this backend that start with ``prefix``."""
        ...

    def outputs(self, stack: str) -> dict[str, Any]:
        """The stack's outputs, secrets in plain text (a converging apply reads the
        record a cluster's stack exports: ``converge.RECORD_OUTPUT``)."""
        ...
