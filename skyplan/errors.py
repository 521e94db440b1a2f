"""The one error hierarchy. Every error a user can see derives from SkyplanError.

Each error carries a message and, where there is one, a ``hint``: the next step
the user can take. The CLI maps ``exit_code`` to the process exit status; the
codes are documented in the README and must not change meaning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_NO_CANDIDATE = 3
EXIT_PROVISION_FAILED = 4
EXIT_CLEANUP_FAILED = 5
EXIT_LOCKED = 6
EXIT_TASK_FAILED = 7
EXIT_INTERRUPTED = 130


class SkyplanError(Exception):
    """Root of every error skyplan raises on purpose.

    ``file``, ``line`` and ``path`` locate the error in the user's input when it
    has a place there (a task file, a field path such as ``$.resources.cloud``)."""

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None, file: str | None = None,
                 line: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.file = file
        self.line = line
        self.path = path

    @property
    def code(self) -> str:
        """The error object's ``code``: the class name (``SpecError``, ``LockedError``...)."""
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        """The one error object's inner part (``schemas/common.schema.json#/$defs/error``):
        ``{"error": <this>}`` is what ``--json`` prints. Subclasses may add fields."""
        return {"code": self.code, "message": self.message, "hint": self.hint, "exit_code": self.exit_code,
                "file": self.file, "line": self.line, "path": self.path}


# --- input (exit 2) -----------------------------------------------------------


class InputError(SkyplanError):
    """The user's input or invocation is wrong; nothing was attempted."""

    exit_code = EXIT_INPUT


@dataclass(frozen=True)
class Diagnostic:
    """One validation finding, located in the source file."""

    file: str
    line: int | None
    column: int | None
    path: str  # JSON path such as "$.resources.accelerators"
    message: str
    suggestion: str | None = None

    def format(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        # The document root ("$": a device, a FIFO, a YAML syntax error) says nothing the location does not.
        text = f"{loc}: {self.path}: {self.message}" if self.path and self.path != "$" else f"{loc}: {self.message}"
        if self.suggestion:
            text += f" (did you mean '{self.suggestion}'?)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "suggestion": self.suggestion,
        }


#: A SpecError keeps (and the CLI prints) at most this many findings, then counts the rest.
MAX_ERRORS = 50


class SpecError(InputError):
    """A task, pipeline, scenario or plan file failed validation.

    Carries the first ``MAX_ERRORS`` findings in ``diagnostics`` and the number
    of the others in ``omitted``: a broken 1 MiB file must not print 50,000 lines.
    """

    def __init__(self, diagnostics: list[Diagnostic], *, hint: str | None = None) -> None:
        n = len(diagnostics)
        head = f"{n:,} error{'s' if n != 1 else ''} in {diagnostics[0].file}" if n else "invalid input"
        if n > MAX_ERRORS:
            head += f" (the first {MAX_ERRORS} are shown; {n - MAX_ERRORS:,} more not shown)"
        first = diagnostics[0] if diagnostics else None
        super().__init__(head, hint=hint, file=first.file if first else None, line=first.line if first else None,
                         path=first.path if first else None)
        #: The line said after the findings (the message, unless a subclass's message repeats them).
        self.headline = head
        self.diagnostics = list(diagnostics[:MAX_ERRORS])
        self.omitted = max(0, n - MAX_ERRORS)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["diagnostics"] = [d.to_json() for d in self.diagnostics]
        data["omitted"] = self.omitted
        return data


class UsageError(InputError):
    """Bad flags or arguments, or a refused interaction (no TTY and no --yes)."""


class PlanFileError(InputError):
    """A plan file cannot be read: wrong format_version, bad schema, bad JSON."""


class StalePlanError(PlanFileError):
    """A plan file no longer matches the task or catalog it was made from."""


# --- planning (exit 3) --------------------------------------------------------


class NoCandidatesError(SkyplanError):
    """No placement satisfies the request. ``reason`` names the constraint."""

    exit_code = EXIT_NO_CANDIDATE


# --- provisioning ---------------------------------------------------------------


class Kind(str, enum.Enum):
    """Why a placement attempt failed: decides what failover does next."""

    CAPACITY = "capacity"
    QUOTA = "quota"
    AUTH = "auth"
    INVALID = "invalid"
    TRANSIENT = "transient"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


class Scope(str, enum.Enum):
    """How widely a failure blocks further candidates."""

    NONE = "none"  # retry the same placement (transient)
    ZONE = "zone"
    FAMILY = "family"  # one VM family / instance group's quota, in one region
    REGION = "region"
    CLOUD = "cloud"
    ALL = "all"  # stop failover entirely (invalid request)


@dataclass(frozen=True)
class Classification:
    """A classifier's verdict on one provider message."""

    kind: Kind
    scope: Scope
    code: str  # the provider's error code, e.g. ZONE_RESOURCE_POOL_EXHAUSTED, or "unknown"
    message: str  # verbatim provider text
    #: With Scope.FAMILY: the quota family the message names, normalised by its cloud
    #: (e.g. "fsv2" for Azure's standardFSv2Family, "N2_CPUS" for GCP); None when the
    #: message names none and the family is the failing instance type's own (AWS).
    family: str | None = None


class PlacementError(SkyplanError):
    """One attempt at one placement failed, with a classified kind and scope."""

    exit_code = EXIT_PROVISION_FAILED

    def __init__(self, classification: Classification, *, hint: str | None = None) -> None:
        super().__init__(classification.message, hint=hint)
        self.classification = classification

    @property
    def kind(self) -> Kind:
        return self.classification.kind

    @property
    def scope(self) -> Scope:
        return self.classification.scope


class ProvisionFailed(SkyplanError):
    """Every candidate failed or was blocked. Carries the full attempt history."""

    exit_code = EXIT_PROVISION_FAILED

    def __init__(self, message: str, attempts: list[Any], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.attempts = list(attempts)


class PreflightError(SkyplanError):
    """No cloud among the candidates is usable (no plugin or no credentials)."""

    exit_code = EXIT_PROVISION_FAILED


class CleanupError(SkyplanError):
    """A failed attempt's stack could not be destroyed: resources may have leaked."""

    exit_code = EXIT_CLEANUP_FAILED

    def __init__(self, message: str, *, stack: str, resources: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stack = stack
        self.resources = list(resources or [])


class LockedError(SkyplanError):
    """Another skyplan process holds this cluster."""

    exit_code = EXIT_LOCKED


class EngineError(SkyplanError):
    """The Pulumi engine is missing, the wrong version, or failed outside a resource."""

    exit_code = EXIT_INTERNAL


class NotFoundError(InputError):
    """A named cluster, job or file does not exist."""


class ServeError(InputError):
    """A service cannot do what was asked in its present state (its name is taken,
    it is shutting down): nothing was changed."""


class ServeControllerError(SkyplanError):
    """A service's controller did not come up (its load balancer not bound in time),
    died, or gave up the service: its log says why."""

    exit_code = EXIT_INTERNAL


class NodeUnreachable(SkyplanError):
    """A node of a cluster could not be reached to read its task (refused, timed out,
    host key refused): ``logs`` says so instead of printing nothing."""

    exit_code = EXIT_PROVISION_FAILED
