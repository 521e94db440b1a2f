"""What a running launch is doing, for people: typed progress events.

``launch()`` reports on two channels. ``LaunchOptions.on_event`` receives the
launch events (``events.py``: preflight, recover, launching, attempt), the
record that ``apply --json`` writes. ``LaunchOptions.on_progress`` receives
these, for a live status line: which phase the running attempt is in, and what
an interrupted launch cleans up. They add no fact the launch events lack
about the outcome; they say what is happening *meanwhile*, and they are not
part of the JSON contract.

``Phase.phase``, for one attempt, in order:

=============  ================================================================
``creating``   its stack's ``up`` runs; ``detail`` names the cloud resources
               whose create has begun and not yet ended (``node-0``)
``booting``    a node exists; the engine is finishing the rest of the stack
               (the other nodes, outputs) and the node starts its task
``cleaning up``  a failed attempt's stack is destroyed, checked empty and
               removed before failover moves on; ``detail``: what is deleted
=============  ================================================================

``Phase.bound`` is the most attempts this launch can still make, this one
included: the candidates from this one on that no block covers yet. It shrinks
as failures block zones, regions and clouds.

``Cleanup`` reports the stacks a launch destroys because it is stopping
(Ctrl-C, SIGTERM, an unexpected error): once when it starts (``done`` False)
and once when it ends (``done`` True; ``ok`` False when the stack could not
be emptied, ``error`` saying why: the next run's recovery or ``down`` retries).

Every progress event is emitted on the launching thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Union

from skyplan.planner.candidates import Candidate

CREATING = "creating"
BOOTING = "booting"
CLEANING_UP = "cleaning up"


@dataclass(frozen=True)
class Phase:
    """Attempt ``number`` (of at most ``bound``) on ``candidate`` entered ``phase``."""

    number: int
    bound: int
    phase: str
    candidate: Candidate
    stack: str
    detail: str = ""


@dataclass(frozen=True)
class Cleanup:
    """A stopping launch destroys ``stack`` (``candidate``: its placement, when known).
    ``reason``: ``interrupted`` (Ctrl-C, SIGTERM) or ``error``."""

    stack: str
    candidate: Candidate | None
    reason: str
    done: bool = False
    ok: bool = True
    error: str = ""


ProgressEvent = Union[Phase, Cleanup]
ProgressSink = Callable[[ProgressEvent], None]


#: A node's resource name ends in its rank: every program names its nodes so
#: (``clouds.vm.node_name``: ``<stack>-<rank>``; local and sim: ``node-<rank>``).
NODE_NAME = re.compile(r"-\d+$")


def ignore(event: Any) -> None:
    pass


def resource_name(urn: str) -> str:
    """The resource's own name, the last part of its URN (``...::node-0`` -> ``node-0``)."""
    return urn.rsplit("::", 1)[-1] if urn else ""


class AttemptPhases:
    """One attempt's progress: turns the engine's events of its ``up`` and of its
    cleanup into :class:`Phase` events. An ``EngineEventSink`` (call it with each
    engine event); ``then`` receives every engine event afterwards (the failpoint hooks)."""

    def __init__(self, emit: ProgressSink, number: int, bound: int, candidate: Candidate, stack: str,
                 then: Callable[[Any], None] | None = None) -> None:
        self.emit = emit
        self.number = number
        self.bound = bound
        self.candidate = candidate
        self.stack = stack
        self.then = then
        self.phase = ""
        self._pending: list[str] = []
        self._nodes = 0

    def enter(self, phase: str, detail: str = "") -> None:
        self.phase = phase
        self.emit(Phase(self.number, self.bound, phase, self.candidate, self.stack, detail))

    def start(self) -> None:
        self.enter(CREATING)

    def cleaning_up(self) -> None:
        self._pending = []
        self.enter(CLEANING_UP)

    def __call__(self, ev: Any) -> None:
        from skyplan.provision.reap import cloud_resource

        try:
            if cloud_resource(ev) and ev.op in ("create", "delete"):
                self._step(ev)
        finally:
            if self.then is not None:
                self.then(ev)

    def _step(self, ev: Any) -> None:
        name = resource_name(ev.urn)
        if ev.step == "pre":
            self._pending.append(name)
        elif name in self._pending:
            self._pending.remove(name)
        if ev.op == "create" and self.phase != CLEANING_UP:
            if ev.step == "outputs" and NODE_NAME.search(name):
                self._nodes += 1
            self.enter(BOOTING if self._nodes else CREATING, ", ".join(self._pending))
        elif ev.op == "delete" and self.phase == CLEANING_UP:
            self.enter(CLEANING_UP, ", ".join(f"deleting {n}" for n in self._pending))
