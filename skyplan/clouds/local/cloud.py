"""The local cloud: tasks run in sandboxes on this machine. No credentials.

Its errors come from the sandbox runner (``runner.py`` here), whose
texts start with a stable code, or are plain OS errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from skyplan.clouds.capabilities import Capabilities, CloudBase
from skyplan.errors import Classification, Kind, Scope

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer
    from skyplan.clouds.base import LogSource, PreflightResult, ProvisionRequest

# (pattern, code, kind, scope); first match wins.
_RULES: tuple[tuple[str, str, Kind, Scope], ...] = (
    (r"LocalWorkdirMissing", "LocalWorkdirMissing", Kind.INVALID, Scope.ALL),
    (r"LocalWorkdirSymlink", "LocalWorkdirSymlink", Kind.INVALID, Scope.ALL),
    (r"LocalFileMount(Missing|Invalid)", "LocalFileMount", Kind.INVALID, Scope.ALL),
    # A bucket this machine cannot bind (no namespace, a mountpoint it cannot make): the same everywhere here.
    (r"LocalBucket(Unsupported|Mountpoint|Invalid)", "LocalBucket", Kind.INVALID, Scope.ALL),
    (r"LocalDiskFull|No space left on device|Disk quota exceeded", "LocalDiskFull", Kind.CAPACITY, Scope.ZONE),
    (r"Permission denied|Operation not permitted", "LocalPermissionDenied", Kind.AUTH, Scope.CLOUD),
    (r"Resource temporarily unavailable|Too many open files", "LocalBusy", Kind.TRANSIENT, Scope.NONE),
)


class Local(CloudBase):
    name = "local"
    display = "Local"
    capabilities = Capabilities(
        has_zones=False,
        offers_spot=False,
        runs_here=True,
        from_catalog=False,
        default_candidate=False,
        has_log_source=True,
        proves_interrupted=True,
        reruns_in_place=True,
        # Buckets: directories bound at their exact path in a private mount namespace (runner.py).
        bucket_store="dir",
        # Its nodes are sandboxes here: each task with ports gets its own free loopback port.
        loopback_ports=True,
    )

    def own_offers(self) -> tuple[Offer, ...]:
        from skyplan.clouds.local.catalog import local_offer

        return (local_offer(),)

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        from skyplan.clouds.local.logs import sandbox_logs

        return sandbox_logs(outputs)

    def node_state(self, outputs: Mapping[str, Any]) -> str:
        """A node here is its sandbox: ``gone`` when a sandbox is missing or its
        processes vanished without recording an end (``lost``: failed hardware, as
        far as a job can tell), ``stopped`` when it was stopped from outside,
        else ``running`` (a task that ended leaves its node up)."""
        from skyplan.clouds.local.logs import _node_dirs
        from skyplan.clouds.local import runner

        sandbox = outputs.get("sandbox")
        if not sandbox:
            return "unknown"
        nodes = _node_dirs(sandbox)
        want = len(outputs.get("nodes") or ()) or 1
        if len(nodes) < want:
            return "gone"
        phases = [runner.status(d).get("phase") for _, d in nodes]
        if "lost" in phases or "absent" in phases:
            return "gone"
        if "stopped" in phases:
            return "stopped"
        return "running"

    def release_buckets(self, owner: str, since: float, zones: Any) -> tuple[str, ...]:
        from skyplan.clouds.buckets import release_here

        return release_here(owner, since)

    def node_addresses(self, outputs: Mapping[str, Any]) -> list[Any]:
        from skyplan.clouds.local.logs import sandbox_addresses

        return sandbox_addresses(outputs)

    def classify(self, message: str) -> Classification:
        text = message or ""
        for pattern, code, kind, scope in _RULES:
            if re.search(pattern, text):
                return Classification(kind, scope, code, text)
        return Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", text)

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        def run() -> None:
            from skyplan.clouds import programs

            programs.load(self.name).build(request)

        return run

    def preflight(self) -> PreflightResult:
        import shutil  # not at module level: the plan path imports this module for its capabilities

        from skyplan.clouds.base import PreflightResult

        # Nothing to install and no credentials; bash runs setup and run.
        if shutil.which("bash") is None:
            return PreflightResult(False, reason="bash is not on PATH", fix="install bash")
        return PreflightResult(True, details={"credentials": "none needed"})

    def resolve_interrupted(self, op: Any) -> bool:
        """For ``StackDriver.destroy_and_remove(resolve_interrupted=...)``: make sure
        a node whose create the engine never saw finish does not exist.

        ``op`` is a ``driver.InterruptedOp`` (``type``, ``inputs``). The node's
        inputs name its sandbox, so it is stopped and removed; True means done.
        False: not a local node, or its inputs do not say where it lives.
        """
        if not str(getattr(op, "type", "")).endswith(":LocalNode"):
            return False
        root = (getattr(op, "inputs", None) or {}).get("root")
        if not root:
            return False
        from skyplan.clouds.local import runner

        runner.remove(root)
        return True

    def leftovers(self, stack_prefix: str) -> tuple[tuple[str, str], ...]:
        """Sandboxes of the matching stacks under ``<SKYPLAN_HOME>/sandboxes/`` (the
        sim's nodes are sandboxes too): what a create the engine never saw finish,
        or a provider killed mid-create, may leave on this machine."""
        return tuple((stack, f"sandbox {path}") for stack, path in _sandboxes(stack_prefix))

    def remove_leftovers(self, stacks: Iterable[str]) -> None:
        import shutil

        from skyplan.clouds.local import runner

        wanted = set(stacks)
        for stack, path in _sandboxes(""):
            if stack in wanted:
                for node in sorted(p for p in path.iterdir() if p.is_dir()):
                    runner.remove(node)
                shutil.rmtree(path, ignore_errors=True)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        # The local cloud is not simulated; these are its own texts, for completeness.
        if outcome == "capacity":
            return f"LocalDiskFull: cannot create sandbox for {request.stack}: [Errno 28] No space left on device"
        if outcome == "invalid":
            return f"LocalWorkdirMissing: workdir '{request.workdir}' is not a directory"
        return f"local cloud: simulated {outcome} failure for {request.stack}"


def _sandboxes(stack_prefix: str) -> list[tuple[str, Path]]:
    """(stack, directory) of every stack directory under the home's sandboxes/."""
    from skyplan import home

    base = home.home() / "sandboxes"
    try:
        entries = sorted(base.iterdir())
    except FileNotFoundError:
        return []
    return [(p.name, p) for p in entries if p.name.startswith(stack_prefix) and p.is_dir()]
