"""Named failpoints: crash skyplan on purpose where a crash could leave the world
and the state out of step (etcd's gofail, as a small module).

    SKYPLAN_FAILPOINTS=NAME:ACTION[,NAME:ACTION...]

ACTION is one of

* ``kill``:  SIGKILL this process (nothing runs after it: no cleanup, no finally);
* ``term``:  SIGTERM this process. The CLI turns SIGTERM into an interrupt (exit
  130, the attempt in flight cleaned up first); a process without a handler dies;
* ``raise``: raise :class:`FailpointError`, an exception nothing expects (the CLI
  reports it as an internal error, exit 1).

The variable is read once, when this module is first imported (skyplan's own
process, and each dynamic-provider process the engine starts, which inherits the
environment). Unset, ``hit()`` is one lookup in an empty frozen dict. Each hit is
appended to ``<SKYPLAN_HOME>/logs/failpoints.log`` (``pid name action``) before it
fires, so a test can tell a crash at the failpoint from a crash elsewhere.

``NAMES`` lists every failpoint, in the order a launch passes them (a successful
attempt's points, with the failed attempt's cleanup where it happens), then
``down``'s. ``skyplan debug failpoints --json`` prints it. The README lists what
each one leaves behind.
"""

from __future__ import annotations

import os
import signal
import time
from types import MappingProxyType
from typing import Mapping

ENV = "SKYPLAN_FAILPOINTS"
ACTIONS = ("kill", "term", "raise")

#: Every failpoint, in launch order, then down's. Where each one sits:
NAMES: tuple[str, ...] = (
    # recovery: a re-run destroys what an earlier run of the cluster left on the backend
    "recover.before-destroy",   # a leftover stack is about to be destroyed
    "recover.after-destroy",    # it is destroyed and removed; its journal row not yet marked cleaned
    # one attempt
    "attempt.after-journal",    # the attempt is journalled (running); its stack does not exist yet
    "attempt.up.creating",      # inside up: the engine began creating the placement's resource
    "provider.created",         # inside up, in the local/sim provider: the resource exists, the engine
                                # has not been told (the provider process crashes, not skyplan)
    "attempt.up.created",       # inside up: the engine reports the resource created; up not returned
    "attempt.after-up",         # up returned; its outcome is not recorded yet
    "cleanup.before-destroy",   # a failed attempt is recorded; its stack is not destroyed yet
    "cleanup.after-destroy",    # the failed attempt's stack is destroyed and removed; not yet recorded
    "attempt.after-record-up",  # the attempt is recorded up; the cluster is not UP yet
    # converging apply of a cluster that is up (skyplan.provision.converging)
    "rerun.after-journal",      # re-run in place: the cluster is marked PROVISIONING; its stack not updated yet
    "replace.after-up",         # replacement: the new placement is up and recorded; the row names the old one
    "replace.after-switch",     # replacement: the row names the new stack; the old one is not destroyed yet
    # down
    "down.before-destroy",      # the cluster is marked DOWN; nothing destroyed yet
    "down.resource-deleted",    # inside a stack's destroy: a resource is deleted, the stack not removed
    "down.after-destroy",       # a stack is destroyed and removed; others, or the cluster row, remain
    "down.before-forget",       # nothing left on the backend or the clouds; the cluster row remains
)


class FailpointError(RuntimeError):
    """Raised by a failpoint whose action is ``raise``: an error nothing expects.
    Deliberately not a SkyplanError, so it travels the paths a bug would."""


def parse(text: str | None) -> tuple[dict[str, str], list[str]]:
    """``NAME:ACTION,...`` -> ({name: action}, problems). Unknown names and actions are problems."""
    active: dict[str, str] = {}
    problems: list[str] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, action = item.partition(":")
        name, action = name.strip(), action.strip()
        if not sep or action not in ACTIONS:
            problems.append(f"'{item}': the action must be one of {', '.join(ACTIONS)} (NAME:ACTION)")
        elif name not in NAMES:
            problems.append(f"'{name}' is not a failpoint (see `skyplan debug failpoints`)")
        else:
            active[name] = action
    return active, problems


_active, PROBLEMS = parse(os.environ.get(ENV))
#: The failpoints switched on in this process (frozen: read once, at import).
ACTIVE: Mapping[str, str] = MappingProxyType(_active)
del _active


def hit(name: str) -> None:
    """Fire failpoint ``name`` if it is switched on; otherwise nothing (one dict lookup)."""
    action = ACTIVE.get(name)
    if action is not None:
        _fire(name, action)


def configure(text: str | None) -> Mapping[str, str]:
    """Switch failpoints on in this process (tests: ``configure("attempt.after-up:raise")``;
    ``configure(None)`` switches all off). Returns the previous set. Raises ValueError
    for an unknown name or action."""
    global ACTIVE
    active, problems = parse(text)
    if problems:
        raise ValueError("; ".join(problems))
    previous, ACTIVE = ACTIVE, MappingProxyType(active)
    return previous


def _fire(name: str, action: str) -> None:
    _record(name, action)
    if action == "raise":
        raise FailpointError(f"failpoint {name}")
    if action == "term":
        # The handler (the CLI's) runs at once on the main thread; without one the process ends here.
        signal.raise_signal(signal.SIGTERM)
        return
    os.kill(os.getpid(), signal.SIGKILL)
    while True:  # pragma: no cover - the kill is not ignorable
        time.sleep(1)


def _record(name: str, action: str) -> None:
    try:
        from skyplan import home

        with open(home.sub("logs") / "failpoints.log", "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {name} {action}\n")
    except Exception:  # noqa: BLE001 - a failpoint must fire even if its record cannot be written
        pass
