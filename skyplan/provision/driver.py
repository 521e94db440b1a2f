"""The one module that drives Pulumi: stacks, up, destroy, over the Automation API.

Nothing else in skyplan imports ``pulumi.automation``. The driver never prints:
progress reaches the caller as typed events (``skyplan.provision.protocol``)
through ``on_event`` callbacks. ``StackDriver`` implements the ``Driver``
Protocol there; the backend URL, Pulumi home, passphrase and environment come
from ``skyplan.provision.settings``.

Stacks and attempts
-------------------
One stack per attempt, named by ``stack_name()`` from the cluster and the
placement; ``cluster_stack_prefix(cluster)`` finds a cluster's stacks. A re-run
after a crash should ``destroy_and_remove`` every stack ``list_stacks(prefix)``
returns before starting new attempts.

Process model (why every stack operation runs in a forked child)
----------------------------------------------------------------
A hung provider create must not hang skyplan, and killing the ``pulumi`` CLI
alone is not enough: the engine starts each provider plugin in a process group
of its own, so a plugin stuck in ``create`` survives its CLI. Each operation
therefore runs in a child made by ``os.fork()`` (so inline programs, which are
arbitrary closures, need no pickling) that calls ``setsid()`` (machinery in
``skyplan.provision.forked``). Everything the
operation starts lives in that session. On timeout the parent sends SIGINT to
the CLI (its graceful cancel: it asks providers to cancel and writes its
checkpoint), waits ``GRACE_S``, then SIGKILLs every process of the session
(found through ``/proc``), clears the stack lock the dead CLI left, and reports
``timed_out``. A child also watches its parent: if skyplan is killed (even with
``kill -9``), the child notices within 0.2 s and stops its session the same
way, so nothing keeps running against the stack. The child points its inherited
regular-file descriptors at /dev/null, so a flock the parent holds (the cluster
lock) dies with the parent. Events stream back over a pipe as JSON lines while
the operation runs. Cost: one fork per operation, about 4 ms (see
``bench/failover.py``).

Threads: one StackDriver (or several) may run operations on distinct stacks
from several threads at once (the jobs and serve controllers launch clusters
concurrently). Per-operation state lives in the call; the set of stacks known
to be clean is locked; forks are serialised (``forked.fork_lock``) so that no
child inherits another operation's pipe, and the Automation API is imported
under the same lock so that no child is forked mid-import. No signal handler is
installed in this process: the child installs its own after the fork. Two
operations on the same stack are refused by Pulumi's stack lock, and
skyplan's cluster lock keeps two launches of one cluster apart.
gRPC initialised in the parent (a stock Automation API call there)
survives the fork in practice (the bench does exactly that). Without ``/proc``
(macOS) only the child's process group can be killed, so a hung provider
plugin may outlive a timeout there.

Interrupted operations
----------------------
A create that was killed (timeout, crash) is recorded by the engine as a
*pending operation*: Pulumi has no ID for it, so ``destroy`` cannot delete it and
``stack rm`` would silently forget it. ``destroy_and_remove`` therefore exports
any stack it has not seen end cleanly, and hands each interrupted create to the
caller's ``resolve_interrupted`` (the cloud, which can look the resource up by
its inputs). Unresolved ones raise ``CleanupError`` and the stack is kept.

Speed
-----
Every CLI call costs 0.1-0.25 s, so a failover hop makes three: ``stack init``
(no ``select``), ``up`` (no ``pulumi version`` check: ``engine.find_engine()``
has checked and cached it; no post-up ``stack output``/``stack history``
queries: outputs come from the engine's events), and ``destroy --remove``,
whose refusal to remove a stack that still holds resources is the engine's own
"resource count is 0" check.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from skyplan import errors
from skyplan.provision import engine as engine_mod
from skyplan.provision import forked, settings
from skyplan.provision.protocol import (
    DEFAULT_DESTROY_TIMEOUT_S,
    EngineEvent,
    EngineEventSink,
    InterruptedOp,
    ResourceStep,
    UpResult,
    engine_event,
)
from skyplan.provision.protocol import Diagnostic as _Diagnostic

# Settings live in settings.py; re-exported here as part of the driver's API.
from skyplan.provision.settings import (  # noqa: F401
    PROJECT,
    passphrase_info,
    passphrase_path,
    pulumi_home_dir,
    resolve_backend_url,
)

GRACE_S = 3.0
"""After SIGINT, how long a stopped operation's CLI may take to exit before SIGKILL."""
QUICK_TIMEOUT_S = 120.0
"""Limit for bookkeeping calls (export, list, cancel, outputs)."""
LOCK_WAIT_S = GRACE_S + 10.0
"""How long to wait for a live local pulumi process that holds a stack lock to exit."""
LIST_TRIES = 4
"""Calls of ``stack ls`` before ``list_stacks`` gives up (see there)."""

_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker key for a secret value
_DYNAMIC_PREFIX = "Exception calling application: "
_GENERIC_ERROR = re.compile(r"^(update|destroy|preview|refresh) (failed|canceled|cancelled)\s*$")
_LOCK_HOLDER = re.compile(r"created by (?P<user>\S+?)@(?P<host>\S+) \(pid (?P<pid>\d+)\)")
_PE = "pulumi.automation.errors."  # child errors travel as qualified class names
_PROGRAM_ERRORS = (_PE + "InlineSourceRuntimeError", _PE + "RuntimeError", _PE + "CompilationError")
_NOT_FOUND = _PE + "StackNotFoundError"
_LOCKED = _PE + "ConcurrentUpdateError"

EventCallback = EngineEventSink
#: Inside the driver, events travel as the plain dicts the child sends (see _event_dict)
#: until ``_Outcome.forwarder`` types them for the caller.
_RawSink = Callable[[dict[str, Any]], None]


# Stack names live in names.py; re-exported here as part of the driver's API.
from skyplan.provision.names import _short_hash, cluster_of, cluster_stack_prefix, stack_name  # noqa: E402,F401


# --- events -----------------------------------------------------------------------


def _event_dict(ev: Any) -> dict[str, Any] | None:
    """A pulumi EngineEvent as a plain dict (it crosses the child's pipe as JSON);
    None for noise (debug, prelude). ``protocol.engine_event`` types it.

    Shapes:
      {"type": "diagnostic", "severity", "message", "urn"}
      {"type": "resource_pre" | "res_outputs" | "res_op_failed", "op", "urn", "resource_type", ...}
        res_outputs adds "id" (and "outputs" for the root stack resource)
      {"type": "summary", "resource_changes", "duration_s"}
      {"type": "stdout", "message"}
    The driver adds {"type": "driver", "message"} for what it does on its own
    (clearing a stale lock, stopping a timed-out operation).
    """
    if ev.diagnostic_event is not None:
        d = ev.diagnostic_event
        if d.severity == "debug":
            return None
        return {"type": "diagnostic", "severity": d.severity, "message": d.message, "urn": d.urn}
    for kind, holder in (
        ("resource_pre", ev.resource_pre_event),
        ("res_outputs", ev.res_outputs_event),
        ("res_op_failed", ev.res_op_failed_event),
    ):
        if holder is None:
            continue
        m = holder.metadata
        out: dict[str, Any] = {"type": kind, "op": getattr(m.op, "value", m.op), "urn": m.urn, "resource_type": m.type}
        if kind == "res_outputs":
            out["id"] = m.new.id if m.new else None
            if m.type == "pulumi:pulumi:Stack" and m.new is not None:
                out["outputs"] = dict(m.new.outputs or {})
        if kind == "res_op_failed":
            out["status"] = holder.status
        return out
    if ev.summary_event is not None:
        s = ev.summary_event
        changes = {getattr(k, "value", k): v for k, v in (s.resource_changes or {}).items()}
        return {"type": "summary", "resource_changes": changes, "duration_s": s.duration_seconds}
    if ev.stdout_event is not None:
        return {"type": "stdout", "message": ev.stdout_event.message}
    return None


def _clean_message(msg: str) -> str:
    if msg.endswith("\n"):
        msg = msg[:-1]
    if msg.startswith(_DYNAMIC_PREFIX):
        msg = msg[len(_DYNAMIC_PREFIX) :]
    return msg


class _Outcome:
    """Reads one operation's events: which resource failed and why, what is in place."""

    def __init__(self) -> None:
        self.errors_by_urn: dict[str, list[str]] = {}
        self.loose_errors: list[str] = []
        self.failed: list[str] = []
        self.in_flight: dict[str, tuple[str, str]] = {}  # urn -> (op, resource type)
        self.live: set[str] = set()
        self.root_outputs: dict[str, Any] | None = None
        self.pending_warning = False

    def forwarder(self, stack: str, on_event: EventCallback | None) -> _RawSink:
        """An event sink that types each plain event for ``stack``, reads it
        here, then passes it on to the caller's callback."""

        def forward(d: dict[str, Any]) -> None:
            e = engine_event(d, stack)
            if e is None:
                return
            self.feed(e)
            if on_event is not None:
                on_event(e)

        return forward

    def feed(self, e: EngineEvent) -> None:
        if isinstance(e, _Diagnostic):
            if e.severity == "error":
                if e.urn:
                    self.errors_by_urn.setdefault(e.urn, []).append(e.message)
                else:
                    self.loose_errors.append(e.message)
            elif "pending operations from previous deployment" in e.message:
                self.pending_warning = True
        elif isinstance(e, ResourceStep):
            if e.step == "pre":
                self.in_flight[e.urn] = (e.op, e.resource_type)
                return
            self.in_flight.pop(e.urn, None)
            if e.step == "failed":
                self.failed.append(e.urn)
            elif e.op in ("delete", "discard"):
                self.live.discard(e.urn)
            else:
                self.live.add(e.urn)
                if e.outputs is not None:
                    self.root_outputs = e.outputs

    def error(self) -> tuple[str | None, str | None]:
        """(message, urn) of the failure, from diagnostics only."""
        for urn in self.failed:
            msgs = [m for m in self.errors_by_urn.get(urn, []) if not _GENERIC_ERROR.match(m.strip())]
            if msgs:
                return _clean_message(msgs[0]), urn
        for urn, msgs in self.errors_by_urn.items():
            for m in msgs:
                if not _GENERIC_ERROR.match(m.strip()):
                    return _clean_message(m), urn
        for m in self.loose_errors:
            if not _GENERIC_ERROR.match(m.strip()):
                return _clean_message(m), (self.failed[0] if self.failed else None)
        return None, (self.failed[0] if self.failed else None)

    def interrupted(self) -> tuple[str, ...]:
        # The root stack resource is "in flight" for the whole update; it is not a cloud resource.
        return tuple(
            u for u, (op, ty) in self.in_flight.items() if op not in ("same", "read") and ty != "pulumi:pulumi:Stack"
        )


def _stderr_error_line(text: str) -> str | None:
    """Last ``error:`` line of a CommandError's text: the fallback when no diagnostic explains."""
    stderr = text.split(" stderr: ", 1)[-1]
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return ln[len("error:") :].strip()
    return lines[-1] if lines else None


# --- the pulumi objects (child side) ------------------------------------------------


def _make_classes() -> tuple[type, type, type]:
    """Subclasses of the Automation API types that skip avoidable CLI calls."""
    from datetime import datetime

    from pulumi.automation import LocalWorkspace, PulumiCommand, Stack, UpdateSummary
    from pulumi.automation._stack import StackInitMode  # not re-exported; the SDK version is pinned
    from semver import VersionInfo

    class KnownCommand(PulumiCommand):
        """PulumiCommand for a binary whose version engine.find_engine() has
        already checked (and cached): skips the `pulumi version` call."""

        def __init__(self, path: str, version: str) -> None:  # noqa: D107 - no super(): that runs the CLI
            self.command = path
            self.version = VersionInfo.parse(version)

    class Workspace(LocalWorkspace):
        """Every command names its stack with --stack, so selecting is a no-op,
        and creating never touches the workspace's current-stack file."""

        def select_stack(self, stack_name: str) -> None:
            return None

        def create_stack(self, stack_name: str) -> None:
            args = ["stack", "init", stack_name, "--no-select", "--secrets-provider", "passphrase"]
            self.pulumi_command.run(args, self.work_dir, dict(self.env_vars))

    class OneUpStack(Stack):
        """A Stack for a single up(): Stack.up ends with `stack output` (twice)
        and `stack history`; skyplan reads outputs from the engine's events.
        Constructing it runs no command (the stack is created beforehand)."""

        def __init__(self, name: str, workspace: LocalWorkspace) -> None:
            super().__init__(name, workspace, StackInitMode.SELECT)

        def outputs(self) -> dict[str, Any]:  # type: ignore[override]
            return {}

        def info(self, show_secrets: bool = True) -> Any:
            now = datetime.now()
            return UpdateSummary("update", now, "", {}, {}, "succeeded", now, None, None, None)

    return KnownCommand, Workspace, OneUpStack


# --- the driver ---------------------------------------------------------------------


class StackDriver:
    """Runs skyplan's Pulumi stacks on one backend (see the module docstring).

    Construction checks the engine (``EngineError`` if missing) and prepares the
    environment; it runs no CLI command.
    """

    backend_url: str

    def __init__(self, backend_url: str | None = None) -> None:
        self.backend_url = resolve_backend_url(backend_url)
        self.engine = engine_mod.find_engine()
        self.work_dir = settings.work_dir(self.backend_url)
        self.env: dict[str, str] = settings.engine_env(self.backend_url, self.engine)
        # Built once here (no CLI call) so every forked child inherits them; the
        # Automation API is imported with no fork under way (see the module docstring).
        with forked.fork_lock:
            known_command, workspace_cls, self._stack_cls = _make_classes()
        self._ws = workspace_cls(
            work_dir=str(self.work_dir),
            env_vars=self.env,
            pulumi_command=known_command(str(self.engine.pulumi_path), self.engine.version),
        )
        self._clean: set[str] = set()  # stacks whose last operation here ended by itself
        self._clean_lock = threading.Lock()
        self.grace_s = GRACE_S

    # --- public API ---------------------------------------------------------------

    def up(
        self,
        stack: str,
        program: Callable[[], None],
        *,
        timeout_s: float | None,
        on_event: EventCallback | None = None,
    ) -> UpResult:
        """Create the stack if needed and run ``pulumi up`` with the inline ``program``.

        Never raises for a provider failure or a timeout: those come back as
        ``ok=False``. Raises ``EngineError`` only when the engine itself could
        not run (crash, unusable backend).
        """
        started = time.monotonic()
        outcome = _Outcome()

        forward = outcome.forwarder(stack, on_event)

        def work(emit: _RawSink) -> Any:
            from pulumi.automation import StackAlreadyExistsError

            try:
                self._ws.create_stack(stack)
            except StackAlreadyExistsError:
                pass
            st = self._stack_cls(stack, self._ws)

            def on_engine_event(ev: Any) -> None:
                d = _event_dict(ev)
                if d is not None:
                    emit(d)

            st.up(program=program, on_event=on_engine_event, color="never")
            return None

        res = self._run_with_lock_retry(stack, work, timeout_s=timeout_s, on_event=forward)
        duration = time.monotonic() - started
        count = len(outcome.live)
        if res.timed_out:
            self._mark_clean(stack, False)
            cut = outcome.interrupted()
            where = f" while {cut[0]} was being created" if cut else ""
            return UpResult(
                ok=False,
                outputs={},
                error=f"timed out after {timeout_s:g}s{where}",
                urn=cut[0] if cut else None,
                resource_count=count,
                stack=stack,
                timed_out=True,
                interrupted=cut,
                duration_s=duration,
            )
        if res.killed or (res.error is None and res.status != 0):
            self._mark_clean(stack, False)
            raise errors.EngineError(f"the engine process for stack {stack} died unexpectedly (status {res.status})")
        if not outcome.pending_warning:  # older interrupted ops would still be in the state
            self._mark_clean(stack, True)
        if res.error is None:
            outputs = outcome.root_outputs or {}
            if _has_secret(outputs):
                outputs = self.outputs(stack)
            return UpResult(True, outputs, None, None, count, stack=stack, duration_s=duration)
        message, urn = outcome.error()
        if message is None:
            message = _stderr_error_line(res.error["text"]) or res.error["type"]
        kind = res.error["type"]
        if kind not in (_PE + "CommandError", _LOCKED) + _PROGRAM_ERRORS:
            if not outcome.failed and not outcome.errors_by_urn and not outcome.loose_errors:
                # Not an engine failure at all: the driver or the SDK broke.
                raise errors.EngineError(f"pulumi up of {stack} failed: {kind}: {res.error['text']}")
        program_error = kind in _PROGRAM_ERRORS and not outcome.failed
        return UpResult(False, {}, message, urn, count, stack=stack, program_error=program_error, duration_s=duration)

    def destroy_and_remove(
        self,
        stack: str,
        *,
        timeout_s: float | None = DEFAULT_DESTROY_TIMEOUT_S,
        on_event: EventCallback | None = None,
        resolve_interrupted: Callable[[InterruptedOp], bool] | None = None,
        forget_interrupted: bool = False,
    ) -> None:
        """Destroy every resource of ``stack``, check none is left, remove the stack.

        Idempotent: a stack that does not exist is already clean. Stale locks
        left by dead pulumi processes on this host are cleared. Interrupted
        creates (see the module docstring) are passed to ``resolve_interrupted``,
        which returns True when it has made sure the resource does not exist;
        ``forget_interrupted`` drops them unchecked (a user's explicit choice).

        Raises ``CleanupError`` naming the stack and the URNs that may have
        leaked if the destroy fails, a resource remains, or an interrupted
        create is unresolved; the stack is then kept so a retry can finish.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        hint = f"fix the cause above, then retry with `skyplan down {cluster_of(stack)}`"
        if not self._is_clean(stack):
            state = self._export(stack)
            if state is None:
                return
            unresolved = []
            for op in _interrupted_ops(state):
                if op.op not in ("creating", "importing"):
                    continue  # the resource is still in the state; destroy deletes it
                if forget_interrupted or (resolve_interrupted is not None and resolve_interrupted(op)):
                    continue
                unresolved.append(op)
            if unresolved:
                self._destroy(stack, remove=False, deadline=deadline, on_event=on_event)
                urns = [op.urn for op in unresolved]
                raise errors.CleanupError(
                    f"stack {stack}: {len(urns)} create(s) were interrupted and may exist without Pulumi "
                    f"knowing their IDs: {', '.join(urns)}",
                    stack=stack,
                    resources=urns,
                    hint=f"check the cloud for them and delete any that exist, then run `skyplan down {cluster_of(stack)}`",
                )
        res, outcome = self._destroy(stack, remove=True, deadline=deadline, on_event=on_event)
        self._mark_clean(stack, False)
        if res.error is None and not res.timed_out and not res.killed:
            return
        if res.error is not None and res.error["type"] == _NOT_FOUND:
            return
        if res.timed_out:
            reason = f"destroy timed out after {timeout_s:g}s"
        else:
            message, _ = outcome.error()
            reason = message or (_stderr_error_line(res.error["text"]) if res.error else None) or "destroy failed"
        try:
            state = self._export(stack)
            left = [r["urn"] for r in (state or {}).get("resources", [])]
            left += [op.urn for op in _interrupted_ops(state or {}) if op.op in ("creating", "importing")]
        except errors.SkyplanError:
            left = list(dict.fromkeys(outcome.failed)) or ["<unknown: the stack's state could not be read>"]
        raise errors.CleanupError(
            f"could not clean up stack {stack}: {reason}"
            + (f"; may have leaked: {', '.join(left)}" if left else ""),
            stack=stack,
            resources=left,
            hint=hint,
        )

    def list_stacks(self, prefix: str = "") -> list[str]:
        """Names of the project's stacks on this backend that start with ``prefix``.

        Retried (``LIST_TRIES`` in all) when the CLI fails: ``stack ls`` on a file://
        backend reads every stack's checkpoint, and fails ("error: EOF", about one
        call in 90 here) when another process is writing or removing one of them."""

        def work(emit: Any) -> Any:
            return [s.name for s in self._ws.list_stacks()]

        for attempt in range(LIST_TRIES):
            res = self._run(work, timeout_s=QUICK_TIMEOUT_S)
            if res.error is None or res.timed_out or attempt == LIST_TRIES - 1:
                break
            time.sleep(0.1 * (attempt + 1))
        self._raise_for(res, "list stacks")
        return sorted(n for n in res.value if n.startswith(prefix))

    def outputs(self, stack: str) -> dict[str, Any]:
        """The stack's outputs (secrets in plain text)."""

        def work(emit: Any) -> Any:
            return {k: v.value for k, v in self._ws.stack_outputs(stack).items()}

        res = self._run(work, timeout_s=QUICK_TIMEOUT_S)
        self._raise_for(res, f"read the outputs of stack {stack}")
        return dict(res.value)

    def resource_count(self, stack: str) -> int:
        """How many resources the stack's state holds (0 if the stack does not exist)."""
        state = self._export(stack)
        return len((state or {}).get("resources", []))

    def interrupted_ops(self, stack: str) -> list[InterruptedOp]:
        """The stack's pending operations (see InterruptedOp); [] if it does not exist."""
        return _interrupted_ops(self._export(stack) or {})

    def refreshed_state(self, stack: str, *, timeout_s: float) -> dict[str, Any] | None:
        """``pulumi refresh`` the stack (the providers read every resource from the
        cloud; what the cloud deleted leaves the state), then its deployment as
        exported, in one forked child bounded by ``timeout_s``. None if the stack
        does not exist. Raises ``EngineError`` when it could not run (no plugin,
        no credentials, a lock, the timeout): the jobs controller reads that as
        "the cloud cannot tell" (``skyplan.clouds.instancestate``)."""

        def work(emit: Any) -> Any:
            args = ["refresh", "--yes", "--skip-preview", "--non-interactive", "--color", "never", "--stack", stack]
            self._ws.pulumi_command.run(args, self._ws.work_dir, dict(self.env))
            return self._ws.export_stack(stack).deployment or {}

        res = self._run(work, timeout_s=timeout_s)
        if res.timed_out:
            self._mark_clean(stack, False)  # a refresh stopped mid-way may leave its lock
            raise errors.EngineError(f"could not refresh stack {stack}: no answer within {timeout_s:g}s")
        if res.error is not None and res.error["type"] == _NOT_FOUND:
            return None
        self._raise_for(res, f"refresh stack {stack}")
        return dict(res.value)

    # --- internals ------------------------------------------------------------------

    def _mark_clean(self, stack: str, clean: bool) -> None:
        with self._clean_lock:
            if clean:
                self._clean.add(stack)
            else:
                self._clean.discard(stack)

    def _is_clean(self, stack: str) -> bool:
        with self._clean_lock:
            return stack in self._clean

    def _run(
        self,
        fn: Callable[[_RawSink], Any],
        *,
        timeout_s: float | None,
        on_event: _RawSink | None = None,
    ) -> forked.ChildResult:
        def on_timeout() -> None:
            if on_event is not None:
                on_event({"type": "driver", "message": f"timed out after {timeout_s:g}s; stopping the engine"})

        return forked.run(fn, timeout_s=timeout_s, grace_s=self.grace_s, on_event=on_event, on_timeout=on_timeout)

    def _run_with_lock_retry(self, stack: str, fn: Any, *, timeout_s: float | None,
                             on_event: _RawSink | None) -> forked.ChildResult:
        """``_run``, and once more after clearing a lock whose holders are all dead."""
        start = time.monotonic()
        res = self._run(fn, timeout_s=timeout_s, on_event=on_event)
        if res.error is not None and res.error["type"] == _LOCKED:
            if self._clear_stale_lock(stack, res.error["text"], on_event):
                left = None if timeout_s is None else max(1.0, timeout_s - (time.monotonic() - start))
                res = self._run(fn, timeout_s=left, on_event=on_event)
        if res.timed_out and res.killed:
            # The CLI died holding the stack lock; we killed it, so the lock is ours to clear.
            self._cancel(stack, on_event)
        return res

    def _clear_stale_lock(self, stack: str, text: str, on_event: _RawSink | None) -> bool:
        """Clear the stack's lock if every holder is a pulumi process of this host
        that is dead, or dies within LOCK_WAIT_S (an operation orphaned by a
        killed skyplan winds down within its grace period)."""
        holders = [(m["host"], int(m["pid"])) for m in _LOCK_HOLDER.finditer(text)]
        me = socket.gethostname()
        if not holders or any(host != me for host, _ in holders):
            return False
        end = time.monotonic() + LOCK_WAIT_S
        while any(forked.pulumi_alive(pid) for _, pid in holders):
            if time.monotonic() > end:
                return False
            time.sleep(0.1)
        self._cancel(stack, on_event, reason=f"held by dead pid(s) {', '.join(str(p) for _, p in holders)}")
        return True

    def _cancel(self, stack: str, on_event: _RawSink | None, reason: str = "left by a stopped engine") -> None:
        def work(emit: Any) -> Any:
            self._ws.pulumi_command.run(["cancel", "--yes", "--stack", stack], self._ws.work_dir, dict(self.env))

        res = self._run(work, timeout_s=QUICK_TIMEOUT_S)
        if on_event is not None and res.error is None:
            on_event({"type": "driver", "message": f"cleared the stack lock {reason}"})

    def _destroy(
        self, stack: str, *, remove: bool, deadline: float | None, on_event: EventCallback | None
    ) -> tuple[forked.ChildResult, _Outcome]:
        outcome = _Outcome()

        forward = outcome.forwarder(stack, on_event)

        def work(emit: _RawSink) -> Any:
            from pulumi.automation import EngineEvent

            with tempfile.TemporaryDirectory(prefix="skyplan-events-") as tmp:
                log = os.path.join(tmp, "events.jsonl")
                open(log, "w").close()
                done = threading.Event()
                tail = threading.Thread(target=_tail_events, args=(log, done, emit, EngineEvent), daemon=True)
                tail.start()
                args = ["destroy", "--yes", "--skip-preview", "--color", "never", "--stack", stack, "--event-log", log]
                if remove:
                    args.append("--remove")
                try:
                    self._ws.pulumi_command.run(args, self._ws.work_dir, dict(self.env))
                finally:
                    done.set()
                    tail.join()
            return None

        timeout = None if deadline is None else max(1.0, deadline - time.monotonic())
        res = self._run_with_lock_retry(stack, work, timeout_s=timeout, on_event=forward)
        return res, outcome

    def _export(self, stack: str) -> dict[str, Any] | None:
        """The stack's deployment (secrets decrypted), or None if it does not exist."""

        def work(emit: Any) -> Any:
            return self._ws.export_stack(stack).deployment or {}

        res = self._run_with_lock_retry(stack, work, timeout_s=QUICK_TIMEOUT_S, on_event=None)
        if res.error is not None and res.error["type"] == _NOT_FOUND:
            return None
        self._raise_for(res, f"read the state of stack {stack}")
        return dict(res.value)

    @staticmethod
    def _raise_for(res: forked.ChildResult, what: str) -> None:
        if res.timed_out:
            raise errors.EngineError(f"could not {what}: pulumi did not answer within {QUICK_TIMEOUT_S:g}s")
        if res.error is not None:
            detail = _stderr_error_line(res.error["text"]) or res.error["type"]
            raise errors.EngineError(f"could not {what}: {detail}")
        if res.killed:
            raise errors.EngineError(f"could not {what}: the engine process died (status {res.status})")


# --- helpers ------------------------------------------------------------------------


def _tail_events(path: str, done: threading.Event, emit: _RawSink, event_cls: Any) -> None:
    """Follow the CLI's --event-log file until ``done`` is set and the file is drained."""
    partial = ""
    with open(path, encoding="utf-8") as fh:
        while True:
            line = fh.readline()
            if not line:
                if done.is_set():
                    return
                time.sleep(0.02)
                continue
            partial += line
            if not partial.endswith("\n"):
                continue
            text, partial = partial, ""
            try:
                d = _event_dict(event_cls.from_json(json.loads(text)))
            except (ValueError, KeyError):
                continue
            if d is not None:
                emit(d)


def _interrupted_ops(deployment: dict[str, Any]) -> list[InterruptedOp]:
    out = []
    for op in deployment.get("pending_operations") or []:
        res = op.get("resource") or {}
        inputs = {k: v for k, v in (res.get("inputs") or {}).items() if k != "__provider"}
        out.append(InterruptedOp(urn=res.get("urn", ""), type=res.get("type", ""), op=op.get("type", ""), inputs=inputs))
    return out


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return _SECRET_SIG in value or any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False
